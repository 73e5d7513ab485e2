"""The outbox worker: claims due rows under a lease and hands each to the handler of its kind
(DESIGN.md "Outbox row", issue 6 item 4).

A handler returns what happened (`None` for done, `Retry`, `GiveUp`) or raises; the worker
records it: done, due again after a backoff with jitter, or dead-lettered once the retry limit
is reached. Nothing is lost when a process dies mid-send: the lease runs out and another
worker claims the row again, so a handler may see a row twice and must be idempotent on
`row.key`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass

import anyio

from pushgate.clock import Clock
from pushgate.errors import PushgateError
from pushgate.outbox.handoff import Handoff
from pushgate.outbox.model import MAX_ERROR, OutboxRow, RetryPolicy
from pushgate.store.ports import Store

log = logging.getLogger("pushgate.outbox")


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again later: after `after_ms` if the other side said when (Retry-After), else
    after the policy's backoff."""

    reason: str
    after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Never try again (the other side refused for good): the row is dead-lettered."""

    reason: str


Outcome = Retry | GiveUp | None
Handler = Callable[[OutboxRow], Awaitable[Outcome]]


class Doorbell:
    """Wakes an idle worker at once when this process writes outbox rows."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout_seconds: float) -> None:
        with anyio.move_on_after(timeout_seconds):
            await self._event.wait()
        if self._event.is_set():
            self._event = anyio.Event()


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    lease_ms: int = 30_000
    batch: int = 50
    idle_seconds: float = 1.0  # how often an idle worker looks for rows other processes wrote


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        handlers: Mapping[str, Handler],
        *,
        policy: RetryPolicy | None = None,
        policies: Mapping[str, RetryPolicy] | None = None,
        settings: WorkerSettings | None = None,
        doorbell: Doorbell | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._handlers = dict(handlers)
        self._policy = policy or RetryPolicy()
        # A kind with its own schedule (webhooks: 11 attempts over a day) is not cut short by
        # the global limit.
        self._policies = dict(policies or {})
        self._settings = settings or WorkerSettings()
        self._doorbell = doorbell or Doorbell()
        # Rows this process writes leased to this worker, handed over after their commit.
        self._handoff = handoff or Handoff((), lease_ms=self._settings.lease_ms, capacity=0)
        self.owner = self._handoff.owner
        # Rows handled but not yet marked done: the next claim marks them (one round trip a
        # batch, not one a row). Until then their lease holds them; a crash re-sends them.
        self._done: list[int] = []
        self._interrupted: list[OutboxRow] = []  # handed over, stopped before their outcome

    @property
    def handoff(self) -> Handoff:
        return self._handoff

    async def run(self, beat: Callable[[], None] = lambda: None) -> None:
        """Handle rows until cancelled, calling `beat` after every round; storage errors
        propagate to the runtime, which restarts the worker after a backoff."""
        beat()
        if not self._handlers:
            await anyio.sleep_forever()
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._take_handed)
                try:
                    await self._claim(beat)
                except Exception as exc:  # raised as it is, not in a task group's ExceptionGroup
                    failure = exc
                    tasks.cancel_scope.cancel()
            if failure is not None:
                raise failure
        finally:
            left, self._interrupted = [*self._handoff.close(), *self._interrupted], []
            with anyio.CancelScope(shield=True), suppress(PushgateError):
                await self._settle()  # stopping: what was sent is not sent again
                await self._give_back(left)

    async def _claim(self, beat: Callable[[], None]) -> None:
        while True:
            claimed = await self.run_once(settle=False)
            beat()
            # A batch not full took every due row: wait for the doorbell (or the idle poll),
            # whose claim marks this batch done. A full one: claim again now.
            if claimed < self._settings.batch:
                await self._doorbell.wait(self._settings.idle_seconds)

    async def _take_handed(self) -> None:
        """Handle the rows handed over by this process's writers as they come (handoff.py)."""
        self._handoff.open()
        async with anyio.create_task_group() as sends:
            while True:
                for row in await self._handoff.take():
                    sends.start_soon(self._handle_handed, row)

    async def _handle_handed(self, row: OutboxRow) -> None:
        try:
            await self._handle(row)
        except anyio.get_cancelled_exc_class():
            self._interrupted.append(row)  # stopping mid-send: given back (it may be sent twice)
            raise
        except PushgateError as exc:
            # Its outcome could not be written: the lease runs out and a claim decides again.
            log.warning(
                "outbox outcome not recorded",
                extra={"fields": {"kind": row.kind, "row": row.id, "reason": exc.reason}},
            )
        finally:
            self._handoff.finished()

    async def _give_back(self, rows: Sequence[OutboxRow]) -> None:
        """Stopping: rows handed over and not handled are due now for any worker, instead of
        after their lease."""
        if not rows:
            return
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            for row in rows:
                await db.outbox.retry(row.id, self.owner, now, now, "the worker stopped")

    async def run_once(self, *, settle: bool = True) -> int:
        """Claim one batch and handle it, the rows concurrently; how many were claimed. With
        `settle`, the rows done are marked done before it returns (else by the next claim)."""
        now = self._clock.now_ms()
        done, self._done = self._done, []
        try:
            async with self._store.autocommit() as db:
                rows = await db.outbox.claim(
                    sorted(self._handlers),
                    self.owner,
                    now,
                    self._settings.lease_ms,
                    self._settings.batch,
                    done,
                )
        except BaseException:
            self._done = done + self._done  # not marked: the next claim tries again
            raise
        if len(rows) == 1:
            await self._handle(rows[0])  # no task group for one row: it costs as much
        elif rows:
            async with anyio.create_task_group() as tasks:
                for row in rows:
                    tasks.start_soon(self._handle, row)
        if settle:
            await self._settle()
        return len(rows)

    async def _settle(self) -> None:
        """Mark the rows handled so far done now."""
        if not self._done:
            return
        done, self._done = self._done, []
        try:
            async with self._store.autocommit() as db:
                await db.outbox.complete_many(done, self.owner, self._clock.now_ms())
        except BaseException:
            self._done = done + self._done
            raise

    async def _handle(self, row: OutboxRow) -> None:
        handler = self._handlers[row.kind]
        outcome: Outcome
        # A handler that outlives its lease would race the worker that claims the row next.
        with anyio.move_on_after(self._settings.lease_ms * 0.8 / 1000) as scope:
            try:
                outcome = await handler(row)
            except PushgateError as exc:
                outcome = Retry(exc.reason)
            except Exception as exc:
                log.exception(
                    "outbox handler failed",
                    extra={"fields": {"kind": row.kind, "row": row.id}},
                )
                outcome = Retry(f"{type(exc).__name__}: {exc}")
        if scope.cancelled_caught:
            outcome = Retry("handler timed out")
        await self._record(row, outcome)

    async def _record(self, row: OutboxRow, outcome: Outcome) -> None:
        now = self._clock.now_ms()
        policy = self._policies.get(row.kind, self._policy)
        fields: dict[str, object] = {"kind": row.kind, "row": row.id, "attempts": row.attempts}
        if outcome is None:
            self._done.append(row.id)
            return
        async with self._store.autocommit() as db:
            if isinstance(outcome, GiveUp) or policy.gives_up(row.attempts):
                kept = await db.outbox.bury(row.id, self.owner, now, outcome.reason[:MAX_ERROR])
                log.warning(
                    "outbox row dead-lettered",
                    extra={"fields": {**fields, "reason": outcome.reason}},
                )
            else:
                delay = outcome.after_ms
                if delay is None:
                    delay = policy.delay_ms(row.attempts)
                kept = await db.outbox.retry(
                    row.id, self.owner, now, now + delay, outcome.reason[:MAX_ERROR]
                )
                log.info(
                    "outbox row will be retried",
                    extra={"fields": {**fields, "reason": outcome.reason, "delayMs": delay}},
                )
        if not kept:
            # The lease ran out and another worker has the row: it decides now.
            log.warning("outbox lease lost", extra={"fields": fields})
