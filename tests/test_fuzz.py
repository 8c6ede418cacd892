"""Fuzzing a running node's NATS boundary with hypothesis.

Generated requests (random bytes; msgpack and JSON of random structures with deep nesting,
lone surrogates in every field, huge integers, NaN, wrong types, non-string keys, empty and
oversized strings) go to the turn subject (valid and invalid tenant and bot tokens) and to
every admin verb (and unknown ones), while other clients keep talking to the node. For every
request: exactly one reply within the timeout, a documented structured error or a result,
never ``internal``; and over the run: no actor restarted, no event recorded for a request
that was refused, every well-formed turn beside them answered right.

``BOTYARD_FUZZ_CASES`` (default 300, well under a minute) sets the number of requests;
``BOTYARD_FUZZ_CASES=20000 python -m pytest -q tests/test_fuzz.py -s`` runs it at length and
prints its one-line summary.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgpack
import nats
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from botyard import Client, protocol
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore
from botyard.ops.admin import VERBS
from botyard.ops.config import Config
from botyard.ops.node import Node
from botyard.snapshots.store import LocalSnapshotStore
from tests.conftest import promote

CASES = int(os.environ.get("BOTYARD_FUZZ_CASES", "300"))
BATCH = 4
"""Requests per hypothesis example, sent at once."""
TIMEOUT = 15.0
"""Seconds a request waits for its reply."""
TENANT, ADMIN_BOT, TURN_BOT = "acme-shop", "support", "steady"
"""Turns (the fuzzer's and the steady traffic's) go to ``steady``; admin requests name
``support``, which records no turns, so that no admin reply grows with the run."""
MAX_PAYLOAD = 900_000
"""Payloads are cut to this: nats-py refuses to publish over the server's 1 MB."""
STEADY = [("where is my order?", "order_status"), ("thank you so much", "thanks")]
ROOT = Path(__file__).resolve().parent.parent


def documented_codes() -> set[str]:
    """Every code in the error tables of docs/protocol.md."""
    codes, in_table = set(), False
    for line in (ROOT / "docs" / "protocol.md").read_text().splitlines():
        if line.startswith("| `error.code`"):
            in_table = True
        elif in_table and line.startswith("|"):
            codes |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
        else:
            in_table = False
    return codes


# -- what is sent -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    kind: str  # "turn" or "admin"
    subject: str
    data: bytes
    headers: dict | None

    def label(self) -> str:
        return f"{self.subject} {self.headers or ''} {self.data[:120]!r}{'...' if len(self.data) > 120 else ''}"


def weighted(*choices):
    """One of the strategies, each ``(weight, strategy)`` drawn that often (``st.one_of``
    draws its branches evenly, and folds repeated ones into one)."""
    table = [s for w, s in choices for _ in range(w)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


SURROGATES = ["\ud800", "p\ud800", "\udfff", "a\udc80b", "\ud83d", "\ude42x"]
NAMES = [TENANT, ADMIN_BOT, TURN_BOT, "staging", "canary", "nobody", "-x", "_a", "a" * 65, "é", "staging\n", "a.b", "*", ">"]
BAD_TOKENS = ["-x", "_a", "a" * 65, "é", "x$y", "A#", "%", "ü-bot"]
"""Subject tokens that are not names (but are valid in a NATS subject)."""
JSON_HEADERS = [{"Content-Type": "application/json"}, {"content-type": "Application/JSON; charset=utf-8"}]
ALIAS_HEADERS = ["staging", "production", "canary", "-bad", "a" * 70, "é", "x y"]

hostile_strings = st.sampled_from(SURROGATES) | st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=6), st.sampled_from(SURROGATES), st.text(max_size=6)
)
strings = st.one_of(
    st.text(max_size=24),
    hostile_strings,
    st.sampled_from(NAMES + ["", "   ", "\x00", "\u2028", "0" * 32, "c" * 129, "🙂" * 129, "where is my order?"]),
    st.integers(0, 12).map(lambda k: "x" * (30 << k)),  # up to 120 KB
)
ints = st.one_of(
    st.integers(-3, 20),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53, 2**53 + 1, -(2**53), -(2**53) - 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), 2**64, 10**30]),
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308])
leaves = st.one_of(st.none(), st.booleans(), ints, floats, strings, st.binary(max_size=8))
keys = weighted((3, strings), (1, st.integers(-3, 3) | st.none() | st.booleans() | st.binary(max_size=4) | st.floats(allow_nan=False)))
structures = st.recursive(leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=4), max_leaves=12)


