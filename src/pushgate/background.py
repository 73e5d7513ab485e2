"""The background runtime: every long-running task of a process, in one anyio task group
(DESIGN.md layer 5, STYLE.md §15): the expiry sweeper, the cross-process listener, the
outbox worker and the retention purge. Started by the app's lifespan, or without HTTP by
`pushgate worker`.

Each task is supervised: any error (a lost database, a network failure, a bug) is logged in
one line and the task restarts after a backoff that grows to `MAX_BACKOFF_SECONDS`, so no
failure stops the others or the process. `health()` tells what each task is doing, for the
health check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from pushgate.errors import PushgateError
from pushgate.retention.service import RetentionService
from pushgate.services import Services

log = logging.getLogger("pushgate.background")
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


# A task gets a `beat` to call whenever it has done a round of work: that is what marks it
# running again after a failure.
Task = Callable[[Callable[[], None]], Awaitable[None]]


@dataclass(slots=True)
class TaskHealth:
    state: str = "starting"  # starting | running | retrying
    reason: str | None = None
    since: float = 0.0  # time.time() of the last change of state
    failures: int = 0  # consecutive

    def as_json(self) -> dict[str, object]:
        return {"state": self.state, "reason": self.reason, "failures": self.failures}


class Background:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._tasks: dict[str, Task] = {
            "expiry": self._sweep,
            "listener": self._listen,
            "outbox": services.outbox_worker.run,
            "webhooks": services.webhooks.refresher(),  # the subscriptions' snapshot
            "pushes": services.pushes.keep,  # owns the push transports, closes them at the end
            "purge": RetentionService(  # old sessions, audit and outbox rows (docs/AUDIT.md)
                services.store,
                services.clock,
                batch=services.settings.purge_batch,
                interval_seconds=services.settings.purge_interval_seconds,
            ).run,
        }
        self._health = {name: TaskHealth(since=time.time()) for name in self._tasks}
        self.started = False

    def health(self) -> dict[str, TaskHealth]:
        return dict(self._health)

    @property
    def healthy(self) -> bool:
        return self.started and all(h.state == "running" for h in self._health.values())

    async def run(self) -> None:
        """Run every task until cancelled."""
        async with anyio.create_task_group() as tasks:
            for name, task in self._tasks.items():
                tasks.start_soon(self._supervise, name, task, name=f"pushgate-{name}")
            self.started = True

    def _mark(self, name: str, state: str, reason: str | None = None) -> None:
        health = self._health[name]
        if health.state != state:
            health.since = time.time()
        health.state, health.reason = state, reason
        health.failures = health.failures + 1 if state == "retrying" else 0

    async def _supervise(self, name: str, task: Task) -> None:
        def beat() -> None:
            if self._health[name].state != "running":
                self._mark(name, "running")

        while True:
            try:
                await task(beat)
                reason = "stopped"  # no task returns by design; restart it all the same
            except PushgateError as exc:
                reason = exc.reason
            except Exception as exc:
                # Unexpected: the traceback once, at the first failure of a run of them.
                if self._health[name].failures == 0:
                    log.exception("background task crashed", extra={"fields": {"task": name}})
                reason = f"{type(exc).__name__}: {exc}"
            self._mark(name, "retrying", reason)
            failures = self._health[name].failures
            delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (failures - 1))
            log.warning(
                "background task failed; retrying",
                extra={"fields": {"task": name, "reason": reason, "retryInSeconds": delay}},
            )
            await anyio.sleep(delay)

    async def _sweep(self, beat: Callable[[], None]) -> None:
        sessions = self._services.sessions
        while True:
            while await sessions.expire_due():
                pass
            beat()
            await anyio.sleep(self._services.settings.expiry_sweep_seconds)

    async def _listen(self, beat: Callable[[], None]) -> None:
        beat()  # the listener reconnects by itself and logs each loss
        await self._services.store.watch_finished(self._services.events.publish)


async def run_worker(services: Services) -> None:
    """The runtime without HTTP (`pushgate worker`), until cancelled."""
    await Background(services).run()
