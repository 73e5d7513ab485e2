"""Outbox messages, their rows and the retry policy (DESIGN.md "Outbox row"). Pure.

A message is written in the same transaction as the change it follows, so it exists if and
only if the change committed. Its idempotency key is unique per kind: writing the same message
twice keeps the first. A worker claims due rows under a lease; a row whose lease runs out (its
process died mid-send) is claimed again by another worker, so handlers must tolerate a repeat
(the idempotency key travels with the row for that purpose). A row can also be written already
leased, to the worker of the process that writes it, which then sends it without a claim
(outbox/handoff.py).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MAX_KIND = 64
MAX_KEY = 200
MAX_ERROR = 1000


class OutboxState(StrEnum):
    PENDING = "pending"  # due at `next_attempt_ms`, unless a lease is held
    DONE = "done"
    DEAD = "dead"  # gave up: the retry limit was reached or the handler refused it for good


@dataclass(frozen=True, slots=True)
class Lease:
    owner: str
    until_ms: int


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A new outbox row, as a transition asks for it."""

    kind: str
    realm: str
    key: str  # idempotency key, unique per kind
    payload: Mapping[str, object] = field(default_factory=dict)
    not_before_ms: int | None = None  # None: due at once
    lease: Lease | None = None  # written leased: this process's worker sends it (handoff.py)

    def __post_init__(self) -> None:
        # The columns' sizes: a follower's bug, refused before anything is written.
        if not 0 < len(self.kind) <= MAX_KIND or not 0 < len(self.key) <= MAX_KEY:
            raise ValueError(f"outbox kind or key empty or too long: {self.kind!r}")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    realm: str
    key: str
    payload: Mapping[str, object]
    state: OutboxState
    attempts: int  # claims so far, this one included
    next_attempt_ms: int
    lease_owner: str | None
    lease_until_ms: int | None
    last_error: str | None
    created_ms: int
    updated_ms: int
    # What the process that wrote the row knew of its change (a handoff), so that its handler
    # need not read it back; None for a claimed row. Never stored.
    context: object = field(default=None, compare=False, repr=False)


# The ids of the rows a write made leased, by (kind, key): what a handoff needs to send them.
LeasedIds = Mapping[tuple[str, str], int]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
    Jitter"): attempt n waits a random time up to min(cap, base * 2**(n-1))."""

    base_ms: int = 1_000
    cap_ms: int = 300_000
    max_attempts: int = 10

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay_ms(self, attempts: int, rng: random.Random | None = None) -> int:
        ceiling = min(self.cap_ms, self.base_ms * 2 ** max(0, attempts - 1))
        # The floor keeps a failing handler from being retried in a tight loop.
        return max(self.base_ms // 4, int((rng or random).uniform(0, ceiling)))
