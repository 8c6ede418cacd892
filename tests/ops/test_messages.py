"""Proactive messages over a real nats-server: a tenant's system sends the user a message of the
bot's; it is recorded once per message_id, delivered on the conversation's out subject, and a
client that was not listening fetches what it missed."""

import asyncio
import json
import uuid

import nats

from botyard import Client
from botyard.events.conversation import Conversation
from botyard.protocol import message_subject, out_subject

TENANT, BOT = "acme-shop", "support"
JSON = {"Content-Type": "application/json"}


async def _request(nc, subject, body):
    return json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=5, headers=JSON)).data)


def test_a_message_is_recorded_once_delivered_and_fetched_after_a_reconnect(make_node, nats_url):
    node = make_node()
    cid = f"msg {uuid.uuid4().hex[:6]}.x"  # not a subject token: the out subject encodes it

    async def go():
        async with await Client.connect(nats_url) as client:
            await client.say(TENANT, BOT, cid, "where is my order")
        listener = await nats.connect(nats_url)
        sub = await listener.subscribe(out_subject(TENANT, BOT, cid))
        sender = await nats.connect(nats_url)
        first = await _request(sender, message_subject(TENANT, BOT),
                               {"conversation_id": cid, "text": "Your parcel has shipped.", "message_id": "ship-1",
                                "source": "shop"})
        delivered = json.loads((await sub.next_msg(timeout=5)).data)
        again = await _request(sender, message_subject(TENANT, BOT),
                               {"conversation_id": cid, "text": "Your parcel has shipped.", "message_id": "ship-1"})
        redelivered = json.loads((await sub.next_msg(timeout=5)).data)
        await listener.close()  # the client goes away; a second message is sent meanwhile
        second = await _request(sender, message_subject(TENANT, BOT), {"conversation_id": cid, "text": "It arrives today."})
        async with await Client.connect(nats_url) as client:
            missed = await client.admin("messages", tenant=TENANT, bot=BOT, conversation_id=cid, after=delivered["seq"])
        bad = await _request(sender, message_subject(TENANT, BOT), {"conversation_id": cid, "text": " "})
        await sender.close()
        return first, delivered, again, redelivered, second, missed, bad

    first, delivered, again, redelivered, second, missed, bad = asyncio.run(go())
    assert (first["seq"], first["recorded"], first["message_id"]) == (1, True, "ship-1")
    assert first["subject"] == out_subject(TENANT, BOT, cid) and ".~" in first["subject"]
    assert (delivered["text"], delivered["seq"], delivered["source"], delivered["conversation_id"]) == (
        "Your parcel has shipped.", 1, "shop", cid)
    assert (again["seq"], again["recorded"]) == (1, False) and redelivered["message_id"] == "ship-1"  # at least once
    assert second["seq"] == 2 and second["recorded"] and len(second["message_id"]) == 32
    assert [m["text"] for m in missed["messages"]] == ["It arrives today."] and missed["more"] is False
    assert bad["error"]["code"] == "invalid_request" and bad["error"]["field"] == "text"
    events = node.events.conversation_events(TENANT, BOT, cid)
    sent = [e for e in events if isinstance(e, Conversation.MessageSent)]
    assert [(e.message_id, e.seq) for e in sent] == [("ship-1", 1), (second["message_id"], 2)]  # ship-1 once
    state = node.conversation_state(TENANT, BOT, cid)
    assert state["turns"] == 1  # a message is not a user turn


def test_the_message_count_comes_back_after_passivation(make_node, nats_url):
    node = make_node()
    cid = f"msg-{uuid.uuid4().hex[:6]}"

    async def send(nc, text, message_id):
        return await _request(nc, message_subject(TENANT, BOT), {"conversation_id": cid, "text": text, "message_id": message_id})

    async def go():
        nc = await nats.connect(nats_url)
        try:
            a = await send(nc, "one", "m-1")
            node.passivate_all()
            b = await send(nc, "two", "m-2")
            c = await send(nc, "one", "m-1")  # still recognised: the ids came back from the events
            return a, b, c
        finally:
            await nc.close()

    a, b, c = asyncio.run(go())
    assert (a["seq"], b["seq"], c["seq"], c["recorded"]) == (1, 2, 1, False)
