"""Write ``events-v1f88b70.sqlite`` (and ``.json``) with botyard as of commit 1f88b70.

The file is an event store written by the code before events had stable topics: every
stored topic is a module path (``botyard.events.conversation:Conversation.TurnRecorded``).
``tests/events/test_old_events.py`` opens a copy of it with today's code.

Run it from the repository (it needs git; nothing in the working tree or in git changes)::

    python tests/data/make_old_events.py            # commit 1f88b70, into tests/data/

It exports the commit's tree into a temporary directory (``git archive``), makes a
directory holding a link ``botyard`` to it, and runs itself again in a subprocess with
that directory first on ``PYTHONPATH``, so ``import botyard`` is the old tree (checked:
the editable install's finder comes after ``sys.path``). The child writes, all through
the real code paths of that commit:

* tenant ``acme-shop``: two tokens issued, one revoked (``EventStore.change_tenant``);
* bot ``acme-shop/support``: its definition saved, then production s1 -> s2 -> s3,
  staging s2, a rollback of production (to s2), and one to s1 (``EventStore.change_bot``);
* conversations of ``acme-shop/support`` whose turns go through a real
  ``ConversationActor`` (group-committed, replies recorded): ``c-1`` six turns (with
  entities, a fallback, a retried turn id) and an aggregate snapshot at version 4
  (``EventStore.snapshot_conversation``, what the snapshotter calls), ``c-2`` two turns,
  one without a turn id; ``c-other`` of bot ``acme-shop/sales``;
* ``c-v1``: one turn stored as a ``TurnRecorded`` v1 (no ``entities``, as before v2),
  made by rewriting the v2 event's state before inserting it;
* a label on ``c-1`` turn 5 (``EventStore.label_turn``).

The ``.json`` beside it is what that code read back: the reply bodies, every projection
(``conversation_turns``, ``bot_turns``, the activity projection), aggregate states.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TENANT, BOT = "acme-shop", "support"
S1, S2, S3 = ("1" * 32), ("2" * 32), ("3" * 32)
TOKENS = ("byt_acme-shop_" + "a" * 48, "byt_acme-shop_" + "b" * 48)

# (conversation id, bot, text, turn id, intent, confidence, fallback, entities)
CITY = {"entity": "country", "value": "norway", "start": 19, "end": 25, "extractor": "model", "confidence": 0.93}
ORDER = {"entity": "order_number", "value": "48213", "start": 10, "end": 15, "extractor": "regex", "confidence": 1.0}
BATCHES = [
    [("c-1", BOT, "hello there", "c1-t1", "greeting", 0.97, False, []),
     ("c-2", BOT, "what are your opening hours", "c2-t1", "opening_hours", 0.88, False, [])],
    [("c-1", BOT, "has order 48213 been sent", "c1-t2", "order_status", 0.91, False, [ORDER])],
    [("c-1", BOT, "how long to ship to norway", "c1-t3", "delivery_times", 0.84, False, [CITY]),
     ("c-other", "sales", "do you sell tents", "o-t1", "greeting", 0.52, False, [])],
    [("c-1", BOT, "has order 48213 been sent", "c1-t2", "order_status", 0.91, False, [ORDER])],  # a retry
    [("c-1", BOT, "blorp zzz", "c1-t4", "greeting", 0.31, True, [])],
    [("c-1", BOT, "thanks a lot", "c1-t5", "thanks", 0.55, False, []),
     ("c-2", BOT, "bye", None, "goodbye", 0.99, False, [])],
    [("c-1", BOT, "ok bye", "c1-t6", "goodbye", 0.95, False, [])],
]


def plain(obj):
    """JSON-shaped (UUIDs and datetimes as strings), as the test compares it."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", default="1f88b70")
    parser.add_argument("--out", type=Path, default=None, help="default: tests/data/events-v<commit>.sqlite")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = (args.out or HERE / f"events-v{args.commit}.sqlite").resolve()
    if args.child:
        write(out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tree, shim = Path(tmp) / "tree", Path(tmp) / "shim"
        tree.mkdir()
        shim.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.commit], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        (shim / "botyard").symlink_to(tree)
        env = {**os.environ, "PYTHONPATH": str(shim), "BOTYARD_OLD_TREE": str(tree)}
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", "--out", str(out)], check=True, env=env, cwd=tmp
        )
    print(f"wrote {out} ({out.stat().st_size} bytes) and {out.with_suffix('.json').name}")


