"""An action service written with plain nats-py and nothing of botyard's, from docs/actions.md alone.

    python plain_action.py NATS_URL WORKER MODE

Serves ``botyard.action.acme-shop.support.*`` in the queue group ``shop-actions``. Every
request it receives is reported on ``test.seen.<WORKER>`` (JSON: action, key, attempt,
conversation_id, turn, slots, header key) before it answers, so a test counts calls on the
action's side. MODE: ``answer`` (look_up_order answers with the order's state and sets no
slot; create_return answers with a return number), ``stall`` (never answers), ``stall-first``
(answers only tries after the first), ``bad`` (answers with a slot the action does not declare).
"""

import asyncio
import json
import sys

import nats


async def main(url: str, worker: str, mode: str) -> None:
    nc = await nats.connect(url)

    async def handle(msg):
        request = json.loads(msg.data)
        seen = {k: request.get(k) for k in ("action", "idempotency_key", "attempt", "conversation_id", "turn", "slots",
                                             "intent", "text", "form")}
        seen["header_key"] = (msg.headers or {}).get("Botyard-Idempotency-Key")
        seen["worker"] = worker
        await nc.publish(f"test.seen.{worker}", json.dumps(seen).encode())
        await nc.flush()
        if mode == "stall" or (mode == "stall-first" and request["attempt"] == 1):
            return
        if mode == "bad":
            reply = {"text": "this should be refused", "slots": {"vip": True}}
        elif request["action"] == "look_up_order":
            number = request["slots"].get("order_number")
            reply = {"text": f"(plain) Order {number} shipped on Monday."}
        elif request["action"] == "create_return":
            reply = {"text": f"(plain) Return R-{request['turn']}00 registered for the {request['slots'].get('item')}.",
                     "slots": {"return_number": f"R-{request['turn']}00"}}
        else:
            reply = {"error": {"code": "unknown_action", "message": request["action"]}}
        await msg.respond(json.dumps(reply).encode())

    await nc.subscribe("botyard.action.acme-shop.support.*", queue="shop-actions", cb=handle)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
