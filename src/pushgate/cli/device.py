"""`pushgate device …`: the simulated ForgeRock Authenticator on the command line (spec §4, §5).

Each command loads the device from its state file, talks to the server through
`pushgate.simulator.DeviceClient` and writes the state back, even when the server refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from pushgate.clock import SystemClock
from pushgate.protocol.device_messages import DENY_REASONS, operation_hash
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
_CODE = re.compile(r"[0-9]{6}")  # what the app's code field takes

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
        "context": notification.context,
        "operation": notification.operation,
        "expiresAt": _iso(notification.expires_ms),
        "expired": notification.expired(now_ms),
        "answered": notification.answered,
    }


def _context_line(context: dict[str, object]) -> str:
    parts = []
    if context.get("remoteIp"):
        parts.append(f"from {context['remoteIp']}")
    if context.get("userAgent"):
        parts.append(f"with {context['userAgent']!r}")
    location = context.get("location")
    if isinstance(location, dict):
        parts.append(f"near {location.get('latitude')},{location.get('longitude')}")
    return "    sign-in " + (" ".join(parts) or "context " + json.dumps(context))


def _line(notification: Notification, now_ms: int) -> str:
    kind = str(notification.push_type)
    if notification.numbers:
        kind += " " + ",".join(str(n) for n in notification.numbers)
    state = "expired" if notification.expired(now_ms) else "expires"
    if notification.answered:
        state = "answered, " + state
    lines = [
        f"{notification.message_id}  [{kind}]  {notification.message!r}  "
        f"({state} {_iso(notification.expires_ms)})"
    ]
    if notification.context is not None:
        lines.append(_context_line(notification.context))
    operation = notification.operation
    if operation is not None:
        lines.append(
            f"    operation {operation.get('name')} {operation.get('id')}: {operation.get('data')}"
        )
    return "\n".join(lines)


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


@dataclass(frozen=True, slots=True)
class Answer:
    """What the person did on the phone, as the options say."""

    number: int | None = None
    detail: str | None = None
    code: str | None = None
    deny_reason: str | None = None
    operation_data: str | None = None


def _check_answer(notification: Notification, approve: bool, answer: Answer) -> None:
    """Refuse what the app would not let the person do (the server is tested elsewhere)."""
    if not approve:
        return
    if answer.number is None and notification.push_type is PushType.CHALLENGE:
        # The app always makes the user pick one of the numbers for this push type.
        choices = ", ".join(str(n) for n in notification.numbers)
        raise click.ClickException(
            f"{notification.message_id} is a number-matching push: pass --number (one of {choices})"
        )
    if answer.code is None and notification.push_type is PushType.CODE:
        raise click.ClickException(
            f"{notification.message_id} is a code push: pass --code with the 6 digits "
            "the relying party shows"
        )


def _answer(
    approve: bool, message_id: str | None, answer: Answer, state_path: Path, as_json: bool
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
        _check_answer(notification, approve, answer)
        if approve:
            return await client.approve(
                notification,
                number=answer.number,
                detail=answer.detail,
                code=answer.code,
                operation_data=answer.operation_data,
            )
        return await client.deny(
            notification, number=answer.number, detail=answer.detail, deny_reason=answer.deny_reason
        )

    answered = _run(device, state_path, work)
    verb = "Approved" if approve else "Denied"
    operation = answered.operation
    shown = answer.operation_data
    if shown is None and operation is not None and isinstance(operation.get("data"), str):
        shown = str(operation["data"])
    bound = operation_hash(shown) if approve and shown is not None else None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "messageId": answered.message_id,
                    "approved": approve,
                    "number": answer.number,
                    "code": answer.code,
                    "denyReason": answer.deny_reason,
                    "operation": operation,
                    "operationHash": bound,
                    "message": answered.message,
                }
            )
        )
        return
    text = f"{verb} {answered.message_id} ({answered.message!r})"
    if not approve and answer.deny_reason is not None:
        text += f", reason {answer.deny_reason}"
    if bound is not None:
        name = operation.get("name") if operation is not None else None
        text += f", bound to operation {name} (operationHash {bound})"
    click.echo(text)


def _code(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _CODE.fullmatch(value):
        raise click.ClickException(f"--code must be 6 digits, not {value!r}")
    return value


def _deny_reason(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in DENY_REASONS:
        raise click.ClickException(f"--deny-reason must be one of {', '.join(DENY_REASONS)}")
    return value.upper()


message_id_option = click.option(
    "--message-id", help="Answer this push (default: the newest unanswered one)."
)
number_option = click.option(
    "--number", type=int, help="The number picked on a number-matching push."
)
detail_option = click.option("--detail", help="Free text sent in the `detail` claim.")


@device_group.command("approve")
@message_id_option
@number_option
@click.option(
    "--code",
    callback=_code,
    metavar="DIGITS",
    help="The 6-digit code the relying party shows, typed on a code push.",
)
@click.option(
    "--operation-data",
    metavar="DATA",
    help="Bind the approval to this operation data instead of the push's own (what a device "
    "that showed something else would send; the server refuses it).",
)
@detail_option
@state_option
@json_option
def approve(
    message_id: str | None,
    number: int | None,
    code: str | None,
    operation_data: str | None,
    detail: str | None,
    state_path: Path,
    as_json: bool,
) -> None:
    """Approve a push (the newest unanswered one by default).

    A push with an operation is approved for exactly the data it shows: the answer carries
    its `operationHash` (unpadded base64url SHA-256 of the data).
    """
    answer = Answer(number=number, detail=detail, code=code, operation_data=operation_data)
    _answer(True, message_id, answer, state_path, as_json)


@device_group.command("deny")
@message_id_option
@number_option
@click.option(
    "--deny-reason",
    callback=_deny_reason,
    metavar="REASON",
    help="Why: " + ", ".join(DENY_REASONS) + " (UNEXPECTED_OPERATION: this wasn't me).",
)
@detail_option
@state_option
@json_option
def deny(
    message_id: str | None,
    number: int | None,
    deny_reason: str | None,
    detail: str | None,
    state_path: Path,
    as_json: bool,
) -> None:
    """Deny a push (the newest unanswered one by default)."""
    answer = Answer(number=number, detail=detail, deny_reason=deny_reason)
    _answer(False, message_id, answer, state_path, as_json)


from pushgate.cli import device_inbox  # noqa: E402, F401 - registers `pushgate device inbox`
