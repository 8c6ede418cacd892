"""The example bot's actions (examples/shop-support.yml), served with ``botyard.actions``.

    python examples/shop_actions.py --nats nats://127.0.0.1:4222 [--tenant acme-shop --bot support]

``botyard demo`` starts it beside its node. Three actions over an in-memory shop:

- ``look_up_order`` (slot ``order_number``): the order's state and dates; an unknown number is
  cleared so the bot asks again. An order still being packed "ships" a few seconds later: a
  proactive message tells the conversation so.
- ``create_return`` (slots ``order_number``, ``item``, ``reason``): registers a return, sets
  slot ``return_number`` and answers ``later``; the label follows as a proactive message.
- ``check_stock`` (slot or entity ``product``): in stock or not (served for a bot that
  declares it; the example bot file does not call it).

A real service would keep its orders in a database and store each call's idempotency key with
the effect it had; here the return number is derived from the key, so a retry (or a restart)
gives the same number.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
from datetime import date, timedelta

from botyard.actions import ActionServer, Call

log = logging.getLogger("shop_actions")


def _day(days_ago: int) -> str:
    day = date.today() - timedelta(days=days_ago)
    return f"{day:%A} {day.day} {day:%B}"


ORDERS = {
    "4821377": {"state": "processing", "placed": 1, "items": ["tent", "sleeping bag"]},
    "5550123": {"state": "shipped", "placed": 3, "shipped": 2, "items": ["hiking boots"]},
    "7310042": {"state": "delivered", "placed": 9, "shipped": 8, "delivered": 6, "items": ["rain jacket", "tent"]},
}
"""Order number -> state, days ago it was placed/shipped/delivered, items."""
STOCK = {"tent": 12, "hiking boots": 0, "sleeping bag": 4, "rain jacket": 31}


def build(nats_url: str, tenant: str = "acme-shop", bot: str = "support", *, ship_after: float = 5.0,
          label_after: float = 2.0, credentials: str | None = None) -> ActionServer:
    """The action server with the three actions (not started). ``ship_after``, ``label_after``:
    seconds until the "shipped" and "label ready" messages."""
    server = ActionServer(tenant, bot, servers=nats_url, queue="botyard-actions", credentials=credentials)
    shipping: set[str] = set()

    async def ship(number: str, conversation_id: str) -> None:
        await asyncio.sleep(ship_after)
        ORDERS[number].update(state="shipped", shipped=0)
        await server.send_message(conversation_id, f"Good news: your order {number} has shipped. It should reach you in 2 working days.",
                                  message_id=f"order-{number}-shipped", source="orders")

    @server.action("look_up_order")
    async def look_up_order(call: Call) -> dict:
        number = str(call.value("order_number") or "")
        order = ORDERS.get(number)
        if order is None:
            return {"text": f"I can't find an order {number}. Could you check the number in your confirmation email?",
                    "clear": ["order_number"]}
        if order["state"] == "processing":
            if number not in shipping:
                shipping.add(number)
                server.spawn(ship(number, call.conversation_id))
            return {"text": f"Order {number} (placed {_day(order['placed'])}) is being packed and leaves our warehouse today."}
        if order["state"] == "shipped":
            return {"text": f"Order {number} shipped on {_day(order['shipped'])} and should arrive within 2 working days."}
        return {"text": f"Order {number} was delivered on {_day(order['delivered'])}."}

    async def label(call: Call, number: str) -> None:
        await asyncio.sleep(label_after)
        await server.send_message(call.conversation_id,
                                  f"Your return label for {number} is ready: https://shop.example/returns/{number}/label.pdf",
                                  message_id=f"{call.idempotency_key}:label", source="returns")

    @server.action("create_return")
    async def create_return(call: Call) -> dict:
        number, item, reason = (str(call.value(k) or "") for k in ("order_number", "item", "reason"))
        order = ORDERS.get(number)
        if order is None:  # (the bot file lets this action set return_number only: no clearing here)
            return {"text": f"I can't find an order {number}, so I couldn't register the return."}
        if item not in order["items"]:
            return {"text": f"Order {number} has no {item or 'such item'}: it has {' and '.join(order['items'])}."}
        returned = "R-" + str(int(hashlib.sha256(call.idempotency_key.encode()).hexdigest(), 16))[:6]
        log.info("return %s: %s from order %s (%s)", returned, item, number, reason)
        server.spawn(label(call, returned))
        return {"text": f"I've registered your return {returned} for the {item} from order {number}. "
                        "I'll message you here when the label is ready.",
                "slots": {"return_number": returned}, "later": True}

    @server.action("check_stock")
    def check_stock(call: Call) -> dict:  # a plain function: the server runs it in a thread
        product = str(call.value("product") or "")
        if product not in STOCK:
            return {"text": "We sell tents, hiking boots, sleeping bags and rain jackets. Which one are you after?"}
        if STOCK[product]:
            return {"text": f"Yes, the {product} is in stock ({STOCK[product]} left) and ships within a day."}
        return {"text": f"Sorry, the {product} is out of stock right now; new ones arrive in about two weeks."}

    return server


async def serve(nats_url: str, tenant: str = "acme-shop", bot: str = "support", *, until: asyncio.Event | None = None,
                credentials: str | None = None) -> None:
    """Serve the actions until ``until`` is set (or the task is cancelled). Once they are
    subscribed it prints one line to stdout (``botyard demo`` waits for it before the chat)."""
    async with build(nats_url, tenant, bot, credentials=credentials):
        print(f"serving look_up_order, create_return, check_stock for {tenant}/{bot} on {nats_url}", flush=True)
        await (until or asyncio.Event()).wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The example bot's actions, served over NATS.")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS URL")
    parser.add_argument("--tenant", default="acme-shop")
    parser.add_argument("--bot", default="support")
    parser.add_argument("--creds", help="the tenant's NATS credential (an nkey seed file: botyard tokens issue TENANT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def until_signalled() -> None:
        until = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, until.set)
        await serve(args.nats, args.tenant, args.bot, until=until, credentials=args.creds)

    asyncio.run(until_signalled())


if __name__ == "__main__":
    main()
