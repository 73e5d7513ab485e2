"""`GET /v1/push/sessions/{id}/events` over a real uvicorn on loopback (ASGITransport buffers a
whole body, so it cannot show a stream): the first event, one per change, the body ending at
the terminal one, refusals before any stream, and no subscription left behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.clock import Clock, SystemClock
from pushgate.services import Services
from pushgate.sessions.model import SessionStatus
from pushgate.settings import Settings
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import new_device
from pushgate.wiring import build_services
from tests.api.helpers import SESSIONS, Api
from tests.api.live import serving
from tests.support import TEST_SECRET_KEY, FakeClock

NEVER = 3600.0  # no test waits this long: only a wake-up or the deadline can move a stream


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    id: str
    data: dict[str, Any]


async def read_events(
    lines: AsyncIterator[str],
    events: list[Event] | None = None,
    comments: list[str] | None = None,
) -> list[Event]:
    """Every event until the body ends (appended to `events` as they come, for a task that
    acts after the first one), parsed strictly: each field exactly once."""
    events = [] if events is None else events
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if fields:
                assert set(fields) == {"event", "id", "data"}, fields
                events.append(Event(fields["event"], fields["id"], json.loads(fields["data"])))
                fields = {}
            continue
        if line.startswith(":"):
            if comments is not None:
                comments.append(line)
            continue
        name, _, value = line.partition(": ")
        assert name not in fields, line
        fields[name] = value
    assert fields == {}, "the body ended inside an event"
    return events


async def next_event(lines: AsyncIterator[str]) -> Event:
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "" and fields:
            return Event(fields["event"], fields["id"], json.loads(fields["data"]))
        if line and not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    raise AssertionError("the body ended before an event")


class Loopback(httpx.AsyncBaseTransport):
    """Every request to the live server's port: the URLs in QR codes and pushes name the
    settings' public URL (http://testserver), which no resolver knows."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class LiveApi(Api):
    """The API helper on a live server; `base_url` reaches it directly."""

    def __init__(self, client: httpx.AsyncClient, services: Services, port: int) -> None:
        super().__init__(client, services)
        self.base_url = f"http://127.0.0.1:{port}"


@asynccontextmanager
async def live_api(services: Services) -> AsyncIterator[LiveApi]:
    async with (
        serving(create_app(services, close_store=False)) as port,
        httpx.AsyncClient(
            transport=Loopback(port), base_url="http://testserver", timeout=10
        ) as http,
    ):
        yield LiveApi(http, services, port)


@asynccontextmanager
async def live(settings: Settings, clock: Clock, **update: object) -> AsyncIterator[LiveApi]:
    """The API served by uvicorn (in the test's own task: its task group cannot live in a
    fixture), with services that never re-read or beat on their own timer unless told."""
    update = {
        "event_stream_recheck_seconds": NEVER,
        "event_stream_heartbeat_seconds": NEVER,
        **update,
    }
    built = build_services(settings.model_copy(update=update), clock)
    try:
        async with live_api(built) as api:
            yield api
    finally:
        await built.store.aclose()


async def session_with_phone(api: Api, username: str = "alice") -> tuple[str, str, Any]:
    key = await api.key()
    await api.user("/", username)
    phone = await api.register("/", username)
    session = await api.create_session(key, username)
    return key, session["id"], phone


def events_url(session_id: str) -> str:
    return f"{SESSIONS}/{session_id}/events"


async def until(condition: Callable[[], object]) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.005)


