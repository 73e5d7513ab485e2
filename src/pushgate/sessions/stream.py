"""A session's changes as they happen: what `GET /v1/push/sessions/{id}/events` sends (issue 7,
"results without polling").

`watch` yields the session's `/v1` JSON (`wire.session_json`) first as it is, then once more for
every change, and ends after the first terminal one. It re-reads the session only when woken:
by the hub (`SessionEvents`: this process's transitions, other processes' through PostgreSQL
LISTEN/NOTIFY), at the session's deadline (the read writes the expiry down), and after
`recheck_seconds` without a word, for what nobody announces (SQLite shared by several
processes, a listener reconnecting, another process's non-terminal change). A wake-up that
changed nothing visible yields nothing, so a publisher may announce any change at all.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anyio

from pushgate.clock import Clock
from pushgate.sessions.events import SessionEvents
from pushgate.sessions.service import SessionService
from pushgate.sessions.wire import session_json

SessionJson = dict[str, object]


async def watch(
    sessions: SessionService,
    events: SessionEvents,
    clock: Clock,
    realm: str,
    session_id: str,
    *,
    recheck_seconds: float,
) -> AsyncGenerator[SessionJson, None]:
    """The session's JSON now and after each change, until it is terminal.

    Raises NotFound (before yielding anything) for a session the realm does not have. Run it
    under `contextlib.aclosing`: the hub subscription is held while the consumer handles an
    item, so that a change made meanwhile is not missed, and released when the generator closes.
    """
    previous: SessionJson | None = None
    while True:
        # Subscribed before the read: a change committed between the read and the wait
        # still wakes it.
        async with events.subscribe(session_id) as woken:
            session = await sessions.get(realm, session_id)
            now = clock.now_ms()
            current = session_json(session, now)
            if current != previous:
                previous = current
                yield current
            if session.status_at(now).terminal:
                return
            until_deadline = (session.expires_ms - clock.now_ms()) / 1000
            with anyio.move_on_after(max(0.0, min(recheck_seconds, until_deadline))):
                await woken.wait()
