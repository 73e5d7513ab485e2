"""Rows a process sends itself, without claiming them back (docs/PERFORMANCE.md "Issue 8").

A row that the writing process's own worker will send at once need not wait for that worker to
claim it and read its change back: it is written already leased to the worker (the lease is
its first attempt), and after the commit it is handed over in memory with the change it
follows (`OutboxRow.context`). The lease is what keeps it safe: if the process dies between
the commit and the send, or its worker stops, the row is any worker's once the lease runs out
(at most 30 s), as after a crash mid-send.

Rows are leased only while this process's worker runs, only of the kinds whose handler uses
the context, only when due at once, and about `capacity` at a time: past that a row is written
free for any worker of the cluster to claim.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Sequence

import anyio

from pushgate.outbox.model import Lease, LeasedIds, OutboxMessage, OutboxRow, OutboxState


class Handoff:
    def __init__(self, kinds: Collection[str], *, lease_ms: int, capacity: int) -> None:
        self.owner = f"worker-{uuid.uuid4()}"  # the lease owner of the worker that takes them
        self._kinds = frozenset(kinds)
        self._lease_ms = lease_ms
        self._capacity = capacity
        self._open = False  # the worker is taking rows
        self._queued: list[OutboxRow] = []
        self._busy = 0  # handed over and not finished
        self._ready = anyio.Event()

    def lease(self, messages: Sequence[OutboxMessage], now_ms: int) -> tuple[OutboxMessage, ...]:
        """The messages, with those this process will send itself leased to its worker."""
        room = self._capacity - self._busy if self._open else 0
        leased: list[OutboxMessage] = []
        for message in messages:
            if room > 0 and message.kind in self._kinds and message.not_before_ms is None:
                message = dataclasses.replace(
                    message, lease=Lease(self.owner, now_ms + self._lease_ms)
                )
                room -= 1
            leased.append(message)
        return tuple(leased)

    def hand(
        self, messages: Sequence[OutboxMessage], ids: LeasedIds, now_ms: int, context: object
    ) -> bool:
        """After the commit of `messages` (from `lease`): give the worker the rows written
        leased. True if it has them all, else the rest wait for a claim (ring the doorbell)."""
        handed = 0
        for m in messages:
            row_id = ids.get((m.kind, m.key))
            if m.lease is None or row_id is None or not self._open:
                continue  # not leased, or its (kind, key) was there already: claimed as usual
            self._queued.append(
                OutboxRow(
                    id=row_id,
                    kind=m.kind,
                    realm=m.realm,
                    key=m.key,
                    payload=m.payload,
                    state=OutboxState.PENDING,
                    attempts=1,
                    next_attempt_ms=now_ms,
                    lease_owner=m.lease.owner,
                    lease_until_ms=m.lease.until_ms,
                    last_error=None,
                    created_ms=now_ms,
                    updated_ms=now_ms,
                    context=context,
                )
            )
            handed += 1
        if handed:
            self._busy += handed
            self._ready.set()
        return handed == len(messages)

    # the worker's side ----------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> list[OutboxRow]:
        """Stop taking rows; those handed over and not taken yet (their lease still holds)."""
        self._open = False
        left, self._queued = self._queued, []
        self._busy -= len(left)
        return left

    async def take(self) -> list[OutboxRow]:
        """The rows handed over since the last call, waiting for one."""
        while not self._queued:
            await self._ready.wait()
            self._ready = anyio.Event()
        rows, self._queued = self._queued, []
        return rows

    def finished(self) -> None:
        """One row taken is handled (done, to be retried, or dead)."""
        self._busy -= 1
