"""`pushgate demo`: the first command of the README. A ready realm, user, key and QR code on the
embedded SQLite database, then the server.

The port is bound and the database checked before the API key and the registration are made:
a demo that cannot run leaves no live key behind.
"""

from __future__ import annotations

import contextlib

import click

from pushgate.accounts.service import IssuedApiKey
from pushgate.cli.common import (
    config_option,
    print_qr,
    replace_settings,
    run_with_services,
    settings_of,
)
from pushgate.cli.serving import bind, serve_http
from pushgate.devices.service import StartedRegistration
from pushgate.errors import Conflict
from pushgate.services import Services
from pushgate.settings import redact_url

DEMO_USER = "demo"
DEMO_KEY_LABEL = "demo"


async def _prepare(services: Services) -> tuple[IssuedApiKey, StartedRegistration]:
    with contextlib.suppress(Conflict):  # a second run reuses the user and its devices
        await services.accounts.create_user("/", DEMO_USER, None)
    # One live demo key at a time: the key of an earlier run is revoked, not left behind.
    for old in await services.admin.list_api_keys("/"):
        if old.label == DEMO_KEY_LABEL and old.revoked_ms is None:
            await services.admin.revoke_api_key(old.id, actor="demo")
    key = await services.accounts.create_api_key("/", label=DEMO_KEY_LABEL, actor="demo")
    started = await services.devices.start_registration("/", DEMO_USER)
    return key, started


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@config_option
@click.pass_context
def demo(ctx: click.Context, host: str, port: int) -> None:
    """Run the server with a demo user, API key and registration QR code."""
    settings = settings_of(ctx)
    sock = bind(host, port)
    try:
        if "public_url" not in settings.model_fields_set:
            # QR codes must point at the port the demo really listens on (port 0 picks one).
            public = f"http://localhost:{sock.getsockname()[1]}"
            settings = settings.model_copy(update={"public_url": public})
            replace_settings(ctx, settings)
        key, started = run_with_services(settings, _prepare)
        _explain(settings.public_base, settings.database_url, key.key, started.uri)
        serve_http(settings, sock, 1, True)
    finally:
        sock.close()


def _explain(base: str, database_url: str, key: str, uri: str) -> None:
    click.echo(f"pushgate demo on {base}  (database: {redact_url(database_url)})\n")
    click.echo(f"Relying-party API key (realm /): {key}\n")
    click.echo(f"Registration QR code for user '{DEMO_USER}':")
    print_qr(uri)
    click.echo(uri + "\n")
    click.echo("Try it with the simulated authenticator, in a second terminal:")
    click.echo(f"  .venv/bin/pushgate device register '{uri}'")
    click.echo(
        f"  curl -s -X POST {base}/v1/push/sessions -H 'X-API-Key: {key}' "
        f"-H 'Content-Type: application/json' -d '{{\"user\": \"{DEMO_USER}\"}}'"
    )
    click.echo("  .venv/bin/pushgate device approve")
    click.echo(f"  curl -s {base}/v1/push/sessions/<id> -H 'X-API-Key: {key}'\n")
