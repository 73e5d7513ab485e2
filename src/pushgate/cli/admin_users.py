"""`pushgate user list|show|lock|remove|reset-opt-outs` and `pushgate user device
list|rename|block|unblock|remove` (issue 10 "Administration", docs/ADMIN.md). Audited as done
by "cli"; a device's block or removal tells its app (`mtoken.statusChange`) once a server's
background runtime sends the push."""

from __future__ import annotations

import json

import click

from pushgate.accounts.model import check_username, normalize_realm
from pushgate.admin.views import device_json, user_json
from pushgate.cli.common import (
    config_option,
    emit,
    json_option,
    realm_option,
    run_with_services,
    settings_of,
)
from pushgate.devices.model import Device, check_device_name
from pushgate.errors import InvalidRequest
from pushgate.services import Services

ACTOR = "cli"


def _check(realm: str, username: str | None = None) -> None:
    """Before the database is opened: a typo is one line and creates nothing."""
    try:
        normalize_realm(realm)
        if username is not None:
            check_username(username)
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None


@click.command("list")
@realm_option
@click.option("--after", default=None, help="Only usernames after this one (paging).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@config_option
@click.pass_context
def user_list(ctx: click.Context, realm: str, after: str | None, limit: int, as_json: bool) -> None:
    """List a realm's users, by username."""
    _check(realm)
    found = run_with_services(
        settings_of(ctx), lambda s: s.admin.list_users(realm, after=after, limit=limit)
    )
    shown = [user_json(u) for u in found]
    if as_json:
        click.echo(json.dumps({"users": shown}))
        return
    if not shown:
        click.echo("no users")
    for item in shown:
        locked = "  locked" if item["locked"] else ""
        click.echo(f"{item['username']}  {item['id']}  created {item['createdAt']}{locked}")


@click.command("show")
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def user_show(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Show a user: lock, failures, devices, pending sessions, recovery codes, opt-outs."""
    _check(realm, username)
    user, facts = run_with_services(settings_of(ctx), lambda s: s.admin.show_user(realm, username))
    shown = user_json(user, facts)
    lock = f"locked since {shown['lockedAt']}" if user.locked else "not locked"
    emit(
        as_json,
        shown,
        f"user {user.username} ({user.id}) in realm {user.realm}, created {shown['createdAt']}\n"
        f"  {lock}, {user.failure_count} consecutive failures\n"
        f"  devices: {facts.devices}, pending sessions: {facts.pending_sessions},"
        f" recovery codes left: {facts.recovery_codes},"
        f" opted out of: {', '.join(facts.opt_outs) or 'nothing'}",
    )


@click.command("lock")
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def user_lock(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Lock a user: no session reaches it until `pushgate user unlock`; pending ones end."""
    _check(realm, username)

    async def use(services: Services) -> list[str]:
        return await services.admin.lock_user(
            realm, username, services.sessions.cancel, actor=ACTOR
        )

    canceled = run_with_services(settings_of(ctx), use)
    name = normalize_realm(realm)
    emit(
        as_json,
        {"realm": name, "username": username, "locked": True, "canceledSessions": canceled},
        f"locked user {username} in realm {name}; {len(canceled)} pending session(s) canceled",
    )


@click.command("remove")
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def user_remove(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Remove a user with its devices, registrations, inbox, recovery codes and opt-outs."""
    _check(realm, username)
    removed = run_with_services(
        settings_of(ctx), lambda s: s.admin.remove_user(realm, username, actor=ACTOR)
    )
    emit(
        as_json,
        {"realm": removed.realm, "username": removed.username, "removed": True},
        f"removed user {removed.username} from realm {removed.realm}",
    )


@click.command("reset-opt-outs")
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def user_reset_opt_outs(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """Forget the MFA opt-outs a user chose in a journey: the journey asks again."""
    _check(realm, username)
    cleared = run_with_services(
        settings_of(ctx), lambda s: s.admin.reset_opt_outs(realm, username, actor=ACTOR)
    )
    emit(
        as_json,
        {"realm": normalize_realm(realm), "username": username, "cleared": cleared},
        f"cleared {cleared} opt-out(s) of user {username}",
    )


@click.group("device")
def user_device_group() -> None:
    """A user's registered devices (the simulated app is `pushgate device`)."""


@user_device_group.command("list")
@click.argument("username")
@realm_option
@json_option
@config_option
@click.pass_context
def device_list(ctx: click.Context, username: str, realm: str, as_json: bool) -> None:
    """List a user's devices (removed ones are not shown)."""
    _check(realm, username)
    found = run_with_services(settings_of(ctx), lambda s: s.devices.list_for_user(realm, username))
    shown = [device_json(d) for d in found]
    if as_json:
        click.echo(json.dumps({"devices": shown}))
        return
    if not shown:
        click.echo("no devices")
    for item in shown:
        click.echo(
            f"{item['id']}  {item['name']}  {item['status']}  {item['communicationType']}"
            f"  registered {item['createdAt']}"
        )


def _device_command(name: str, help_text: str, done: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("username")
    @click.argument("device_id", metavar="DEVICE_ID")
    @realm_option
    @json_option
    @config_option
    @click.pass_context
    def command(
        ctx: click.Context, username: str, device_id: str, realm: str, as_json: bool
    ) -> None:
        _check(realm, username)

        async def use(services: Services) -> Device:
            devices = services.devices
            change = {"block": devices.block, "unblock": devices.unblock, "remove": devices.remove}
            return await change[name](realm, username, device_id, actor=ACTOR)

        device = run_with_services(settings_of(ctx), use)
        emit(as_json, device_json(device), f"{done} device {device.id} ({device.name})")

    return command


user_device_group.add_command(
    _device_command(
        "block",
        "Block a device: no session notifies it or takes its answer; the app is told.",
        "blocked",
    )
)
user_device_group.add_command(_device_command("unblock", "Unblock a device.", "unblocked"))
user_device_group.add_command(
    _device_command(
        "remove", "Remove a device for good; the app is told (mtoken.statusChange).", "removed"
    )
)


@user_device_group.command("rename")
@click.argument("username")
@click.argument("device_id", metavar="DEVICE_ID")
@click.argument("name")
@realm_option
@json_option
@config_option
@click.pass_context
def device_rename(
    ctx: click.Context, username: str, device_id: str, name: str, realm: str, as_json: bool
) -> None:
    """Rename a device."""
    _check(realm, username)
    try:
        check_device_name(name)
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None
    device = run_with_services(
        settings_of(ctx),
        lambda s: s.devices.rename(realm, username, device_id, name, actor=ACTOR),
    )
    emit(as_json, device_json(device), f"renamed device {device.id} to {device.name}")
