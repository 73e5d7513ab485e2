"""Wake-ups for relying parties waiting on a session (the "instant results" of face 3).

A process-local hub: the session service publishes a session id after every committed terminal
transition, and the store's change feed (PostgreSQL LISTEN/NOTIFY) publishes the ids other
processes finished. A waiter subscribes *before* it re-reads the session, so a wake-up between
the read and the wait is never lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class SessionEvents:
    def __init__(self) -> None:
        self._waiters: dict[str, set[anyio.Event]] = {}

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

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._waiters.values())
