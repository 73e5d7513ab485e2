"""Serving a loopback provider (FCM, Web Push) over TLS with uvicorn, in the test's own loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from starlette.types import ASGIApp

from tests.transports.certs import LoopbackPki


@asynccontextmanager
async def tls_serving(app: ASGIApp, pki: LoopbackPki) -> AsyncIterator[int]:
    """`app` on 127.0.0.1 over TLS with the loopback CA's certificate; yields its port."""
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on a TCP-proto socket's connections. Without
    # it each response waited ~40 ms for the client's delayed ACK (headers and body go out in
    # two writes), a delay no real push service adds.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        ssl_certfile=str(pki.cert_file),
        ssl_keyfile=str(pki.key_file),
    )
    server = uvicorn.Server(config)
    # A task, not a task group: pytest-asyncio sets a fixture up and tears it down in two
    # different tasks, and a task group must be left in the task that entered it.
    serving = asyncio.get_running_loop().create_task(server.serve([sock]))
    try:
        with anyio.fail_after(10):
            while not server.started:
                if serving.done():
                    serving.result()  # the server failed to start: say why
                await anyio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        with anyio.fail_after(10):
            await serving
        sock.close()
