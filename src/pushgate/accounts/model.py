"""Realms, users and relying-party API keys (DESIGN.md "Other entities"). Pure."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from pushgate.errors import InvalidRequest
from pushgate.protocol.push_payload import PushType

ROOT_REALM = "/"
_REALM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# Lone surrogates (what a command line makes of bytes that are not UTF-8) cannot be stored.
_USERNAME = re.compile(r"[^\x00-\x1f\x7f:\ud800-\udfff]{1,256}")
API_KEY_PREFIX = "pgk_"


def normalize_realm(name: str) -> str:
    """`/`, `root` or empty → `/`; `alpha` or `/alpha` → `/alpha`. One level of sub-realm."""
    bare = name.strip().strip("/")
    if bare in ("", "root"):
        return ROOT_REALM
    if not _REALM_NAME.fullmatch(bare):
        raise InvalidRequest(f"invalid realm name {name!r}: use letters, digits, '-' and '_'")
    return "/" + bare


def check_username(username: str) -> str:
    # ':' would split the QR label on iOS (spec §3.1); control characters and text that is not
    # Unicode have no place here.
    if not _USERNAME.fullmatch(username) or username != username.strip():
        raise InvalidRequest(
            "a username is 1-256 characters without ':', control characters, outer spaces or"
            " text that is not valid Unicode"
        )
    return username


@dataclass(frozen=True, slots=True)
class RealmPolicy:
    """A realm's anti-fatigue limits and defaults (stored as JSON, camelCase names)."""

    default_push_type: PushType = PushType.DEFAULT
    max_failure_count: int = 5  # wrong picks or codes that end a session `error`
    lock_after_failures: int = 5  # consecutive denials and failures that lock the user
    creates_per_minute: int = 10  # per user; beyond: 429 rateLimited
    one_pending_per_user: bool = True  # a new session cancels the user's pending one
    # Retention (docs/AUDIT.md "Retention"): days before the purge deletes finished sessions
    # with their notifications (and expired registrations), audit rows, settled outbox rows.
    session_retention_days: int = 30
    audit_retention_days: int = 365
    outbox_retention_days: int = 7

    def as_json(self) -> dict[str, object]:
        return {
            "defaultPushType": self.default_push_type.value,
            "maxFailureCount": self.max_failure_count,
            "lockAfterFailures": self.lock_after_failures,
            "createsPerMinute": self.creates_per_minute,
            "onePendingPerUser": self.one_pending_per_user,
            "sessionRetentionDays": self.session_retention_days,
            "auditRetentionDays": self.audit_retention_days,
            "outboxRetentionDays": self.outbox_retention_days,
        }


MAX_LOCK_AFTER_FAILURES = 100  # NIST SP 800-63B's ceiling on consecutive failures
MAX_RETENTION_DAYS = 3650
_POLICY_LIMITS = {
    "maxFailureCount": (1, 100),
    "lockAfterFailures": (1, MAX_LOCK_AFTER_FAILURES),
    "createsPerMinute": (1, 10_000),
    "sessionRetentionDays": (1, MAX_RETENTION_DAYS),
    "auditRetentionDays": (1, MAX_RETENTION_DAYS),
    "outboxRetentionDays": (1, MAX_RETENTION_DAYS),
}


def _bounded(data: Mapping[str, object], name: str, default: int) -> int:
    value = data.get(name, default)
    low, high = _POLICY_LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}")
    return value


def realm_policy(data: Mapping[str, object] | None) -> RealmPolicy:
    """A policy from its JSON; absent names keep their defaults. InvalidRequest names the
    first bad one."""
    defaults = RealmPolicy()
    if not data:
        return defaults
    unknown = set(data) - set(defaults.as_json())
    if unknown:
        raise InvalidRequest(f"unknown realm setting {sorted(unknown)[0]!r}")
    push_type = data.get("defaultPushType", defaults.default_push_type.value)
    if push_type not in {t.value for t in PushType}:
        names = ", ".join(t.value for t in PushType)
        raise InvalidRequest(f"defaultPushType must be one of {names}")
    one_pending = data.get("onePendingPerUser", defaults.one_pending_per_user)
    if not isinstance(one_pending, bool):
        raise InvalidRequest("onePendingPerUser must be true or false")
    return RealmPolicy(
        default_push_type=PushType(str(push_type)),
        max_failure_count=_bounded(data, "maxFailureCount", defaults.max_failure_count),
        lock_after_failures=_bounded(data, "lockAfterFailures", defaults.lock_after_failures),
        creates_per_minute=_bounded(data, "createsPerMinute", defaults.creates_per_minute),
        one_pending_per_user=one_pending,
        session_retention_days=_bounded(
            data, "sessionRetentionDays", defaults.session_retention_days
        ),
        audit_retention_days=_bounded(data, "auditRetentionDays", defaults.audit_retention_days),
        outbox_retention_days=_bounded(data, "outboxRetentionDays", defaults.outbox_retention_days),
    )


@dataclass(frozen=True, slots=True)
class Realm:
    name: str
    created_ms: int
    policy: RealmPolicy = RealmPolicy()


@dataclass(frozen=True, slots=True)
class User:
    id: str
    realm: str
    username: str
    password_hash: str | None
    created_ms: int
    failure_count: int = 0  # consecutive denials and failed answers
    locked_ms: int | None = None  # when the failures locked the user

    @property
    def locked(self) -> bool:
        return self.locked_ms is not None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    realm: str
    key_hash: str
    created_ms: int
    revoked_ms: int | None = None
    label: str | None = None
    last_used_ms: int | None = None  # to the minute (LAST_USED_EVERY_MS)


# A key's last use is written at most this often: never a write per request.
LAST_USED_EVERY_MS = 60_000
MAX_LABEL = 128
_LABEL = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,128}")


def check_label(label: str | None) -> str | None:
    """An operator's name for a key (`--label`): shown in lists, so printable text."""
    if label is None:
        return None
    if not _LABEL.fullmatch(label) or label != label.strip():
        raise InvalidRequest(
            f"a label is 1-{MAX_LABEL} characters without control characters or outer spaces"
        )
    return label


def new_api_key() -> str:
    """A 256-bit key shown once; only its hash is stored."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # The key carries 256 bits of entropy, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class RealmContents:
    """What keeps a realm from being removed (`pushgate realm remove`)."""

    users: int
    api_keys: int  # not revoked
    webhooks: int
    journeys: int  # imported trees

    def blockers(self) -> list[str]:
        counts = {
            "users": self.users,
            "API keys": self.api_keys,
            "webhooks": self.webhooks,
            "journeys": self.journeys,
        }
        return [f"{count} {name}" for name, count in counts.items() if count]


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What `pushgate user show` tells beside the user itself."""

    devices: int  # not removed
    pending_sessions: int
    recovery_codes: int
    opt_outs: tuple[str, ...]  # the MFA methods the user skips (journeys' Opt-out node)
