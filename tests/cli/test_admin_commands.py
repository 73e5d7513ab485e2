"""The admin CLI end to end on a SQLite file, through click's runner."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from pushgate.protocol import qr

Invoke = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path) -> Invoke:
    env = {
        "PUSHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PUSHGATE_PUBLIC_URL": "https://auth.example.com",
        "PUSHGATE_SECRET_KEY_FILE": str(tmp_path / "pushgate.key"),
        "PUSHGATE_CONFIG": "",
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_migrate(run: Invoke) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_realm_user_key_and_registration(run: Invoke) -> None:
    realm = run("realm", "create", "alpha", "--json")
    assert realm.exit_code == 0, realm.output
    assert json.loads(realm.stdout) == {"realm": "/alpha"}

    user = run("user", "create", "bob", "--realm", "alpha", "--password", "pw", "--json")
    assert user.exit_code == 0, user.output
    assert json.loads(user.stdout)["username"] == "bob"

    key = run("apikey", "create", "--realm", "alpha", "--json")
    assert key.exit_code == 0, key.output
    assert json.loads(key.stdout)["apiKey"].startswith("pgk_")

    started = run("register", "bob", "--realm", "alpha", "--json")
    assert started.exit_code == 0, started.output
    uri = qr.parse(json.loads(started.stdout)["uri"])
    assert uri.account == "bob"
    assert uri.register_url == (
        "https://auth.example.com/json/alpha/push/sns/message?_action=register"
    )
    assert len(uri.secret) == 32
    assert len(uri.challenge) == 32


def test_register_prints_a_terminal_qr_code(run: Invoke) -> None:
    run("user", "create", "carol")
    result = run("register", "carol")
    assert result.exit_code == 0, result.output
    assert "pushauth://push/pushgate:carol?" in result.output
    assert "█" in result.output or "▀" in result.output  # the QR code itself


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("realm", "create", "bad name"), "invalid realm name"),
        (("user", "create", "dave", "--realm", "nowhere"), "does not exist"),
        (("apikey", "create", "--realm", "nowhere"), "does not exist"),
        (("register", "nobody"), "does not exist"),
    ],
)
def test_errors_are_clear_and_fail(run: Invoke, args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output


def test_duplicates_are_refused(run: Invoke) -> None:
    assert run("realm", "create", "beta").exit_code == 0
    again = run("realm", "create", "beta")
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert run("user", "create", "erin").exit_code == 0
    assert "already exists" in run("user", "create", "erin").output


def test_bad_settings_are_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["migrate"], env={"PUSHGATE_PUBLIC_URL": "nope", "PUSHGATE_CONFIG": ""}
    )
    assert result.exit_code == 1
    assert "PUSHGATE_PUBLIC_URL" in result.output


def test_bytes_that_are_not_utf8_are_a_clear_error(run: Invoke, tmp_path: Path) -> None:
    """A shell passes such bytes as lone surrogates (`$'\\xff'`); they used to reach SQLite and
    come back as an 'unexpected UnicodeEncodeError'."""
    bad = "\udcff\udcfe"
    for args in (
        ("user", "create", bad),
        ("register", bad),
        ("user", "create", "u", "--password", bad),
    ):
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert "valid Unicode" in result.output, result.output
        assert "unexpected" not in result.output
    assert run("user", "create", "after", "--json").exit_code == 0
    listed = sqlite3.connect(tmp_path / "cli.db").execute("SELECT username FROM users").fetchall()
    assert listed == [("after",)]  # nothing half-written by the refused ones
