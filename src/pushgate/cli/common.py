"""Helpers shared by the CLI commands: settings from the context, running a use case, output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import segno

from pushgate.errors import PushgateError
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services, migrate_database

T = TypeVar("T")


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.ensure_object(dict)["settings"]
    return settings


def run_with_services(ctx: click.Context, use: Callable[[Services], Awaitable[T]]) -> T:
    """Migrate, build the services, run one use case, close everything."""
    settings = settings_of(ctx)

    async def go() -> T:
        await migrate_database(settings)
        services = build_services(settings)
        try:
            return await use(services)
        finally:
            await services.store.aclose()

    try:
        return asyncio.run(go())
    except PushgateError as exc:
        raise click.ClickException(exc.message) from exc


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
realm_option = click.option("--realm", default="/", show_default=True, help="Realm name.")


def print_qr(uri: str) -> None:
    segno.make(uri, error="l").terminal(out=sys.stdout, compact=True)


def serve_http(settings: Settings, host: str, port: int, workers: int, access_log: bool) -> None:
    import uvicorn  # imported late: the other commands do not need it

    uvicorn.run(
        "pushgate.wiring:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_config=None,
        server_header=False,
    )
