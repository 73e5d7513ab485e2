"""Push sessions and their notifications on PostgreSQL (`sessions/ports.py`, seed 003).

The hot path is one round trip per call and no BEGIN/COMMIT (docs/PERFORMANCE.md "SQL per
cycle"): a creation is one statement (session, notifications, audit entry, outbox rows), and so
is a transition (compare-and-set, the answered notification, audit entry, outbox rows and the
NOTIFY that wakes other processes). A statement is atomic on its own, and data-modifying CTEs
see each other only through RETURNING, so each write below is made conditional on the
compare-and-set's RETURNING: a loser writes nothing.

READ COMMITTED is enough: an UPDATE re-checks its WHERE clause against the row a concurrent
writer committed, so of two transitions of one session exactly one wins (security.md §7), and
a NOTIFY is delivered only if its statement commits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from pushgate.audit.model import AuditEntry
from pushgate.outbox.model import LeasedIds, OutboxMessage
from pushgate.sessions.machine import Transition
from pushgate.sessions.model import Notification, PushSession, SessionStatus
from pushgate.sessions.ports import DevicePending, OpenNotification, Sessions, UserLimits
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.postgres import sql
from pushgate.store.postgres.audit import audit_args
from pushgate.store.postgres.listen import FINISHED_CHANNEL, batches
from pushgate.store.postgres.outbox import outbox_arrays
from pushgate.store.postgres.sql import (
    AUDIT_COLUMNS,
    OUTBOX_COLUMNS,
    Db,
    arrays,
    cast,
    columns,
    insert,
    insert_outbox,
    own_columns,
    placeholders,
    split,
    unnest,
)
from pushgate.store.sealing import Sealer

PENDING = SessionStatus.PENDING.value
SESSION_COLUMNS = len(own_columns(t.sessions))
NOTIFICATION_COLUMNS = own_columns(t.notifications)
AUDIT_INSERT = f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)})"


def _audit_select(first: int) -> str:
    """The audit entry's parameters as a SELECT list, cast: nothing else types them there."""
    return ", ".join(f"${first + i}::{cast(t.audit, c)}" for i, c in enumerate(AUDIT_COLUMNS))


GET = "SELECT * FROM sessions WHERE id = $1 AND realm = $2"
OPEN_NOTIFICATION = (
    f"SELECT {columns(t.notifications, 'n')}, {columns(t.devices, 'd')},"
    f" {columns(t.sessions, 's')}, u.failure_count AS user_failures"
    " FROM notifications n JOIN devices d ON d.id = n.device_id"
    " JOIN sessions s ON s.id = n.session_id JOIN users u ON u.id = d.user_id"
    " WHERE n.message_id = $1 AND s.realm = $2"
)
PENDING_FOR_DEVICE = (
    f"SELECT {columns(t.devices, 'd')}, {columns(t.users, 'u')},"
    f" {columns(t.notifications, 'n')}, {columns(t.sessions, 's')}"
    " FROM devices d JOIN users u ON u.id = d.user_id"
    " LEFT JOIN (notifications n JOIN sessions s ON s.id = n.session_id"
    f" AND s.status = '{PENDING}' AND s.expires_ms > $3)"
    " ON n.device_id = d.id AND n.answered_ms IS NULL"
    " WHERE d.realm = $1 AND d.mechanism_uid = $2"
    " ORDER BY n.created_ms, n.message_id LIMIT $4"
)


_RETURNING_LEASED = "RETURNING id, kind, idempotency_key, lease_owner IS NOT NULL AS leased"


