"""Dialogue end to end: the example bot's forms, confirmation and handoff over a real
nats-server, with real nodes and real event stores; the state comes back from events alone
(after passivation, from an aggregate snapshot, and on a new node after SIGKILL)."""

import asyncio
import json
import signal
import uuid

import nats
import pytest

from botyard import Client
from botyard.dialogue.spec import spec_of
from botyard.events.conversation import conversation_uuid
from botyard.events.store import EventStore
from botyard.events.turns import conversation_turns
from botyard.protocol import agent_subject, handoff_subject
from tests.ops.test_process import start_node, stop

TENANT, BOT = "acme-shop", "support"


class Chat:
    """One conversation through a real client; ``say`` returns the typed reply."""

    def __init__(self, url: str, cid: str | None = None) -> None:
        self.url, self.cid = url, cid or f"dlg-{uuid.uuid4().hex[:10]}"

    def say(self, *texts: str):
        async def go():
            async with await Client.connect(self.url, timeout=8.0) as client:
                return [await client.say(TENANT, BOT, self.cid, t) for t in texts]

        replies = asyncio.run(go())
        return replies[0] if len(replies) == 1 else replies


@pytest.fixture
def spec(example_bot):
    return spec_of(example_bot)


def question(spec, slot):
    return set(spec.slot(slot).questions)


def test_a_return_form_over_several_turns_with_a_digression_a_failed_answer_and_a_correction(make_node, nats_url, spec,
                                                                                            shop_actions):
    node = make_node()
    chat = Chat(nats_url)
    r = chat.say("I want to return an item")
    assert (r.intent, r.form, r.asked) == ("start_return", "start_return", "order_number") and r.text in question(spec, "order_number")
    r = chat.say("123")  # not an order number: the slot's re-ask
    assert (r.form, r.asked, r.slots) == ("start_return", "order_number", {}) and spec.slot("order_number").reask in r.text
    r = chat.say("it is 4821377")
    assert (r.asked, r.slots) == ("item", {"order_number": "4821377"}) and r.text in question(spec, "item")
    r = chat.say("what are your opening hours")  # a digression: answered, then the form's question again
    assert r.intent == "opening_hours" and (r.form, r.asked) == ("start_return", "item")
    assert r.text.endswith(spec.slot("item").questions[0])
    r = chat.say("the tent")
    assert (r.asked, r.slots["item"]) == ("reason", "tent")
    r = chat.say("it is too small for my family")
    assert r.slots["reason"] == "it is too small for my family" and r.asked is None
    assert r.text == "Return the tent from order 4821377 (it is too small for my family), is that right?"
    r = chat.say("no, the order is 7310042")  # a correction while confirming: the new value is confirmed
    assert r.slots["order_number"] == "7310042" and r.form == "start_return" and "order 7310042" in r.text
    r = chat.say("yes")  # the form calls the example's create_return action (examples/shop_actions.py)
    assert r.form is None and r.text.startswith("I've registered your return R-") and "tent from order 7310042" in r.text
    returned = r.slots.pop("return_number")
    assert r.slots == {"order_number": "7310042", "item": "tent", "reason": "it is too small for my family"}  # kept
    names = [e["name"] for t in conversation_turns(node_events(node), TENANT, BOT, chat.cid) for e in t.dialogue]
    assert names[:3] == ["FormStarted", "SlotAsked", "SlotRejected"]
    assert names[-4:] == ["ConfirmationAnswered", "FormCompleted", "ActionCalled", "SlotSet"] and "SlotCleared" not in names
    assert returned in r.text


def test_a_confirmation_denied_and_a_cancel(make_node, nats_url, spec):
    make_node()
    chat = Chat(nats_url)
    chat.say("I want to return an item", "4821377", "the tent")
    r = chat.say("I don't like the colour")
    assert r.text.startswith("Return the tent from order 4821377")
    r = chat.say("no")
    assert r.form is None and r.text == "OK, I won't register the return. Anything else I can do?"
    r = chat.say("I want to return an item")  # the rule clears item and reason; the order number was kept
    assert (r.form, r.asked, r.slots) == ("start_return", "item", {"order_number": "4821377"})
    r = chat.say("never mind")
    assert r.form is None and r.text == spec.messages.cancelled


def test_order_status_asks_for_the_number_once_and_keeps_it(make_node, nats_url, shop_actions):
    make_node()
    chat = Chat(nats_url)
    r = chat.say("where is my order")
    assert (r.form, r.asked) == ("order_status", "order_number")
    r = chat.say("5550123")  # the example's look_up_order knows this order
    assert r.form is None and r.text.startswith("Order 5550123 shipped on") and r.slots == {"order_number": "5550123"}
    r = chat.say("where is my order 1234567")  # one it does not know: the action clears the number
    assert "can't find an order 1234567" in r.text and r.slots == {}
    r = chat.say("where is my order")  # so it is asked for again
    assert (r.form, r.asked) == ("order_status", "order_number")
    r = chat.say("4821377")
    assert r.form is None and "4821377" in r.text and r.slots == {"order_number": "4821377"}
    r = chat.say("where is my order")  # kept: answered with it, not asked again
    assert r.form is None and "4821377" in r.text


