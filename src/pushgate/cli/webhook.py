"""`pushgate webhook …`: subscriptions of a realm to signed event deliveries, and the
deliveries themselves (docs/WEBHOOKS.md)."""

from __future__ import annotations

import json

import click

from pushgate.cli.common import config_option, emit, json_option, run_with_services, settings_of
from pushgate.outbox.model import OutboxState
from pushgate.sessions.wire import timestamp
from pushgate.webhooks.model import (
    DeliveryView,
    EventType,
    Webhook,
    check_url,
    parse_allowed_hosts,
    parse_events,
)


@click.group("webhook")
def webhook_group() -> None:
    """Send a realm's events to a relying party's URL, signed (Standard Webhooks)."""


def _describe(webhook: Webhook) -> dict[str, object]:
    return {
        "id": webhook.id,
        "realm": webhook.realm,
        "url": webhook.url,
        "events": sorted(webhook.events) if webhook.events is not None else None,
        "createdAt": timestamp(webhook.created_ms),
    }


@webhook_group.command("add")
@click.option("--realm", default="/", show_default=True, help="Realm whose events are sent.")
@click.option("--url", required=True, help="The receiver: an http:// or https:// URL.")
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="TYPE",
    help="An event type to send (repeatable; default: every type): "
    + ", ".join(e.value for e in EventType),
)
@json_option
@config_option
@click.pass_context
def add(ctx: click.Context, realm: str, url: str, events: tuple[str, ...], as_json: bool) -> None:
    """Subscribe URL to the realm's events; the signing secret is shown only here."""
    settings = settings_of(ctx)
    # Checked before anything is opened or created (the service checks again).
    parse_events(events)
    check_url(url, parse_allowed_hosts(settings.webhook_allowed_hosts))
    created = run_with_services(settings, lambda s: s.webhooks.add(realm, url, events))
    emit(
        as_json,
        {"id": created.id, "url": created.url, "secret": created.secret},
        f"webhook {created.id} for realm {created.realm} sends to {created.url}\n"
        f"signing secret (shown once):\n{created.secret}",
    )


@webhook_group.command("list")
@click.option("--realm", default=None, help="Only this realm's webhooks (default: all).")
@json_option
@config_option
@click.pass_context
def list_(ctx: click.Context, realm: str | None, as_json: bool) -> None:
    """List webhooks (never their secrets)."""
    found = run_with_services(settings_of(ctx), lambda s: s.webhooks.list(realm))
    described = [_describe(w) for w in found]
    if as_json:
        click.echo(json.dumps(described))
        return
    if not described:
        click.echo("no webhooks")
    for webhook in found:
        events = ",".join(sorted(webhook.events)) if webhook.events is not None else "all"
        click.echo(f"{webhook.id}  {webhook.realm}  {webhook.url}  events={events}")


@webhook_group.command("remove")
@click.argument("webhook_id", metavar="ID")
@json_option
@config_option
@click.pass_context
def remove(ctx: click.Context, webhook_id: str, as_json: bool) -> None:
    """Remove a webhook: running servers stop sending to it within 5 seconds."""
    removed = run_with_services(settings_of(ctx), lambda s: s.webhooks.remove(webhook_id))
    emit(as_json, {"id": removed.id, "removed": True}, f"removed webhook {removed.id}")


def _delivery(view: DeliveryView) -> dict[str, object]:
    return {
        "id": view.row_id,
        "webhookId": view.message_id,
        "webhook": view.webhook_id,
        "realm": view.realm,
        "type": view.type,
        "url": view.url,
        "state": view.state,
        "attempts": view.attempts,
        "lastError": view.last_error,
        "nextAttemptAt": (
            timestamp(view.next_attempt_ms) if view.next_attempt_ms is not None else None
        ),
    }


@webhook_group.command("deliveries")
@click.option("--realm", default=None, help="Only this realm's deliveries (default: all).")
@click.option(
    "--state",
    type=click.Choice([s.value for s in OutboxState]),
    default=None,
    help="Only deliveries in this state (dead: given up after every attempt).",
)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@config_option
@click.pass_context
def deliveries(
    ctx: click.Context, realm: str | None, state: str | None, limit: int, as_json: bool
) -> None:
    """List the newest deliveries, newest first."""
    chosen = OutboxState(state) if state is not None else None
    found = run_with_services(
        settings_of(ctx), lambda s: s.webhooks.deliveries(realm, chosen, limit)
    )
    listed = [_delivery(v) for v in found]
    if as_json:
        click.echo(json.dumps(listed))
        return
    if not listed:
        click.echo("no deliveries")
    for item in listed:
        error = f"  last error: {item['lastError']}" if item["lastError"] else ""
        due = f"  next: {item['nextAttemptAt']}" if item["nextAttemptAt"] else ""
        click.echo(
            f"{item['id']}  {item['type']}  {item['url']}  {item['state']}"
            f"  attempts={item['attempts']}{due}{error}"
        )
