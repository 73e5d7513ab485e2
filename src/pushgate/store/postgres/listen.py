"""PostgreSQL LISTEN/NOTIFY: how one pushgate process learns that another finished a session
(DESIGN.md "scale-out"). One dedicated connection per process, reconnected on loss.

A lost listener is not an error of anyone's request: it is logged as one warning line (no
traceback) and retried with a growing delay until the database answers again. Notifications
sent while it is away are not replayed; waiters re-read their session on a timer for that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import anyio
import asyncpg

log = logging.getLogger("pushgate.store")
FINISHED_CHANNEL = "pushgate_session_finished"
NOTIFY_BATCH = 200  # ids per NOTIFY payload; PostgreSQL caps a payload at 8000 bytes
RECONNECT_SECONDS = 0.5  # the first retry; doubled per failed attempt up to the cap
RECONNECT_CAP_SECONDS = 30.0
KEEPALIVE_SECONDS = 30.0
KEEPALIVE_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 2.0


def batches(ids: list[str]) -> list[str]:
    """NOTIFY payloads: the ids, comma-joined, at most NOTIFY_BATCH per payload."""
    return [",".join(ids[i : i + NOTIFY_BATCH]) for i in range(0, len(ids), NOTIFY_BATCH)]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


async def _listen_once(
    dsn: str,
    channel: str,
    publish: Callable[[str], None],
    connect_timeout: float,
    on_connected: Callable[[], None],
) -> None:
    """Listen on one connection until it closes (returns) or fails (raises)."""

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for session_id in payload.split(","):
            publish(session_id)

    closed = anyio.Event()
    connection = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        connection.add_termination_listener(lambda _conn: closed.set())
        await connection.add_listener(channel, on_notify)
        on_connected()
        while not closed.is_set():
            with anyio.move_on_after(KEEPALIVE_SECONDS):
                await closed.wait()
            if not closed.is_set():
                # Finds a link that dropped without a word (a NAT, a dead host).
                await connection.execute("SELECT 1", timeout=KEEPALIVE_TIMEOUT_SECONDS)
    finally:
        if not connection.is_closed():
            # On failure close() has aborted the socket itself.
            with anyio.CancelScope(shield=True), suppress(Exception):
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)


async def listen_forever(
    dsn: str, channel: str, publish: Callable[[str], None], *, connect_timeout: float
) -> None:
    """Until cancelled: never raises anything else."""
    delay = RECONNECT_SECONDS
    connected = False  # since the last warning
    warned = False

    def on_connected() -> None:
        nonlocal connected, warned, delay
        if warned:
            log.info("session listener reconnected")
        connected, warned, delay = True, False, RECONNECT_SECONDS

    while True:
        try:
            await _listen_once(dsn, channel, publish, connect_timeout, on_connected)
            reason = "the connection closed"
        except Exception as exc:  # any loss at all: the listener must outlive it
            reason = _reason(exc)
        if connected or not warned:
            log.warning(
                "session listener lost its connection; reconnecting"
                if connected
                else "session listener cannot connect; retrying",
                extra={"fields": {"reason": reason}},
            )
            warned = True
        else:
            log.debug("session listener still cannot connect", extra={"fields": {"reason": reason}})
        if connected:
            connected, delay = False, RECONNECT_SECONDS
        await anyio.sleep(delay)
        delay = min(delay * 2, RECONNECT_CAP_SECONDS)