def node_events(node) -> EventStore:
    return node.events


def test_the_form_comes_back_after_passivation_and_from_an_aggregate_snapshot(make_node, nats_url, spec):
    node = make_node(conversation_snapshot_every=3)
    chat = Chat(nats_url)
    chat.say("I want to return an item", "4821377")
    assert node.passivate_all() >= 1
    r = chat.say("the tent")  # rebuilt from events: the form goes on where it was
    assert (r.form, r.asked, r.slots) == ("start_return", "reason", {"order_number": "4821377", "item": "tent"})
    snapshots = list(node.events.snapshots.get(conversation_uuid(TENANT, BOT, chat.cid)))
    assert snapshots, "an aggregate snapshot was taken after 3 events"
    node.passivate_all()
    r = chat.say("it leaks")
    assert r.text.startswith("Return the tent from order 4821377 (it leaks)")
    state = node.conversation_state(TENANT, BOT, chat.cid, activate=True)
    assert state["dialogue"]["confirming"] is True and state["dialogue"]["form"] == "start_return"


def test_a_handoff_round_trip_with_an_agent_client(make_node, nats_url, spec):
    make_node(handoff_wait_seconds=4.0)
    cid = f"hand-{uuid.uuid4().hex[:8]}"

    async def go():
        notices = []
        nc = await nats.connect(nats_url)
        sub = await nc.subscribe(handoff_subject(TENANT, BOT))
        async with await Client.connect(nats_url, timeout=8.0) as client:
            first = await client.say(TENANT, BOT, cid, "I want to talk to a human")
            notices.append(json.loads((await sub.next_msg(timeout=5)).data))

            async def agent_answers():
                notice = json.loads((await sub.next_msg(timeout=5)).data)  # the user's next turn
                notices.append(notice)
                body = {"conversation_id": cid, "text": "Hi, I'm Mia. Which order is it about?", "agent": "mia"}
                return json.loads((await nc.request(agent_subject(TENANT, BOT), json.dumps(body).encode(), timeout=5,
                                                    headers={"Content-Type": "application/json"})).data)

            answering = asyncio.create_task(agent_answers())
            waiting = await client.say(TENANT, BOT, cid, "my tent has a hole")  # held until the agent answers
            ack = await answering
            back = json.loads((await nc.request(agent_subject(TENANT, BOT), json.dumps(
                {"conversation_id": cid, "text": "Done, you'll get a new one.", "hand_back": True, "agent": "mia"}
            ).encode(), timeout=5, headers={"Content-Type": "application/json"})).data)
            notices.append(json.loads((await sub.next_msg(timeout=5)).data))
            after = await client.say(TENANT, BOT, cid, "hello")
            again = json.loads((await nc.request(agent_subject(TENANT, BOT), json.dumps(
                {"conversation_id": cid, "text": "anyone?"}).encode(), timeout=5,
                headers={"Content-Type": "application/json"})).data)
        await nc.close()
        return first, waiting, ack, back, after, again, notices

    first, waiting, ack, back, after, again, notices = asyncio.run(go())
    assert first.handed_off and first.intent == "talk_to_human" and first.text  # the intent's own words
    assert [n["event"] for n in notices] == ["handed_off", "message", "handed_back"]
    assert notices[0]["reason"] == "intent" and notices[1]["text"] == "my tent has a hole"
    assert waiting.text == "Hi, I'm Mia. Which order is it about?" and waiting.agent == "mia" and waiting.handed_off
    assert ack["delivered"] is True and ack["handed_off"] is True
    assert back["delivered"] is False and back["handed_off"] is False  # no user turn waited for it
    # the undelivered answer and the bot's words come with the user's next turn, which the bot answers again
    assert after.text.startswith("Done, you'll get a new one.") and not after.handed_off and after.intent == "greeting"
    assert again["error"]["code"] == "not_handed_off"


def test_a_user_turn_waits_in_vain_and_the_agent_answer_comes_next(make_node, nats_url):
    node = make_node(handoff_wait_seconds=0.5)
    chat = Chat(nats_url)
    assert chat.say("I want to talk to a human").handed_off
    r = chat.say("hello?")
    assert r.handed_off and r.text == "" and r.agent is None

    async def agent():
        nc = await nats.connect(nats_url)
        try:
            return json.loads((await nc.request(agent_subject(TENANT, BOT), json.dumps(
                {"conversation_id": chat.cid, "text": "Sorry for the wait!", "agent": "li"}).encode(), timeout=5,
                headers={"Content-Type": "application/json"})).data)
        finally:
            await nc.close()

    assert asyncio.run(agent())["delivered"] is False
    r = chat.say("are you there?")  # released after the wait with the agent's answer
    assert r.text == "Sorry for the wait!" and r.handed_off
    turns = conversation_turns(node.events, TENANT, BOT, chat.cid)
    assert [t.reply for t in turns][1:] == ["", "Sorry for the wait!"]


