"""`pushgate demo`: the first command of the README. A ready realm, user, key and QR code on the
embedded SQLite database, then the server."""

from __future__ import annotations

import contextlib
import dataclasses
import os

import click

from pushgate.accounts.service import IssuedApiKey
from pushgate.cli.common import print_qr, run_with_services, serve_http, settings_of
from pushgate.devices.service import StartedRegistration
from pushgate.errors import Conflict
from pushgate.services import Services
from pushgate.settings import DEFAULT_PUBLIC_URL

DEMO_USER = "demo"


async def _prepare(services: Services) -> tuple[IssuedApiKey, StartedRegistration]:
    with contextlib.suppress(Conflict):  # a second run reuses the user and its devices
        await services.accounts.create_user("/", DEMO_USER, None)
    key = await services.accounts.create_api_key("/")
    started = await services.devices.start_registration("/", DEMO_USER)
    return key, started


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def demo(ctx: click.Context, host: str, port: int) -> None:
    """Run the server with a demo user, API key and registration QR code."""
    settings = settings_of(ctx)
    if "PUSHGATE_PUBLIC_URL" not in os.environ and settings.public_url == DEFAULT_PUBLIC_URL:
        # QR codes must point at the port the demo really listens on; the server process
        # reads the same variable.
        public = f"http://localhost:{port}"
        os.environ["PUSHGATE_PUBLIC_URL"] = public
        settings = dataclasses.replace(settings, public_url=public)
        ctx.obj["settings"] = settings
    key, started = run_with_services(ctx, _prepare)
    base = settings.public_base
    click.echo(f"pushgate demo on {base}  (database: {settings.database_url})\n")
    click.echo(f"Relying-party API key (realm /): {key.key}\n")
    click.echo(f"Registration QR code for user '{DEMO_USER}':")
    print_qr(started.uri)
    click.echo(started.uri + "\n")
    click.echo("Try it with the simulated authenticator, in a second terminal:")
    click.echo(f"  .venv/bin/pushgate device register '{started.uri}'")
    click.echo(
        f"  curl -s -X POST {base}/v1/push/sessions -H 'X-API-Key: {key.key}' "
        f"-H 'Content-Type: application/json' -d '{{\"user\": \"{DEMO_USER}\"}}'"
    )
    click.echo("  .venv/bin/pushgate device approve")
    click.echo(f"  curl -s {base}/v1/push/sessions/<id> -H 'X-API-Key: {key.key}'\n")
    serve_http(settings, host, port, 1, True)
