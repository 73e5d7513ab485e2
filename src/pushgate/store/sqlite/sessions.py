"""Push sessions and their notifications on SQLite (`sessions/ports.py`): the hot path.

`add`, `commit` and `expire_due` each run in one BEGIN IMMEDIATE … COMMIT (or in the caller's
`transaction()`): the session or its transition, its audit entry and its outbox rows commit
together. A transition's compare-and-set is its first write and decides alone, so a loser
writes nothing. Other processes learn of a finished session by re-reading it (SQLite has no
channel between processes). Stored statuses are the values of `SessionStatus`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence

import anyio.lowlevel

from pushgate.audit.model import AuditEntry
from pushgate.outbox.model import LeasedIds, OutboxMessage
from pushgate.sessions.machine import Transition
from pushgate.sessions.model import Notification, PushSession
from pushgate.sessions.ports import DevicePending, OpenNotification, UserLimits
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite.audit import append as append_audit
from pushgate.store.sqlite.columns import Insert, Select, returning
from pushgate.store.sqlite.connection import Db
from pushgate.store.sqlite.outbox import add as add_outbox


@functools.cache
def _compare_and_set(before_deadline: bool, answering: bool) -> str:
    """The transition's UPDATE: `?1` status, `?2` detail, `?3` now, `?4` id, `?5` realm,
    `?6` the deny reason, `?7` the answered notification. It checks every condition before it
    writes anything."""
    text = (
        "UPDATE sessions SET status = ?1, detail = ?2, updated_ms = ?3, deny_reason = ?6"
        " WHERE id = ?4 AND realm = ?5 AND status = 'PENDING'"
    )
    if before_deadline:
        text += " AND expires_ms > ?3"
    if answering:
        text += (
            " AND EXISTS (SELECT 1 FROM notifications n WHERE n.message_id = ?7"
            " AND n.session_id = sessions.id AND n.answered_ms IS NULL)"
        )
    return text


_ANSWER = "UPDATE notifications SET answered_ms = ?1 WHERE message_id = ?2"


def _apply(conn: sqlite3.Connection, move: Transition) -> bool:
    """A transition inside the caller's write; False, with nothing written, if it lost."""
    s = move.session
    now = s.updated_ms
    answering = move.message_id is not None
    params: tuple[object, ...] = (s.status.value, s.detail, now, s.id, s.realm, s.deny_reason)
    if answering:
        params += (move.message_id,)
    if conn.execute(_compare_and_set(move.before_deadline, answering), params).rowcount != 1:
        return False
    if answering:
        # Found open by the compare-and-set, under the same write lock.
        conn.execute(_ANSWER, (now, move.message_id))
    append_audit(conn, move.audit)
    add_outbox(conn, move.outbox, now)
    return True


_ADD_SESSION = Insert(t.sessions)
_ADD_NOTIFICATION = Insert(t.notifications)


