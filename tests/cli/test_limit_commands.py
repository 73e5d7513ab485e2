"""`pushgate realm settings` and `pushgate user unlock` (issue 7, anti-fatigue limits) on
SQLite and PostgreSQL: the policy shown and changed, and every refusal one `Error:` line that
leaves the database as it was. Their effect on sessions: tests/cli/test_device_answers.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pushgate.cli.main import cli
from tests.cli.conftest import assert_one_error_line, count_rows
from tests.support import TEST_SECRET_KEY

Invoke = Callable[..., Result]
DEFAULTS = {
    "defaultPushType": "default",
    "maxFailureCount": 5,
    "lockAfterFailures": 5,
    "createsPerMinute": 10,
    "onePendingPerUser": True,
    "sessionRetentionDays": 30,
    "auditRetentionDays": 365,
    "outboxRetentionDays": 7,
}


@pytest.fixture
def run(fresh_database_url: str) -> Invoke:
    env = {
        "PUSHGATE_DATABASE_URL": fresh_database_url,
        "PUSHGATE_PUBLIC_URL": "https://auth.example.com",
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_CONFIG": "",
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def _settings(run: Invoke, realm: str, *options: str) -> dict[str, Any]:
    result = run("realm", "settings", realm, *options, "--json")
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_realm_settings_show_and_change_only_what_is_given(
    run: Invoke, fresh_database_url: str
) -> None:
    assert run("realm", "create", "alpha").exit_code == 0
    assert _settings(run, "alpha") == {"realm": "/alpha", "settings": DEFAULTS}
    assert count_rows(fresh_database_url, "audit") == 1  # showing changes nothing

    changed = _settings(
        run, "/alpha", "--default-push-type", "challenge", "--many-pending-per-user"
    )
    assert changed["settings"] == {
        **DEFAULTS,
        "defaultPushType": "challenge",
        "onePendingPerUser": False,
    }
    again = _settings(run, "alpha", "--max-failure-count", "3", "--creates-per-minute", "60")
    assert again["settings"] == {
        **DEFAULTS,
        "defaultPushType": "challenge",
        "onePendingPerUser": False,
        "maxFailureCount": 3,
        "createsPerMinute": 60,
    }
    back = _settings(run, "alpha", "--one-pending-per-user", "--lock-after-failures", "100")
    assert back["settings"]["onePendingPerUser"] is True
    assert back["settings"]["lockAfterFailures"] == 100
    # Another realm keeps its own.
    assert _settings(run, "/")["settings"] == DEFAULTS


def test_realm_settings_as_text(run: Invoke) -> None:
    result = run("realm", "settings", "root", "--default-push-type", "code")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "settings of realm /:"
    assert lines[1].split()[:4] == ["default", "push", "type", "code"]
    assert any(line.split()[:5] == ["one", "pending", "per", "user", "yes"] for line in lines)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--max-failure-count", "0"), "--max-failure-count must be an integer from 1 to 100"),
        (("--lock-after-failures", "101"), "--lock-after-failures must be an integer from 1"),
        (("--creates-per-minute", "10001"), "--creates-per-minute must be an integer from 1"),
        (("--creates-per-minute", "ten"), "--creates-per-minute must be an integer, not 'ten'"),
        (("--max-failure-count", "٣"), "--max-failure-count must be an integer"),
        (("--default-push-type", "push"), "--default-push-type must be one of default, challenge"),
    ],
)
def test_a_bad_realm_setting_is_one_line_and_writes_nothing(
    run: Invoke, fresh_database_url: str, options: tuple[str, ...], message: str
) -> None:
    assert run("realm", "create", "alpha").exit_code == 0
    assert_one_error_line(run("realm", "settings", "alpha", *options), message)
    assert _settings(run, "alpha")["settings"] == DEFAULTS
    assert count_rows(fresh_database_url, "audit") == 1  # the realm's creation only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("realm", "settings", "nowhere"), "realm /nowhere does not exist"),
        (("realm", "settings", "nowhere", "--max-failure-count", "2"), "does not exist"),
        (("realm", "settings", "bad name"), "invalid realm name"),
        (("user", "unlock", "nobody"), "no user 'nobody' in realm /"),
        (("user", "unlock", "bob", "--realm", "nowhere"), "realm /nowhere does not exist"),
        (("user", "unlock", "a:b"), "a username is 1-256 characters"),
        (("user", "unlock", "\udcff"), "valid Unicode"),
    ],
)
def test_unknown_realms_and_users_are_one_line_and_exit_1(
    run: Invoke, args: tuple[str, ...], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert_one_error_line(result, message)


def test_unlock_names_the_user_and_audits_it(run: Invoke, fresh_database_url: str) -> None:
    assert run("user", "create", "bob").exit_code == 0
    result = run("user", "unlock", "bob")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "unlocked user bob in realm /; its failure count is 0"
    assert count_rows(fresh_database_url, "audit") == 2  # created, unlocked
