"""Shared helpers for the HTTP-level tests (security.md §9 A-E): realms, users and API keys,
phones registered through the device endpoint, sessions on the UnifyID face, and whole-database
snapshots for the "no state change" checks.

Devices are built with the simulator's pure body builders, so every message on the wire is
what a real authenticator would send; the tests post them with the ASGI client themselves to
see the exact status and body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pushgate.protocol import qr
from pushgate.services import Services
from pushgate.simulator import (
    Mechanism,
    Notification,
    SimulatedDevice,
    answer_body,
    decode_notification,
    mechanism_from_uri,
    new_device,
    new_mechanism_uid,
    poll_body,
    registration_body,
)
from pushgate.store import schema
from pushgate.store.engine import create_engine
from tests.support import FakeClock

SESSIONS = "/v1/push/sessions"
JSON_HEADERS = {"Content-Type": "application/json"}
# The exact CREST bodies of the device face. Every refusal of a well-formed message looks the
# same, whatever the reason (no oracle for a forger).
REFUSED = {"code": 400, "reason": "Bad Request", "message": "Message not accepted"}
MALFORMED = {"code": 400, "reason": "Bad Request", "message": "Malformed request"}
TERMINAL_EVENTS = ("session.answered", "session.canceled", "session.expired")

Snapshot = dict[str, list[tuple[Any, ...]]]


@asynccontextmanager
async def connect(services: Services) -> AsyncIterator[AsyncConnection]:
    """A SQLAlchemy connection to the services' database, beside the store: tests read with
    it what the store wrote."""
    engine = create_engine(services.settings.database_url)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


def endpoint(realm: str, action: str, *, form: str = "short") -> str:
    """The device endpoint of `realm` in one of AM's URL forms (spec forgerock-push.md §3.4).

    `short` is `/json[/<realm>]/push/sns/message`, the form pushgate writes into QR codes;
    `long` is `/json/realms/root[/realms/<realm>]/push/sns/message`.
    """
    bare = realm.strip("/")
    if form == "short":
        path = "/json" + (f"/{bare}" if bare else "")
    elif form == "long":
        path = "/json/realms/root" + (f"/realms/{bare}" if bare else "")
    else:
        raise ValueError(form)
    return f"{path}/push/sns/message?_action={action}"


@dataclass(frozen=True, slots=True)
class Phone:
    """One registered mechanism on a simulated phone, with the body it registered with."""

    realm: str
    username: str
    mechanism: Mechanism
    device: SimulatedDevice
    registration: dict[str, str]

    @property
    def authenticate_url(self) -> str:
        return self.mechanism.authenticate_url

    @property
    def refresh_url(self) -> str:
        return self.mechanism.refresh_url

    @property
    def pending_url(self) -> str:
        return self.mechanism.pending_url


async def allow_many_sessions(services: Services, realm: str = "/") -> None:
    await services.accounts.set_realm_policy(
        realm, {"createsPerMinute": 10_000, "onePendingPerUser": False, "lockAfterFailures": 100}
    )


class Api:
    """The two faces of one pushgate app, driven over ASGI, plus direct database reads."""

    def __init__(self, client: httpx.AsyncClient, services: Services) -> None:
        self.client = client
        self.services = services

    def now_ms(self) -> int:
        return self.services.clock.now_ms()

    def advance(self, seconds: float) -> None:
        """Move the tests' FakeClock (the `clock` fixture the services were built with)."""
        clock = self.services.clock
        assert isinstance(clock, FakeClock)
        clock.advance(seconds)

    # accounts ---------------------------------------------------------------------------------

    async def realm(self, name: str) -> str:
        return (await self.services.accounts.create_realm(name)).name

    async def user(self, realm: str, username: str) -> None:
        await self.services.accounts.create_user(realm, username, None)

    async def key(self, realm: str = "/") -> str:
        return (await self.services.accounts.create_api_key(realm)).key

    async def allow_many_sessions(self, realm: str = "/") -> None:
        """Lift the realm's anti-fatigue limits (as far as they go), for tests of other things
        that open, deny or fail many sessions of one user."""
        await allow_many_sessions(self.services, realm)

    # the device face ----------------------------------------------------------------------------

    async def post(self, url: str, body: object, **headers: str) -> httpx.Response:
        """POST a JSON body (or raw bytes) the way the Android SDK does."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(url, content=content, headers={**JSON_HEADERS, **headers})

    async def start(self, realm: str, username: str) -> qr.RegistrationUri:
        started = await self.services.devices.start_registration(realm, username)
        return qr.parse(started.uri)

    async def register(
        self,
        realm: str,
        username: str,
        *,
        url: str | None = None,
        device: SimulatedDevice | None = None,
        mechanism_uid: str | None = None,
    ) -> Phone:
        """Register a new phone from a fresh QR code; fails the test unless it gets 200 `{}`."""
        uri = await self.start(realm, username)
        phone_device = device or new_device()
        uid = mechanism_uid or new_mechanism_uid()
        body = registration_body(uri, uid, phone_device)
        response = await self.post(url or uri.register_url, body)
        assert response.status_code == 200, response.text
        assert response.content == b"{}"
        return Phone(realm, username, mechanism_from_uri(uri, uid), phone_device, body)

    async def poll(self, phone: Phone, *, url: str | None = None) -> httpx.Response:
        return await self.post(url or phone.pending_url, poll_body(phone.mechanism, self.now_ms()))

    async def pending(self, phone: Phone, *, url: str | None = None) -> list[Notification]:
        """The pushes waiting for `phone`, verified as the app verifies them."""
        response = await self.poll(phone, url=url)
        assert response.status_code == 200, response.text
        items = response.json()["notifications"]
        return [
            decode_notification(phone.mechanism, item["messageId"], item["message"], self.now_ms())
            for item in items
        ]

    async def push(self, phone: Phone) -> Notification:
        """The one push waiting for `phone`."""
        pushes = await self.pending(phone)
        assert len(pushes) == 1, pushes
        return pushes[0]

    @staticmethod
    def answer_body(
        phone: Phone,
        push: Notification,
        *,
        approve: bool = True,
        detail: str | None = None,
        number: int | None = None,
        code: str | None = None,
        deny_reason: str | None = None,
        operation_data: str | None = None,
    ) -> dict[str, str]:
        return answer_body(
            phone.mechanism,
            push.message_id,
            push.jwt,
            approve,
            number,
            detail,
            code=code,
            deny_reason=deny_reason,
            operation_data=operation_data,
        )

    async def answer(
        self,
        phone: Phone,
        push: Notification,
        *,
        approve: bool = True,
        detail: str | None = None,
        url: str | None = None,
        number: int | None = None,
        code: str | None = None,
        deny_reason: str | None = None,
        operation_data: str | None = None,
    ) -> httpx.Response:
        body = self.answer_body(
            phone,
            push,
            approve=approve,
            detail=detail,
            number=number,
            code=code,
            deny_reason=deny_reason,
            operation_data=operation_data,
        )
        return await self.post(url or phone.authenticate_url, body)

    # the relying-party face -----------------------------------------------------------------------

    async def create_session_response(
        self, key: str, body: object, **headers: str
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(
            SESSIONS, content=content, headers={**JSON_HEADERS, "X-API-Key": key, **headers}
        )

    async def create_session(self, key: str, user: str, **fields: object) -> dict[str, Any]:
        response = await self.create_session_response(key, {"user": user, **fields})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def get_session(self, key: str, session_id: str) -> httpx.Response:
        return await self.client.get(f"{SESSIONS}/{session_id}", headers={"X-API-Key": key})

    async def status(self, key: str, session_id: str) -> str:
        response = await self.get_session(key, session_id)
        assert response.status_code == 200, response.text
        status: str = response.json()["status"]
        return status

    async def patch_session(self, key: str, session_id: str, body: object) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.patch(
            f"{SESSIONS}/{session_id}",
            content=content,
            headers={**JSON_HEADERS, "X-API-Key": key},
        )

    async def cancel(self, key: str, session_id: str) -> httpx.Response:
        return await self.patch_session(key, session_id, {"status": "canceled"})

    # the database, read directly ---------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        return await snapshot(self.services)

    async def count(self, table_name: str, **where: object) -> int:
        return await count_rows(self.services, table_name, **where)

    async def stored_status(self, session_id: str) -> str:
        """The status column as written, without the read-time expiry of the API."""
        async with connect(self.services) as conn:
            query = select(schema.sessions.c.status).where(schema.sessions.c.id == session_id)
            value: str = (await conn.execute(query)).scalar_one()
        return value

    async def audit_events(self, subject: str) -> list[str]:
        return await audit_events(self.services, subject)

    async def terminal_events(self, subject: str) -> list[str]:
        return [e for e in await self.audit_events(subject) if e in TERMINAL_EVENTS]

    async def device_row(self, mechanism_uid: str) -> Mapping[str, Any]:
        async with connect(self.services) as conn:
            query = select(schema.devices).where(schema.devices.c.mechanism_uid == mechanism_uid)
            return dict((await conn.execute(query)).mappings().one())


async def snapshot(services: Services) -> Snapshot:
    """Every row of every table, in a stable order: equal snapshots mean nothing was written."""
    tables: Snapshot = {}
    async with connect(services) as conn:
        for table in schema.metadata.sorted_tables:
            # A key's last use (to the minute) is bookkeeping of the request, not what it wrote.
            columns = [c for c in table.c if c.name != "last_used_ms"]
            rows = (await conn.execute(select(*columns))).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


async def count_rows(services: Services, table_name: str, **where: object) -> int:
    table = schema.metadata.tables[table_name]
    query = select(func.count()).select_from(table)
    for column, wanted in where.items():
        query = query.where(table.c[column] == wanted)
    async with connect(services) as conn:
        found: int = (await conn.execute(query)).scalar_one()
    return found


async def audit_events(services: Services, subject: str) -> list[str]:
    query = (
        select(schema.audit.c.event)
        .where(schema.audit.c.subject == subject)
        .order_by(schema.audit.c.id)
    )
    async with connect(services) as conn:
        return list((await conn.execute(query)).scalars())
