"""What every area module of the PostgreSQL adapter shares (DESIGN.md layer 4): SQL text built
from the schema's own column lists (`store/schema.py`), joined rows cut back into tables by
position, and a connection whose failures arrive already translated into the error tree.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from pushgate.devices.model import Device, PendingRegistration
from pushgate.errors import SecretKeyMismatch, Unavailable
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sealing import Sealer, SealError

# What says "the database cannot be reached", as opposed to "this statement is wrong": the
# socket, asyncpg's own view of a closed connection, and the server going away under us
# (pg_terminate_backend is 57P01 AdminShutdown) or refusing new sessions.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08, ConnectionDoesNotExistError among them
    asyncpg.InterfaceError,  # "connection is closed", "pool is closed"
    # A pooled connection whose backend was just killed, used before asyncpg saw the socket
    # close: its protocol is still consuming the FATAL ("another operation is in progress").
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


# What fails a statement as an outage (503): the connection errors, and a server that refuses
# writes because it is a standby (SQLSTATE 25006).
STATEMENT_ERRORS = (*CONNECTION_ERRORS, asyncpg.ReadOnlySQLTransactionError)


def unavailable(exc: BaseException) -> Unavailable:
    return Unavailable("storage is unavailable", reason=f"{type(exc).__name__}: {exc}")


def updated_one(status: str) -> bool:
    """asyncpg answers a command with its tag, e.g. 'UPDATE 1' or 'INSERT 0 1'."""
    return status.endswith(" 1")


class Db:
    """One pooled connection. Every statement of the adapter goes through here, so a lost
    connection is an `Unavailable` inside the unit of work already, not only at its edge."""

    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> str:
        try:
            status: str = await self.conn.execute(sql, *args)
        except STATEMENT_ERRORS as exc:
            raise self._failed(exc) from exc
        return status

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            found: list[asyncpg.Record] = await self.conn.fetch(sql, *args)
        except STATEMENT_ERRORS as exc:
            raise self._failed(exc) from exc
        return found

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            found: asyncpg.Record | None = await self.conn.fetchrow(sql, *args)
        except STATEMENT_ERRORS as exc:
            raise self._failed(exc) from exc
        return found

    def _failed(self, exc: BaseException) -> Unavailable:
        if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
            # A server that refuses writes is a standby: a demoted primary, or an address not
            # yet moved to the new one. This connection is closed so that the pool opens the
            # next one anew, where a moved address or `target_session_attrs` leads it to the
            # primary, instead of reusing the standby's for minutes.
            self.conn.terminate()
        return unavailable(exc)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """A transaction around a few statements, unless one is open already."""
        if self.conn.is_in_transaction():
            yield
            return
        try:
            async with self.conn.transaction():
                yield
        except CONNECTION_ERRORS as exc:  # BEGIN, COMMIT or ROLLBACK
            raise unavailable(exc) from exc


# Sealed secrets -----------------------------------------------------------------------------


def device(row: rows.Row, sealer: Sealer) -> Device:
    try:
        return rows.device(row, sealer)
    except SealError as exc:
        raise SecretKeyMismatch("a device secret does not open", reason=str(exc)) from exc


def registration(row: rows.Row, sealer: Sealer) -> PendingRegistration:
    try:
        return rows.registration(row, sealer)
    except SealError as exc:
        raise SecretKeyMismatch("a registration secret does not open", reason=str(exc)) from exc


# SQL text -----------------------------------------------------------------------------------

NAMES = {table.name: [c.name for c in table.columns] for table in t.metadata.sorted_tables}
DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def own_columns(table: Table) -> tuple[str, ...]:
    """The columns a new row names: all but a serial `id` the database numbers. Cached: the
    hot path asks on every insert, and walking SQLAlchemy's columns is not free."""
    return tuple(c.name for c in table.columns if not (c.name == "id" and c.autoincrement is True))


def columns(table: Table, alias: str) -> str:
    """`alias.a, alias.b, ...` in schema order, the order `split` relies on."""
    return ", ".join(f"{alias}.{name}" for name in NAMES[table.name])


def split(record: asyncpg.Record, *tables: Table) -> list[dict[str, Any]]:
    """A joined row cut back into one mapping per table, by position: the SELECT lists each
    table's columns in schema order (`columns`), and slicing is ~10x cheaper than names."""
    values = tuple(record.values())
    parts, start = [], 0
    for table in tables:
        names = NAMES[table.name]
        parts.append(dict(zip(names, values[start : start + len(names)], strict=True)))
        start += len(names)
    return parts


def placeholders(first: int, count: int) -> str:
    return ", ".join(f"${first + i}" for i in range(count))


def insert(table: Table, *, ignore_duplicate: bool = False) -> str:
    names = own_columns(table)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders(1, len(names))})"
    return sql + (" ON CONFLICT DO NOTHING" if ignore_duplicate else "")


def args(table: Table, values: Mapping[str, Any]) -> list[Any]:
    """The values of `insert(table)`'s placeholders, in their order."""
    return [values[name] for name in own_columns(table)]


def cast(table: Table, name: str) -> str:
    """The column's type for a parameter cast, without its length: an explicit cast to
    VARCHAR(n) truncates silently, where the assignment to the column refuses a longer value."""
    compiled: str = table.c[name].type.compile(dialect=DIALECT)
    return re.sub(r"\(\d+\)", "", compiled)


def unnest(table: Table, first: int, names: Sequence[str] | None = None) -> str:
    """`SELECT * FROM unnest($first::type[], ...)`: many rows of `table`, one array parameter
    per column, so a statement carries any number of rows at one fixed text."""
    names = own_columns(table) if names is None else names
    casts = [f"${first + i}::{cast(table, name)}[]" for i, name in enumerate(names)]
    return f"SELECT * FROM unnest({', '.join(casts)})"


def arrays(
    table: Table, values: Iterable[Mapping[str, Any]], names: Sequence[str] | None = None
) -> list[list[Any]]:
    """The array parameters of `unnest(table, ...)`: one list per column."""
    names = own_columns(table) if names is None else names
    listed = list(values)
    return [[v[name] for v in listed] for name in names]


AUDIT_COLUMNS = own_columns(t.audit)
OUTBOX_COLUMNS = own_columns(t.outbox)
# The outbox's only unique key besides its serial id: a repeated message is kept as it was.
OUTBOX_CONFLICT = " ON CONFLICT (kind, idempotency_key) DO NOTHING"


def insert_outbox(first: int, *, when: str = "") -> str:
    """Outbox rows from `unnest` arrays ($first...), ignoring a (kind, key) that exists;
    `when` is a condition that must hold for any row to go in (e.g. a CTE's success)."""
    where = f" WHERE {when}" if when else ""
    return (
        f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)})"
        f" {unnest(t.outbox, first)}{where}{OUTBOX_CONFLICT}"
    )
