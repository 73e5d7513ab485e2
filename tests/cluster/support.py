"""Several `pushgate serve` processes on one fresh PostgreSQL database (issue 10 "Several nodes
on one PostgreSQL"): the nodes, an admin `Services` beside them for set-up, and a check that a
node's LISTEN connection is up before a test relies on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from pushgate.clock import SystemClock
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services, migrate_database
from tests.relying.support import SESSIONS, Served, free_port, pushgate_serve
from tests.support import TEST_SECRET_KEY, create_postgres_database, drop_postgres_database

NEVER = "3600"  # no timer re-reads: only a NOTIFY can bring another node's change


@asynccontextmanager
async def fresh_database(
    prefix: str = "pushgate_cluster_", *, migrated: bool = True
) -> AsyncIterator[str]:
    """A new PostgreSQL database, migrated unless told not to; dropped at the end."""
    name, url = await create_postgres_database(prefix)
    try:
        if migrated:
            await migrate_database(Settings(database_url=url))
        yield url
    finally:
        await drop_postgres_database(name)


@dataclass
class Cluster:
    nodes: list[Served]
    admin: Services  # its public URL is the first node's: QR codes name that node
    key: str  # an API key of the root realm

    @property
    def urls(self) -> list[str]:
        return [node.base_url for node in self.nodes]


def admin_services(url: str, public_url: str) -> Services:
    settings = Settings(database_url=url, secret_key=TEST_SECRET_KEY, public_url=public_url)
    return build_services(settings, SystemClock())


@asynccontextmanager
async def cluster(url: str, logs: Path, count: int = 3, **env: str) -> AsyncIterator[Cluster]:
    """`count` server processes on the database at `url`, each with its own port and log."""
    ports = [free_port() for _ in range(count)]
    admin = admin_services(url, f"http://127.0.0.1:{ports[0]}")
    try:
        key = (await admin.accounts.create_api_key("/")).key
        async with AsyncExitStack() as stack:
            nodes = [
                await stack.enter_async_context(
                    pushgate_serve(url, logs / f"node-{i}.log", port=port, **env)
                )
                for i, port in enumerate(ports)
            ]
            yield Cluster(nodes, admin, key)
    finally:
        await admin.store.aclose()


async def until_everyone_listens(rp: httpx.AsyncClient, urls: Sequence[str], user: str) -> None:
    """Return once every node hears every other: a waiter on one node sees a cancel made on
    the next within a second (a node answers /healthz before its listener connects). `user`
    must exist; it is left with no pending session."""
    with anyio.fail_after(30):
        for i, listener in enumerate(urls):
            actor = urls[(i + 1) % len(urls)]
            while not await _hears(rp, listener, actor, user):
                pass


async def _hears(rp: httpx.AsyncClient, listener: str, actor: str, user: str) -> bool:
    created = await rp.post(f"{actor}{SESSIONS}", json={"user": user})
    assert created.status_code == 201, created.text
    session = f"{SESSIONS}/{created.json()['id']}"
    waited: list[httpx.Response] = []

    async def wait() -> None:
        waited.append(await rp.get(f"{listener}{session}?wait=1"))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.sleep(0.1)
        assert (await rp.patch(f"{actor}{session}", json={"status": "canceled"})).status_code == 200
    return bool(waited[0].json()["status"] == "canceled")