def nest(depth: int, leaf=None):
    value = leaf
    for _ in range(depth - 1):
        value = [value]
    return value


nests = st.integers(25, 40).map(nest)  # around MAX_DEPTH, still encodable by both codecs
values = weighted((4, strings), (1, structures), (1, nests), (1, ints | floats), (1, st.none() | st.booleans() | st.binary(max_size=8)))


def _clamped(value):
    """The value msgpack can carry: integers cut to its range."""
    if type(value) is int:
        return max(-(2**63), min(2**64 - 1, value))
    if isinstance(value, list):
        return [_clamped(v) for v in value]
    if isinstance(value, dict):
        return {_clamped(k): _clamped(v) for k, v in value.items()}
    return value


def encode(value, how: str) -> bytes:
    """``how``: json (lone surrogates escaped: valid JSON), json-raw (written as invalid UTF-8),
    msgpack (bin type for bytes), msgpack-old (the old raw type for every string and bytes)."""
    if how.startswith("json"):
        text = json.dumps(value, ensure_ascii=how == "json", skipkeys=True, default=lambda o: o.hex())
        return text.encode("utf-8", "surrogatepass")
    return msgpack.packb(_clamped(value), use_bin_type=how == "msgpack", unicode_errors="surrogatepass")


def deep_bytes(depth: int, kind: str, wrapped: bool) -> tuple[bytes, bool]:
    """A body nested ``depth`` deep, built as bytes (no codec nests that far); ``wrapped``:
    as a field of an otherwise plausible turn or admin request."""
    as_json = kind.startswith("json")
    inner = {
        "json-list": b"[" * depth + b"]" * depth,
        "json-map": b'{"a":' * depth + b"1" + b"}" * depth,
        "msgpack-list": b"\x91" * depth + b"\xc0",
        "msgpack-map": b"\x81\xa1a" * depth + b"\xc0",
    }[kind]
    if wrapped:
        fields = {"conversation_id": "deep", "text": "hi", "tenant": TENANT, "bot": ADMIN_BOT}
        if as_json:
            inner = json.dumps(fields)[:-1].encode() + b',"x":' + inner + b"}"
        else:
            inner = b"\x85" + b"".join(msgpack.packb(k) + msgpack.packb(v) for k, v in fields.items()) + msgpack.packb("x") + inner
    return inner, as_json


RAW = [
    (b"", False), (b"", True), (b"null", True), (b"{}", True), (b"[]", True), (b"\xc0", False), (b"\x80", False),
    (b'"\\ud800"', True), (b'{"conversation_id":"p\\ud800","text":"hi"}', True),
    (b'{"conversation_id":"c","text":"hi","n":' + b"9" * 5000 + b"}", True),
    (b'{"conversation_id":"c","text":"hi","n":1e999}', True), (b'{"conversation_id":"c","text":NaN}', True),
    (b'{"conversation_id":"c","text":"hi"}{}', True), (b"\xef\xbb\xbf{}", True), ('{"a":"é"}'.encode("utf-16"), True),
    (msgpack.packb({"conversation_id": "c", "text": "hi"}) + b"\x00", False),
    (b"\xdf\xff\xff\xff\xff", False), (b"\xdd\xff\xff\xff\xff", False), (b"\xc7\x01\xff\x00", False),  # huge lengths, an ext
    (b"\xd6\xff\x00\x00\x00\x01", False),  # a msgpack timestamp
]
payloads = st.one_of(
    st.tuples(st.binary(max_size=64), st.booleans()),
    st.sampled_from(RAW),
    st.builds(
        deep_bytes,
        st.sampled_from([31, 32, 33, 100, 999, 1000, 1025, 5000, 30_000, 100_000]) | st.integers(1, 3000),
        st.sampled_from(["json-list", "json-map", "msgpack-list", "msgpack-map"]),
        st.booleans(),
    ),
)

