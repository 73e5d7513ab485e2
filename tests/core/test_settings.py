"""Settings: one validated, frozen, picklable value; every bad input is one line naming the
variable, what it accepts and what it got (issue 6, "First run without rough edges")."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from pushgate.errors import ConfigError
from pushgate.settings import (
    DEFAULT_DATABASE_URL,
    POSTGRES_SCHEMES,
    SECRET_KEY_BYTES,
    SQLITE_SCHEMES,
    Settings,
    load_settings,
    misspelt_variables,
    redact_url,
)
from pushgate.store.engine import async_url
from pushgate.store.sealing import KEY_BYTES
from tests.support import TEST_SECRET_KEY


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.public_url == "http://localhost:8080"
    assert settings.secret_key_file == ""  # found from the database (secret_key.py)


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text(
        "# comment\nPUSHGATE_PUBLIC_URL=https://file.example\nPUSHGATE_ISSUER='Acme'\n"
        'export PUSHGATE_LB_COOKIE="lb=2"\n'
    )
    settings = load_settings(
        {"PUSHGATE_CONFIG": str(config), "PUSHGATE_PUBLIC_URL": "https://env.example/"}
    )
    assert settings.public_url == "https://env.example/"
    assert settings.public_base == "https://env.example"
    assert settings.issuer == "Acme"
    assert settings.lb_cookie == "lb=2"


def test_values_are_parsed_and_normalised() -> None:
    settings = load_settings(
        {
            "PUSHGATE_MAX_BODY_BYTES": "1000",
            "PUSHGATE_EXPIRY_SWEEP_SECONDS": "0.25",
            "PUSHGATE_API_KEY_CACHE_SECONDS": "0",
            "PUSHGATE_LOG_LEVEL": "debug",
            "PUSHGATE_LOG_FORMAT": "JSON",
        }
    )
    assert settings.max_body_bytes == 1000
    assert settings.expiry_sweep_seconds == 0.25
    assert settings.api_key_cache_seconds == 0
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")


def test_only_load_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHGATE_ISSUER", "from-the-environment")
    assert Settings().issuer == "pushgate"
    assert load_settings().issuer == "from-the-environment"
    assert load_settings({}).issuer == "pushgate"


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        (
            {"PUSHGATE_LOG_LEVEL": "verbose"},
            "PUSHGATE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL; "
            "got 'verbose'",
        ),
        (
            {"PUSHGATE_LOG_FORMAT": "xml"},
            "PUSHGATE_LOG_FORMAT must be one of auto, json or text; got 'xml'",
        ),
        (
            {"PUSHGATE_REGISTRATION_TTL_SECONDS": "soon"},
            "PUSHGATE_REGISTRATION_TTL_SECONDS must be a whole number above 0; got 'soon'",
        ),
        (
            {"PUSHGATE_MAX_BODY_BYTES": "0"},
            "PUSHGATE_MAX_BODY_BYTES must be a whole number above 0; got '0'",
        ),
        (
            {"PUSHGATE_DB_POOL_SIZE": "2.5"},
            "PUSHGATE_DB_POOL_SIZE must be a whole number above 0; got '2.5'",
        ),
        (
            {"PUSHGATE_EXPIRY_SWEEP_SECONDS": "inf"},
            "PUSHGATE_EXPIRY_SWEEP_SECONDS must be a number above 0; got 'inf'",
        ),
        (
            {"PUSHGATE_API_KEY_CACHE_SECONDS": "-1"},
            "PUSHGATE_API_KEY_CACHE_SECONDS must be a number, 0 or more; got '-1'",
        ),
        (
            {"PUSHGATE_PUBLIC_URL": "ftp://x"},
            "PUSHGATE_PUBLIC_URL must be an http:// or https:// URL with a host; got 'ftp://x'",
        ),
        (
            {"PUSHGATE_DATABASE_URL": "mysql://root:hunter2@db/x"},
            "PUSHGATE_DATABASE_URL must be sqlite:///PATH or postgresql://USER@HOST/DB; "
            "got 'mysql://root:***@db/x'",
        ),
        (
            {"PUSHGATE_DATABASE_URL": "pushgate.db"},
            "PUSHGATE_DATABASE_URL must be sqlite:///PATH or postgresql://USER@HOST/DB; "
            "got 'pushgate.db'",
        ),
        (
            {"PUSHGATE_SECRET_KEY": "hunter2"},
            "PUSHGATE_SECRET_KEY must be 32 bytes in standard Base64 (make one with "
            "`openssl rand -base64 32`); got something else (not shown)",
        ),
        (
            {"PUSHGATE_DEFAULT_SESSION_TTL_SECONDS": "999999999"},
            "PUSHGATE_DEFAULT_SESSION_TTL_SECONDS (999999999) must not exceed "
            "PUSHGATE_MAX_SESSION_TTL_SECONDS (2592000)",
        ),
        (
            {"PUSHGATE_MAX_BODY_BYTES": "x", "PUSHGATE_MAX_WAIT_SECONDS": "y"},
            "PUSHGATE_MAX_BODY_BYTES must be a whole number above 0; got 'x' "
            "(and 1 more invalid setting)",
        ),
    ],
)
def test_a_bad_value_is_one_line(environ: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.message == line


def test_a_bad_value_in_the_file_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text("PUSHGATE_ISSUER=Acme\n\nPUSHGATE_MAX_WAIT_SECONDS=soon\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({}, config)
    assert caught.value.message == (
        f"PUSHGATE_MAX_WAIT_SECONDS ({config}:3) must be a whole number above 0; got 'soon'"
    )
    # The environment's value replaces the file's, and so does its blame.
    assert load_settings({"PUSHGATE_MAX_WAIT_SECONDS": "5"}, config).max_wait_seconds == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "PUSHGATE_ISUER=Acme\n",
            ":1: PUSHGATE_ISUER is not a setting; did you mean PUSHGATE_ISSUER?",
        ),
        (
            "# db\nDATABASE_URL=sqlite:///x.db\n",
            ":2: DATABASE_URL is not a setting; did you mean PUSHGATE_DATABASE_URL?",
        ),
        (
            "pushgate_log_level=DEBUG\n",
            ":1: pushgate_log_level is not a setting; did you mean PUSHGATE_LOG_LEVEL?",
        ),
        ("COLOR=blue\n", ":1: COLOR is not a setting (docs/CONFIGURATION.md lists them)"),
        ("PUSHGATE_CONFIG=other.env\n", ":1: PUSHGATE_CONFIG is not a setting"),
        ("PUSHGATE_ISSUER Acme\n", ":1: expected KEY=VALUE, got 'PUSHGATE_ISSUER Acme'"),
        ("=Acme\n", ":1: expected KEY=VALUE, got '=Acme'"),
        (
            "PUSHGATE_ISSUER=A\nPUSHGATE_ISSUER=B\n",
            ":2: PUSHGATE_ISSUER is already set on line 1",
        ),
    ],
)
def test_a_file_line_that_is_no_setting_is_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, config)
    assert caught.value.message.startswith(f"{config}{message}")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the settings file .*missing\.env"):
        load_settings({}, tmp_path / "missing.env")


def test_a_misspelt_variable_is_noticed_but_other_tools_are_left_alone() -> None:
    environ = {
        "PUSHGATE_DATABSE_URL": "sqlite:///x.db",
        "PUSHGATE_DEVICE_STATE": "device.json",  # the simulator's own variable
        "PUSHGATE_TEST_POSTGRES_URL": "postgresql://x@y/z",
        "PUSHGATE_CONFIG": "",
    }
    assert misspelt_variables(environ) == [
        "PUSHGATE_DATABSE_URL is not a setting; did you mean PUSHGATE_DATABASE_URL?"
    ]


def test_settings_are_frozen_picklable_and_copied_with_changes() -> None:
    settings = Settings(database_url="sqlite:///x.db", secret_key=TEST_SECRET_KEY)
    assert pickle.loads(pickle.dumps(settings)) == settings
    with pytest.raises(ValidationError):
        settings.issuer = "other"
    copied = settings.model_copy(update={"db_pool_size": 3})
    assert (copied.db_pool_size, copied.database_url) == (3, "sqlite:///x.db")
    assert TEST_SECRET_KEY not in repr(settings)
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_which_settings_were_given_is_known() -> None:
    # `pushgate demo` points QR codes at its own port unless PUBLIC_URL was given.
    assert "public_url" not in load_settings({}).model_fields_set
    given = load_settings({"PUSHGATE_PUBLIC_URL": "http://localhost:8080"})
    assert "public_url" in given.model_fields_set


def test_the_accepted_database_schemes_are_the_engine_s() -> None:
    for scheme in SQLITE_SCHEMES + POSTGRES_SCHEMES:
        assert async_url(f"{scheme}://u@h/x")  # the engine takes every scheme settings allow
        Settings(database_url=f"{scheme}://u@h/x")
    assert SECRET_KEY_BYTES == KEY_BYTES


def test_a_password_never_shows_in_a_database_url() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/pushgate") == (
        "postgresql://app:***@db:5432/pushgate"
    )
    assert redact_url("postgresql://app@db/pushgate") == "postgresql://app@db/pushgate"
    assert redact_url("sqlite:////var/lib/pushgate.db") == "sqlite:////var/lib/pushgate.db"
