"""`pushgate realm list|show|remove`, `pushgate apikey list|revoke` and `pushgate admin-key
create|list|revoke` (issue 10 "Administration", docs/ADMIN.md). Audited as done by "cli"."""

from __future__ import annotations

import json

import click

from pushgate.admin.model import ALL_SCOPES, Scope, parse_scopes
from pushgate.admin.views import admin_key_json, api_key_json, realm_json
from pushgate.cli.common import config_option, emit, json_option, run_with_services, settings_of
from pushgate.errors import InvalidRequest


@click.command("list")
@json_option
@config_option
@click.pass_context
def realm_list(ctx: click.Context, as_json: bool) -> None:
    """List the realms."""
    found = run_with_services(settings_of(ctx), lambda s: s.admin.list_realms())
    shown = [realm_json(r) for r in found]
    if as_json:
        click.echo(json.dumps({"realms": shown}))
        return
    for item in shown:
        click.echo(f"{item['realm']}  created {item['createdAt']}")


@click.command("show")
@click.argument("name")
@json_option
@config_option
@click.pass_context
def realm_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a realm: its settings and what it holds."""
    realm, contents = run_with_services(settings_of(ctx), lambda s: s.admin.show_realm(name))
    shown = realm_json(realm, contents)
    settings = ", ".join(f"{k}={json.dumps(v)}" for k, v in realm.policy.as_json().items())
    emit(
        as_json,
        shown,
        f"realm {realm.name}, created {shown['createdAt']}\n"
        f"  users: {contents.users}, API keys: {contents.api_keys}, webhooks:"
        f" {contents.webhooks}, imported journeys: {contents.journeys}\n"
        f"  settings: {settings}",
    )


@click.command("remove")
@click.argument("name")
@json_option
@config_option
@click.pass_context
def realm_remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove an empty realm (no users, API keys, webhooks or imported journeys)."""
    removed = run_with_services(settings_of(ctx), lambda s: s.admin.remove_realm(name))
    emit(as_json, {"realm": removed.name, "removed": True}, f"removed realm {removed.name}")


@click.command("list")
@click.option("--realm", default=None, help="Only this realm's keys (default: every realm).")
@json_option
@config_option
@click.pass_context
def apikey_list(ctx: click.Context, realm: str | None, as_json: bool) -> None:
    """List API keys: label, created, last used (to the minute), revoked."""
    found = run_with_services(settings_of(ctx), lambda s: s.admin.list_api_keys(realm))
    shown = [api_key_json(k) for k in found]
    if as_json:
        click.echo(json.dumps({"apiKeys": shown}))
        return
    if not shown:
        click.echo("no API keys")
    for item in shown:
        click.echo(_key_line(item, f"  {item['realm']}"))


def _key_line(item: dict[str, object], extra: str = "") -> str:
    state = f"revoked {item['revokedAt']}" if item["revokedAt"] else "active"
    label = f"  {item['label']}" if item["label"] else ""
    used = item["lastUsedAt"] or "never"
    return f"{item['id']}{extra}{label}  created {item['createdAt']}  last used {used}  {state}"


@click.command("revoke")
@click.argument("key_id", metavar="ID")
@json_option
@config_option
@click.pass_context
def apikey_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke an API key: every server refuses it within PUSHGATE_API_KEY_CACHE_SECONDS."""
    revoked = run_with_services(settings_of(ctx), lambda s: s.admin.revoke_api_key(key_id))
    emit(as_json, api_key_json(revoked), f"revoked API key {revoked.id} of realm {revoked.realm}")


@click.group("admin-key")
def admin_key_group() -> None:
    """Keys of the admin API (/admin/...), with scopes."""


@admin_key_group.command("create")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help=f"A scope the key holds (repeatable, or comma-separated): {ALL_SCOPES} or "
    + ", ".join(s.value for s in Scope),
)
@click.option("--label", default=None, help="A name for the key, shown in lists.")
@json_option
@config_option
@click.pass_context
def admin_key_create(
    ctx: click.Context, scopes: tuple[str, ...], label: str | None, as_json: bool
) -> None:
    """Create an admin key; it is shown once and stored only as a hash."""
    try:
        parse_scopes(scopes)
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from None
    issued = run_with_services(
        settings_of(ctx), lambda s: s.admin.create_admin_key(scopes, label=label)
    )
    held = " ".join(s.value for s in Scope if s in issued.record.scopes)
    emit(
        as_json,
        {**admin_key_json(issued.record), "adminKey": issued.key},
        f"admin key {issued.record.id} [{held}] (shown once):\n{issued.key}",
    )


@admin_key_group.command("list")
@json_option
@config_option
@click.pass_context
def admin_key_list(ctx: click.Context, as_json: bool) -> None:
    """List admin keys: label, scopes, created, last used, revoked."""
    found = run_with_services(settings_of(ctx), lambda s: s.admin.list_admin_keys())
    shown = [admin_key_json(k) for k in found]
    if as_json:
        click.echo(json.dumps({"adminKeys": shown}))
        return
    if not shown:
        click.echo("no admin keys")
    for item, key in zip(shown, found, strict=True):
        scopes = " ".join(s.value for s in Scope if s in key.scopes)
        click.echo(_key_line(item, f"  [{scopes}]"))


@admin_key_group.command("revoke")
@click.argument("key_id", metavar="ID")
@json_option
@config_option
@click.pass_context
def admin_key_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke an admin key: every server refuses it within PUSHGATE_API_KEY_CACHE_SECONDS."""
    revoked = run_with_services(settings_of(ctx), lambda s: s.admin.revoke_admin_key(key_id))
    emit(as_json, admin_key_json(revoked), f"revoked admin key {revoked.id}")
