"""The simulated device's state file (spec §3.2 values, §5.1 pushes): JSON, written atomically.

Secrets are stored as standard Base64, the form AM keeps them in. The file is created 0600
and replaced in one `os.replace`, so a crash leaves either the old state or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pushgate.protocol.encoding import b64std, b64std_decode
from pushgate.simulator.device import Mechanism, Notification, SimulatedDevice, SimulatorError

STATE_VERSION = 1
MAX_STATE_BYTES = 4 * 1024 * 1024


def device_to_json(device: SimulatedDevice) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "device_id": device.device_id,
        "device_name": device.device_name,
        "device_type": device.device_type,
        "communication_type": device.communication_type,
        "mechanisms": [
            {
                "issuer": m.issuer,
                "account": m.account,
                "mechanism_uid": m.mechanism_uid,
                "secret": b64std(m.secret),
                "register_url": m.register_url,
                "authenticate_url": m.authenticate_url,
                "lb_cookie": m.lb_cookie,
                "user_id": m.user_id,
                "device_profile_id": m.device_profile_id,
            }
            for m in device.mechanisms
        ],
        "notifications": [
            {
                "message_id": n.message_id,
                "mechanism_uid": n.mechanism_uid,
                "jwt": n.jwt,
                "claims": dict(n.claims),
                "received_ms": n.received_ms,
                "answered": n.answered,
            }
            for n in device.notifications
        ],
    }


class _Reader:
    """Typed access to one JSON object of the file; errors name the offending field."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise SimulatorError(f"state file: {where} is not an object")
        self._value: dict[str, Any] = value
        self._where = where

    def _fail(self, key: str, what: str) -> SimulatorError:
        return SimulatorError(f"state file: {self._where}.{key} is not {what}")

    def text(self, key: str) -> str:
        value = self._value.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._value.get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value = self._value.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(key, "an integer")
        return value

    def flag(self, key: str) -> bool:
        value = self._value.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def secret(self, key: str) -> bytes:
        try:
            return b64std_decode(self.text(key))
        except ValueError as exc:
            raise self._fail(key, "standard Base64") from exc

    def strings(self, key: str) -> dict[str, str]:
        value = self._value.get(key)
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise self._fail(key, "an object of strings")
        return dict(value)

    def items(self, key: str) -> list[_Reader]:
        value = self._value.get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return [_Reader(item, f"{self._where}.{key}[{i}]") for i, item in enumerate(value)]


def device_from_json(data: object) -> SimulatedDevice:
    root = _Reader(data, "state")
    if root.integer("version") != STATE_VERSION:
        raise SimulatorError(f"state file: version is not {STATE_VERSION}")
    mechanisms = tuple(
        Mechanism(
            issuer=m.text("issuer"),
            account=m.text("account"),
            mechanism_uid=m.text("mechanism_uid"),
            secret=m.secret("secret"),
            register_url=m.text("register_url"),
            authenticate_url=m.text("authenticate_url"),
            lb_cookie=m.text("lb_cookie"),
            user_id=m.optional_text("user_id"),
            device_profile_id=m.optional_text("device_profile_id"),
        )
        for m in root.items("mechanisms")
    )
    notifications = tuple(
        Notification(
            message_id=n.text("message_id"),
            mechanism_uid=n.text("mechanism_uid"),
            jwt=n.text("jwt"),
            claims=n.strings("claims"),
            received_ms=n.integer("received_ms"),
            answered=n.flag("answered"),
        )
        for n in root.items("notifications")
    )
    return SimulatedDevice(
        device_id=root.text("device_id"),
        device_name=root.text("device_name"),
        device_type=root.text("device_type"),
        communication_type=root.text("communication_type"),
        mechanisms=mechanisms,
        notifications=notifications,
    )


def load_device(path: Path) -> SimulatedDevice | None:
    """The device stored at `path`, or None when there is no file yet."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SimulatorError(f"cannot read state file {path}: {exc}") from exc
    if len(raw) > MAX_STATE_BYTES:
        raise SimulatorError(f"state file {path} is larger than {MAX_STATE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SimulatorError(f"state file {path} is not JSON: {exc}") from exc
    return device_from_json(data)


def save_device(device: SimulatedDevice, path: Path) -> None:
    text = json.dumps(device_to_json(device), indent=2, ensure_ascii=False) + "\n"
    try:
        # mkstemp makes the file 0600: it holds the shared secrets.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SimulatorError(f"cannot write state file {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SimulatorError(f"cannot write state file {path}: {exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
