"""PostgreSQL LISTEN/NOTIFY: how one pushgate process learns that another finished a session
(DESIGN.md "scale-out"). One dedicated asyncpg connection per process, reconnected on loss."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import asyncpg
from sqlalchemy.engine import URL

log = logging.getLogger("pushgate.store")
FINISHED_CHANNEL = "pushgate_session_finished"
NOTIFY_BATCH = 200  # ids per NOTIFY payload; PostgreSQL caps a payload at 8000 bytes
RECONNECT_SECONDS = 1.0
KEEPALIVE_SECONDS = 30.0


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _listen_once(url: URL, channel: str, publish: Callable[[str], None]) -> None:
    """Listen on one connection until it closes."""

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for session_id in payload.split(","):
            publish(session_id)

    closed = anyio.Event()
    connection = await asyncpg.connect(_dsn(url))
    try:
        connection.add_termination_listener(lambda _conn: closed.set())
        await connection.add_listener(channel, on_notify)
        while not closed.is_set():
            with anyio.move_on_after(KEEPALIVE_SECONDS):
                await closed.wait()
            if not closed.is_set():
                await connection.execute("SELECT 1")  # finds a silently dropped link
    finally:
        if not connection.is_closed():
            with anyio.CancelScope(shield=True):
                await connection.close()


async def listen_forever(url: URL, channel: str, publish: Callable[[str], None]) -> None:
    while True:
        try:
            await _listen_once(url, channel, publish)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "session listener lost its connection", extra={"fields": {"reason": str(exc)}}
            )
        await anyio.sleep(RECONNECT_SECONDS)