class SqliteSessions:
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    async def add(
        self,
        session: PushSession,
        notifications: Sequence[Notification],
        audit: AuditEntry,
        outbox: Sequence[OutboxMessage] = (),
    ) -> LeasedIds:
        row = _ADD_SESSION.params(rows.session_values(session))
        fanout = [_ADD_NOTIFICATION.params(rows.notification_values(n)) for n in notifications]

        def work(conn: sqlite3.Connection) -> LeasedIds:
            conn.execute(_ADD_SESSION.sql, row)
            if fanout:
                conn.executemany(_ADD_NOTIFICATION.sql, fanout)
            append_audit(conn, audit)
            return add_outbox(conn, outbox, session.created_ms)

        return await self._db.write(work)

    _GET = Select("SELECT {s} FROM sessions s WHERE s.id = ? AND s.realm = ?", s=t.sessions)

    async def get(self, realm: str, session_id: str) -> PushSession | None:
        found = await self._db.fetch(self._GET.sql, (session_id, realm))
        return rows.session(self._GET.record(found[0])) if found else None

    _OPEN_NOTIFICATION = Select(
        "SELECT {n}, {d}, {s}, u.failure_count FROM notifications n"
        " JOIN devices d ON d.id = n.device_id JOIN sessions s ON s.id = n.session_id"
        " JOIN users u ON u.id = d.user_id"
        " WHERE n.message_id = ? AND s.realm = ?",
        n=t.notifications,
        d=t.devices,
        s=t.sessions,
    )

    async def open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        found = await self._db.fetch(self._OPEN_NOTIFICATION.sql, (message_id, realm))
        if not found:
            return None
        n, d, s = self._OPEN_NOTIFICATION.split(found[0])
        return OpenNotification(
            rows.notification(n),
            rows.device(d, self._sealer),
            rows.session(s),
            found[0][-1],
        )

    async def commit(self, transition: Transition) -> bool:
        return await self._db.write(lambda conn: _apply(conn, transition))

    _RECORD_FAILURE = Select(
        "UPDATE sessions SET failure_count = failure_count + 1, updated_ms = ?2"  # noqa: S608 - schema names
        f" WHERE id = ?1 AND status = 'PENDING' AND expires_ms > ?2 {returning(t.sessions)}",
        s=t.sessions,
    )

    async def record_failure(self, session_id: str, now_ms: int) -> PushSession | None:
        query = self._RECORD_FAILURE
        found = await self._db.write(
            lambda conn: conn.execute(query.sql, (session_id, now_ms)).fetchall()
        )
        return rows.session(query.record(found[0])) if found else None

    _UNCOUNT_NOTIFICATION = (
        "UPDATE sessions SET notification_count = notification_count - 1"
        " WHERE id = ? AND notification_count > 0 RETURNING notification_count"
    )

    async def uncount_notification(self, session_id: str) -> int | None:
        query = self._UNCOUNT_NOTIFICATION
        found = await self._db.write(lambda conn: conn.execute(query, (session_id,)).fetchall())
        return int(found[0][0]) if found else None

    async def lock_idempotency_key(self, realm: str, key: str) -> None:
        """A transaction on SQLite holds the one write lock already (BEGIN IMMEDIATE)."""

    async def lock_user(self, realm: str, username: str) -> None:
        """A transaction on SQLite holds the one write lock already (BEGIN IMMEDIATE)."""

    # One row per pending session (on the partial index), or one row of NULLs; each row ends
    # with the creation time of the N-th newest session since the window opened.
    _USER_LIMITS = Select(
        "SELECT {s}, (SELECT created_ms FROM sessions WHERE realm = ?1 AND username = ?2"
        " AND created_ms > ?3 ORDER BY created_ms DESC LIMIT 1 OFFSET ?4 - 1)"
        " FROM (SELECT 1) AS one LEFT JOIN sessions s ON s.realm = ?1 AND s.username = ?2"
        " AND s.status = 'PENDING' ORDER BY s.created_ms",
        s=t.sessions,
    )

    async def user_limits(self, realm: str, username: str, since_ms: int, limit: int) -> UserLimits:
        query = self._USER_LIMITS
        found = await self._db.fetch(query.sql, (realm, username, since_ms, limit))
        pending = [rows.session(query.record(r[:-1])) for r in found if r[0] is not None]
        return UserLimits(found[0][-1], pending)

    _FIND_KEY = (
        "SELECT request_hash, session_id, created_ms FROM idempotency_keys"
        " WHERE realm = ? AND key = ?"
    )
    _ADD_KEY = Insert(
        t.idempotency_keys,
        suffix="ON CONFLICT (realm, key) DO UPDATE SET request_hash = excluded.request_hash,"
        " session_id = excluded.session_id, created_ms = excluded.created_ms",
    )

    async def find_idempotency_key(self, realm: str, key: str) -> tuple[str, str, int] | None:
        found = await self._db.fetch(self._FIND_KEY, (realm, key))
        return (found[0][0], found[0][1], found[0][2]) if found else None

    async def add_idempotency_key(
        self, realm: str, key: str, request_hash: str, session_id: str, now_ms: int
    ) -> None:
        params = (realm, key, request_hash, session_id, now_ms)
        await self._db.write(lambda conn: conn.execute(self._ADD_KEY.sql, params))

    # The device, its user and its open notifications of live sessions in one read; the LEFT
    # JOIN keeps the device's row when nothing waits for it. The device's index of open
    # notifications drives it (a nested join would first collect every live session).
    _PENDING_FOR_DEVICE = Select(
        "SELECT {d}, {u}, {n}, {s} FROM devices d JOIN users u ON u.id = d.user_id"
        " LEFT JOIN notifications n ON n.device_id = d.id AND n.answered_ms IS NULL"
        " AND EXISTS (SELECT 1 FROM sessions live WHERE live.id = n.session_id"
        " AND live.status = 'PENDING' AND live.expires_ms > ?3)"
        " LEFT JOIN sessions s ON s.id = n.session_id"
        " WHERE d.realm = ?1 AND d.mechanism_uid = ?2"
        " ORDER BY n.created_ms, n.message_id LIMIT ?4",
        d=t.devices,
        u=t.users,
        n=t.notifications,
        s=t.sessions,
    )

    async def pending_for_device(
        self, realm: str, mechanism_uid: str, now_ms: int, limit: int
    ) -> DevicePending | None:
        # At least one row, or an unknown device and a zero limit would look alike.
        params = (realm, mechanism_uid, now_ms, max(limit, 1))
        found = await self._db.fetch(self._PENDING_FOR_DEVICE.sql, params)
        if not found:
            return None
        parts = [self._PENDING_FOR_DEVICE.split(r) for r in found]
        device, user, _, _ = parts[0]
        pending = [
            (rows.notification(n), rows.session(s))
            for _, _, n, s in parts[: max(limit, 0)]
            if n["message_id"] is not None  # the LEFT JOIN found nothing open
        ]
        return DevicePending(rows.device(device, self._sealer), rows.user(user), pending)

    _ANY_DUE = "SELECT 1 FROM sessions WHERE status = 'PENDING' AND expires_ms <= ? LIMIT 1"
    _DUE = Select(
        "SELECT {s} FROM sessions s WHERE s.status = 'PENDING' AND s.expires_ms <= ?"
        " ORDER BY s.expires_ms LIMIT ?",
        s=t.sessions,
    )

    async def expire_due(
        self, now_ms: int, limit: int, expire: Callable[[PushSession], Transition]
    ) -> Sequence[Transition]:
        # Statements here never wait, so a sweeper calling this in a loop through a backlog
        # would never let its event loop serve anything else: yield once per batch.
        await anyio.lowlevel.checkpoint()
        # Every process sweeps every second: look before taking the write lock.
        if limit <= 0 or not await self._db.fetch(self._ANY_DUE, (now_ms,)):
            return []

        def work(conn: sqlite3.Connection) -> list[Transition]:
            due = conn.execute(self._DUE.sql, (now_ms, limit)).fetchall()
            moves = [expire(rows.session(self._DUE.record(r))) for r in due]
            return [move for move in moves if _apply(conn, move)]

        return await self._db.write(work)
