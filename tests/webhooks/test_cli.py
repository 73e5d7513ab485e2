"""`pushgate webhook add|list|remove|deliveries` through click's runner, on a SQLite file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from pushgate.sessions.model import Content
from pushgate.sessions.service import NewSession
from pushgate.settings import Settings
from pushgate.webhooks.signing import secret_bytes
from pushgate.wiring import build_services

Invoke = Callable[..., Result]
DEAD_PORT_URL = "http://127.0.0.1:9/hook"  # the discard port: nothing listens


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PUSHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PUSHGATE_SECRET_KEY_FILE": str(tmp_path / "pushgate.key"),
        "PUSHGATE_CONFIG": "",
    }


@pytest.fixture
def run(env: dict[str, str]) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def _error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and fragment in line, line


def _one_failed_delivery(env: dict[str, str]) -> None:
    """What a server does with one event for the webhook: one attempt, refused."""

    async def go() -> None:
        settings = Settings(
            database_url=env["PUSHGATE_DATABASE_URL"],
            secret_key_file=env["PUSHGATE_SECRET_KEY_FILE"],
        )
        services = build_services(settings)
        try:
            await services.webhooks.refresh()
            await services.accounts.create_user("/", "alice", None)
            await services.sessions.create("/", NewSession("alice", Content("Hi"), 60))
            await services.outbox_worker.run_once()
        finally:
            await services.webhooks.sender.aclose()
            await services.store.aclose()

    asyncio.run(go())


def test_add_list_deliveries_remove(run: Invoke, env: dict[str, str]) -> None:
    added = run("webhook", "add", "--url", DEAD_PORT_URL, "--event", "session.error", "--json")
    assert added.exit_code == 0, added.output
    created = json.loads(added.stdout)
    assert set(created) == {"id", "url", "secret"} and created["url"] == DEAD_PORT_URL
    assert created["secret"].startswith("whsec_") and len(secret_bytes(created["secret"])) >= 24

    listed = run("webhook", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.stdout)
    assert shown["id"] == created["id"] and shown["events"] == ["session.error"]
    assert created["secret"] not in listed.output  # shown once, at add only
    assert json.loads(run("webhook", "list", "--realm", "/", "--json").stdout) == [shown]

    _one_failed_delivery(env)
    found = run("webhook", "deliveries", "--state", "pending", "--json")
    assert found.exit_code == 0, found.output
    [delivery] = json.loads(found.stdout)
    assert delivery["type"] == "session.error" and delivery["url"] == DEAD_PORT_URL
    assert delivery["state"] == "pending" and delivery["attempts"] == 1
    assert delivery["lastError"].startswith("cannot connect to") and delivery["nextAttemptAt"]
    assert delivery["webhookId"].startswith("msg_")
    assert json.loads(run("webhook", "deliveries", "--state", "dead", "--json").stdout) == []
    text = run("webhook", "deliveries")
    assert "session.error" in text.stdout and "attempts=1" in text.stdout

    removed = run("webhook", "remove", created["id"])
    assert removed.exit_code == 0 and created["id"] in removed.stdout
    assert json.loads(run("webhook", "list", "--json").stdout) == []
    assert "no webhooks" in run("webhook", "list").stdout


def test_bad_input_is_one_error_line(run: Invoke) -> None:
    assert run("webhook", "list").exit_code == 0  # the first run's key file, made once
    _error(run("webhook", "add", "--url", "ftp://x/"), "http:// or https://")
    _error(
        run("webhook", "add", "--url", DEAD_PORT_URL, "--event", "session.approved"),
        "unknown event type 'session.approved'",
    )
    _error(run("webhook", "add", "--realm", "nowhere", "--url", DEAD_PORT_URL), "/nowhere")
    _error(run("webhook", "remove", "00000000-0000-4000-8000-000000000000"), "no webhook")
    _error(run("webhook", "list", "--realm", "nowhere"), "/nowhere")


def test_the_allow_list_is_applied_at_add(env: dict[str, str]) -> None:
    runner = CliRunner()
    limited = {**env, "PUSHGATE_WEBHOOK_ALLOWED_HOSTS": "hooks.example"}
    refused = runner.invoke(cli, ["webhook", "add", "--url", DEAD_PORT_URL], env=limited)
    _error(refused, "PUSHGATE_WEBHOOK_ALLOWED_HOSTS")
    accepted = runner.invoke(
        cli, ["webhook", "add", "--url", "https://hooks.example/in", "--json"], env=limited
    )
    assert accepted.exit_code == 0, accepted.output
    bad = runner.invoke(
        cli, ["webhook", "list"], env={**env, "PUSHGATE_WEBHOOK_ALLOWED_HOSTS": "http://x"}
    )
    _error(bad, "PUSHGATE_WEBHOOK_ALLOWED_HOSTS")