TURN_FIELDS = ["conversation_id", "text", "turn_id", "alias"]
turn_bodies = weighted(
    (2, st.fixed_dictionaries({}, optional={k: values for k in [*TURN_FIELDS, "x"]})),
    (4, st.builds(  # a plausible turn with one field hostile
        lambda cid, text, k, v: {"conversation_id": cid, "text": text, k: v},
        st.sampled_from(["fz-a", "fz-b"]) | st.text(min_size=1, max_size=12),
        st.sampled_from([t for t, _ in STEADY]) | st.text(min_size=1, max_size=30),
        st.sampled_from([*TURN_FIELDS, "x", "meta"]),
        values,
    )),
    (1, structures),
    (1, nests),
)
ADMIN_FIELDS = [
    "tenant", "bot", "snapshot", "alias", "actor", "reason", "gate", "force", "to", "a", "b", "keep", "dry_run",
    "conversation_id", "at", "since", "until", "last", "max_changes", "turn", "intent", "after", "limit",
]
admin_values = st.one_of(values, st.integers(0, 20), st.booleans(), st.sampled_from(["nats", "abcdef", "0" * 32])).filter(
    lambda v: v not in ("production", "staging")  # never a real snapshot: no move can succeed, so none records anything
)
PLAUSIBLE = {  # well-typed fields of every verb, one of which is then made hostile (never a real snapshot)
    "tenant": st.sampled_from([TENANT, "nobody"]), "bot": st.sampled_from([ADMIN_BOT, "nobot"]),
    "snapshot": st.sampled_from(["abcdef", "0" * 32, "canary", "deadbeef12"]), "alias": st.sampled_from(["canary", "production"]),
    "actor": st.just("fuzz"), "reason": st.text(max_size=20), "gate": st.booleans(), "force": st.booleans(),
    "to": st.sampled_from(["abcdef0", "1" * 32]), "a": st.just("abcdef"), "b": st.just("0" * 32), "keep": st.integers(0, 9),
    "dry_run": st.just(True), "conversation_id": st.sampled_from(["c1", "fz-a", "🙂"]), "at": st.integers(0, 3),
    "since": st.floats(0, 2e9), "until": st.floats(0, 2e9), "last": st.integers(1, 5), "max_changes": st.integers(0, 5),
    "turn": st.integers(1, 3), "intent": st.sampled_from(["greeting", "thanks", "nope"]), "after": st.integers(0, 5),
    "limit": st.integers(1, 20),
}
plausible_admin = st.builds(
    lambda fields, hostile: {**fields, **hostile},
    st.fixed_dictionaries({"tenant": PLAUSIBLE["tenant"], "bot": PLAUSIBLE["bot"]},
                          optional={k: v for k, v in PLAUSIBLE.items() if k not in ("tenant", "bot")}),
    st.just({}) | st.dictionaries(st.sampled_from(ADMIN_FIELDS), admin_values, max_size=1),
)
admin_bodies = weighted(
    (4, plausible_admin),
    (1, st.builds(
        lambda base, extra: {**base, **extra},
        st.sampled_from([{}, {"tenant": TENANT, "bot": ADMIN_BOT}, {"tenant": TENANT}, {"tenant": "nobody", "bot": "x"}]),
        st.dictionaries(st.sampled_from(ADMIN_FIELDS), admin_values, max_size=4),
    )),
    (1, structures),
    (1, nests),
)
encodings = st.sampled_from(["json", "json", "json-raw", "msgpack", "msgpack", "msgpack-old"])


def _cut(data: bytes) -> bytes:
    return data[:MAX_PAYLOAD]


