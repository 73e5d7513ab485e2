"""Helpers of the relying-party tests (issue 7 "Must hold"): webhooks delivered to a real
receiver on loopback, and `pushgate serve` processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from pushgate.client import verify_webhook
from pushgate.services import Services
from tests.support import TEST_SECRET_KEY
from tests.webhooks.receiver import Receiver, receiving

SESSIONS = "/v1/push/sessions"


async def deliver(services: Services) -> None:
    """Run the outbox until nothing is due (what the background worker does)."""
    while await services.outbox_worker.run_once():
        pass


@dataclass(frozen=True, slots=True)
class Subscribed:
    receiver: Receiver
    secret: str

    async def events(self, services: Services) -> list[dict[str, Any]]:
        """Every event delivered so far, each verified as a relying party would (at the time
        the server signed with)."""
        await deliver(services)
        now = services.clock.now_ms() / 1000
        found = []
        for received in self.receiver.received:
            event = verify_webhook(self.secret, received.headers, received.body, now=now)
            found.append({"type": event.type, "data": dict(event.data)})
        return found


@asynccontextmanager
async def webhook_receiver(services: Services, *events: str) -> AsyncIterator[Subscribed]:
    """A real receiver on loopback subscribed to the root realm's `events` (all if none), the
    services' snapshot of subscriptions reloaded (as the refresh task does)."""
    async with receiving() as receiver:
        webhook = await services.webhooks.add("/", receiver.url, events)
        await services.webhooks.refresh()
        try:
            yield Subscribed(receiver, webhook.secret)
        finally:
            await services.webhooks.sender.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_environment(database_url: str, base_url: str, **env: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")},
        "PUSHGATE_DATABASE_URL": database_url,
        "PUSHGATE_PUBLIC_URL": base_url,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **env,
    }


class Served:
    """A `pushgate serve` process: its base URL, and a way to kill it like a crash."""

    def __init__(self, process: asyncio.subprocess.Process, base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.kill()
        await self.process.wait()


@asynccontextmanager
async def pushgate_serve(
    database_url: str, log: Path, *, port: int | None = None, **env: str
) -> AsyncIterator[Served]:
    """A real server process; yields once `/healthz` answers, terminates it at the end."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pushgate",
            "serve",
            "--port",
            str(port),
            "--no-access-log",
            env=serve_environment(database_url, base, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                with anyio.fail_after(30):
                    while True:
                        assert process.returncode is None, f"the server exited; its log: {log}"
                        with contextlib.suppress(httpx.TransportError):
                            if (await http.get("/healthz")).status_code == 200:
                                break
                        await anyio.sleep(0.05)
            yield Served(process, base, log)
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
