"""Stable topics: what new events are stored under, and old module-path topics as aliases."""

import inspect
import subprocess
import sys
import time
import uuid

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from botyard.events import bot, conversation, labels, tenant
from botyard.events.activity import Activity
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore
from botyard.events.topics import OLD_TOPICS, topics_of
from botyard.events.turns import bot_turns, conversation_turns

AGGREGATES = [conversation.Conversation, bot.Bot, labels.Labels, tenant.Tenant]
OLD_TOPICS_OF = {cls: topic for topic, cls in OLD_TOPICS.items()}


def event_classes(aggregate):
    return {
        name: obj for name, obj in vars(aggregate).items()
        if inspect.isclass(obj) and issubclass(obj, CanMutateAggregate) and name not in ("Event", "Created")
    }


BORN_STABLE = {conversation.Conversation.AgentReplied, conversation.Conversation.MessageSent, tenant.Tenant.NatsKeyIssued,
               tenant.Tenant.NatsKeyRevoked}
"""Event classes added after topics became stable: they never had a module-path topic."""


def test_every_class_has_a_stable_topic_and_its_old_one_as_an_alias():
    old = OLD_TOPICS_OF
    classes = sum(len(event_classes(a)) for a in AGGREGATES) - len(BORN_STABLE)
    assert len(old) == len(OLD_TOPICS) == len(AGGREGATES) + classes
    for aggregate in AGGREGATES:
        name = aggregate.__name__
        assert get_topic(aggregate) == f"botyard:{name}" and resolve_topic(f"botyard:{name}") is aggregate
        assert old[aggregate] == f"botyard.events.{name.lower()}:{name}"
        for event_name, cls in event_classes(aggregate).items():
            assert get_topic(cls) == f"botyard:{name}.{event_name}" and resolve_topic(cls.TOPIC) is cls
            if cls in BORN_STABLE:
                assert cls not in old and topics_of(cls) == [cls.TOPIC]
                continue
            assert old[cls] == f"botyard.events.{name.lower()}:{name}.{event_name}"
            assert topics_of(cls) == [cls.TOPIC, old[cls]] and resolve_topic(old[cls]) is cls


def test_old_topics_resolve_when_their_modules_are_gone():
    """As after a move: importing ``botyard.events.conversation`` fails, its old topics still resolve."""
    code = (
        "import sys\n"
        "from eventsourcing.utils import resolve_topic\n"
        "from botyard.events.store import EventStore\n"
        "from botyard.events.topics import OLD_TOPICS\n"
        "for name in [m for m in sys.modules if m.startswith('botyard.events.') and m != 'botyard.events.topics']:\n"
        "    sys.modules[name] = None  # import botyard.events.<module> now raises ImportError\n"
        "assert all(resolve_topic(topic) is cls for topic, cls in OLD_TOPICS.items())\n"
        "print('ok', len(OLD_TOPICS))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["ok", "14"], done.stderr


@pytest.fixture
def store(events_url, tmp_path):
    s = EventStore(events_url, tmp_path)
    yield s
    s.close()


def since(store, position: int) -> list:
    """The notifications after ``position`` (a PostgreSQL database is shared by the session's tests)."""
    return store.recorder.select_notifications(position + 1, 1000)


def test_new_events_and_snapshots_are_stored_under_stable_topics(store):
    t, position = f"t{uuid.uuid4().hex[:8]}", store.recorder.max_notification_id() or 0
    conv = Conversation(tenant=t, bot="faq", conversation_id="c")
    conv.record_turn(
        turn=1, turn_id="t1", user_text="hi", intent="greet", confidence=0.9, reply="hello", fallback=False,
        snapshot="s" * 32, node="n1", received_at=time.time(), entities=[],
    )
    store.save_all([conv])
    store.change_bot(t, "faq", lambda b: b.promote("production", "a" * 32, actor="t"))
    store.change_tenant(t, lambda x: x.issue("d" * 64, "ci", "t"))
    store.label_turn(t, "faq", lambda lab: lab.label("c", 1, "hi", "greet", "greet", "s" * 32, "t"))
    store.snapshot_conversation(conv.id, 2)
    assert {n.topic for n in since(store, position)} == {
        "botyard:Conversation.Started", "botyard:Conversation.TurnRecorded", "botyard:Bot.Registered",
        "botyard:Bot.AliasMoved", "botyard:Tenant.Registered", "botyard:Tenant.TokenIssued", "botyard:Labels.Started",
        "botyard:Labels.TurnLabelled",
    }
    (started, _) = store.conversation_events(t, "faq", "c")
    assert started.originator_topic == "botyard:Conversation"
    (snapshot,) = store.snapshots.get(conv.id)
    assert snapshot.topic == "botyard:Conversation" and store.load_conversation(t, "faq", "c").turns == 1


def _insert_under_old_topics(store, aggregate):
    """Store an aggregate's pending events as the code before stable topics did."""
    old = {cls.TOPIC: topic for topic, cls in OLD_TOPICS.items()}
    redone = []
    for s in (store.mapper.to_stored_event(e) for e in aggregate.collect_events()):
        state = store.mapper.transcoder.decode(s.state)
        if "originator_topic" in state:
            state["originator_topic"] = old[state["originator_topic"]]
        redone.append(type(s)(s.originator_id, s.originator_version, old[s.topic], store.mapper.transcoder.encode(state)))
    store.recorder.insert_events(redone)


def test_every_reader_finds_old_and_new_topics_together(store):
    t, position, now = f"t{uuid.uuid4().hex[:8]}", store.recorder.max_notification_id() or 0, time.time()
    for cid, old in (("old", True), ("new", False)):
        conv = Conversation(tenant=t, bot="faq", conversation_id=cid)
        for n in (1, 2):
            conv.record_turn(
                turn=n, turn_id=None, user_text=f"{cid} {n}", intent="greet", confidence=0.3, reply="hello",
                fallback=False, snapshot="s" * 32, node="n1", received_at=now, entities=[],
            )
        if old:
            _insert_under_old_topics(store, conv)
        else:
            store.save_all([conv])
    moved = bot.Bot(t, "faq")
    moved.promote("production", "a" * 32, actor="t")
    _insert_under_old_topics(store, moved)
    store.change_bot(t, "faq", lambda b: b.promote("production", "b" * 32, actor="t"))

    assert {n.topic for n in since(store, position)} == {
        *topics_of(Conversation.Started, Conversation.TurnRecorded, bot.Bot.AliasMoved), OLD_TOPICS_OF[bot.Bot.Registered],
    }
    assert [r.user_text for r in bot_turns(store, t, "faq")] == ["old 1", "old 2", "new 1", "new 2"]
    assert [r.user_text for r in bot_turns(store, t, "faq", last=3)] == ["old 2", "new 1", "new 2"]
    assert [r.turn for r in conversation_turns(store, t, "faq", "old")] == [1, 2]
    assert store.load_conversation(t, "faq", "old").turns == 2
    assert [m.target for m in store.alias_moves(position)[0]] == ["a" * 32, "b" * 32]
    assert (t, "faq") in store.bot_refs()
    assert store.bot(t, "faq").history == {"production": ["a" * 32]}
    activity = Activity(store)
    assert [b for b in activity.bots() if b["tenant"] == t] == [{"tenant": t, "bot": "faq", "turns": 4, "last_at": now}]
    assert len(activity.review(t, "faq")) == 4
    assert [m["target"] for m in activity.stats(t, "faq", since=now, until=now + 1)["moves"]] == ["a" * 32, "b" * 32]
