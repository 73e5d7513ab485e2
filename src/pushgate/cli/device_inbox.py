"""`pushgate device inbox …`: the simulated device's message inbox (issue 8; PowerAuth's
inbox): list, show, read, read-all and count, through `pushgate.simulator.inbox`."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from pushgate.cli.device import (
    _iso,
    _load_registered,
    _run,
    device_group,
    json_option,
    state_option,
)
from pushgate.protocol.inbox_messages import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from pushgate.simulator import DeviceClient, Mechanism
from pushgate.simulator.inbox import DeviceInbox, InboxItem

T = TypeVar("T")

mechanism_option = click.option(
    "--mechanism",
    "mechanism_uid",
    help="The account's mechanismUid (default: the first account of the device).",
)


def _with_inbox(
    state_path: Path,
    mechanism_uid: str | None,
    work: Callable[[DeviceInbox], Coroutine[Any, Any, T]],
) -> T:
    device = _load_registered(state_path)
    mechanism = _mechanism(device.mechanisms, mechanism_uid)

    async def run(client: DeviceClient) -> T:
        return await work(DeviceInbox(client, mechanism))

    return _run(device, state_path, run)


def _mechanism(mechanisms: tuple[Mechanism, ...], uid: str | None) -> Mechanism:
    if uid is None:
        return mechanisms[0]
    for mechanism in mechanisms:
        if mechanism.mechanism_uid == uid:
            return mechanism
    raise click.ClickException(f"the device has no account with mechanismUid {uid!r}")


def _line(item: InboxItem) -> str:
    mark = " " if item.read else "*"
    summary = f" — {item.summary}" if item.summary else ""
    return f"{mark} {item.id}  {_iso(item.created_ms)}  {item.subject}{summary}"


@device_group.group("inbox")
def inbox_group() -> None:
    """The message inbox of the simulated device's user (unread messages marked *)."""


@inbox_group.command("list")
@click.option("--page", type=click.IntRange(0, MAX_PAGE), default=0, show_default=True)
@click.option(
    "--size", type=click.IntRange(1, MAX_PAGE_SIZE), default=DEFAULT_PAGE_SIZE, show_default=True
)
@click.option("--unread", "only_unread", is_flag=True, help="Unread messages only.")
@mechanism_option
@state_option
@json_option
def list_messages(
    page: int,
    size: int,
    only_unread: bool,
    mechanism_uid: str | None,
    state_path: Path,
    as_json: bool,
) -> None:
    """List the inbox, newest first."""
    items = _with_inbox(
        state_path,
        mechanism_uid,
        lambda inbox: inbox.list(page=page, size=size, only_unread=only_unread),
    )
    if as_json:
        click.echo(json.dumps([asdict(item) for item in items], indent=2))
    elif not items:
        click.echo("No messages.")
    else:
        for item in items:
            click.echo(_line(item))


@inbox_group.command("show")
@click.argument("message_id")
@mechanism_option
@state_option
@json_option
def show(message_id: str, mechanism_uid: str | None, state_path: Path, as_json: bool) -> None:
    """Show one message, its body included (this does not mark it read)."""
    item = _with_inbox(state_path, mechanism_uid, lambda inbox: inbox.detail(message_id))
    if as_json:
        click.echo(json.dumps(asdict(item), indent=2))
        return
    click.echo(_line(item))
    click.echo(f"type: {item.type}")
    click.echo("")
    click.echo(item.body or "")


@inbox_group.command("read")
@click.argument("message_id")
@mechanism_option
@state_option
def read(message_id: str, mechanism_uid: str | None, state_path: Path) -> None:
    """Mark one message read."""
    _with_inbox(state_path, mechanism_uid, lambda inbox: inbox.read(message_id))
    click.echo(f"Marked {message_id} read.")


@inbox_group.command("read-all")
@mechanism_option
@state_option
def read_all(mechanism_uid: str | None, state_path: Path) -> None:
    """Mark every message read."""
    _with_inbox(state_path, mechanism_uid, lambda inbox: inbox.read_all())
    click.echo("Marked every message read.")


@inbox_group.command("count")
@mechanism_option
@state_option
@json_option
def count(mechanism_uid: str | None, state_path: Path, as_json: bool) -> None:
    """How many messages are unread."""
    unread = _with_inbox(state_path, mechanism_uid, lambda inbox: inbox.count())
    click.echo(json.dumps({"countUnread": unread}) if as_json else f"{unread} unread")