def _headers(as_json: bool, which: int, alias: str | None) -> dict | None:
    headers = dict(JSON_HEADERS[which]) if as_json else {}
    if alias is not None:
        headers["Botyard-Alias"] = alias
    return headers or None


def _request(kind, subject, body_or_payload, how, flip, which, alias):
    if how is None:
        data, as_json = body_or_payload
    else:
        data, as_json = encode(body_or_payload, how), how.startswith("json")
    return Req(kind, subject, _cut(data), _headers(as_json != flip, which, alias))


_flip = st.sampled_from([False] * 9 + [True])  # now and then the header does not match the body
_which = st.integers(0, len(JSON_HEADERS) - 1)
turn_subjects = weighted(
    (8, st.just(protocol.turn_subject(TENANT, TURN_BOT))),
    (1, st.builds(protocol.turn_subject, st.sampled_from([TENANT, "nobody"]), st.sampled_from(["nobot", TURN_BOT]))),
    (1, st.builds(protocol.turn_subject, st.sampled_from([TENANT, *BAD_TOKENS]), st.sampled_from([TURN_BOT, *BAD_TOKENS]))),
)
admin_subjects = weighted(
    (8, st.sampled_from(VERBS).map(protocol.admin_subject)),
    (1, st.sampled_from(["nope", "LIST", "list.extra", "a.b.c", "_x", "é"]).map(protocol.admin_subject)),
    (1, st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=10).map(protocol.admin_subject)),
)
turn_requests = weighted(
    (3, st.builds(_request, st.just("turn"), turn_subjects, turn_bodies, encodings, _flip, _which,
                  weighted((3, st.none()), (1, st.sampled_from(ALIAS_HEADERS))))),
    (1, st.builds(_request, st.just("turn"), turn_subjects, payloads, st.none(), _flip, _which, st.none())),
)
admin_requests = weighted(
    (3, st.builds(_request, st.just("admin"), admin_subjects, admin_bodies, encodings, _flip, _which, st.none())),
    (1, st.builds(_request, st.just("admin"), admin_subjects, payloads, st.none(), _flip, _which, st.none())),
)
requests = weighted((1, turn_requests), (1, admin_requests))


# -- the wire -----------------------------------------------------------------------------------