@functools.cache
def add_statement(with_outbox: bool) -> str:
    """$1.. the session, then one array per notification column, then the audit entry, then
    (with outbox rows) one array per outbox column."""
    first_audit = SESSION_COLUMNS + len(NOTIFICATION_COLUMNS) + 1
    ctes = [
        f"s AS ({insert(t.sessions)})",
        f"n AS (INSERT INTO notifications ({', '.join(NOTIFICATION_COLUMNS)})"
        f" {unnest(t.notifications, SESSION_COLUMNS + 1)})",
    ]
    audit = f"{AUDIT_INSERT} VALUES ({placeholders(first_audit, len(AUDIT_COLUMNS))})"
    if not with_outbox:
        return f"WITH {', '.join(ctes)} {audit}"
    first_outbox = first_audit + len(AUDIT_COLUMNS)
    ctes.append(f"a AS ({audit})")
    ctes.append(f"o AS ({insert_outbox(first_outbox)} {_RETURNING_LEASED})")
    # The rows written leased come back: the handoff sends them by id (outbox/handoff.py).
    return f"WITH {', '.join(ctes)} SELECT id, kind, idempotency_key FROM o WHERE leased"


# commit: $1 id, $2 status, $3 detail, $4 now, $5 before_deadline, $6.. the audit entry,
# then the deny reason, then the message id (with one), then the outbox arrays (with rows).
_COMMIT_FIXED = 6 + len(AUDIT_COLUMNS)  # the deny reason's number
_DENY = f"${_COMMIT_FIXED}"
_MESSAGE = f"${_COMMIT_FIXED + 1}"


@functools.cache
def commit_statement(with_message: bool, with_outbox: bool) -> str:
    """The compare-and-set of a transition with everything that must commit with it.

    With a message id, the notification is locked first (FOR UPDATE waits for a concurrent
    answer of the same notification, then re-reads it) and must still be unanswered for the
    session to move: so an answered notification writes nothing at all, and once the session
    has moved, the notification (locked, unanswered) is answered in the same statement. Lock
    order is notification, then session, everywhere: no deadlock between two answers.
    """
    ctes = []
    won_if = ""
    if with_message:
        ctes.append(
            f"unanswered AS (SELECT message_id FROM notifications WHERE message_id = {_MESSAGE}"
            " AND session_id = $1 AND answered_ms IS NULL FOR UPDATE)"
        )
        won_if = " AND EXISTS (SELECT 1 FROM unanswered)"
    ctes.append(
        "s AS (UPDATE sessions SET status = $2, detail = $3, updated_ms = $4,"
        f" deny_reason = {_DENY}"
        f" WHERE id = $1 AND status = '{PENDING}' AND ($5 = false OR expires_ms > $4){won_if}"
        " RETURNING id)"
    )
    if with_message:
        ctes.append(
            "n AS (UPDATE notifications SET answered_ms = $4"
            f" WHERE message_id = {_MESSAGE} AND EXISTS (SELECT 1 FROM s))"
        )
    ctes.append(f"a AS ({AUDIT_INSERT} SELECT {_audit_select(6)} FROM s)")
    if with_outbox:
        first = _COMMIT_FIXED + (2 if with_message else 1)
        ctes.append(f"o AS ({insert_outbox(first, when='EXISTS (SELECT 1 FROM s)')})")
    # A row comes back only if the compare-and-set won.
    return f"WITH {', '.join(ctes)} SELECT pg_notify('{FINISHED_CHANNEL}', id) FROM s"


