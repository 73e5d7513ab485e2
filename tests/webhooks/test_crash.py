"""A server killed with `kill -9` right after a device answer got 200 still delivers the
webhook once it is back (issue 7 "Must hold"): the delivery row committed with the answer, and
an attempt the crash interrupted is made again once its lease runs out. `pushgate serve` as a
real process on PostgreSQL; the receiver is a real HTTP server on loopback that holds the
first attempt open, so the kill always lands before any 2xx."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import standardwebhooks

from pushgate.protocol import qr
from pushgate.settings import Settings
from pushgate.simulator import (
    decode_notification,
    mechanism_from_uri,
    new_device,
    new_mechanism_uid,
    poll_body,
    registration_body,
)
from pushgate.wiring import build_services, migrate_database
from tests.api.helpers import Api, Phone
from tests.cli.test_processes import Running
from tests.support import TEST_SECRET_KEY, create_postgres_database, drop_postgres_database

LEASE_SECONDS = 5  # the outbox lease: how long an interrupted attempt waits after a crash


class Hook(BaseHTTPRequestHandler):
    """Records each request; holds the first one open until the test releases it."""

    received: list[tuple[dict[str, str], bytes, int]]
    release: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        first = not self.received
        status = 200
        if first:
            self.release.wait(60)
            status = 500
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
        try:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:
            pass  # the sender died with the connection

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("H", (Hook,), {"received": [], "release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def database() -> Iterator[str]:
    name, url = asyncio.run(create_postgres_database("pushgate_webhook_"))
    try:
        asyncio.run(migrate_database(Settings(database_url=url)))
        yield url
    finally:
        asyncio.run(drop_postgres_database(name))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare(settings: Settings, hook_url: str) -> tuple[str, str, str]:
    """A user, an API key, a QR code and a webhook: (key, QR URI, secret)."""

    async def go() -> tuple[str, str, str]:
        services = build_services(settings)
        try:
            await services.accounts.create_user("/", "alice", None)
            key = (await services.accounts.create_api_key("/")).key
            started = await services.devices.start_registration("/", "alice")
            webhook = await services.webhooks.add("/", hook_url, ["session.accepted"])
            return key, started.uri, webhook.secret
        finally:
            await services.store.aclose()

    return asyncio.run(go())


@pytest.mark.postgres
def test_a_server_killed_after_the_answer_delivers_after_restart(
    database: str, hook: tuple[str, type[Hook]], tmp_path: Path
) -> None:
    hook_url, handler = hook
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=database, secret_key=TEST_SECRET_KEY, public_url=base)
    key, uri_text, secret = _prepare(settings, hook_url)
    env = {
        "PUSHGATE_DATABASE_URL": database,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_PUBLIC_URL": base,
        "PUSHGATE_LOG_FORMAT": "json",
        "PUSHGATE_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
        "PATH": "/usr/bin:/bin",
    }
    serve = ["serve", "--port", str(port), "--no-access-log"]
    server = Running(serve, env, tmp_path)
    restarted: Running | None = None
    try:
        server.wait_for("Application startup complete")
        with httpx.Client(base_url=base, timeout=10) as http:
            uri = qr.parse(uri_text)
            device, uid = new_device(), new_mechanism_uid()
            body = registration_body(uri, uid, device)
            assert http.post(uri.register_url, json=body).status_code == 200
            mechanism = mechanism_from_uri(uri, uid)
            phone = Phone("/", "alice", mechanism, device, body)
            created = http.post(
                "/v1/push/sessions",
                json={"user": "alice", "notification": {"title": "Sign in"}},
                headers={"X-API-Key": key},
            )
            assert created.status_code == 201, created.text
            polled = http.post(mechanism.pending_url, json=poll_body(mechanism, _now()))
            [item] = polled.json()["notifications"]
            push = decode_notification(mechanism, item["messageId"], item["message"], _now())
            answered = http.post(mechanism.authenticate_url, json=Api.answer_body(phone, push))
            assert answered.status_code == 200, answered.text
        server.process.kill()  # SIGKILL, right after the 200
        server.process.wait()
        handler.release.set()
        assert all(status != 200 for _, _, status in handler.received)  # none before the kill

        restarted = Running(serve, env, tmp_path)
        restarted.wait_for("Application startup complete")
        deadline = time.monotonic() + LEASE_SECONDS + 20
        while not any(status == 200 for _, _, status in handler.received):
            assert time.monotonic() < deadline, f"no delivery after the restart: {handler.received}"
            time.sleep(0.1)
    finally:
        handler.release.set()
        server.close()
        if restarted is not None:
            restarted.close()

    delivered = [(h, b) for h, b, status in handler.received if status == 200]
    headers, payload = delivered[0]
    event = standardwebhooks.Webhook(secret).verify(payload, headers)
    assert event["type"] == "session.accepted"
    assert event["data"]["id"] == created.json()["id"]
    assert event["data"]["status"] == "accepted"
    # Every attempt, before the crash and after it, is the same message.
    assert len({h["webhook-id"] for h, _, _ in handler.received}) == 1
    assert len({b for _, b, _ in handler.received}) == 1
    assert json.loads(payload)["timestamp"]


def _now() -> int:
    return int(time.time() * 1000)
