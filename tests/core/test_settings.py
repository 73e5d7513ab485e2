from __future__ import annotations

from pathlib import Path

import pytest

from pushgate.errors import ConfigError
from pushgate.settings import DEFAULT_DATABASE_URL, Settings, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.public_url == "http://localhost:8080"


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "pushgate.env"
    config.write_text(
        "# comment\nPUSHGATE_PUBLIC_URL=https://file.example\nPUSHGATE_ISSUER='Acme'\n"
    )
    settings = load_settings(
        {"PUSHGATE_CONFIG": str(config), "PUSHGATE_PUBLIC_URL": "https://env.example/"}
    )
    assert settings.public_url == "https://env.example/"
    assert settings.public_base == "https://env.example"
    assert settings.issuer == "Acme"


@pytest.mark.parametrize(
    "environ",
    [
        {"PUSHGATE_PUBLIC_URL": "ftp://x"},
        {"PUSHGATE_REGISTRATION_TTL_SECONDS": "soon"},
        {"PUSHGATE_MAX_BODY_BYTES": "0"},
        {"PUSHGATE_LOG_FORMAT": "xml"},
        {"PUSHGATE_DEFAULT_SESSION_TTL_SECONDS": "999999999"},
    ],
)
def test_bad_settings_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(environ)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, tmp_path / "missing.env")
