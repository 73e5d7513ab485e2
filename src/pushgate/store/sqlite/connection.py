"""The SQLite adapter's one connection per process and its transaction machinery.

Statements run synchronously on the event-loop thread: one takes microseconds, a hop to a
worker thread costs more. Writers are serialised twice: inside the process by `lock`, held by
a `transaction()` block for its whole life and by an atomic autocommit call for its one
BEGIN IMMEDIATE … COMMIT; across processes by SQLite's single write lock, which
BEGIN IMMEDIATE takes up front, so a transaction never fails half-way with "database is
locked". The connection's own busy timeout is 0: a writer that finds the lock taken sleeps
asynchronously and tries again (`_retry_busy`) instead of blocking the event loop inside
SQLite's busy handler, and gives up with `Unavailable` after `timeout_s`.

Reads in autocommit run at once on the connection (WAL readers never wait for writers),
unless a `transaction()` block has it open: then they wait for the block to end, so they
never see its uncommitted rows.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from pushgate.errors import SecretKeyMismatch, Unavailable
from pushgate.store.sealing import Sealer, SealError

T = TypeVar("T")
Row = tuple[Any, ...]
Params = Sequence[Any]
Work = Callable[[sqlite3.Connection], T]

UNAVAILABLE = "storage is unavailable"
# Primary result codes that mean "the database cannot be used right now", as opposed to a
# constraint or a programming error (https://www.sqlite.org/rescode.html).
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
        sqlite3.SQLITE_NOTADB,
    }
)
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# synchronous=NORMAL: in WAL mode a commit is durable against a crash of the process (the
# WAL is in the OS's cache) but not against a power loss or an OS crash, which may lose the
# last commits (never corrupt the file); FULL would fsync the WAL on every commit.
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    # Hot pages (index roots, the last leaves) are rewritten by every commit; a checkpoint
    # copies only their latest version, so checkpointing every 10,000 pages (~40 MB of WAL)
    # rather than 1,000 writes less: ~8 % less store CPU per cycle (sqlite_store_bench.py).
    "PRAGMA wal_autocheckpoint = 10000",
)
# Sleeps between tries for the write lock, in seconds (then the last one again, until the
# timeout): the first is a bare yield to the loop. Short, because the lock is held for
# microseconds to milliseconds and a writer that sleeps long misses the gaps between another
# process's back-to-back transactions; one task per process polls, the others queue on `lock`.
_SLEEPS = (0.0, 0.0005, 0.001, 0.002, 0.004)


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def is_busy(exc: sqlite3.Error) -> bool:
    return _code(exc) in _BUSY_CODES


def raise_if_unavailable(exc: sqlite3.Error) -> None:
    """`Unavailable` for an error that says the database cannot be used; else nothing, and
    the caller re-raises the original (a constraint or a programming error)."""
    if _code(exc) in _UNAVAILABLE_CODES:
        raise Unavailable(UNAVAILABLE, reason=f"SQLite: {exc}") from exc


class KeyCheckedSealer(Sealer):
    """The sealer the adapter hands to `rows.py`: every secret the adapter opens goes through
    here, so a secret that does not open is a `SecretKeyMismatch` (a 503 that names the
    cause), never a `SealError` escaping as a 500."""

    def __init__(self, sealer: Sealer) -> None:  # no super().__init__: it delegates
        self._sealer = sealer

    @property
    def primary_id(self) -> int:
        return self._sealer.primary_id

    @property
    def key_ids(self) -> tuple[int, ...]:
        return self._sealer.key_ids

    def needs_reseal(self, sealed: bytes) -> bool:
        return self._sealer.needs_reseal(sealed)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        return self._sealer.seal(plaintext, context)

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._sealer.open(sealed, context)
        except SealError as exc:
            raise SecretKeyMismatch(
                "the configured secret key does not open the database's secrets",
                reason=str(exc),
            ) from exc


def connect(path: str, timeout_s: float) -> sqlite3.Connection:
    """Open and set up a connection; `Unavailable` with the reason if that fails. The file
    must exist (the migrations make it): a mistyped path must not become a new empty
    database."""
    if path == ":memory:":
        target = ":memory:"
    else:
        file = Path(path).absolute()
        if not file.parent.is_dir():
            raise Unavailable(
                UNAVAILABLE,
                reason=f"the directory {file.parent} of the SQLite database does not exist",
            )
        if not file.exists():
            raise Unavailable(
                UNAVAILABLE, reason=f"no SQLite database at {file} (run `pushgate migrate`)"
            )
        target = file.as_uri() + "?mode=rw"
    try:
        conn = sqlite3.connect(
            target,
            uri=True,
            timeout=timeout_s,  # only while setting up: switching to WAL may wait for a writer
            isolation_level=None,  # BEGIN/COMMIT are ours, never the module's
            check_same_thread=False,  # one event loop at a time, whichever thread runs it
            cached_statements=256,
        )
    except sqlite3.Error as exc:
        raise Unavailable(UNAVAILABLE, reason=f"SQLite cannot open {path}: {exc}") from exc
    try:
        for pragma in _PRAGMAS:
            conn.execute(pragma).fetchall()
        conn.execute("PRAGMA busy_timeout = 0")
    except sqlite3.Error as exc:
        conn.close()
        raise Unavailable(UNAVAILABLE, reason=f"SQLite cannot set up {path}: {exc}") from exc
    return conn


async def _retry_busy(attempt: Callable[[], T], timeout_s: float, *, tried: bool) -> T:
    """`attempt()` until it does not fail busy, sleeping asynchronously between tries (first
    if it was `tried` already); `Unavailable` after `timeout_s`. An attempt that fails busy
    must have done nothing: it starts with BEGIN IMMEDIATE, or is a single read."""
    deadline = time.monotonic() + timeout_s
    tries = 0
    while True:
        if tried:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    UNAVAILABLE, reason=f"SQLite: database still locked after {timeout_s:g} s"
                )
            sleep = _SLEEPS[tries] if tries < len(_SLEEPS) else _SLEEPS[-1]
            tries += 1
            # Jitter keeps processes that collided from colliding again in step.
            await anyio.sleep(sleep * random.uniform(0.5, 1.5))  # noqa: S311
        tried = True
        try:
            return attempt()
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise_if_unavailable(exc)
                raise


def rollback(conn: sqlite3.Connection) -> None:
    # Some errors (SQLITE_FULL, IOERR, BUSY) roll the transaction back by themselves.
    if conn.in_transaction:
        # If even that fails there is nothing more to undo: the original error is the one
        # to report.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _atomic_once(conn: sqlite3.Connection, work: Work[T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return result


class Connection:
    """The process's connection to one database file, opened on first use."""

    def __init__(self, path: str, timeout_s: float) -> None:
        # Resolved now: the working directory may change before the first call opens it.
        self.path = path if path == ":memory:" else str(Path(path).absolute())
        self.timeout_s = timeout_s
        self.lock = anyio.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        # A connection must never be used, nor closed, in a child of the process that opened
        # it (https://www.sqlite.org/howtocorrupt.html §2.6): a child opens its own and keeps
        # the inherited object referenced, so that it is not finalised (closed) either.
        self._inherited: list[sqlite3.Connection] = []

    def get(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None or self._pid != os.getpid():
            if conn is not None:
                self._inherited.append(conn)
            conn = self._conn = connect(self.path, self.timeout_s)
            self._pid = os.getpid()
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            rollback(conn)
            conn.close()

    async def acquire(self) -> None:
        try:
            self.lock.acquire_nowait()  # no checkpoint when free: the hot path never waits
        except anyio.WouldBlock:
            await self.lock.acquire()
        except RuntimeError as exc:  # this task holds it: its own transaction() is open
            raise RuntimeError(
                "autocommit() inside a transaction() of the same task: use the transaction's"
                " unit of work (an autocommit call cannot be atomic on its own in there)"
            ) from exc

    async def begin(self) -> sqlite3.Connection:
        """BEGIN IMMEDIATE on the connection, the lock held by the caller."""
        conn = self.get()
        await _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), self.timeout_s, tried=False)
        return conn


