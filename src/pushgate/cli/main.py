"""`pushgate`: administer realms, users, keys and registrations; run the server, the background
worker and the demo. Every failure is one `Error:` line (cli/common.py `EdgeGroup`)."""

from __future__ import annotations

import asyncio

import click

from pushgate.cli.admin_commands import register_admin_commands
from pushgate.cli.audit import audit_group
from pushgate.cli.common import (
    CONFIG_HELP,
    EdgeGroup,
    check_database,
    config_option,
    emit,
    json_option,
    migrate_checked,
    print_qr,
    realm_option,
    run_with_services,
    settings_of,
)
from pushgate.cli.demo import demo
from pushgate.cli.device import device_group
from pushgate.cli.journey import journey_group, user_passwd
from pushgate.cli.keys import keys_group
from pushgate.cli.limits import realm_settings, user_unlock
from pushgate.cli.ops import action, doctor, version_option
from pushgate.cli.retention import purge
from pushgate.cli.serving import bind, metrics_directory, run_worker, serve_http
from pushgate.cli.webhook import webhook_group
from pushgate.settings import redact_url


@click.group(cls=EdgeGroup)
@version_option
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="PUSHGATE_CONFIG",
    help=CONFIG_HELP,
)
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """pushgate: push authentication, compatible with the ForgeRock authenticator."""
    # Loaded by the first command that needs them (settings_of), and passed on explicitly.
    ctx.ensure_object(dict)["config"] = config or None


@cli.command()
@json_option
@config_option
@click.pass_context
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Bring the database schema up to date."""
    settings = settings_of(ctx)
    asyncio.run(migrate_checked(settings))
    database = redact_url(settings.database_url)
    emit(as_json, {"database": database, "upToDate": True}, f"database {database} is up to date")


@cli.group()
def realm() -> None:
    """Manage realms."""


@realm.command("create")
@click.argument("name")
@json_option
@config_option
@click.pass_context
def realm_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create a realm (the root realm `/` always exists)."""
    created = run_with_services(settings_of(ctx), lambda s: s.accounts.create_realm(name))
    emit(as_json, {"realm": created.name}, f"created realm {created.name}")


@cli.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@realm_option
@click.option("--password", default=None, help="Password for the journey's data store.")
@json_option
@config_option
@click.pass_context
def user_create(
    ctx: click.Context, username: str, realm: str, password: str | None, as_json: bool
) -> None:
    """Create a user in a realm."""
    created = run_with_services(
        settings_of(ctx), lambda s: s.accounts.create_user(realm, username, password)
    )
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
@click.option("--label", default=None, help="A name for the key, shown by `apikey list`.")
@json_option
@config_option
@click.pass_context
def apikey_create(ctx: click.Context, realm: str, label: str | None, as_json: bool) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    issued = run_with_services(
        settings_of(ctx), lambda s: s.accounts.create_api_key(realm, label=label)
    )
    emit(
        as_json,
        {"id": issued.id, "realm": issued.realm, "label": issued.label, "apiKey": issued.key},
        f"API key {issued.id} for realm {issued.realm} (shown once):\n{issued.key}",
    )


@cli.command()
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def register(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Start a device registration and show its pushauth:// QR code."""
    started = run_with_services(
        settings_of(ctx), lambda s: s.devices.start_registration(realm, username)
    )
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
@config_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, access_log: bool) -> None:
    """Migrate the database and run the HTTP server."""
    settings = settings_of(ctx)
    sock = bind(host, port)
    try:
        with metrics_directory(workers):  # before anything imports prometheus-client
            check_database(settings)
            serve_http(settings, sock, workers, access_log)
    finally:
        sock.close()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address of --port.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Serve /healthz, /readyz and /metrics on this port (0: any free one); none by default.",
)
@config_option
@click.pass_context
def worker(ctx: click.Context, host: str, port: int | None) -> None:
    """Migrate the database and run the background work (expiry, outbox, purge) without the API."""
    if port is None and ctx.get_parameter_source("host") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--host needs --port")
    settings = settings_of(ctx)
    sock = None if port is None else bind(host, port)  # a busy port: one line, nothing started
    try:
        with metrics_directory(1):  # one process: counts in memory, whatever the environment
            run_worker(settings, sock)
    finally:
        if sock is not None:
            sock.close()


cli.add_command(demo)
cli.add_command(doctor)
cli.add_command(action)
cli.add_command(audit_group)
cli.add_command(purge)
cli.add_command(keys_group)
cli.add_command(device_group)
cli.add_command(webhook_group)
realm.add_command(realm_settings)
user.add_command(user_unlock)
user.add_command(user_passwd)
register_admin_commands(cli, realm, user, apikey)
cli.add_command(journey_group)


def main() -> None:
    cli(prog_name="pushgate")
