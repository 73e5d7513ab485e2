"""The administration commands end to end on a SQLite file, through click's runner: every
command answers `--json`, refusals are one `Error:` line and change nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from pushgate.api.app import create_app
from pushgate.cli.main import cli
from pushgate.protocol import qr
from pushgate.settings import Settings
from pushgate.simulator import new_device, new_mechanism_uid, registration_body
from pushgate.wiring import build_services
from tests.cli.conftest import assert_one_error_line

Invoke = Callable[..., Result]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def run(tmp_path: Path, database: Path) -> Invoke:
    env = {
        "PUSHGATE_DATABASE_URL": f"sqlite:///{database}",
        "PUSHGATE_PUBLIC_URL": "https://auth.example.com",
        "PUSHGATE_SECRET_KEY_FILE": str(tmp_path / "pushgate.key"),
        "PUSHGATE_CONFIG": "",
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def ok(run: Invoke, *args: str) -> Any:
    """Run with --json; the parsed answer."""
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def audit(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as conn:
        found = conn.execute("SELECT event, actor FROM audit ORDER BY id").fetchall()
    return [(event, actor) for event, actor in found]


def snapshot(database: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(database) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def test_realms_list_show_and_remove(run: Invoke, database: Path) -> None:
    ok(run, "realm", "create", "alpha")
    listed = ok(run, "realm", "list")
    assert [r["realm"] for r in listed["realms"]] == ["/", "/alpha"]
    shown = ok(run, "realm", "show", "alpha")
    assert shown["contents"] == {"users": 0, "apiKeys": 0, "webhooks": 0, "journeys": 0}
    assert shown["settings"]["defaultPushType"] == "default"

    assert ok(run, "realm", "remove", "alpha") == {"realm": "/alpha", "removed": True}
    assert [r["realm"] for r in ok(run, "realm", "list")["realms"]] == ["/"]
    assert ("realm.removed", "cli") in audit(database)
    text = run("realm", "list")
    assert text.exit_code == 0 and text.stdout.startswith("/  created ")


def test_a_realm_that_is_not_empty_or_the_root_is_not_removed(run: Invoke, database: Path) -> None:
    ok(run, "realm", "create", "alpha")
    ok(run, "user", "create", "bob", "--realm", "alpha")
    ok(run, "apikey", "create", "--realm", "alpha")
    before = snapshot(database)
    assert_one_error_line(run("realm", "remove", "alpha"), "not empty", "1 users", "1 API keys")
    assert_one_error_line(run("realm", "remove", "/"), "root realm")
    assert_one_error_line(run("realm", "remove", "root"), "root realm")
    assert_one_error_line(run("realm", "remove", "nowhere"), "/nowhere does not exist")
    assert_one_error_line(run("realm", "show", "nowhere"), "/nowhere does not exist")
    assert snapshot(database) == before


def test_users_list_show_lock_unlock_and_remove(run: Invoke, database: Path) -> None:
    for name in ("carol", "alice", "bob"):
        ok(run, "user", "create", name)
    assert [u["username"] for u in ok(run, "user", "list")["users"]] == ["alice", "bob", "carol"]
    paged = ok(run, "user", "list", "--after", "alice", "--limit", "1")
    assert [u["username"] for u in paged["users"]] == ["bob"]

    shown = ok(run, "user", "show", "alice")
    assert shown["locked"] is False and shown["devices"] == 0 and shown["optOuts"] == []
    assert ok(run, "user", "lock", "alice")["locked"] is True
    assert ok(run, "user", "show", "alice")["locked"] is True
    assert ok(run, "user", "unlock", "alice")["locked"] is False
    assert ok(run, "user", "reset-opt-outs", "alice")["cleared"] == 0

    assert ok(run, "user", "remove", "alice")["removed"] is True
    assert [u["username"] for u in ok(run, "user", "list")["users"]] == ["bob", "carol"]
    events = audit(database)
    for event in ("user.locked", "user.unlocked", "user.opt_outs_reset", "user.removed"):
        assert (event, "cli") in events


def test_unknown_users_and_devices_are_one_line(run: Invoke, database: Path) -> None:
    ok(run, "user", "create", "alice")
    before = snapshot(database)
    for args in (
        ("user", "show", "nobody"),
        ("user", "lock", "nobody"),
        ("user", "remove", "nobody"),
        ("user", "reset-opt-outs", "nobody"),
        ("user", "device", "list", "nobody"),
        ("user", "device", "remove", "alice", "no-such-device"),
        ("user", "device", "block", "alice", "no-such-device"),
        ("user", "device", "rename", "alice", "no-such-device", "Phone"),
    ):
        assert_one_error_line(run(*args), "no ")
    assert_one_error_line(run("user", "list", "--realm", "nowhere"), "does not exist")
    assert_one_error_line(run("user", "device", "rename", "alice", "x", "\tbad"), "device name")
    assert_one_error_line(run("user", "show", "bad:name"), "username")
    assert snapshot(database) == before


def test_api_keys_have_labels_and_can_be_revoked(run: Invoke, database: Path) -> None:
    created = ok(run, "apikey", "create", "--label", "shop backend")
    assert created["label"] == "shop backend"
    [listed] = ok(run, "apikey", "list")["apiKeys"]
    assert listed["id"] == created["id"]
    assert listed["label"] == "shop backend"
    assert listed["lastUsedAt"] is None and listed["revokedAt"] is None
    assert "apiKey" not in listed and "keyHash" not in listed

    revoked = ok(run, "apikey", "revoke", created["id"])
    assert revoked["revokedAt"] is not None
    assert ok(run, "apikey", "revoke", created["id"])["revokedAt"] == revoked["revokedAt"]
    assert [e for e in audit(database) if e[0] == "apikey.revoked"] == [("apikey.revoked", "cli")]
    assert_one_error_line(run("apikey", "revoke", "nope"), "no API key")
    assert_one_error_line(run("apikey", "create", "--label", " x"), "label")


def test_admin_keys_with_scopes(run: Invoke, database: Path) -> None:
    created = ok(run, "admin-key", "create", "--scope", "users:read,devices:read", "--label", "ops")
    assert created["adminKey"].startswith("pga_")
    assert created["scopes"] == ["users:read", "devices:read"]
    everything = ok(run, "admin-key", "create", "--scope", "all")
    assert "audit:read" in everything["scopes"] and "realms:write" in everything["scopes"]
    listed = ok(run, "admin-key", "list")["adminKeys"]
    assert [k["id"] for k in listed] == [created["id"], everything["id"]]
    assert all("adminKey" not in k for k in listed)
    assert ok(run, "admin-key", "revoke", created["id"])["revokedAt"] is not None
    before = snapshot(database)
    assert_one_error_line(run("admin-key", "create", "--scope", "root"), "unknown scope 'root'")
    assert_one_error_line(run("admin-key", "revoke", "nope"), "no admin key")
    assert snapshot(database) == before
    events = audit(database)
    assert ("adminkey.created", "cli") in events and ("adminkey.revoked", "cli") in events


def test_migrate_answers_json(run: Invoke) -> None:
    assert ok(run, "migrate")["upToDate"] is True


def _register_phone(database: Path, tmp_path: Path, username: str) -> str:
    """A phone registered for `username` through the device endpoint, as the app does it;
    the mechanismUid."""

    async def go() -> str:
        settings = Settings(
            database_url=f"sqlite:///{database}",
            public_url="http://testserver",
            secret_key_file=str(tmp_path / "pushgate.key"),
            vapid_private_key_file=str(tmp_path / "vapid.pem"),
        )
        services = build_services(settings)
        try:
            started = await services.devices.start_registration("/", username)
            uri = qr.parse(started.uri)
            uid = new_mechanism_uid()
            body = registration_body(uri, uid, new_device())
            app = create_app(services, close_store=False)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http:
                response = await http.post(uri.register_url, json=body)
            assert response.status_code == 200, response.text
            return uid
        finally:
            await services.store.aclose()

    return asyncio.run(go())


def test_a_users_devices(run: Invoke, database: Path, tmp_path: Path) -> None:
    ok(run, "user", "create", "alice")
    uid = _register_phone(database, tmp_path, "alice")
    [device] = ok(run, "user", "device", "list", "alice")["devices"]
    assert device["mechanismUid"] == uid and device["status"] == "active"
    device_id = device["id"]

    assert ok(run, "user", "device", "rename", "alice", device_id, "Work phone")["name"] == (
        "Work phone"
    )
    assert ok(run, "user", "device", "block", "alice", device_id)["status"] == "blocked"
    assert ok(run, "user", "device", "unblock", "alice", device_id)["status"] == "active"
    assert ok(run, "user", "show", "alice")["devices"] == 1
    text = run("user", "device", "list", "alice")
    assert text.exit_code == 0 and "Work phone  active" in text.stdout
    assert ok(run, "user", "device", "remove", "alice", device_id)["status"] == "removed"
    assert ok(run, "user", "device", "list", "alice")["devices"] == []
    assert_one_error_line(run("user", "device", "remove", "alice", device_id), "no device")
    assert_one_error_line(run("user", "device", "block", "bob", device_id), "no ")
    events = audit(database)
    for event in ("device.renamed", "device.blocked", "device.unblocked", "device.removed"):
        assert (event, "cli") in events
