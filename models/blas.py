"""numpy's BLAS runs on one thread in every botyard process that serves or encodes.

A batch-1 product is microseconds, and waking threads costs more (a 10x384 by 384x128
product takes 8 us on one thread, 17-31 us on two). A multi-threaded product also rounds
differently from a single-threaded one (about 2e-7), so vectors computed on one thread
are the same on every machine, whatever its number of cores. The limit is set once per
process and kept (``threadpool_limits`` as a context costs about 0.4 ms per use).
"""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_limits

_limit = None
_lock = threading.Lock()


def single_threaded() -> None:
    """Limit numpy's BLAS to one thread for the rest of the process (idempotent)."""
    global _limit
    with _lock:
        if _limit is None:
            _limit = threadpool_limits(1, user_api="blas")
