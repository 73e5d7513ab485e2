"""A new user's first hour (issue 6, "First run without rough edges"): every defect found by
trying pushgate as a newcomer has a test here that failed before its fix. Each command runs
in this process through click's runner, on a real database."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pushgate.cli.common import EdgeGroup
from pushgate.cli.main import cli
from pushgate.errors import SecretKeyMismatch
from pushgate.settings import Settings
from pushgate.wiring import open_store
from tests.cli.conftest import assert_one_error_line, count_rows

Invoke = Callable[..., Result]

UNUSABLE_DATABASES = [
    pytest.param("postgresql://nobody@127.0.0.1:1/x", "cannot open the database", id="pg-down"),
    pytest.param(
        "sqlite:////nonexistent/dir/x.db", "/nonexistent/dir", id="sqlite-missing-directory"
    ),
    pytest.param("mysql://root@127.0.0.1/x", "PUSHGATE_DATABASE_URL must be", id="mysql"),
]
# Every command that opens the database; the server commands on any free port.
COMMANDS = [
    pytest.param(("migrate",), id="migrate"),
    pytest.param(("serve", "--port", "0"), id="serve"),
    pytest.param(("serve", "--port", "0", "--workers", "2"), id="serve-workers"),
    pytest.param(("demo", "--port", "0"), id="demo"),
    pytest.param(("worker",), id="worker"),
    pytest.param(("user", "create", "bob"), id="user-create"),
    pytest.param(("realm", "create", "alpha"), id="realm-create"),
    pytest.param(("apikey", "create"), id="apikey-create"),
    pytest.param(("register", "bob"), id="register"),
]


def _runner(env: dict[str, str]) -> Invoke:
    runner = CliRunner()
    base = {"PUSHGATE_CONFIG": "", "PUSHGATE_SECRET_KEY": "", "PUSHGATE_SECRET_KEY_FILE": ""}

    def invoke(*args: str, **extra: str) -> Result:
        return runner.invoke(cli, list(args), env={**base, **env, **extra}, catch_exceptions=False)

    return invoke


@pytest.fixture
def run(fresh_database_url: str, tmp_path: Path) -> Invoke:
    # XDG_CONFIG_HOME: where the PostgreSQL default key file goes, inside the test's directory.
    return _runner(
        {"PUSHGATE_DATABASE_URL": fresh_database_url, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    )


@pytest.fixture
def sqlite_run(tmp_path: Path) -> Invoke:
    (tmp_path / "data").mkdir()
    return _runner({"PUSHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'pushgate.db'}"})


def _key_file(database_url: str, tmp_path: Path) -> Path:
    if database_url.startswith("sqlite"):
        return tmp_path / "data" / "pushgate.key"
    return tmp_path / "xdg" / "pushgate" / "secret.key"


def _key_opens_the_database(database_url: str, key: str) -> bool:
    async def check() -> bool:
        store = open_store(Settings(database_url=database_url, secret_key=key))
        try:
            await store.check_secret_key()
            return True
        except SecretKeyMismatch:
            return False
        finally:
            await store.aclose()

    return asyncio.run(check())


# Before: 140-200 line tracebacks for a wrong or unreachable PUSHGATE_DATABASE_URL.
@pytest.mark.parametrize(("url", "says"), UNUSABLE_DATABASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unusable_database_is_one_line(
    command: tuple[str, ...], url: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _runner({"PUSHGATE_DATABASE_URL": url})(*command)
    assert_one_error_line(result, says)
    assert list(tmp_path.iterdir()) == []  # and nothing was made: no key file


def test_a_file_that_is_no_database_is_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"not a database, just some notes\n" * 200)
    result = _runner({"PUSHGATE_DATABASE_URL": f"sqlite:///{garbage}"})("user", "create", "bob")
    assert_one_error_line(result, "cannot open the database", str(garbage))
    assert not (tmp_path / "notes.key").exists()


# Before: PUSHGATE_LOG_LEVEL=verbose was a ValueError traceback from every server process.
@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_log_level_is_one_line(command: tuple[str, ...], sqlite_run: Invoke) -> None:
    result = sqlite_run(*command, PUSHGATE_LOG_LEVEL="verbose")
    assert_one_error_line(result, "PUSHGATE_LOG_LEVEL must be one of DEBUG, INFO", "'verbose'")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PUSHGATE_MAX_BODY_BYTES", "lots", "must be a whole number above 0; got 'lots'"),
        ("PUSHGATE_DB_POOL_SIZE", "0", "must be a whole number above 0; got '0'"),
        ("PUSHGATE_LOG_FORMAT", "xml", "must be one of auto, json or text; got 'xml'"),
        ("PUSHGATE_PUBLIC_URL", "localhost:8080", "http:// or https:// URL"),
        ("PUSHGATE_SECRET_KEY", "hunter2", "32 bytes in standard Base64"),
    ],
)
def test_a_bad_value_is_one_line(
    variable: str, value: str, says: str, sqlite_run: Invoke, tmp_path: Path
) -> None:
    result = sqlite_run("serve", "--port", "0", **{variable: value})
    line = assert_one_error_line(result, variable, says)
    assert "hunter2" not in line  # a secret is never echoed
    assert list((tmp_path / "data").iterdir()) == []


# Before: a typo in a --config file was silently ignored.
@pytest.mark.parametrize("command", [("migrate",), ("serve", "--port", "0"), ("demo",)])
def test_a_typo_in_the_config_file_is_named(
    command: tuple[str, ...], sqlite_run: Invoke, tmp_path: Path
) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text("# settings\nPUSHGATE_ISSUER=Acme\nPUSHGATE_MAX_BODY_BYTE=2000\n")
    result = sqlite_run("--config", str(config), *command)
    assert_one_error_line(
        result,
        f"{config}:3: PUSHGATE_MAX_BODY_BYTE is not a setting",
        "did you mean PUSHGATE_MAX_BODY_BYTES?",
    )


def test_a_bad_value_in_the_config_file_names_its_line(sqlite_run: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text("PUSHGATE_ISSUER=Acme\nPUSHGATE_MAX_WAIT_SECONDS=soon\n")
    result = sqlite_run("--config", str(config), "migrate")
    assert_one_error_line(result, f"PUSHGATE_MAX_WAIT_SECONDS ({config}:2) must be")


def test_a_config_file_line_that_is_not_key_value(sqlite_run: Invoke, tmp_path: Path) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text("PUSHGATE_ISSUER Acme\n")
    assert_one_error_line(
        sqlite_run("--config", str(config), "migrate"), f"{config}:1: expected KEY=VALUE"
    )


def test_a_missing_config_file(sqlite_run: Invoke, tmp_path: Path) -> None:
    result = sqlite_run("--config", str(tmp_path / "nowhere.env"), "migrate")
    assert_one_error_line(result, "cannot read the settings file", "nowhere.env")


# Before: `pushgate demo` on a busy port printed a fresh API key and QR code, then died with
# "address already in use", and the key stayed valid.
def test_demo_on_a_busy_port_mints_nothing(
    run: Invoke, fresh_database_url: str, busy_port: int
) -> None:
    assert run("migrate").exit_code == 0
    keys = count_rows(fresh_database_url, "api_keys")
    registrations = count_rows(fresh_database_url, "registrations")
    environ = dict(os.environ)

    result = run("demo", "--port", str(busy_port))

    assert_one_error_line(result, f"cannot listen on 127.0.0.1:{busy_port}")
    assert "pgk_" not in result.output
    assert count_rows(fresh_database_url, "api_keys") == keys
    assert count_rows(fresh_database_url, "registrations") == registrations
    assert dict(os.environ) == environ


def test_serve_on_a_busy_port_is_one_line(sqlite_run: Invoke, busy_port: int) -> None:
    result = sqlite_run("serve", "--port", str(busy_port), "--workers", "2")
    assert_one_error_line(result, f"cannot listen on 127.0.0.1:{busy_port}", "--port")


# Before: a CLI run from another directory made a new `pushgate.key` there, sealed the
# registration with it, and the device then got a 500.
def test_every_directory_finds_the_key_of_the_database(
    run: Invoke, fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert run("user", "create", "bob").exit_code == 0
    monkeypatch.chdir(second)
    started = run("register", "bob", "--json")
    assert started.exit_code == 0, started.output

    key_file = _key_file(fresh_database_url, tmp_path)
    assert key_file.exists()
    assert list(first.iterdir()) == list(second.iterdir()) == []
    # The registration was sealed with that key: it opens with it, and with no other.
    key = key_file.read_text().strip()
    assert _key_opens_the_database(fresh_database_url, key)
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    assert not _key_opens_the_database(fresh_database_url, other)


def test_a_lost_key_file_is_not_replaced(
    run: Invoke, fresh_database_url: str, tmp_path: Path
) -> None:
    assert run("user", "create", "bob").exit_code == 0
    assert run("register", "bob").exit_code == 0
    key_file = _key_file(fresh_database_url, tmp_path)
    key_file.unlink()

    for command in (("register", "bob"), ("serve", "--port", "0"), ("user", "create", "eve")):
        result = run(*command)
        assert_one_error_line(result, f"the secret key file {key_file} is missing")
        assert not key_file.exists()


@pytest.mark.parametrize(
    "command",
    [("register", "bob"), ("serve", "--port", "0"), ("worker",), ("demo", "--port", "0")],
    ids=["register", "serve", "worker", "demo"],
)
def test_a_wrong_key_is_named_at_start_up(
    command: tuple[str, ...], run: Invoke, fresh_database_url: str, tmp_path: Path
) -> None:
    assert run("user", "create", "bob").exit_code == 0
    assert run("register", "bob").exit_code == 0
    keys = count_rows(fresh_database_url, "api_keys")
    other = base64.b64encode(secrets.token_bytes(32)).decode()

    by_variable = run(*command, PUSHGATE_SECRET_KEY=other)
    assert_one_error_line(by_variable, "PUSHGATE_SECRET_KEY does not open the device secrets")

    key_file = _key_file(fresh_database_url, tmp_path)
    key_file.write_text(other + "\n")
    by_file = run(*command)
    assert_one_error_line(by_file, f"the key file {key_file}", "does not open")
    assert count_rows(fresh_database_url, "api_keys") == keys  # demo minted nothing


# Before: the CLI wrote PUSHGATE_CONFIG (and demo PUSHGATE_PUBLIC_URL) into os.environ so that
# uvicorn's workers would read them again.
def test_the_cli_never_writes_the_environment(
    sqlite_run: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUSHGATE_CONFIG", raising=False)
    config = tmp_path / "pushgate.env"
    config.write_text("PUSHGATE_ISSUER=Acme\nPUSHGATE_PUBLIC_URL=https://auth.example\n")
    runner = CliRunner()
    env = {"PUSHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'pushgate.db'}"}
    before = dict(os.environ)
    for args in (["migrate"], ["user", "create", "bob"], ["register", "bob", "--json"]):
        result = runner.invoke(cli, ["--config", str(config), *args], env=env)
        assert result.exit_code == 0, result.output
        assert dict(os.environ) == before
    assert "pushauth://push/Acme:bob?" in result.output  # the file's issuer was used


def test_help_needs_no_valid_settings(sqlite_run: Invoke) -> None:
    result = sqlite_run("serve", "--help", PUSHGATE_LOG_LEVEL="verbose")
    assert result.exit_code == 0
    assert "--workers" in result.output


def test_a_misspelt_variable_is_pointed_out(sqlite_run: Invoke) -> None:
    result = sqlite_run("migrate", PUSHGATE_ISUER="Acme")
    assert result.exit_code == 0, result.output
    assert "PUSHGATE_ISUER is not a setting; did you mean PUSHGATE_ISSUER?" in result.stderr


def test_an_unexpected_error_is_one_line_with_a_hint() -> None:
    # A command of the test's own under the CLI's edge: whatever escapes, the user gets one
    # line and how to learn more.
    @click.group(cls=EdgeGroup)
    def group() -> None:
        pass

    @group.command()
    def broken() -> None:
        raise RuntimeError("the disk is on fire\nsecond line\nthird line")

    result = CliRunner().invoke(group, ["broken"], catch_exceptions=False)
    assert_one_error_line(
        result,
        "unexpected RuntimeError: the disk is on fire",
        "rerun with PUSHGATE_LOG_LEVEL=DEBUG for details",
    )