class Wire:
    """A NATS connection on a loop thread of its own: each request with its own reply inbox,
    every reply counted; and steady clients talking to the node meanwhile."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-wire", daemon=True)
        self.thread.start()
        self.prefix = f"_INBOX.fuzz{uuid.uuid4().hex}"
        self.counter = itertools.count()
        self.replies: dict[int, list] = {}
        self.waiting: dict[int, asyncio.Future] = {}
        self.nc = self.call(nats.connect(url))
        self.call(self.nc.subscribe(f"{self.prefix}.>", cb=self._got))
        self.steady_cids = [f"steady-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
        self.steady_turns = 0
        self.steady_failures: list[str] = []
        self._steady = None

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _got(self, msg) -> None:
        n = int(msg.subject.rsplit(".", 1)[1])
        self.replies.setdefault(n, []).append(msg)
        future = self.waiting.pop(n, None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def _one(self, req: Req):
        n = next(self.counter)
        future = self.loop.create_future()
        self.waiting[n] = future
        await self.nc.publish(req.subject, req.data, reply=f"{self.prefix}.{n}", headers=req.headers)
        try:
            return n, await asyncio.wait_for(future, TIMEOUT)
        except asyncio.TimeoutError:
            self.waiting.pop(n, None)
            return n, None

    def send(self, reqs) -> list:
        async def all_at_once():
            return await asyncio.gather(*(self._one(r) for r in reqs))

        return self.call(all_at_once(), TIMEOUT + 30)

    # steady traffic ---------------------------------------------------------------------------

    async def _talk(self, client: Client, cid: str, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            text, intent = STEADY[n % len(STEADY)]
            try:
                reply = await client.say(TENANT, TURN_BOT, cid, text)
            except Exception as exc:
                self.steady_failures.append(f"{cid} turn {n + 1}: {exc!r}")
                return
            n += 1
            if (reply.conversation_id, reply.turn, reply.intent) != (cid, n, intent):
                self.steady_failures.append(f"{cid}: turn {n} answered {reply}")
                return
            self.steady_turns += 1
            await asyncio.sleep(0.005)

    async def _run_steady(self, started: asyncio.Future) -> None:
        stop = asyncio.Event()
        clients = [await Client.connect(self.url, timeout=TIMEOUT) for _ in self.steady_cids]
        started.set_result(stop)
        try:
            await asyncio.gather(*(self._talk(c, cid, stop) for c, cid in zip(clients, self.steady_cids)))
        finally:
            for c in clients:
                await c.close()

    def start_steady(self) -> None:
        async def start():
            started = self.loop.create_future()
            task = self.loop.create_task(self._run_steady(started))
            return task, await started

        self._steady = self.call(start())

    def stop_steady(self) -> None:
        task, stop = self._steady

        async def finish():
            stop.set()
            await asyncio.wait_for(task, TIMEOUT + 10)

        self.call(finish())

    def close(self) -> None:
        try:
            self.call(self.nc.close(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


# -- the run ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory, nats_url, snapshot_dir):
    """A node with a private snapshot store (``gc`` is among the verbs fuzzed) serving the
    example bot as ``support`` and as ``steady``."""
    root = tmp_path_factory.mktemp("fuzz")
    own = root / "snapshots"
    shutil.copytree(snapshot_dir, own)
    store = LocalSnapshotStore(own)
    snap = store.load(store.latest(TENANT, ADMIN_BOT).id)
    manifest = {**snap.manifest, "bot": TURN_BOT, "definition": {**snap.manifest["definition"], "bot": TURN_BOT}}
    store.save(manifest, snap.arrays)
    config = Config.from_mapping(
        {}, nats_url=nats_url, data_dir=str(root / "data"), snapshot_dir=str(own), gc_freeze_seconds=0
    )
    for bot in (ADMIN_BOT, TURN_BOT):
        promote(config.events_url, config.data_dir, config.snapshots_path, bot=bot)
    node = Node(config).start()
    try:
        yield node
    finally:
        node.stop()


def _position(node) -> int:
    store = EventStore(node.config.events_url, node.config.data_dir)
    try:
        return store.recorder.max_notification_id() or 0
    finally:
        store.close()


def _recorded_after(node, position: int) -> list:
    store = EventStore(node.config.events_url, node.config.data_dir)
    try:
        top = store.recorder.max_notification_id() or 0
        if top <= position:
            return []
        return [n.originator_id for n in store.recorder.select_notifications(position + 1, top - position, stop=top)]
    finally:
        store.close()


class Judge:
    def __init__(self) -> None:
        self.documented = documented_codes()
        self.cases = self.timeouts = self.internal = self.ok = 0
        self.codes: Counter[str] = Counter()
        self.problems: list[str] = []
        self.answered: set = set()
        """Conversations a fuzzed turn was recorded in (its reply was a result)."""

    def __call__(self, req: Req, msg) -> None:
        self.cases += 1
        if msg is None:
            self.timeouts += 1
            return self.problems.append(f"no reply within {TIMEOUT} s: {req.label()}")
        headers = msg.headers or {}
        if headers.get("Status"):
            return self.problems.append(f"status {headers.get('Status')} (no responder?): {req.label()}")
        as_json = protocol.wants_json(req.headers)
        if (headers.get("Content-Type") == protocol.JSON_CONTENT_TYPE) != as_json:
            return self.problems.append(f"reply in the wrong encoding: {req.label()}")
        try:
            body = json.loads(msg.data) if as_json else msgpack.unpackb(msg.data, raw=False)
        except Exception as exc:
            return self.problems.append(f"reply does not decode ({exc}): {req.label()}")
        if isinstance(body, dict) and set(body) == {"error"}:
            error = body["error"]
            code = error.get("code")
            self.codes[code] += 1
            if code == protocol.INTERNAL:
                self.internal += 1
                self.problems.append(f"internal ({error.get('message')}): {req.label()}")
            elif code not in self.documented or not isinstance(error.get("message"), str):
                self.problems.append(f"undocumented error {error}: {req.label()}")
            return None
        if req.kind == "turn" and isinstance(body, dict) and {"conversation_id", "turn", "text", "intent", "node"} <= set(body):
            _, _, tenant, bot = req.subject.split(".")
            self.ok += 1
            self.answered.add(Conversation.create_id(tenant, bot, body["conversation_id"]))
            return None
        if req.kind == "admin" and isinstance(body, dict) and body.get("ok") is True and "result" in body:
            self.ok += 1
            return None
        self.problems.append(f"neither an error nor a result {str(body)[:200]}: {req.label()}")


KNOWN = [  # the outside fault test's requests, first
    Req("turn", protocol.turn_subject(TENANT, TURN_BOT), b'{"conversation_id":"p\\ud800","text":"hello"}', JSON_HEADERS[0]),
    Req("turn", protocol.turn_subject(TENANT, TURN_BOT), b"[" * 100_000, JSON_HEADERS[0]),
    Req("turn", protocol.turn_subject(TENANT, TURN_BOT), b"[" * 30_000 + b"]" * 30_000, JSON_HEADERS[0]),
    Req("admin", protocol.admin_subject("list"), b"[" * 30_000 + b"]" * 30_000, JSON_HEADERS[0]),
    Req("turn", protocol.turn_subject(TENANT, TURN_BOT), b'{"conversation_id":"c","text":"p\\ud800"}', JSON_HEADERS[0]),
    Req("admin", protocol.admin_subject("list"), b'{"tenant":"p\\ud800","bot":"support"}', JSON_HEADERS[0]),
]


@pytest.mark.timeout(300 + CASES // 10)
def test_fuzzing_the_nats_boundary(fuzz_node, nats_url, capsys):
    node = fuzz_node
    wire = Wire(nats_url)
    judge = Judge()
    restarts, position = node.stats()["restarts"], _position(node)
    started = time.monotonic()
    summary = "fuzz: not run"
    try:
        wire.start_steady()
        for req, (_, msg) in zip(KNOWN, wire.send(KNOWN)):
            judge(req, msg)
        assert not judge.problems, judge.problems

        @settings(
            max_examples=max(1, -(-(CASES - len(KNOWN)) // BATCH)), deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                   HealthCheck.large_base_example],
            phases=(Phase.generate,),
        )
        @given(st.lists(requests, min_size=BATCH, max_size=BATCH))
        def run(batch):
            for req, (_, msg) in zip(batch, wire.send(batch)):
                judge(req, msg)
            assert not judge.problems, "\n".join(judge.problems[:10])

        run()
        wire.stop_steady()
        time.sleep(1.0)  # a second reply to any request would have come by now
        duplicates = sum(1 for r in wire.replies.values() if len(r) > 1)
        now_restarts = node.stats()["restarts"] - restarts
        steady = {Conversation.create_id(TENANT, TURN_BOT, cid) for cid in wire.steady_cids}
        recorded = _recorded_after(node, position)
        events = sum(1 for origin in recorded if origin not in steady and origin not in judge.answered)
        seconds = time.monotonic() - started
        summary = (
            f"fuzz: cases={judge.cases} timeouts={judge.timeouts} internal={judge.internal} restarts={now_restarts} "
            f"events={events} duplicates={duplicates} results={judge.ok} steady_turns={wire.steady_turns} "
            f"steady_failures={len(wire.steady_failures)} seconds={seconds:.1f} rate={judge.cases / seconds:.0f}/s "
            f"codes={dict(judge.codes.most_common())}"
        )
        assert duplicates == 0
        assert now_restarts == 0
        assert events == 0, "events recorded for refused requests"
        assert not wire.steady_failures, wire.steady_failures[:5]
        assert wire.steady_turns > 0
        assert all(ref.is_alive() for ref in [*node.routing.workers, *node.routing.conversations, node.routing.admin])
    finally:
        with capsys.disabled():
            print(f"\n{summary}")
        wire.close()
