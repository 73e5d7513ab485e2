"""`pushgate action PushNotificationResponse` (issue 10; seeds 000/001, Amster): the device
endpoint's own code without HTTP, for each actionName, with a simulator device, on SQLite and
PostgreSQL; its answer is what the endpoint would send (status and CREST body)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from pushgate.protocol import device_messages as dm
from pushgate.protocol import qr
from pushgate.services import Services
from pushgate.sessions.model import Content, SessionStatus
from pushgate.sessions.service import NewSession
from pushgate.settings import Settings
from pushgate.simulator import (
    Mechanism,
    answer_body,
    decode_notification,
    mechanism_from_uri,
    new_device,
    new_mechanism_uid,
    poll_body,
    refresh_body,
    registration_body,
)
from pushgate.wiring import build_services, migrate_database
from tests.support import TEST_SECRET_KEY

T = TypeVar("T")


class Cli:
    def __init__(self, url: str) -> None:
        self.url = url
        self.settings = Settings(
            database_url=url, public_url="https://auth.example.com", secret_key=TEST_SECRET_KEY
        )
        self.env = {
            "PUSHGATE_DATABASE_URL": url,
            "PUSHGATE_PUBLIC_URL": "https://auth.example.com",
            "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
            "PUSHGATE_CONFIG": "",
        }

    def action(self, name: str, body: object, *extra: str) -> Result:
        text = body if isinstance(body, str) else json.dumps(body)
        args = ["action", "PushNotificationResponse", "--body", text, "--actionName", name]
        return CliRunner().invoke(cli, [*args, *extra], env=self.env)

    def use(self, work: Callable[[Services], Awaitable[T]]) -> T:
        async def go() -> T:
            services = build_services(self.settings)
            try:
                return await work(services)
            finally:
                await services.store.aclose()

        return asyncio.run(go())


@pytest.fixture
def run(fresh_database_url: str) -> Cli:
    found = Cli(fresh_database_url)
    asyncio.run(migrate_database(found.settings))
    return found


def _answer(result: Result) -> tuple[int, Any]:
    status, _, body = result.stdout.strip().partition(" ")
    return int(status), json.loads(body)


def _register(run: Cli) -> Mechanism:
    async def start(services: Services) -> str:
        await services.accounts.create_user("/", "alice", None)
        return (await services.devices.start_registration("/", "alice")).uri

    uri = qr.parse(run.use(start))
    uid = new_mechanism_uid()
    result = run.action("register", registration_body(uri, uid, new_device()))
    assert result.exit_code == 0, result.output
    assert _answer(result) == (200, {})
    return mechanism_from_uri(uri, uid)


def _pushed(run: Cli, mechanism: Mechanism) -> tuple[str, dict[str, str]]:
    """A new session for alice, and the answer to its push the device would send."""

    async def create(services: Services) -> tuple[str, str, str]:
        session = await services.sessions.create("/", NewSession("alice", Content("Sign in")))
        poll = dm.parse_poll_request(poll_body(mechanism, services.clock.now_ms()))
        [push] = await services.devices.pending("/", poll)
        return session.id, push.message_id, push.jwt

    session_id, message_id, jwt = run.use(create)
    notification = decode_notification(mechanism, message_id, jwt, 0)
    return session_id, answer_body(mechanism, notification.message_id, notification.jwt, True)


def _status(run: Cli, session_id: str) -> SessionStatus:
    async def get(services: Services) -> SessionStatus:
        return (await services.sessions.get("/", session_id)).status

    return run.use(get)


def test_register_authenticate_and_refresh(run: Cli) -> None:
    mechanism = _register(run)

    session_id, body = _pushed(run, mechanism)
    result = run.action("authenticate", body)
    assert result.exit_code == 0, result.output
    assert _answer(result) == (200, {})
    assert _status(run, session_id) is SessionStatus.APPROVED

    result = run.action("refresh", refresh_body(mechanism, new_device("Alice's new phone")))
    assert result.exit_code == 0, result.output
    assert _answer(result) == (200, {})

    as_json = run.action("refresh", refresh_body(mechanism, new_device()), "--json")
    assert json.loads(as_json.stdout) == {"status": 200, "body": {}}


def test_refusals_are_the_endpoints_crest_answers(run: Cli) -> None:
    mechanism = _register(run)
    _, body = _pushed(run, mechanism)
    assert run.action("authenticate", body).exit_code == 0

    replay = run.action("authenticate", body)
    assert replay.exit_code == 1
    assert _answer(replay) == (
        400,
        {"code": 400, "reason": "Bad Request", "message": dm.REFUSED},
    )
    malformed = run.action("authenticate", "{not json")
    assert malformed.exit_code == 1
    status, crest = _answer(malformed)
    assert (status, crest["code"], crest["message"]) == (400, 400, dm.MALFORMED)
    assert "Traceback" not in replay.output + malformed.output


def test_only_the_documented_entity_and_actions(run: Cli) -> None:
    wrong = CliRunner().invoke(
        cli,
        ["action", "Other", "--body", "{}", "--actionName", "register"],
        env=run.env,
    )
    assert wrong.exit_code == 2
    unknown = run.action("pending", {})
    assert unknown.exit_code == 2
