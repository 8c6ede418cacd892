"""Raw nats-py request/reply echo: the baseline the turn path is compared with."""

import asyncio
import signal
import sys

import nats


async def main(url: str) -> None:
    nc = await nats.connect(url)

    async def echo(msg):
        await msg.respond(msg.data)

    await nc.subscribe("bench.echo", cb=echo)
    await nc.flush()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
