"""Wake-ups for relying parties waiting on a session (the "instant results" of face 3).

A process-local hub: the session service publishes a session id after every committed terminal
transition, and the store's change feed (PostgreSQL LISTEN/NOTIFY) publishes the ids other
processes finished. A waiter subscribes *before* it re-reads the session, so a wake-up between
the read and the wait is never lost.

A client between two requests subscribes to nothing (a journey's Push Wait between two
polls), so the hub also remembers when each session was last published, for `RECENT_MS`: the
next request asks `published_since` and needs no database read to learn it missed something.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

RECENT_MS = 60_000  # longer than any client's pause between two polls
RECENT_MAX = 100_000  # ids remembered at most (a few MB), the oldest forgotten first


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SessionEvents:
    def __init__(self, now_ms: Callable[[], int] = _wall_ms) -> None:
        self._waiters: dict[str, set[anyio.Event]] = {}
        self._now_ms = now_ms
        self._recent: OrderedDict[str, int] = OrderedDict()  # id → last published, oldest first

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[anyio.Event]:
        event = anyio.Event()
        self._waiters.setdefault(session_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiters.get(session_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[session_id]

    def publish(self, session_id: str) -> None:
        for event in self._waiters.get(session_id, ()):
            event.set()
        now = self._now_ms()
        recent = self._recent
        recent[session_id] = now
        recent.move_to_end(session_id)
        while recent and (
            len(recent) > RECENT_MAX or next(iter(recent.values())) < now - RECENT_MS
        ):
            recent.popitem(last=False)

    def published_since(self, session_id: str, since_ms: int) -> bool:
        """Whether the session was published at or after `since_ms` (within RECENT_MS)."""
        at = self._recent.get(session_id)
        return at is not None and at >= since_ms

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._waiters.values())