# Expiry takes a transaction: the due sessions are locked first (SKIP LOCKED: a session being
# answered right now is left to its answer), the caller's `expire` makes their transitions,
# and one statement writes them all: sessions, audit rows, outbox rows, NOTIFYs.
DUE = (
    f"SELECT {columns(t.sessions, 'sessions')} FROM sessions"
    f" WHERE status = '{PENDING}' AND expires_ms <= $1"
    " ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED"
)
# One sweeper at a time across every process on the database (issue 10): the others skip
# their round instead of queueing on the same due rows. Held until the sweep's COMMIT.
SWEEPER_LOCK_KEYS = ("pushgate", "expiry sweeper")
SWEEPER_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) AS won"
_MOVED = ("id", "status", "detail", "updated_ms")
_FIRST_AUDIT = len(_MOVED) + 1
_FIRST_OUTBOX = _FIRST_AUDIT + len(AUDIT_COLUMNS)
_PAYLOADS = _FIRST_OUTBOX + len(OUTBOX_COLUMNS)
# `s.id = ANY($1)` keeps the UPDATE on the primary key whatever join the cached plan picks
# (a hash join over all sessions otherwise; docs/PERFORMANCE.md, recommendation 1).
EXPIRE = (
    "WITH x AS (UPDATE sessions s SET status = u.status, detail = u.detail,"
    f" updated_ms = u.updated_ms FROM ({unnest(t.sessions, 1, _MOVED)})"
    f" AS u({', '.join(_MOVED)}) WHERE s.id = u.id AND s.id = ANY($1::varchar[])),"
    f" a AS ({AUDIT_INSERT} {unnest(t.audit, _FIRST_AUDIT)}),"
    f" o AS ({insert_outbox(_FIRST_OUTBOX)})"
    f" SELECT pg_notify('{FINISHED_CHANNEL}', p) FROM unnest(${_PAYLOADS}::text[]) AS p"
)

RECORD_FAILURE = (
    "WITH s AS (UPDATE sessions SET failure_count = failure_count + 1, updated_ms = $2"
    f" WHERE id = $1 AND status = '{PENDING}' AND expires_ms > $2 RETURNING *)"
    # The listeners of other processes wake their waiters, who re-read (an event stream shows it).
    f" SELECT s.*, pg_notify('{FINISHED_CHANNEL}', s.id) FROM s"
)
UNCOUNT_NOTIFICATION = (
    "UPDATE sessions SET notification_count = notification_count - 1"
    " WHERE id = $1 AND notification_count > 0 RETURNING notification_count"
)
# Two keys of the advisory lock space: the table's and the user's, hashed.
LOCK_USER = "SELECT pg_advisory_xact_lock(hashtext('sessions'), hashtext($1 || chr(1) || $2))"
LOCK_KEY = (
    "SELECT pg_advisory_xact_lock(hashtext('idempotency_keys'), hashtext($1 || chr(1) || $2))"
)
# One row per pending session (on the partial index), or one row of NULLs; each row carries the
# creation time of the N-th newest session since the window opened (on the creation index).
USER_LIMITS = (
    f"SELECT {columns(t.sessions, 's')}, (SELECT created_ms FROM sessions WHERE realm = $1"
    " AND username = $2 AND created_ms > $3 ORDER BY created_ms DESC LIMIT 1 OFFSET $4 - 1)"
    " AS nth_newest FROM (SELECT 1) AS one LEFT JOIN sessions s ON s.realm = $1"
    f" AND s.username = $2 AND s.status = '{PENDING}' ORDER BY s.created_ms"
)
FIND_KEY = (
    "SELECT request_hash, session_id, created_ms FROM idempotency_keys"
    " WHERE realm = $1 AND key = $2"
)
ADD_KEY = (
    f"{insert(t.idempotency_keys)} ON CONFLICT (realm, key) DO UPDATE SET"
    " request_hash = excluded.request_hash, session_id = excluded.session_id,"
    " created_ms = excluded.created_ms"
)


def _outbox_args(messages: Sequence[OutboxMessage], now_ms: int) -> list[list[object]]:
    return outbox_arrays(messages, now_ms) if messages else []