def write(out: Path) -> None:
    import botyard

    tree = Path(os.environ["BOTYARD_OLD_TREE"])
    assert Path(botyard.__file__).resolve().parent == tree.resolve(), f"botyard is {botyard.__file__}, not {tree}"

    import msgpack
    import pykka
    import yaml

    from botyard.actors.conversation import ConversationActor
    from botyard.actors.messages import Classified, ClassifiedTurn, TurnWork
    from botyard.events.activity import Activity
    from botyard.events.conversation import Conversation, conversation_uuid
    from botyard.events.store import EventStore
    from botyard.events.tenant import digest
    from botyard.events.turns import bot_turns, conversation_turns
    from botyard.models.definition import load_bot, parse_bot
    from botyard.protocol import TurnRequest

    work = Path(tempfile.mkdtemp())
    store = EventStore(f"sqlite:///{work / 'events.db'}", work)

    # -- tenant tokens, the bot's definition and aliases --------------------------------------
    store.change_tenant(TENANT, lambda t: t.issue(digest(TOKENS[0]), "ci", "alice"))
    store.change_tenant(TENANT, lambda t: t.issue(digest(TOKENS[1]), "laptop", "alice"))
    store.change_tenant(TENANT, lambda t: t.revoke(digest(TOKENS[1]), "bob"))
    example = tree / "examples" / "shop-support.yml"
    raw = yaml.safe_load(example.read_text())
    raw["intents"] = {k: raw["intents"][k] for k in ("greeting", "goodbye", "thanks")}  # small
    store.change_bot(TENANT, BOT, lambda b: b.save_definition(raw, parse_bot(raw).content_hash(), actor="alice"))
    store.change_bot(TENANT, BOT, lambda b: b.promote("production", S1, actor="alice", reason="trained"))
    store.change_bot(TENANT, BOT, lambda b: b.promote("staging", S2, actor="alice", reason="try it"))
    store.change_bot(TENANT, BOT, lambda b: b.promote("production", S2, actor="bob", reason="gate passed"))

    # -- turns through a real conversation actor ----------------------------------------------
    definition = load_bot(example)
    sent: list = []

    class Outbox:
        def send(self, items) -> None:
            sent.extend(items)

    actor = ConversationActor.start(store, Outbox(), node_id="node-a", idle_seconds=600, max_resident=100)
    try:
        for b, batch in enumerate(BATCHES):
            if b == 4:  # production moves while the conversations go on
                store.change_bot(TENANT, BOT, lambda b: b.promote("production", S3, actor="bob", reason="newer"))
                store.change_bot(TENANT, BOT, lambda b: b.rollback("production", actor="carol", reason="worse"))
            turns = []
            for cid, bot, text, turn_id, intent, confidence, fallback, entities in batch:
                req = TurnRequest(TENANT, bot, cid, text, False, turn_id, "production")
                turns.append(ClassifiedTurn(
                    TurnWork(req, f"_INBOX.{cid}", time.time() - 0.004), intent, confidence, S2 if b >= 4 else S1,
                    definition, tuple(entities), fallback,
                ))
            actor.ask(Classified(tuple(turns)))
            if b == 3:
                store.snapshot_conversation(conversation_uuid(TENANT, BOT, "c-1"), 4)
    finally:
        actor.stop()
    store.change_bot(TENANT, BOT, lambda b: b.rollback("production", to=S1, actor="carol", reason="back to s1"))

    # -- a TurnRecorded v1, as written before entities existed ----------------------------------
    conv = Conversation(tenant=TENANT, bot=BOT, conversation_id="c-v1")
    conv.record_turn(
        turn=1, turn_id="v1-t1", user_text="hi from v1", intent="greeting", confidence=0.8, reply="Hello! v1",
        fallback=False, snapshot=S1, node="node-old", received_at=time.time() - 0.01, entities=[],
    )
    stored = [store.mapper.to_stored_event(e) for e in conv.collect_events()]
    state = store.mapper.transcoder.decode(stored[1].state)
    del state["entities"], state["class_version"]
    stored[1] = type(stored[1])(
        stored[1].originator_id, stored[1].originator_version, stored[1].topic, store.mapper.transcoder.encode(state)
    )
    store.recorder.insert_events(stored)

    store.label_turn(TENANT, BOT, lambda labels: labels.label("c-1", 5, "thanks a lot", "thanks", "thanks", S2, "dana"))

    # -- what this code reads back ---------------------------------------------------------------
    rows = bot_turns(store, TENANT, BOT)
    received = [r.received_at for r in rows]
    since, until = int(min(received)) - 1, int(max(received)) + 2
    activity = Activity(store)
    expected = {
        "replies": [msgpack.unpackb(o.body, raw=False) for o in sent],
        "conversation_turns": {
            cid: [r.to_dict() for r in conversation_turns(store, TENANT, BOT, cid)] for cid in ("c-1", "c-2", "c-v1")
        },
        "bot_turns": [{**r.to_dict(), "position": r.position} for r in rows],
        "bot_turns_last_3": [{**r.to_dict(), "position": r.position} for r in bot_turns(store, TENANT, BOT, last=3)],
        "sales_turns": [r.to_dict() for r in bot_turns(store, TENANT, "sales")],
        "conversations": {
            cid: store.load_conversation(TENANT, BOT, cid).state() for cid in ("c-1", "c-2", "c-v1")
        },
        "c-1_at_2": store.conversation_at(TENANT, BOT, "c-1", 2).state(),
        "bot": store.bot(TENANT, BOT).state(),
        "bot_definition": [store.bot(TENANT, BOT).definition, store.bot(TENANT, BOT).definition_hash],
        "alias_moves": [vars(e) for e in store.alias_moves()[0]],
        "bot_refs": store.bot_refs(),
        "tenant_tokens": store.tenant(TENANT).tokens,
        "labels": store.labels(TENANT, BOT).labels,
        "activity": {
            "window": [since, until],
            "bots": activity.bots(),
            "stats": activity.stats(TENANT, BOT, since=since, until=until),
            "conversations": activity.conversations(TENANT, BOT),
            "review": activity.review(TENANT, BOT),
        },
        "topics": sorted({n.topic for n in store.recorder.select_notifications(1, 1000)}),
    }
    store.close()
    out.unlink(missing_ok=True)
    with sqlite3.connect(work / "events.db") as db:
        db.execute("VACUUM INTO ?", (str(out),))
    out.with_suffix(".json").write_text(json.dumps(plain(expected), indent=1, sort_keys=True) + "\n")
    pykka.ActorRegistry.stop_all()


if __name__ == "__main__":
    main()
