"""`pushgate device …`: the simulated ForgeRock Authenticator on the command line (spec §4, §5).

Each command loads the device from its state file, talks to the server through
`pushgate.simulator.DeviceClient` and writes the state back, even when the server refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from pushgate.clock import SystemClock
from pushgate.protocol.push_payload import PushType
from pushgate.simulator import (
    DeviceClient,
    Notification,
    SimulatedDevice,
    SimulatorError,
    load_device,
    new_device,
    save_device,
)

DEFAULT_STATE = "pushgate-device.json"
T = TypeVar("T")

state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    envvar="PUSHGATE_DEVICE_STATE",
    show_default=True,
    show_envvar=True,
    help="The simulated device's state file (holds its shared secrets).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("device")
def device_group() -> None:
    """A simulated ForgeRock Authenticator (Android) for trying pushgate without a phone."""


def _load(state_path: Path) -> SimulatedDevice | None:
    try:
        return load_device(state_path)
    except SimulatorError as exc:
        raise click.ClickException(str(exc)) from exc


def _load_registered(state_path: Path) -> SimulatedDevice:
    device = _load(state_path)
    if device is None or not device.mechanisms:
        raise click.ClickException(
            f"no registered device in {state_path}; run `pushgate device register URI` first"
        )
    return device


def _run(
    device: SimulatedDevice,
    state_path: Path,
    work: Callable[[DeviceClient], Coroutine[Any, Any, T]],
) -> T:
    """Run `work` with a client and save whatever the device learnt, success or not."""
    final = [device]

    async def main() -> T:
        async with DeviceClient(device) as client:
            try:
                return await work(client)
            finally:
                final[0] = client.device

    try:
        return asyncio.run(main())
    except SimulatorError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if final[0] != device:
            try:
                save_device(final[0], state_path)
            except SimulatorError as exc:
                raise click.ClickException(str(exc)) from exc


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _describe(notification: Notification, now_ms: int) -> dict[str, object]:
    return {
        "messageId": notification.message_id,
        "mechanismUid": notification.mechanism_uid,
        "message": notification.message,
        "type": str(notification.push_type),
        "numbers": list(notification.numbers) or None,
        "username": notification.username,
        "expiresAt": _iso(notification.expires_ms),
        "expired": notification.expired(now_ms),
        "answered": notification.answered,
    }


def _line(notification: Notification, now_ms: int) -> str:
    kind = str(notification.push_type)
    if notification.numbers:
        kind += " " + ",".join(str(n) for n in notification.numbers)
    state = "expired" if notification.expired(now_ms) else "expires"
    if notification.answered:
        state = "answered, " + state
    return (
        f"{notification.message_id}  [{kind}]  {notification.message!r}  "
        f"({state} {_iso(notification.expires_ms)})"
    )


@device_group.command("register")
@click.argument("uri")
@click.option("--device-name", help="Name sent to the server (new state file only).")
@click.option("--device-id", help="Push token sent to the server (new state file only).")
@state_option
@json_option
def register(
    uri: str, device_name: str | None, device_id: str | None, state_path: Path, as_json: bool
) -> None:
    """Register with a pushauth:// URI (the QR code's text; `-` reads it from stdin)."""
    if uri == "-":
        uri = sys.stdin.read().strip()
    device = _load(state_path)
    if device is None:
        device = new_device(device_id=device_id)
        if device_name is not None:
            device = new_device(device_name, device.device_id)
    elif (device_id is not None and device_id != device.device_id) or (
        device_name is not None and device_name != device.device_name
    ):
        raise click.ClickException(
            f"{state_path} already holds a device with another id or name; "
            "use a new --state file to start over"
        )
    mechanism = _run(device, state_path, lambda client: client.register(uri))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "mechanismUid": mechanism.mechanism_uid,
                    "issuer": mechanism.issuer,
                    "account": mechanism.account,
                    "deviceId": device.device_id,
                }
            )
        )
    else:
        click.echo(
            f"Registered {mechanism.account} at {mechanism.issuer} "
            f"(mechanism {mechanism.mechanism_uid}, device {device.device_id})"
        )


async def _fetch_all(client: DeviceClient) -> list[Notification]:
    fetched: list[Notification] = []
    for mechanism in client.device.mechanisms:
        fetched.extend(await client.pending(mechanism))
    return fetched


@device_group.command("pending")
@state_option
@json_option
def pending(state_path: Path, as_json: bool) -> None:
    """Fetch, store and show the pushes the server holds for this device."""
    device = _load_registered(state_path)
    notifications = _run(device, state_path, _fetch_all)
    now_ms = SystemClock().now_ms()
    if as_json:
        click.echo(json.dumps([_describe(n, now_ms) for n in notifications], indent=2))
    elif not notifications:
        click.echo("No pending notifications.")
    else:
        for notification in notifications:
            click.echo(_line(notification, now_ms))


def _choose(device: SimulatedDevice, message_id: str | None, now_ms: int) -> Notification | None:
    if message_id is not None:
        # An explicit id is answered even when answered or expired: replays are worth testing.
        return device.notification(message_id)
    return device.newest_unanswered(now_ms)


def _answer(
    approve: bool,
    message_id: str | None,
    number: int | None,
    detail: str | None,
    state_path: Path,
    as_json: bool,
) -> None:
    device = _load_registered(state_path)
    now_ms = SystemClock().now_ms()

    async def work(client: DeviceClient) -> Notification:
        notification = _choose(client.device, message_id, now_ms)
        if notification is None:
            await _fetch_all(client)
            notification = _choose(client.device, message_id, now_ms)
        if notification is None:
            raise click.ClickException(
                f"no notification {message_id!r}"
                if message_id is not None
                else "no unanswered notification, here or on the server"
            )
        if approve and number is None and notification.push_type is PushType.CHALLENGE:
            # The app always makes the user pick one of the numbers for this push type.
            choices = ", ".join(str(n) for n in notification.numbers)
            raise click.ClickException(
                f"{notification.message_id} is a number-matching push: pass --number "
                f"(one of {choices})"
            )
        if approve:
            return await client.approve(notification, number=number, detail=detail)
        return await client.deny(notification, number=number, detail=detail)

    answered = _run(device, state_path, work)
    verb = "Approved" if approve else "Denied"
    if as_json:
        click.echo(
            json.dumps(
                {
                    "messageId": answered.message_id,
                    "approved": approve,
                    "number": number,
                    "message": answered.message,
                }
            )
        )
    else:
        click.echo(f"{verb} {answered.message_id} ({answered.message!r})")


def _answer_command(approve: bool) -> Callable[..., None]:
    @click.option("--message-id", help="Answer this push (default: the newest unanswered one).")
    @click.option("--number", type=int, help="The number picked on a number-matching push.")
    @click.option("--detail", help="Free text sent in the `detail` claim.")
    @state_option
    @json_option
    def command(
        message_id: str | None,
        number: int | None,
        detail: str | None,
        state_path: Path,
        as_json: bool,
    ) -> None:
        _answer(approve, message_id, number, detail, state_path, as_json)

    return command


device_group.command("approve", help="Approve a push (the newest unanswered one by default).")(
    _answer_command(True)
)
device_group.command("deny", help="Deny a push (the newest unanswered one by default).")(
    _answer_command(False)
)
