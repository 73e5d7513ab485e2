"""An audit entry: who did what to which subject, in which realm, when, from where. Pure.

`actor` names who acted, in one of the documented forms (docs/AUDIT.md): `cli`, `system`,
`device:<id>`, `apikey:<id>`, `admin:<id>`; None where it is not known (rows written before
issue 10, and events no one in particular caused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

CLI = "cli"
SYSTEM = "system"
MAX_ACTOR = 128
MAX_REMOTE_IP = 64


def device_actor(device_id: str) -> str:
    return f"device:{device_id}"


def apikey_actor(key_id: str) -> str:
    return f"apikey:{key_id}"


def admin_actor(key_id: str) -> str:
    return f"admin:{key_id}"


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sent a request and from which address, as the face that received it knows them."""

    actor: str | None = None
    remote_ip: str | None = None

    def as_device(self, device_id: str) -> Origin:
        """The same request once the device it came from is known."""
        return Origin(device_actor(device_id), self.remote_ip)


NO_ORIGIN = Origin()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    realm: str
    event: str
    subject: str
    at_ms: int
    data: Mapping[str, object] = field(default_factory=dict)
    actor: str | None = None
    remote_ip: str | None = None

    def by(self, origin: Origin | None) -> AuditEntry:
        """This entry as caused by `origin` (unchanged for None or an empty one)."""
        if origin is None or origin == NO_ORIGIN:
            return self
        return replace(self, actor=origin.actor, remote_ip=origin.remote_ip)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored entry and its number: ids grow with every append (keyset pagination)."""

    id: int
    entry: AuditEntry

    def as_json(self) -> dict[str, object]:
        e = self.entry
        return {
            "id": self.id,
            "atMs": e.at_ms,
            "realm": e.realm,
            "event": e.event,
            "subject": e.subject,
            "actor": e.actor,
            "remoteIp": e.remote_ip,
            "data": dict(e.data),
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which rows a read wants: a realm or all, a time window `[since_ms, until_ms)`."""

    realm: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_instant(text: str, now_ms: int) -> int:
    """Epoch ms of `--since`/`--until`: ISO-8601 (`2026-12-01`, `2026-12-01T08:00:00Z`; a
    time without a zone is UTC) or an age before `now_ms` (`90s`, `15m`, `24h`, `7d`, `2w`).
    ValueError says what is accepted."""
    value = text.strip()
    unit = value[-1:].lower()
    if unit in _UNITS_MS and value[:-1].isascii() and value[:-1].isdigit():
        return now_ms - int(value[:-1]) * _UNITS_MS[unit]
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO-8601 time (2026-12-01T08:00:00Z) nor an age"
            " (90s, 15m, 24h, 7d, 2w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso_ms(at_ms: int) -> str:
    """`2026-12-01T08:00:00.123Z`: how the CLI shows an entry's time."""
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"
