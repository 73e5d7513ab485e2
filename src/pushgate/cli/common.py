"""What the CLI commands share: the error edge (one `Error:` line, never a traceback),
settings loaded once per run, and start-up checks done before anything is created."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import segno

from pushgate.errors import ConfigError, PushgateError, SecretKeyMismatch, Unavailable
from pushgate.logs import configure_logging
from pushgate.secret_key import create_key_file, key_file, key_source
from pushgate.services import Services
from pushgate.settings import (
    SECRET_KEY_BYTES,
    Settings,
    load_settings,
    misspelt_variables,
    redact_url,
)
from pushgate.store.engine import is_postgres, sqlite_path

T = TypeVar("T")
log = logging.getLogger("pushgate")
DEBUG_HINT = "rerun with PUSHGATE_LOG_LEVEL=DEBUG for details"


class EdgeGroup(click.Group):
    """The CLI's edge: pushgate's own errors become their one-line message, anything else
    one line and a hint (its traceback is logged at debug level)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except PushgateError as exc:
            raise click.ClickException(exc.message) from None
        except Exception as exc:
            log.debug("unexpected error", exc_info=True)
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {first_line(exc)} ({DEBUG_HINT})"
            ) from None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def settings_of(ctx: click.Context) -> Settings:
    """The run's settings, loaded on first use (so `--help` and `pushgate device` never
    need valid server settings), with logging configured from them."""
    state = ctx.ensure_object(dict)
    if "settings" not in state:
        settings = load_settings(path=state.get("config"))
        configure_logging(settings.log_level, settings.log_format)
        for warning in misspelt_variables():
            log.warning(warning)
        state["settings"] = settings
    settings_: Settings = state["settings"]
    return settings_


def replace_settings(ctx: click.Context, settings: Settings) -> None:
    ctx.ensure_object(dict)["settings"] = settings


async def open_services(settings: Settings) -> Services:
    """Migrate, make sure the secret key is the one the database's secrets were sealed with,
    and build the services: a command that fails here has created nothing."""
    from pushgate.wiring import build_services  # the heavy imports

    await migrate_checked(settings)
    await ensure_key_file(settings)
    services = build_services(settings)
    try:
        await services.store.check_secret_key()
    except SecretKeyMismatch as exc:
        await services.store.aclose()
        raise SecretKeyMismatch(
            f"{key_source(settings)} does not open the device secrets in the database: every "
            "process of one deployment needs the key they were sealed with",
            reason=exc.reason,
        ) from exc
    except BaseException:
        await services.store.aclose()
        raise
    return services


async def migrate_checked(settings: Settings) -> None:
    """Bring the schema up to date; a database that cannot be used is one line naming it."""
    from pushgate.wiring import migrate_database

    _check_sqlite_directory(settings)
    try:
        await migrate_database(settings)
    except Unavailable as exc:
        raise Unavailable(
            f"{exc.message} (PUSHGATE_DATABASE_URL={redact_url(settings.database_url)})",
            reason=exc.reason,
        ) from exc


def _check_sqlite_directory(settings: Settings) -> None:
    # SQLite would only say "unable to open database file"; the likely cause is clearer.
    if is_postgres(settings.database_url):
        return
    database = sqlite_path(settings.database_url)
    if database == ":memory:" or database.startswith("file:"):
        return
    directory = Path(database).absolute().parent
    if not directory.is_dir():
        raise ConfigError(
            f"the directory {directory} of the SQLite database does not exist "
            f"(PUSHGATE_DATABASE_URL={redact_url(settings.database_url)})"
        )


async def ensure_key_file(settings: Settings) -> None:
    """Make the key file if it is missing, but only for a database without sealed secrets:
    a new key could not open them, and would seal new ones that the old key cannot."""
    from pushgate.wiring import open_store

    path = key_file(settings)
    if path is None or path.exists():
        return
    throwaway = base64.b64encode(secrets.token_bytes(SECRET_KEY_BYTES)).decode()
    probe = open_store(settings.model_copy(update={"secret_key": throwaway}))
    try:
        await probe.check_secret_key()
    except SecretKeyMismatch:
        raise ConfigError(
            f"the secret key file {path} is missing, but the database holds device secrets "
            "sealed with a key: restore that file, or point PUSHGATE_SECRET_KEY_FILE or "
            "PUSHGATE_SECRET_KEY at the key (a new key could not open them)"
        ) from None
    finally:
        await probe.aclose()
    create_key_file(path, make_parent=not settings.secret_key_file)


def run_with_services(settings: Settings, use: Callable[[Services], Awaitable[T]]) -> T:
    """Start-up checks, one use case, everything closed."""

    async def go() -> T:
        services = await open_services(settings)
        try:
            return await use(services)
        finally:
            await services.store.aclose()

    return asyncio.run(go())


def check_database(settings: Settings) -> None:
    """The start-up checks alone, for commands that then hand over to other processes."""

    async def go() -> None:
        services = await open_services(settings)
        await services.store.aclose()

    asyncio.run(go())


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(dict)["config"] = value  # the group's dict: settings_of reads it


CONFIG_HELP = "A KEY=VALUE settings file; PUSHGATE_* variables override it."
# Accepted before the command (`pushgate --config F serve`) and after it (`pushgate serve
# --config F`), as people type it.
config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    expose_value=False,
    callback=_remember_config,
    help=CONFIG_HELP,
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
realm_option = click.option("--realm", default="/", show_default=True, help="Realm name.")


def print_qr(uri: str) -> None:
    segno.make(uri, error="l").terminal(out=sys.stdout, compact=True)
