"""`pushgate realm settings` and `pushgate user unlock`: a realm's push type and anti-fatigue
limits (accounts/model.py `RealmPolicy`, issue 7), and lifting a user's lock.

Every value is checked before the database is opened, and a bad one is one `Error:` line that
names the option as typed (click's own usage errors would take three lines).
"""

from __future__ import annotations

import click

from pushgate.accounts.model import RealmPolicy, check_username, normalize_realm, realm_policy
from pushgate.accounts.service import require_realm
from pushgate.cli.common import (
    config_option,
    emit,
    json_option,
    realm_option,
    run_with_services,
    settings_of,
)
from pushgate.errors import InvalidRequest, NotFound
from pushgate.protocol.push_payload import PushType
from pushgate.services import Services

# The option of each setting, in the order they are shown.
OPTIONS = {
    "defaultPushType": "--default-push-type",
    "maxFailureCount": "--max-failure-count",
    "lockAfterFailures": "--lock-after-failures",
    "createsPerMinute": "--creates-per-minute",
    "onePendingPerUser": "--one-pending-per-user",
    "sessionRetentionDays": "--session-retention-days",
    "auditRetentionDays": "--audit-retention-days",
    "outboxRetentionDays": "--outbox-retention-days",
}
_LABELS = {
    "defaultPushType": ("default push type", "when a create names no pushType"),
    "maxFailureCount": ("max failure count", "wrong numbers or codes that end a session"),
    "lockAfterFailures": ("lock after failures", "consecutive denials and failures"),
    "createsPerMinute": ("creates per minute", "per user; more are answered 429"),
    "onePendingPerUser": ("one pending per user", "a new session cancels the pending one"),
    "sessionRetentionDays": ("session retention days", "finished sessions kept, then purged"),
    "auditRetentionDays": ("audit retention days", "audit entries kept, then purged"),
    "outboxRetentionDays": ("outbox retention days", "settled deliveries kept, then purged"),
}


def _integer(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise click.ClickException(f"{option} must be an integer, not {text!r}")
    return int(text)


def _changes(
    push_type: str | None,
    max_failures: str | None,
    lock_after: str | None,
    per_minute: str | None,
    one_pending: bool | None,
    retention: dict[str, str | None] | None = None,
) -> dict[str, object]:
    given: dict[str, object | None] = {
        "defaultPushType": push_type,
        "maxFailureCount": _integer(OPTIONS["maxFailureCount"], max_failures),
        "lockAfterFailures": _integer(OPTIONS["lockAfterFailures"], lock_after),
        "createsPerMinute": _integer(OPTIONS["createsPerMinute"], per_minute),
        "onePendingPerUser": one_pending,
    }
    for name, text in (retention or {}).items():
        given[name] = _integer(OPTIONS[name], text)
    changes = {name: value for name, value in given.items() if value is not None}
    try:
        realm_policy(changes)  # the bounds, before anything is opened
    except InvalidRequest as exc:
        message = exc.message
        for name, option in OPTIONS.items():
            message = message.replace(name, option)
        raise click.ClickException(message) from None
    return changes


async def _read_policy(services: Services, realm_name: str) -> tuple[str, RealmPolicy]:
    async with services.store.autocommit() as reader:
        realm = await require_realm(reader, realm_name)
        found = await reader.accounts.get_realm(realm)
    if found is None:  # removed between the two reads
        raise NotFound(f"realm {realm} does not exist")
    return realm, found.policy


def _text(realm: str, policy: RealmPolicy) -> str:
    lines = [f"settings of realm {realm}:"]
    for name, value in policy.as_json().items():
        label, meaning = _LABELS[name]
        shown = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        lines.append(f"  {label:<22} {shown:<10} {meaning}")
    return "\n".join(lines)


@click.command("settings")
@click.argument("realm")
@click.option(
    "--default-push-type",
    "push_type",
    metavar="TYPE",
    help="Push type of a session created without pushType: "
    + ", ".join(t.value for t in PushType)
    + ".",
)
@click.option(
    "--max-failure-count",
    "max_failures",
    metavar="N",
    help="Wrong numbers or codes that end a session `error` (1-100).",
)
@click.option(
    "--lock-after-failures",
    "lock_after",
    metavar="N",
    help="Consecutive denials and failures that lock a user (1-100).",
)
@click.option(
    "--creates-per-minute",
    "per_minute",
    metavar="N",
    help="Sessions a user may be sent per minute; more get 429 (1-10000).",
)
@click.option(
    "--one-pending-per-user/--many-pending-per-user",
    "one_pending",
    default=None,
    help="Whether a new session cancels the user's pending one.",
)
@click.option(
    "--session-retention-days",
    "session_days",
    metavar="DAYS",
    help="Days finished sessions and their notifications are kept (1-3650).",
)
@click.option(
    "--audit-retention-days",
    "audit_days",
    metavar="DAYS",
    help="Days audit entries are kept (1-3650).",
)
@click.option(
    "--outbox-retention-days",
    "outbox_days",
    metavar="DAYS",
    help="Days delivered and dead outbox rows are kept (1-3650).",
)
@json_option
@config_option
@click.pass_context
def realm_settings(
    ctx: click.Context,
    realm: str,
    push_type: str | None,
    max_failures: str | None,
    lock_after: str | None,
    per_minute: str | None,
    one_pending: bool | None,
    session_days: str | None,
    audit_days: str | None,
    outbox_days: str | None,
    as_json: bool,
) -> None:
    """Show a realm's push type, anti-fatigue limits and retention, changing those given."""
    try:
        normalize_realm(realm)
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None
    retention = {
        "sessionRetentionDays": session_days,
        "auditRetentionDays": audit_days,
        "outboxRetentionDays": outbox_days,
    }
    changes = _changes(push_type, max_failures, lock_after, per_minute, one_pending, retention)

    async def use(services: Services) -> tuple[str, RealmPolicy]:
        if not changes:
            return await _read_policy(services, realm)
        policy = await services.accounts.set_realm_policy(realm, changes)
        return normalize_realm(realm), policy

    name, policy = run_with_services(settings_of(ctx), use)
    emit(as_json, {"realm": name, "settings": policy.as_json()}, _text(name, policy))


@click.command("unlock")
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def user_unlock(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Lift a user's lock and reset the count of consecutive denials and failures."""
    try:
        check_username(username)
        normalize_realm(realm)
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None

    async def use(services: Services) -> str:
        await services.accounts.unlock_user(realm, username)
        return normalize_realm(realm)

    name = run_with_services(settings_of(ctx), use)
    emit(
        as_json,
        {"realm": name, "username": username, "locked": False, "failureCount": 0},
        f"unlocked user {username} in realm {name}; its failure count is 0",
    )
