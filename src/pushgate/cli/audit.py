"""`pushgate audit tail` and `pushgate audit export`: the audit trail for operators
(docs/AUDIT.md). Tail shows the newest entries and, with `--follow`, those appended after;
export writes a time window as JSON lines, page by page (`audit/service.py`)."""

from __future__ import annotations

import json

import click

from pushgate.accounts.model import normalize_realm
from pushgate.audit.model import AuditQuery, AuditRecord, iso_ms, parse_instant
from pushgate.audit.service import AuditTrail
from pushgate.cli.common import config_option, json_option, run_with_services, settings_of
from pushgate.clock import SystemClock
from pushgate.errors import InvalidRequest
from pushgate.services import Services

MAX_TAIL = 100_000


def _realm(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return normalize_realm(name)
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None


def _line(record: AuditRecord, as_json: bool) -> str:
    if as_json:
        return json.dumps(record.as_json(), separators=(",", ":"), sort_keys=True)
    e = record.entry
    who = e.actor or "-"
    where = e.remote_ip or "-"
    data = json.dumps(dict(e.data), separators=(",", ":"), sort_keys=True)
    return f"{iso_ms(e.at_ms)}  {e.realm}  {e.event}  {e.subject}  by {who} from {where}  {data}"


realm_filter = click.option(
    "--realm", default=None, help="Only this realm's entries (default: every realm)."
)


@click.group("audit")
def audit_group() -> None:
    """Read the audit trail of security events."""


@audit_group.command("tail")
@realm_filter
@click.option(
    "-n",
    "--lines",
    "count",
    default=20,
    show_default=True,
    type=click.IntRange(0, MAX_TAIL),
    help="How many of the newest entries to show.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep showing entries as they are added.")
@json_option
@config_option
@click.pass_context
def audit_tail(
    ctx: click.Context, realm: str | None, count: int, follow: bool, as_json: bool
) -> None:
    """Show the newest audit entries, oldest first; with --follow, until interrupted."""
    realm_name = _realm(realm)

    async def use(services: Services) -> None:
        trail = AuditTrail(services.store)
        shown = await trail.newest(realm_name, count) if count else []
        for record in shown:
            click.echo(_line(record, as_json))
        if follow:
            async for record in trail.follow(realm_name, shown):
                click.echo(_line(record, as_json))

    try:
        run_with_services(settings_of(ctx), use)
    except KeyboardInterrupt:  # the way to stop --follow
        return


@audit_group.command("export")
@realm_filter
@click.option(
    "--since",
    required=True,
    help="First instant: ISO-8601 (2026-12-01T08:00:00Z) or an age (24h, 7d).",
)
@click.option("--until", default=None, help="End, excluded; same forms (default: now on).")
@config_option
@click.pass_context
def audit_export(ctx: click.Context, realm: str | None, since: str, until: str | None) -> None:
    """Write the entries of a time window as JSON lines, oldest first."""
    now = SystemClock().now_ms()
    try:
        since_ms = parse_instant(since, now)
        until_ms = None if until is None else parse_instant(until, now)
    except ValueError as exc:
        raise click.ClickException(f"--since/--until: {exc}") from None
    if until_ms is not None and until_ms <= since_ms:
        raise click.ClickException("--until must be later than --since")
    query = AuditQuery(_realm(realm), since_ms, until_ms)

    async def use(services: Services) -> int:
        count = 0
        async for record in AuditTrail(services.store).export(query):
            click.echo(_line(record, as_json=True))
            count += 1
        return count

    run_with_services(settings_of(ctx), use)