class PostgresSessions(Sessions):
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
        args = (
            *sql.args(t.sessions, rows.session_values(session)),
            *arrays(t.notifications, (rows.notification_values(n) for n in notifications)),
            *audit_args(audit),
            *_outbox_args(outbox, session.created_ms),
        )
        if not outbox:
            await self._db.execute(add_statement(False), *args)
            return {}
        leased = await self._db.fetch(add_statement(True), *args)
        return {(r["kind"], r["idempotency_key"]): r["id"] for r in leased}

    async def get(self, realm: str, session_id: str) -> PushSession | None:
        row = await self._db.fetchrow(GET, session_id, realm)
        return rows.session(row) if row else None

    async def open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        row = await self._db.fetchrow(OPEN_NOTIFICATION, message_id, realm)
        if row is None:
            return None
        notification, device, session = split(row, t.notifications, t.devices, t.sessions)
        return OpenNotification(
            rows.notification(notification),
            sql.device(device, self._sealer),
            rows.session(session),
            row["user_failures"],
        )

    async def commit(self, transition: Transition) -> bool:
        after = transition.session
        message: list[Any] = [] if transition.message_id is None else [transition.message_id]
        won = await self._db.fetchrow(
            commit_statement(bool(message), bool(transition.outbox)),
            after.id,
            after.status.value,
            after.detail,
            after.updated_ms,
            transition.before_deadline,
            *audit_args(transition.audit),
            after.deny_reason,
            *message,
            *_outbox_args(transition.outbox, after.updated_ms),
        )
        return won is not None

    async def record_failure(self, session_id: str, now_ms: int) -> PushSession | None:
        row = await self._db.fetchrow(RECORD_FAILURE, session_id, now_ms)
        return rows.session(row) if row else None

    async def uncount_notification(self, session_id: str) -> int | None:
        row = await self._db.fetchrow(UNCOUNT_NOTIFICATION, session_id)
        return None if row is None else int(row[0])

    async def lock_idempotency_key(self, realm: str, key: str) -> None:
        await self._db.execute(LOCK_KEY, realm, key)

    async def lock_user(self, realm: str, username: str) -> None:
        await self._db.execute(LOCK_USER, realm, username)

    async def user_limits(self, realm: str, username: str, since_ms: int, limit: int) -> UserLimits:
        found = await self._db.fetch(USER_LIMITS, realm, username, since_ms, limit)
        # The sessions' columns come first; `nth_newest` is the last one, left out by `split`.
        pending = [rows.session(split(r, t.sessions)[0]) for r in found if r["id"] is not None]
        return UserLimits(found[0]["nth_newest"], pending)

    async def find_idempotency_key(self, realm: str, key: str) -> tuple[str, str, int] | None:
        row = await self._db.fetchrow(FIND_KEY, realm, key)
        return (row["request_hash"], row["session_id"], row["created_ms"]) if row else None

    async def add_idempotency_key(
        self, realm: str, key: str, request_hash: str, session_id: str, now_ms: int
    ) -> None:
        await self._db.execute(ADD_KEY, realm, key, request_hash, session_id, now_ms)

    async def pending_for_device(
        self, realm: str, mechanism_uid: str, now_ms: int, limit: int
    ) -> DevicePending | None:
        found = await self._db.fetch(PENDING_FOR_DEVICE, realm, mechanism_uid, now_ms, limit)
        if not found:
            return None
        parts = [split(row, t.devices, t.users, t.notifications, t.sessions) for row in found]
        device, user, _, _ = parts[0]
        pending = [
            (rows.notification(n), rows.session(s))
            for _, _, n, s in parts
            if n["message_id"] is not None  # the LEFT JOIN found no open notification
        ]
        return DevicePending(sql.device(device, self._sealer), rows.user(user), pending)

    async def expire_due(
        self, now_ms: int, limit: int, expire: Callable[[PushSession], Transition]
    ) -> Sequence[Transition]:
        async with self._db.atomic():
            locked = await self._db.fetchrow(SWEEPER_LOCK, *SWEEPER_LOCK_KEYS)
            if locked is None or not locked["won"]:
                return []  # another process is sweeping; its round covers these rows
            due = await self._db.fetch(DUE, now_ms, limit)
            if not due:
                return []
            moves = [expire(rows.session(row)) for row in due]
            after = [move.session for move in moves]
            await self._db.execute(
                EXPIRE,
                [s.id for s in after],
                [s.status.value for s in after],
                [s.detail for s in after],
                [s.updated_ms for s in after],
                *arrays(t.audit, (rows.audit_values(move.audit) for move in moves)),
                *outbox_arrays([m for move in moves for m in move.outbox], now_ms),
                batches([s.id for s in after]),
            )
        return moves
