"""`pushgate`: administer realms, users, keys and registrations; run the server and the demo."""

from __future__ import annotations

import asyncio
import os

import click

from pushgate.cli.common import (
    emit,
    json_option,
    print_qr,
    realm_option,
    run_with_services,
    serve_http,
    settings_of,
)
from pushgate.cli.demo import demo
from pushgate.cli.device import device_group
from pushgate.errors import PushgateError
from pushgate.settings import load_settings
from pushgate.wiring import migrate_database


@click.group()
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="PUSHGATE_CONFIG",
    help="A KEY=VALUE settings file; PUSHGATE_* variables override it.",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """pushgate: push authentication, compatible with the ForgeRock authenticator."""
    if config:
        os.environ["PUSHGATE_CONFIG"] = config  # uvicorn workers load the same settings
    try:
        ctx.ensure_object(dict)["settings"] = load_settings(path=config)
    except PushgateError as exc:
        raise click.ClickException(exc.message) from exc


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    settings = settings_of(ctx)
    try:
        asyncio.run(migrate_database(settings))
    except PushgateError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo("database is up to date")


@cli.group()
def realm() -> None:
    """Manage realms."""


@realm.command("create")
@click.argument("name")
@json_option
@click.pass_context
def realm_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create a realm (the root realm `/` always exists)."""
    created = run_with_services(ctx, lambda s: s.accounts.create_realm(name))
    emit(as_json, {"realm": created.name}, f"created realm {created.name}")


@cli.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@realm_option
@click.option("--password", default=None, help="Password for the journey's data store.")
@json_option
@click.pass_context
def user_create(
    ctx: click.Context, username: str, realm: str, password: str | None, as_json: bool
) -> None:
    """Create a user in a realm."""
    created = run_with_services(ctx, lambda s: s.accounts.create_user(realm, username, password))
    emit(
        as_json,
        {"id": created.id, "realm": created.realm, "username": created.username},
        f"created user {created.username} in realm {created.realm}",
    )


@cli.group()
def apikey() -> None:
    """Manage relying-party API keys."""


@apikey.command("create")
@realm_option
@json_option
@click.pass_context
def apikey_create(ctx: click.Context, realm: str, as_json: bool) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    issued = run_with_services(ctx, lambda s: s.accounts.create_api_key(realm))
    emit(
        as_json,
        {"id": issued.id, "realm": issued.realm, "apiKey": issued.key},
        f"API key for realm {issued.realm} (shown once):\n{issued.key}",
    )


@cli.command()
@click.argument("username")
@realm_option
@json_option
@click.pass_context
def register(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Start a device registration and show its pushauth:// QR code."""
    started = run_with_services(ctx, lambda s: s.devices.start_registration(realm, username))
    expires = started.registration.expires_ms
    if as_json:
        emit(
            True,
            {
                "uri": started.uri,
                "messageId": started.registration.message_id,
                "expiresAtMs": expires,
            },
            "",
        )
        return
    print_qr(started.uri)
    click.echo(started.uri)
    ttl = settings_of(ctx).registration_ttl_seconds
    click.echo(f"Scan it with the authenticator app within {ttl} seconds.")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, access_log: bool) -> None:
    """Migrate the database and run the HTTP server."""
    settings = settings_of(ctx)
    try:
        asyncio.run(migrate_database(settings))
    except PushgateError as exc:
        raise click.ClickException(exc.message) from exc
    serve_http(settings, host, port, workers, access_log)


cli.add_command(demo)
cli.add_command(device_group)


def main() -> None:
    cli(prog_name="pushgate")
