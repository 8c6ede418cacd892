"""``botyard chat TENANT/BOT --agent NAME``: play the person a conversation is handed to.

Prints what each handed-off conversation's user writes (from ``botyard.handoff.<tenant>.<bot>``)
and sends each line typed as an answer (``botyard.agent.<tenant>.<bot>``) to the conversation
last heard from; ``/to ID`` picks another, ``/back`` (optionally with a text) hands it back to the bot.
"""

from __future__ import annotations

import asyncio
import json
import sys

from botyard import protocol

HELP = "type an answer to the last conversation; /to ID picks another; /back [text] hands it back to the bot"


async def play_agent(url: str, tenant: str, bot: str, agent: str, stream=sys.stdin, *, options: dict | None = None) -> None:
    import nats

    nc = await nats.connect(url, **(options or {}))
    current: list[str] = []

    async def on_notice(msg) -> None:
        n = json.loads(msg.data)
        current[:] = [n["conversation_id"]]
        what = {"handed_off": f"handed off ({n['reason']})", "message": "writes", "handed_back": "back with the bot"}[n["event"]]
        slots = ", ".join(f"{k}={v}" for k, v in n["slots"].items())
        print(f"[{n['conversation_id']} #{n['turn']}] {what}: {n['text']}" + (f"  (slots: {slots})" if slots else ""), flush=True)

    await nc.subscribe(protocol.handoff_subject(tenant, bot), cb=on_notice)
    print(f"answering {tenant}/{bot} as agent {agent!r}; {HELP} (end with Ctrl-D)", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, stream.readline)
            if not line:
                break
            text = line.strip()
            if text.startswith("/to "):
                current[:] = [text[4:].strip()]
                continue
            back = text == "/back" or text.startswith("/back ")
            text = text[5:].strip() if back else text
            if not current or not (text or back):
                print("no conversation yet" if not current else HELP, flush=True)
                continue
            body = {"conversation_id": current[0], "text": text, "hand_back": back, "agent": agent}
            msg = await nc.request(protocol.agent_subject(tenant, bot), json.dumps(body).encode(), timeout=10,
                                   headers={"Content-Type": protocol.JSON_CONTENT_TYPE})
            answer = json.loads(msg.data)
            if "error" in answer:
                print(f"[error {answer['error']['code']}] {answer['error']['message']}", flush=True)
            else:
                print("  (delivered)" if answer["delivered"] else "  (the user gets it with their next message)", flush=True)
    finally:
        await nc.close()
