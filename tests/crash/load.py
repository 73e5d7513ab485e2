"""The clients of the crash tests: relying parties that create, cancel and read sessions, and
phones that approve and deny them, every request recorded in a `History` (tests/crash/history.py).
Plus the set-up they share: users with phones, a webhook receiver, a realm policy that lets a
user be asked often and deny without being locked."""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field

import anyio
import asyncpg
import httpx

from pushgate.services import Services
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Mechanism, new_device
from tests.crash.history import TERMINAL, History, Op
from tests.relying.support import SESSIONS
from tests.webhooks.receiver import Receiver

# Short enough that rows a killed process had claimed are taken again within the test.
SERVER_ENV = {"PUSHGATE_OUTBOX_LEASE_SECONDS": "2", "PUSHGATE_OUTBOX_POLL_SECONDS": "0.2"}


@dataclass
class User:
    name: str
    phone: DeviceClient
    mechanism: Mechanism


@dataclass
class Clients:
    base: str
    rp: httpx.AsyncClient
    history: History = field(default_factory=History)

    async def create(self, user: User) -> str | None:
        """The new session's id, None unless the creation got a 2xx."""
        async with self.history.call(Op.CREATE, "") as call:
            response = await self.rp.post(f"{self.base}{SESSIONS}", json={"user": user.name})
            call.answered(response)
            if call.ok:
                call.session = response.json()["id"]
        return call.session if call.ok else None

    async def read(self, session: str) -> str | None:
        async with self.history.call(Op.READ, session) as call:
            call.answered(await self.rp.get(f"{self.base}{SESSIONS}/{session}"))
        return call.seen

    async def cancel(self, session: str) -> None:
        async with self.history.call(Op.CANCEL, session) as call:
            url = f"{self.base}{SESSIONS}/{session}"
            call.answered(await self.rp.patch(url, json={"status": "canceled"}))

    async def answer(self, user: User, session: str, approve: bool) -> None:
        """The phone polls and answers its one pending push (each user has one session at a
        time). No push, no answer: the session ended already."""
        async with self.history.call(Op.APPROVE if approve else Op.DENY, session) as call:
            pending = await user.phone.pending(user.mechanism)
            if not pending:
                call.skip = True
                return
            if approve:
                await user.phone.approve(pending[0])
            else:
                await user.phone.deny(pending[0])
            call.status = 200

    async def act(self, user: User, session: str, rng: random.Random) -> None:
        """One of: approve, deny, cancel, or an answer racing a cancel."""
        choice = rng.choice(["approve", "deny", "cancel", "race"])
        if choice == "cancel":
            await self.cancel(session)
        elif choice == "race":
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self.answer, user, session, rng.random() < 0.5)
                tasks.start_soon(self.cancel, session)
        else:
            await self.answer(user, session, choice == "approve")


async def users(admin: Services, http: httpx.AsyncClient, count: int) -> list[User]:
    """`count` users, each with a phone registered through the server the admin's QR codes
    name (it must be running)."""
    made = []
    for i in range(count):
        name = f"user-{i}"
        await admin.accounts.create_user("/", name, None)
        started = await admin.devices.start_registration("/", name)
        phone = DeviceClient(new_device(), http=http)
        made.append(User(name, phone, await phone.register(started.uri)))
    return made


async def prepare(admin: Services, receiver: Receiver) -> str:
    """A webhook for every event, a permissive policy; the root realm's API key."""
    await admin.webhooks.add("/", receiver.url, ())
    await admin.accounts.set_realm_policy(
        "/", {"createsPerMinute": 10_000, "lockAfterFailures": 100}
    )
    return (await admin.accounts.create_api_key("/")).key


def announced(receiver: Receiver) -> dict[str, list[str]]:
    """The terminal statuses each session's webhooks announced, as received."""
    found: dict[str, list[str]] = collections.defaultdict(list)
    for received in receiver.received:
        status = received.event["type"].removeprefix("session.")
        if status in TERMINAL:
            found[received.event["data"]["id"]].append(status)
    return found


async def until_announced(receiver: Receiver, clients: Clients, seconds: float) -> None:
    """Wait until every session the history last saw ended has had its webhook."""
    ended = {e.session for e in clients.history.events if e.op is Op.READ and e.seen in TERMINAL}
    with anyio.move_on_after(seconds):
        while not ended <= set(announced(receiver)):
            await anyio.sleep(0.1)


async def outbox_states(url: str, seconds: float) -> dict[str, int]:
    """The outbox's rows by state once nothing is pending, or as they are after `seconds`."""
    conn = await asyncpg.connect(url)
    try:
        with anyio.move_on_after(seconds):
            while await conn.fetchval("SELECT count(*) FROM outbox WHERE state = 'pending'"):
                await anyio.sleep(0.1)
        rows = await conn.fetch("SELECT state, count(*) AS n FROM outbox GROUP BY state")
        return {row["state"]: row["n"] for row in rows}
    finally:
        await conn.close()