class Db(Protocol):
    """What an area's methods run their statements on (`AutocommitDb` or `TransactionDb`)."""

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def write(self, work: Work[T]) -> T: ...


class AutocommitDb:
    """What an area's methods run on outside a transaction: each read on its own (so it sees
    the latest commits), each write in its own BEGIN IMMEDIATE … COMMIT."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        connection = self._connection
        conn = connection.get()
        tried = False
        if not conn.in_transaction:
            tried = True
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise_if_unavailable(exc)
                    raise
        # A transaction() block has the connection open (or the file was busy): wait it out.
        await connection.acquire()
        try:
            return await _retry_busy(
                lambda: conn.execute(sql, params).fetchall(), connection.timeout_s, tried=tried
            )
        finally:
            connection.lock.release()

    async def write(self, work: Work[T]) -> T:
        """`work` in its own BEGIN IMMEDIATE … COMMIT: all of it or nothing. It must write
        nothing it would not commit (decide with a compare-and-set first), and may run again
        if another process held the write lock."""
        connection = self._connection
        conn = connection.get()
        await connection.acquire()
        try:
            try:
                return _atomic_once(conn, work)
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise_if_unavailable(exc)
                    raise
            return await _retry_busy(
                lambda: _atomic_once(conn, work), connection.timeout_s, tried=True
            )
        finally:
            connection.lock.release()


class TransactionDb:
    """What an area's methods run on inside `transaction()`: the block's BEGIN IMMEDIATE is
    already taken, so statements run at once and commit with the block."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("this unit of work's transaction has ended")
        return self._conn

    def end(self) -> None:
        self._conn = None

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        conn = self._open()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise_if_unavailable(exc)
            raise

    async def write(self, work: Work[T]) -> T:
        conn = self._open()
        try:
            return work(conn)
        except sqlite3.Error as exc:
            raise_if_unavailable(exc)
            raise
