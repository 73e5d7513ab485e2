"""Where the sealing key is found: from the database's location, never from the working
directory (issue 6: a CLI run from elsewhere used to mint a key no device secret opened)."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest

from pushgate.errors import ConfigError
from pushgate.secret_key import key_file, key_source, load_secret_key
from pushgate.settings import Settings, load_settings
from tests.support import TEST_SECRET_KEY


def test_beside_a_sqlite_database_whatever_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data' / 'pushgate.db'}")
    monkeypatch.chdir(tmp_path)
    assert key_file(settings) == tmp_path / "data" / "pushgate.key"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert key_file(settings) == tmp_path / "data" / "pushgate.key"


def test_a_relative_sqlite_database_gives_an_absolute_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert key_file(Settings()) == tmp_path / "pushgate.key"  # the default: pushgate.db
    assert key_file(Settings(database_url="sqlite:///var/x.sqlite3")) == tmp_path / "var/x.key"
    assert key_file(Settings(database_url="sqlite:///keys.key")) == tmp_path / "keys.key.key"


def test_postgres_uses_the_user_config_directory(tmp_path: Path) -> None:
    environ = {"PUSHGATE_DATABASE_URL": "postgresql://app@db/pushgate"}
    found = key_file(load_settings({**environ, "XDG_CONFIG_HOME": str(tmp_path)}))
    assert found == tmp_path / "pushgate" / "secret.key"
    fallback = key_file(load_settings(environ))
    assert fallback == Path.home() / ".config" / "pushgate" / "secret.key"


def test_worker_processes_get_the_directory_with_the_settings(tmp_path: Path) -> None:
    environ = {"PUSHGATE_DATABASE_URL": "postgresql://app@db/x", "XDG_CONFIG_HOME": str(tmp_path)}
    settings = pickle.loads(pickle.dumps(load_settings(environ)))
    assert key_file(settings) == tmp_path / "pushgate" / "secret.key"
    assert key_file(settings.model_copy(update={"db_pool_size": 2})) == key_file(settings)


def test_an_explicit_file_stays_relative_to_the_working_directory() -> None:
    settings = Settings(database_url="sqlite:////srv/pushgate.db", secret_key_file="keys/k")
    assert key_file(settings) == Path("keys/k")


def test_no_file_for_a_key_in_the_environment_or_a_database_in_memory() -> None:
    assert key_file(Settings(secret_key=TEST_SECRET_KEY)) is None
    memory = Settings(database_url="sqlite://")
    assert key_file(memory) is None
    assert len(load_secret_key(memory)) == 32  # a key for this process only


def test_the_source_is_named_for_messages(tmp_path: Path) -> None:
    database = tmp_path / "pushgate.db"
    assert key_source(Settings(secret_key=TEST_SECRET_KEY)) == "PUSHGATE_SECRET_KEY"
    beside = key_source(Settings(database_url=f"sqlite:///{database}"))
    assert beside == f"the key file {tmp_path / 'pushgate.key'} (beside the database)"
    explicit = key_source(Settings(secret_key_file=str(tmp_path / "k")))
    assert explicit == f"the key file {tmp_path / 'k'} (PUSHGATE_SECRET_KEY_FILE)"
    postgres = key_source(Settings(database_url="postgresql://app@db/x"))
    assert postgres.endswith("secret.key (the default for PostgreSQL)")


def test_the_default_file_is_made_private_with_its_directory(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PUSHGATE_DATABASE_URL": "postgresql://app@db/x",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )
    key = load_secret_key(settings)
    path = tmp_path / "config" / "pushgate" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_secret_key(settings) == key


def test_a_bad_key_file_is_named_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "pushgate.key"
    path.write_text("hunter2\n")
    with pytest.raises(ConfigError) as caught:
        load_secret_key(Settings(secret_key_file=str(path)))
    assert str(path) in caught.value.message
    assert "hunter2" not in caught.value.message