def test_bad_agent_messages_get_one_structured_error(make_node, nats_url):
    make_node()

    async def go():
        nc = await nats.connect(nats_url)
        try:
            out = []
            for body in [b"not json", json.dumps({"conversation_id": "x"}).encode(),
                         json.dumps({"conversation_id": "x", "text": "hi", "hand_back": "yes"}).encode(),
                         json.dumps({"conversation_id": "x", "text": "hi", "agent": "a" * 65}).encode()]:
                msg = await nc.request(agent_subject(TENANT, BOT), body, timeout=5, headers={"Content-Type": "application/json"})
                out.append(json.loads(msg.data)["error"])
            return out
        finally:
            await nc.close()

    errors = asyncio.run(go())
    assert [e["code"] for e in errors] == ["malformed", "invalid_request", "invalid_request", "invalid_request"]
    assert [e.get("field") for e in errors[1:]] == ["text", "hand_back", "agent"]


def test_sigkill_in_the_middle_of_a_form_then_a_new_node_goes_on(tmp_path, nats_url, snapshot_dir, events_url):
    """State from events alone: the node that held the conversation dies without a goodbye."""
    from tests.conftest import promote

    promote(events_url, tmp_path / "data", snapshot_dir)
    env = {"BOTYARD_NATS_URL": nats_url, "BOTYARD_DATA_DIR": str(tmp_path / "data"), "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir),
           "BOTYARD_EVENTS_URL": events_url}
    first = start_node({**env, "BOTYARD_NODE_ID": "a"}, tmp_path / "a.log")
    chat = Chat(nats_url)
    try:
        chat.say("I want to return an item", "4821377")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    second = start_node({**env, "BOTYARD_NODE_ID": "b"}, tmp_path / "b.log")
    try:
        r = chat.say("hiking boots")
        assert (r.node, r.form, r.asked, r.slots) == ("b", "start_return", "reason", {"order_number": "4821377", "item": "hiking boots"})
    finally:
        stop(second)


def test_transcript_and_whatif_rerun_the_dialogue_from_the_recorded_state(make_node, nats_url):
    node = make_node()
    chat = Chat(nats_url)
    chat.say("I want to return an item", "4821377", "the tent", "never mind")
    replay = node.admin.replay
    result = replay.transcript(TENANT, BOT, chat.cid)
    afters = [(t["after"]["form"], t["after"]["asked"], t["after"]["slots"]) for t in result["turns"]]
    assert afters == [
        ("start_return", "order_number", {}), ("start_return", "item", {"order_number": "4821377"}),
        ("start_return", "reason", {"order_number": "4821377", "item": "tent"}),
        (None, None, {"order_number": "4821377", "item": "tent"}),
    ]
    at_2 = replay.transcript(TENANT, BOT, chat.cid, at=2)["state"]["dialogue"]
    assert (at_2["form"], at_2["asked"], at_2["slots"]) == ("start_return", "item", {"order_number": "4821377"})
    served = node.served()[f"{TENANT}/{BOT}"]
    same = replay.whatif(TENANT, BOT, served, conversation_id=chat.cid)
    assert (same["changed_intent"], same["changed_reply"], same["changed_dialogue"], same["changes"]) == (0, 0, 0, [])
    tail = replay.whatif(TENANT, BOT, served, conversation_id=chat.cid, last=2)  # from the recorded state before turn 3
    assert (tail["turns"], tail["changed_dialogue"], tail["changes"]) == (2, 0, [])


def test_botyard_chat_plays_the_agent(make_node, nats_url):
    import os
    import subprocess
    import sys

    make_node(handoff_wait_seconds=0.2)
    agent = subprocess.Popen([sys.executable, "-m", "botyard", "chat", f"{TENANT}/{BOT}", "--agent", "mia"],
                             env={**os.environ, "BOTYARD_NATS_URL": nats_url}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert "answering acme-shop/support as agent 'mia'" in agent.stdout.readline()
        chat = Chat(nats_url)
        assert chat.say("I want to talk to a human").handed_off
        assert "handed off (intent): I want to talk to a human" in agent.stdout.readline()
        agent.stdin.write("Hello, Mia here.\n")
        agent.stdin.flush()
        assert "next message" in agent.stdout.readline()  # no user turn waited: it comes with the next one
        r = chat.say("hi?")
        assert r.text == "Hello, Mia here." and r.handed_off
        assert "writes: hi?" in agent.stdout.readline()
        agent.stdin.write("/back\n")
        agent.stdin.flush()
        assert "back with the bot" in agent.stdout.readline()
        assert not chat.say("hello").handed_off
    finally:
        agent.stdin.close()
        agent.wait(10)
