"""`pushgate purge`: delete now what is past each realm's retention, or with `--dry-run` only
count it (docs/AUDIT.md "Retention"). The background runtime does the same every
`PUSHGATE_PURGE_INTERVAL_SECONDS`; this is for operators who want it now, or want to see."""

from __future__ import annotations

import click

from pushgate.accounts.model import normalize_realm
from pushgate.audit.model import CLI
from pushgate.cli.common import config_option, emit, json_option, run_with_services, settings_of
from pushgate.errors import InvalidRequest
from pushgate.retention.model import PurgeCounts
from pushgate.retention.service import RealmPurge, RetentionService
from pushgate.services import Services

_KINDS = (
    ("sessions", "finished sessions"),
    ("notifications", "notifications"),
    ("registrations", "registrations"),
    ("outbox", "outbox rows"),
    ("audit", "audit entries"),
    ("idempotencyKeys", "idempotency keys"),
)


def _text(done: list[RealmPurge], dry_run: bool) -> str:
    verb = "would delete" if dry_run else "deleted"
    lines = []
    for purge in done:
        counts = purge.counts.as_json()
        shown = [f"{counts[k]} {label}" for k, label in _KINDS if counts[k]]
        where = "every realm" if purge.realm == "*" else f"realm {purge.realm}"
        lines.append(f"{where}: {verb} {', '.join(shown) if shown else 'nothing'}")
    total = sum((p.counts for p in done), PurgeCounts()).total
    lines.append(f"{verb} {total} rows in all")
    return "\n".join(lines)


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--realm", default=None, help="Only this realm (default: every realm).")
@json_option
@config_option
@click.pass_context
def purge(ctx: click.Context, dry_run: bool, realm: str | None, as_json: bool) -> None:
    """Delete finished sessions, audit entries and outbox rows past their realm's retention."""
    if realm is not None:
        try:
            normalize_realm(realm)
        except InvalidRequest as exc:
            raise click.ClickException(exc.message) from None

    async def use(services: Services) -> list[RealmPurge]:
        settings = services.settings
        retention = RetentionService(services.store, services.clock, batch=settings.purge_batch)
        if dry_run:
            return await retention.dry_run(realm)
        return await retention.purge(realm, actor=CLI)

    done = run_with_services(settings_of(ctx), use)
    data = {
        "dryRun": dry_run,
        "realms": {p.realm: p.counts.as_json() for p in done},
        "total": sum((p.counts for p in done), PurgeCounts()).as_json(),
    }
    emit(as_json, data, _text(done, dry_run))
