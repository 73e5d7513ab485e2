"""What the purge deletes, as values (docs/AUDIT.md "Retention"). Pure.

A realm's policy (`accounts.model.RealmPolicy`) gives three ages; `cutoffs` turns them into
instants: rows older than those go. Pending sessions never go, whatever their age (the
sweeper expires them first); nor do pending outbox rows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from pushgate.accounts.model import RealmPolicy

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """One realm's instants (epoch ms): rows last changed before them are purged."""

    realm: str
    sessions_ms: int  # finished sessions, their notifications; registrations past deadline
    audit_ms: int
    outbox_ms: int  # delivered (`done`) and `dead` rows


def cutoffs(realm: str, policy: RealmPolicy, now_ms: int) -> Cutoffs:
    return Cutoffs(
        realm,
        sessions_ms=now_ms - policy.session_retention_days * DAY_MS,
        audit_ms=now_ms - policy.audit_retention_days * DAY_MS,
        outbox_ms=now_ms - policy.outbox_retention_days * DAY_MS,
    )


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """Rows deleted (or, in a dry run, that would be) of each kind."""

    sessions: int = 0
    notifications: int = 0
    registrations: int = 0
    outbox: int = 0
    audit: int = 0
    idempotency_keys: int = 0

    def __add__(self, other: PurgeCounts) -> PurgeCounts:
        return PurgeCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(PurgeCounts))
        )

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(PurgeCounts))

    def full(self, batch: int) -> bool:
        """Whether some kind filled its batch: there may be more of it to delete."""
        kinds = (self.sessions, self.registrations, self.outbox, self.audit)
        return any(count >= batch for count in (*kinds, self.idempotency_keys))

    def as_json(self) -> dict[str, int]:
        return {
            "sessions": self.sessions,
            "notifications": self.notifications,
            "registrations": self.registrations,
            "outbox": self.outbox,
            "audit": self.audit,
            "idempotencyKeys": self.idempotency_keys,
        }
