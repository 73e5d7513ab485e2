"""The core loop over real HTTP: `pushgate serve` in a subprocess on loopback, the simulator as
the phone, httpx as the relying party; on SQLite and PostgreSQL.

The server's logs are kept and searched afterwards for anything secret (STYLE.md, issue #2).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pushgate.errors import Conflict
from pushgate.protocol import qr
from pushgate.protocol.encoding import b64url
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Notification, SimulatorError, answer_body, new_device
from pushgate.wiring import build_services
from tests.live_server import free_port, serve_in_subprocess
from tests.support import TEST_SECRET_KEY, empty_database


@dataclass
class LiveServer:
    base: str
    log_path: Path
    services: Services
    api_key: str = ""
    secrets_seen: set[str] = field(default_factory=set)

    def remember(self, *values: str) -> None:
        self.secrets_seen.update(v for v in values if v)


@pytest.fixture
async def live(database_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=database_url, public_url=base, secret_key=TEST_SECRET_KEY)
    services = build_services(settings)  # the system clock: the server uses it too
    await empty_database(services)
    key = await services.accounts.create_api_key("/")
    log_path = tmp_path / "server.log"
    env = {"PUSHGATE_LOG_LEVEL": "DEBUG", "PUSHGATE_EXPIRY_SWEEP_SECONDS": "0.2"}
    try:
        async with serve_in_subprocess(database_url, port, log_path, env):
            yield LiveServer(base, log_path, services, key.key)
    finally:
        await services.store.aclose()


@pytest.fixture
async def rp(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live.base, headers={"X-API-Key": live.api_key}, timeout=10
    ) as http:
        yield http


async def _registered_phone(live: LiveServer, username: str) -> DeviceClient:
    with contextlib.suppress(Conflict):  # a second phone for the same user
        await live.services.accounts.create_user("/", username, None)
    started = await live.services.devices.start_registration("/", username)
    phone = DeviceClient(new_device())
    await phone.register(started.uri)
    uri = qr.parse(started.uri)
    live.remember(
        base64.b64encode(uri.secret).decode(),
        b64url(uri.secret),
        b64url(uri.challenge),
        base64.b64encode(uri.challenge).decode(),
        phone.device.device_id,
    )
    return phone


async def _one_notification(live: LiveServer, phone: DeviceClient) -> Notification:
    (mechanism,) = phone.device.mechanisms
    notifications = await phone.pending(mechanism)
    assert len(notifications) == 1
    notification = notifications[0]
    live.remember(notification.jwt, notification.claims["c"])
    return notification


async def _create(rp: httpx.AsyncClient, user: str, **extra: object) -> dict[str, object]:
    reply = await rp.post("/v1/push/sessions", json={"user": user, **extra})
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def _status(rp: httpx.AsyncClient, session_id: object) -> dict[str, object]:
    reply = await rp.get(f"/v1/push/sessions/{session_id}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _remember_answer(live: LiveServer, phone: DeviceClient, n: Notification, **kw: object) -> None:
    mechanism = phone.device.mechanism(n.mechanism_uid)
    body = answer_body(
        mechanism,
        n.message_id,
        n.jwt,
        bool(kw.get("approve", True)),
        detail=kw.get("detail"),  # type: ignore[arg-type]
    )
    live.remember(body["jwt"])


async def test_approve(live: LiveServer, rp: httpx.AsyncClient) -> None:
    phone = await _registered_phone(live, "alice")
    async with phone:
        session = await _create(rp, "alice", notification={"title": "Sign in", "body": "Acme"})
        assert session["status"] == "sent"
        assert session["notificationCount"] == 1
        notification = await _one_notification(live, phone)
        assert notification.message == "Acme"
        assert notification.username == "alice"
        await phone.approve(notification, detail="approved on my phone")
        _remember_answer(live, phone, notification, detail="approved on my phone")
        final = await _status(rp, session["id"])
        assert final["status"] == "accepted"
        assert final["detail"] == "approved on my phone"
        # Answered: nothing is pending any more, and a replay of the approve is refused.
        assert await phone.pending(phone.device.mechanisms[0]) == []
        with pytest.raises(SimulatorError) as refused:
            await phone.approve(notification)
        assert refused.value.status == 400
        assert (await _status(rp, session["id"]))["status"] == "accepted"
    _assert_logs_keep_secrets(live)


async def test_relying_party_waits_for_the_answer(live: LiveServer, rp: httpx.AsyncClient) -> None:
    phone = await _registered_phone(live, "erin")
    async with phone:
        session = await _create(rp, "erin")
        notification = await _one_notification(live, phone)
        answers: list[httpx.Response] = []

        async def wait() -> None:
            answers.append(await rp.get(f"/v1/push/sessions/{session['id']}?wait=30"))

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(wait())
            await asyncio.sleep(0.2)  # let the wait reach the server before the answer
            await phone.approve(notification)
        assert [a.json()["status"] for a in answers] == ["accepted"]


async def test_deny_with_two_phones(live: LiveServer, rp: httpx.AsyncClient) -> None:
    first = await _registered_phone(live, "bob")
    second = await _registered_phone(live, "bob")
    async with first, second:
        session = await _create(rp, "bob")
        assert session["notificationCount"] == 2
        one = await _one_notification(live, first)
        two = await _one_notification(live, second)
        assert one.message_id != two.message_id
        await second.deny(two)
        _remember_answer(live, second, two, approve=False)
        assert (await _status(rp, session["id"]))["status"] == "rejected"
        with pytest.raises(SimulatorError):
            await first.approve(one)  # the session already ended
        assert (await _status(rp, session["id"]))["status"] == "rejected"
    _assert_logs_keep_secrets(live)


async def test_cancel(live: LiveServer, rp: httpx.AsyncClient) -> None:
    phone = await _registered_phone(live, "carol")
    async with phone:
        session = await _create(rp, "carol")
        notification = await _one_notification(live, phone)
        reply = await rp.patch(f"/v1/push/sessions/{session['id']}", json={"status": "canceled"})
        assert reply.status_code == 200
        assert reply.json()["status"] == "canceled"
        assert await phone.pending(phone.device.mechanisms[0]) == []
        with pytest.raises(SimulatorError):
            await phone.approve(notification)
        assert (await _status(rp, session["id"]))["status"] == "canceled"


async def test_expiry(live: LiveServer, rp: httpx.AsyncClient) -> None:
    phone = await _registered_phone(live, "dave")
    async with phone:
        session = await _create(rp, "dave", secondsToExpire=1)
        notification = await _one_notification(live, phone)
        await asyncio.sleep(1.6)  # real time passes for a real server; the sweeper runs at 0.2 s
        assert (await _status(rp, session["id"]))["status"] == "expired"
        with pytest.raises(SimulatorError):
            await phone.approve(notification)
        assert (await _status(rp, session["id"]))["status"] == "expired"


async def test_user_without_device_gets_error(rp: httpx.AsyncClient) -> None:
    session = await _create(rp, "nobody")
    assert (session["status"], session["notificationCount"]) == ("error", 0)


def _assert_logs_keep_secrets(live: LiveServer) -> None:
    text = live.log_path.read_text(encoding="utf-8", errors="replace")
    assert '"event":"session answered"' in text  # the logs were written and searched
    # What /metrics shows is searched too: its labels are route templates, never raw paths.
    text += httpx.get(live.base + "/metrics", timeout=10).text
    for secret in live.secrets_seen:
        assert secret not in text, "a secret, challenge, JWT or push token reached the logs"
    # Issue 10: JSON lines with ISO 8601 UTC times; a request's lines carry its id.
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert records
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}\.\d{3}Z", r["ts"]) for r in records)
    for record in records:
        if record["event"] in ("session answered", "request refused") or (
            record["logger"] == "uvicorn.access"
        ):
            assert re.fullmatch(r"[0-9a-f]{32}", record.get("requestId", "")), record
