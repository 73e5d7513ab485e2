"""`pushgate doctor` and `pushgate --version` (issue 10, "Administration"): one line per check,
`ok` or `FAIL: why`, exit 1 on any failure, `--json`; nothing is changed by looking."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from pushgate.settings import Settings
from pushgate.store import migrate
from pushgate.store.engine import create_engine
from pushgate.wiring import build_services, migrate_database
from tests.support import TEST_SECRET_KEY

OTHER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


def _doctor(url: str, *extra: str, **env: str) -> Result:
    environ = {
        "PUSHGATE_DATABASE_URL": url,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_CONFIG": "",
        **env,
    }
    return CliRunner().invoke(cli, ["doctor", *extra], env=environ, catch_exceptions=False)


def _migrated(tmp_path: Path, *, with_device: bool = False) -> str:
    url = f"sqlite:///{tmp_path / 'pushgate.db'}"
    settings = Settings(database_url=url, secret_key=TEST_SECRET_KEY)

    async def prepare() -> None:
        await migrate_database(settings)
        if with_device:  # a sealed secret: the key can be checked against it
            services = build_services(settings)
            try:
                await services.accounts.create_user("/", "alice", None)
                await services.devices.start_registration("/", "alice")
            finally:
                await services.store.aclose()

    asyncio.run(prepare())
    return url


def _lines(result: Result) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())


def test_a_good_configuration_passes_every_check(fresh_database_url: str) -> None:
    asyncio.run(migrate_database(Settings(database_url=fresh_database_url)))
    result = _doctor(fresh_database_url)
    assert result.exit_code == 0, result.output
    found = _lines(result)
    assert list(found) == ["settings", "database", "migrations", "secret key"]
    assert all(value.startswith("ok") for value in found.values()), found
    assert found["migrations"] == f"ok (at {migrate.head_revision()})"


def test_json_output(tmp_path: Path) -> None:
    result = _doctor(_migrated(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == [
        "settings",
        "database",
        "migrations",
        "secret key",
    ]


def test_an_unreachable_database_fails(tmp_path: Path) -> None:
    result = _doctor("postgresql://postgres@127.0.0.1:1/pushgate")
    assert result.exit_code == 1
    found = _lines(result)
    assert found["settings"] == "ok"
    assert found["database"].startswith("FAIL: storage is unavailable: ")
    assert "Traceback" not in result.output
    assert "migrations" not in found  # nothing to compare without a database


def test_an_unmigrated_database_fails_and_is_left_alone(tmp_path: Path) -> None:
    url = _migrated(tmp_path)

    async def step_back() -> str | None:
        engine = create_engine(url)
        try:
            await migrate.downgrade(engine, "-1")
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    behind = asyncio.run(step_back())
    result = _doctor(url)
    assert result.exit_code == 1
    assert _lines(result)["migrations"] == (
        f"FAIL: the database schema is at {behind}, this server needs "
        f"{migrate.head_revision()}: run `pushgate migrate`"
    )

    async def revision() -> str | None:
        engine = create_engine(url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == behind  # the doctor does not migrate


def test_a_key_that_does_not_open_the_sealed_rows_fails(tmp_path: Path) -> None:
    url = _migrated(tmp_path, with_device=True)
    assert _doctor(url).exit_code == 0
    result = _doctor(url, PUSHGATE_SECRET_KEY=OTHER_KEY)
    assert result.exit_code == 1
    assert _lines(result)["secret key"] == (
        "FAIL: PUSHGATE_SECRET_KEY does not open the secrets sealed in the database"
    )


def test_a_missing_key_file_is_fine_only_without_sealed_rows(tmp_path: Path) -> None:
    url = _migrated(tmp_path)
    result = _doctor(url, PUSHGATE_SECRET_KEY="")
    assert result.exit_code == 0, result.output
    assert "is made on first start" in _lines(result)["secret key"]
    assert not (tmp_path / "pushgate.key").exists()  # looking made nothing


def test_bad_transport_credentials_fail_one_line_each(tmp_path: Path) -> None:
    not_json = tmp_path / "fcm.json"
    not_json.write_text("not json")
    p8 = tmp_path / "apns.p8"
    p8.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    result = _doctor(
        _migrated(tmp_path),
        PUSHGATE_FCM_CREDENTIALS_FILE=str(not_json),
        PUSHGATE_APNS_KEY_FILE=str(p8),
        PUSHGATE_APNS_KEY_ID="ABC123DEFG",
        PUSHGATE_APNS_TEAM_ID="DEF123GHIJ",
        PUSHGATE_APNS_TOPIC="com.example.app",
        PUSHGATE_VAPID_SUBJECT="mailto:ops@example.com",
        PUSHGATE_VAPID_PRIVATE_KEY_FILE=str(tmp_path / "vapid.pem"),
    )
    assert result.exit_code == 1
    found = _lines(result)
    assert (
        found["transport fcm"]
        == f"FAIL: PUSHGATE_FCM_CREDENTIALS_FILE {str(not_json)!r} is not JSON"
    )
    assert found["transport apns"].startswith("FAIL: ")
    assert found["transport webpush"].startswith("ok")  # made on first start
    assert found["secret key"].startswith("ok")


def test_invalid_settings_fail_first(tmp_path: Path) -> None:
    result = _doctor(_migrated(tmp_path), PUSHGATE_DB_POOL_SIZE="0")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines() == [
        "settings: FAIL: PUSHGATE_DB_POOL_SIZE must be a whole number above 0; got '0'"
    ]


@pytest.mark.parametrize("where", [["--version"]])
def test_version(where: list[str]) -> None:
    result = CliRunner().invoke(cli, where)
    assert result.exit_code == 0
    assert result.stdout == f"pushgate {version('pushgate')}\n"