async def test_a_finished_session_is_one_event_and_the_end(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        await patient.cancel(key, session_id)
        current = (await patient.get_session(key, session_id)).json()
        with anyio.fail_after(10):
            async with patient.client.stream(
                "GET", events_url(session_id), headers={"X-API-Key": key}
            ) as r:
                assert r.status_code == 200
                assert r.headers["content-type"] == "text/event-stream"
                assert r.headers["cache-control"] == "no-store"
                raw = (await r.aread()).decode()
        data = json.dumps(current, separators=(",", ":"))
        assert raw == f"event: session\nid: 1\ndata: {data}\n\n"
        assert patient.services.events.waiting == 0


async def test_cancel_while_open(settings: Settings, clock: FakeClock, services: Services) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        before = (await patient.get_session(key, session_id)).json()
        with anyio.fail_after(10):
            async with (
                patient.client.stream(
                    "GET", events_url(session_id), headers={"X-API-Key": key}
                ) as r,
                anyio.create_task_group() as tasks,
            ):

                async def cancel() -> None:
                    await until(lambda: events)  # the first event is out: act now
                    # Wake-ups that changed nothing send nothing.
                    for _ in range(3):
                        patient.services.events.publish(session_id)
                        await anyio.sleep(0.02)
                    assert (await patient.cancel(key, session_id)).status_code == 200

                events: list[Event] = []
                tasks.start_soon(cancel)
                await read_events(r.aiter_lines(), events)
        after = (await patient.get_session(key, session_id)).json()
        assert [(e.name, e.id) for e in events] == [("session", "1"), ("session", "2")]
        assert [e.data for e in events] == [before, after]
        assert after["status"] == "canceled"
        assert patient.services.events.waiting == 0


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
async def test_the_device_answer_is_the_last_event(
    settings: Settings, clock: FakeClock, services: Services, approve: bool
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, phone = await session_with_phone(patient)
        push = await patient.push(phone)
        with anyio.fail_after(10):
            async with (
                patient.client.stream(
                    "GET", events_url(session_id), headers={"X-API-Key": key}
                ) as r,
                anyio.create_task_group() as tasks,
            ):

                async def answer() -> None:
                    await until(lambda: events)  # the first event is out: act now
                    reply = await patient.answer(phone, push, approve=approve, detail="on my phone")
                    assert reply.status_code == 200

                events: list[Event] = []
                tasks.start_soon(answer)
                await read_events(r.aiter_lines(), events)
        statuses = [e.data["status"] for e in events]
        assert statuses == ["sent", "accepted" if approve else "rejected"]
        assert events[-1].data == (await patient.get_session(key, session_id)).json()
        assert events[-1].data["detail"] == "on my phone"


async def test_the_sweepers_expiry_is_an_event(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        with anyio.fail_after(10):
            async with (
                patient.client.stream(
                    "GET", events_url(session_id), headers={"X-API-Key": key}
                ) as r,
                anyio.create_task_group() as tasks,
            ):

                async def expire() -> None:
                    await until(lambda: events)  # the first event is out: act now
                    patient.advance(86_401)
                    assert await patient.services.sessions.expire_due() == 1

                events: list[Event] = []
                tasks.start_soon(expire)
                await read_events(r.aiter_lines(), events)
        assert [e.data["status"] for e in events] == ["sent", "expired"]


async def test_a_session_past_its_deadline_opens_as_expired(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        patient.advance(86_401)  # no sweeper runs here: the stream's read writes the expiry
        with anyio.fail_after(10):
            async with patient.client.stream(
                "GET", events_url(session_id), headers={"X-API-Key": key}
            ) as r:
                events = await read_events(r.aiter_lines())
        assert [e.data["status"] for e in events] == ["expired"]
        assert await patient.stored_status(session_id) == SessionStatus.EXPIRED.value


async def test_the_deadline_itself_ends_the_stream(settings: Settings, services: Services) -> None:
    # Real time: no sweeper, no wake-up and no re-read timer; only the deadline can end it.
    update = {"event_stream_recheck_seconds": NEVER}
    built = build_services(settings.model_copy(update=update), SystemClock())
    try:
        async with live_api(built) as api:
            http = api.client
            key = await api.key()
            await api.user("/", "alice")
            await api.register("/", "alice")
            session = await api.create_session(key, "alice", secondsToExpire=1)
            with anyio.fail_after(10):
                async with http.stream(
                    "GET", events_url(session["id"]), headers={"X-API-Key": key}
                ) as r:
                    events = await read_events(r.aiter_lines())
            assert [e.data["status"] for e in events] == ["sent", "expired"]
            assert await api.stored_status(session["id"]) == SessionStatus.EXPIRED.value
    finally:
        await built.store.aclose()


async def test_heartbeats_are_comments(settings: Settings, services: Services) -> None:
    update = {"event_stream_heartbeat_seconds": 0.05, "event_stream_recheck_seconds": NEVER}
    built = build_services(settings.model_copy(update=update), services.clock)
    try:
        async with live_api(built) as api:
            http = api.client
            key, session_id, _ = await session_with_phone(api)
            comments: list[str] = []
            with anyio.fail_after(10):
                async with (
                    http.stream("GET", events_url(session_id), headers={"X-API-Key": key}) as r,
                    anyio.create_task_group() as tasks,
                ):

                    async def cancel_after_heartbeats() -> None:
                        while len(comments) < 2:
                            await anyio.sleep(0.01)
                        await api.cancel(key, session_id)

                    tasks.start_soon(cancel_after_heartbeats)
                    events = await read_events(r.aiter_lines(), comments=comments)
            assert set(comments) == {": keep-alive"}
            assert [e.data["status"] for e in events] == ["sent", "canceled"]
    finally:
        await built.store.aclose()


async def test_a_client_that_leaves_ends_the_stream(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        with anyio.fail_after(10):
            async with patient.client.stream(
                "GET", events_url(session_id), headers={"X-API-Key": key}
            ) as r:
                first = await next_event(r.aiter_lines())
                assert first.data["status"] == "sent"
                assert patient.services.events.waiting == 1
            # The connection is closed: the server notices without any event to send.
            while patient.services.events.waiting:
                await anyio.sleep(0.005)
        assert await patient.status(key, session_id) == "sent"


async def test_many_streams_one_change(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        results: list[list[Event]] = [[] for _ in range(20)]

        async def listen(events: list[Event]) -> None:
            async with patient.client.stream(
                "GET", events_url(session_id), headers={"X-API-Key": key}
            ) as r:
                await read_events(r.aiter_lines(), events)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                for events in results:
                    tasks.start_soon(listen, events)
                await until(lambda: all(results))
                assert patient.services.events.waiting == 20
                await patient.cancel(key, session_id)
        assert {tuple(e.data["status"] for e in events) for events in results} == {
            ("sent", "canceled")
        }
        assert patient.services.events.waiting == 0


async def test_refusals_are_the_same_as_for_get(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        other_realm = await patient.realm("other")
        other_key = await patient.key(other_realm)
        unknown = "00000000-0000-4000-8000-000000000000"
        cases = [
            (session_id, {}),
            (session_id, {"X-API-Key": "not-a-key"}),
            (session_id, {"X-API-Key": other_key}),
            (unknown, {"X-API-Key": key}),
            ("not-a-uuid", {"X-API-Key": key}),
            (session_id.upper(), {"X-API-Key": key}),
        ]
        for target, headers in cases:
            got = await patient.client.get(events_url(target), headers=headers)
            expected = await patient.client.get(f"{SESSIONS}/{target}", headers=headers)
            assert expected.status_code in (401, 404), (target, headers)
            assert (got.status_code, got.json()) == (expected.status_code, expected.json())
            assert got.headers["content-type"] == "application/json"
        assert patient.services.events.waiting == 0


async def test_only_get(settings: Settings, clock: FakeClock, services: Services) -> None:
    async with live(settings, clock) as patient:
        key, session_id, _ = await session_with_phone(patient)
        reply = await patient.client.post(events_url(session_id), headers={"X-API-Key": key})
        assert reply.status_code == 405
        assert reply.json()["code"] == "badRequest"
        head = await patient.client.head(events_url(session_id), headers={"X-API-Key": key})
        assert (head.status_code, head.headers["content-type"]) == (200, "text/event-stream")
        assert patient.services.events.waiting == 0


async def test_the_route_is_in_the_openapi_document(
    settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as patient:
        document = (await patient.client.get("/openapi.json")).json()
        operation = document["paths"]["/v1/push/sessions/{id}/events"]["get"]
        assert set(operation["responses"]) >= {"200", "401", "404"}
        assert "text/event-stream" in operation["responses"]["200"]["content"]
        assert operation["security"] == [{"APIKeyHeader": []}]


# Two `pushgate serve` processes on one PostgreSQL -------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def pushgate_serve(database_url: str, log: Path, **env: str) -> AsyncIterator[str]:
    """A real server process; yields its base URL once /healthz answers."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")},
        "PUSHGATE_DATABASE_URL": database_url,
        "PUSHGATE_PUBLIC_URL": base,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_LOG_FORMAT": "json",
        **env,
    }
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pushgate",
            "serve",
            "--port",
            str(port),
            env=environ,
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
                        await anyio.sleep(0.1)
            yield base
        finally:
            process.terminate()
            await process.wait()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # LISTEN/NOTIFY is PG's
async def test_a_stream_on_one_process_sees_the_other_processes_changes(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    # The stream's process never re-reads on a timer: only NOTIFY can bring the change over.
    never = {"PUSHGATE_EVENT_STREAM_RECHECK_SECONDS": str(NEVER)}
    async with (
        pushgate_serve(settings.database_url, tmp_path / "a.log", **never) as a,
        pushgate_serve(settings.database_url, tmp_path / "b.log") as b,
    ):
        on_b = build_services(settings.model_copy(update={"public_url": b}))
        try:
            key = (await on_b.accounts.create_api_key("/")).key
            await on_b.accounts.create_user("/", "alice", None)
            started = await on_b.devices.start_registration("/", "alice")
            async with (
                DeviceClient(new_device()) as phone,
                httpx.AsyncClient(headers={"X-API-Key": key}, timeout=10) as rp,
            ):
                mechanism = await phone.register(started.uri)

                async def follow(action: Callable[[str], Awaitable[None]]) -> list[Event] | None:
                    """Create on B, stream on A, act on B: the events, or None if A's stream
                    did not hear of it within a second (A's listener not connected yet)."""
                    reply = await rp.post(f"{b}{SESSIONS}", json={"user": "alice"})
                    session_id = reply.json()["id"]
                    events: list[Event] = []
                    async with rp.stream("GET", a + events_url(session_id)) as r:
                        lines = r.aiter_lines()
                        events.append(await next_event(lines))
                        await action(session_id)
                        with anyio.move_on_after(1):
                            await read_events(lines, events)
                            return events
                    assert (await rp.get(f"{b}{SESSIONS}/{session_id}")).json()["status"] != "sent"
                    return None

                async def cancel(session_id: str) -> None:
                    url = f"{b}{SESSIONS}/{session_id}"
                    assert (await rp.patch(url, json={"status": "canceled"})).status_code == 200

                async def approve(_session_id: str) -> None:
                    (notification,) = await phone.pending(mechanism)
                    await phone.approve(notification)

                with anyio.fail_after(60):
                    canceled = None
                    while canceled is None:  # until A's LISTEN connection is up
                        canceled = await follow(cancel)
                    approved = await follow(approve)
        finally:
            await on_b.store.aclose()
    assert [e.data["status"] for e in canceled] == ["sent", "canceled"]
    assert approved is not None, "A's stream missed B's device answer"
    assert [e.data["status"] for e in approved] == ["sent", "accepted"]
    assert [e.id for e in approved] == ["1", "2"]
