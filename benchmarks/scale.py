"""Scale benchmark (issue 3 "Scale"): the push cycle with 1,000,000 registered devices and
100,000 pending sessions in PostgreSQL, against an empty database in the same run, and the
time to expire 100,000 sessions.

    .venv/bin/python benchmarks/scale.py                                  # full size, ~5 min
    .venv/bin/python benchmarks/scale.py --devices 10000 --sessions 1000 --label small

1. Two databases, each with the driver's real bench users/devices (registered through
   `DeviceService.register`): `pushgate_scale_empty`, and `pushgate_scale_full`, which gets
   `--devices` filler users with one active device each and `--sessions` pending filler sessions
   (one notification each, on distinct filler devices, plus their `session.created` audit
   rows), bulk-loaded with COPY (`copy_records_to_table`, FK triggers off for the load), then
   `ANALYZE`. Filler sessions expire at a sentinel time far in the future.
2. One `pushgate serve` per database, both running; the driver's cycle load at each
   concurrency alternates between them (empty, full, full, empty, ...), so drift on the shared
   machine hits both alike. Per level: latencies by leg, server CPU per cycle, PG backend CPU
   per cycle, and per-table scan counters (`pg_stat_user_tables`) per cycle.
3. `EXPLAIN (ANALYZE, BUFFERS)` of every hot-path statement on the full database, with a
   custom and a generic plan (asyncpg uses prepared statements, so PostgreSQL may switch to
   the generic plan after five executions).
4. Expiry of the filler sessions (their deadline moved into the past with one UPDATE, then
   `VACUUM ANALYZE`): (a) in-process, `SessionService.expire_due()` in a loop as the sweeper
   does; (b) the server's own sweeper (default `PUSHGATE_EXPIRY_SWEEP_SECONDS=1`), timed from
   the UPDATE until no filler session is pending; (c) the same while the cycle load runs at
   concurrency 8, to see what a mass expiry does to live traffic.

Writes `benchmarks/results/scale[-label].json` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import driver

from pushgate.devices.model import Device, DeviceStatus
from pushgate.secret_key import load_secret_key
from pushgate.sessions.machine import Event, Transition, transition
from pushgate.sessions.model import SessionStatus
from pushgate.settings import Settings
from pushgate.store import rows, schema
from pushgate.store.postgres import devices as pg_devices
from pushgate.store.postgres import sessions as pg_sessions
from pushgate.store.postgres.audit import audit_args
from pushgate.store.postgres.listen import FINISHED_CHANNEL, batches
from pushgate.store.postgres.outbox import outbox_arrays
from pushgate.store.postgres.sql import arrays
from pushgate.store.sealing import Sealer
from pushgate.wiring import FOLLOWERS, build_services

DB_EMPTY = "pushgate_scale_empty"
DB_FULL = "pushgate_scale_full"
REALM = "/"
FILLER_PREFIX = "filler-"
DAY_MS = 86_400_000
LEG_KEYS = ("create", "delivery", "answer", "result", "cycle")


def dsn(db: str) -> str:
    return f"postgresql://{driver.PG_USER}@{driver.PG_HOST}:{driver.PG_PORT}/{db}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- bulk load -------------------------------------------------------------------------------


async def load_filler(
    db: str, sealer: Sealer, devices: int, sessions: int, far_ms: int
) -> dict[str, Any]:
    """`devices` users with one active device each; `sessions` pending sessions, each with one
    notification to a distinct filler device and its `session.created` audit row."""
    created = now_ms()
    # Device secrets are sealed at rest under the server's key, the row's id bound in, and
    # the server opens the newest one at start-up to check its key: so every filler secret is
    # sealed as the adapter seals it (`rows.device_values`; ~12 s per 1,000,000 devices, part
    # of `copy_devices_s`). One plaintext for all: no filler device ever polls or answers.
    secret = os.urandom(32)
    device_columns = [c.name for c in schema.devices.columns]
    challenge = os.urandom(32)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    user_ids = [str(uuid.uuid4()) for _ in range(devices)]
    device_ids = [str(uuid.uuid4()) for _ in range(devices)]
    timings["generate_ids_s"] = time.perf_counter() - t
    step = max(1, devices // max(1, sessions))
    chosen = [i * step for i in range(sessions)]  # spread over the filler users
    session_ids = [str(uuid.uuid4()) for _ in range(sessions)]

    def users() -> Iterator[tuple[Any, ...]]:
        for i, uid in enumerate(user_ids):
            yield uid, REALM, f"{FILLER_PREFIX}{i:07d}", None, created

    def devs() -> Iterator[tuple[Any, ...]]:
        for uid, did in zip(user_ids, device_ids, strict=True):
            device = Device(
                id=did,
                realm=REALM,
                user_id=uid,
                mechanism_uid=str(uuid.uuid4()),
                secret=secret,
                push_token="fcm-filler-token",
                device_type="android",
                communication_type="gcm",
                name="Push Device",
                status=DeviceStatus.ACTIVE,
                created_ms=created,
                updated_ms=created,
            )
            values = rows.device_values(device, sealer)
            yield tuple(values[name] for name in device_columns)

    def sess() -> Iterator[tuple[Any, ...]]:
        for k, sid in zip(chosen, session_ids, strict=True):
            yield (
                sid,
                REALM,
                f"{FILLER_PREFIX}{k:07d}",
                user_ids[k],
                "PENDING",
                "Sign in?",
                None,
                None,
                None,
                "default",
                1,
                None,
                created,
                far_ms,
                created,
            )

    def notes() -> Iterator[tuple[Any, ...]]:
        for k, sid in zip(chosen, session_ids, strict=True):
            mid = f"AUTHENTICATE:{uuid.uuid4()}{created}"
            yield mid, sid, device_ids[k], challenge, None, None, created, None

    def audits() -> Iterator[tuple[Any, ...]]:
        data = '{"notifications":1,"status":"sent"}'
        for sid in session_ids:
            yield REALM, created, "session.created", sid, data

    loads = [
        ("users", users, ["id", "realm", "username", "password_hash", "created_ms"]),
        ("devices", devs, device_columns),
        ("sessions", sess, [c.name for c in schema.sessions.columns]),
        ("notifications", notes, [c.name for c in schema.notifications.columns]),
        ("audit", audits, ["realm", "at_ms", "event", "subject", "data"]),
    ]
    conn = await asyncpg.connect(dsn(db))
    try:
        # The rows are consistent by construction; skipping the per-row FK triggers makes the
        # load several times faster (superuser only, this session only).
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET synchronous_commit = off")
        for table, records, columns in loads:
            t = time.perf_counter()
            await conn.copy_records_to_table(table, records=records(), columns=columns)
            timings[f"copy_{table}_s"] = time.perf_counter() - t
            print(f"  COPY {table}: {timings[f'copy_{table}_s']:.1f}s", flush=True)
        t = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - t
    finally:
        await conn.close()
    return {k: round(v, 2) for k, v in timings.items()}


async def settle(*dbs: str, within_s: float = 120.0) -> float:
    """VACUUM ANALYZE `dbs` and wait until no autovacuum worker is busy on them: the load
    triggers autovacuum, which would compete for the two cores with the first levels."""
    t = time.perf_counter()
    for db in dbs:
        conn = await asyncpg.connect(dsn(db))
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        while time.perf_counter() - t < within_s:
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'autovacuum worker' AND datname = ANY($1::text[])",
                list(dbs),
            )
            if not busy:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return round(time.perf_counter() - t, 1)


async def table_sizes(db: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn(db))
    try:
        # reltuples (as of the last ANALYZE), not n_live_tup: the loader's COPY statistics
        # reach the counters after its ANALYZE and would be counted twice.
        found = await conn.fetch(
            "SELECT c.relname, c.reltuples::bigint AS rows,"
            " pg_total_relation_size(c.oid) AS bytes FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname"
        )
    finally:
        await conn.close()
    return {r["relname"]: {"rows": r["rows"], "mb": round(r["bytes"] / 2**20, 1)} for r in found}


async def table_stats(db: str) -> dict[str, dict[str, int]]:
    conn = await asyncpg.connect(dsn(db))
    try:
        found = await conn.fetch(
            "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan,"
            " coalesce(idx_tup_fetch, 0) AS idx_tup_fetch FROM pg_stat_user_tables"
        )
    finally:
        await conn.close()
    return {r["relname"]: {k: int(v) for k, v in dict(r).items() if k != "relname"} for r in found}


def stats_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], ops: int
) -> dict[str, dict[str, float]]:
    out = {}
    for table, counters in after.items():
        delta = {k: v - before.get(table, {}).get(k, 0) for k, v in counters.items()}
        if any(delta.values()):
            out[table] = {k: round(v / max(1, ops), 2) for k, v in delta.items()}
    return out


# --- servers ---------------------------------------------------------------------------------


async def prepare(db: str, users: int) -> tuple[Any, str, list[driver.Party], int]:
    await driver.pg_admin(f"DROP DATABASE IF EXISTS {db}")
    await driver.pg_admin(f"CREATE DATABASE {db}")
    port = driver.free_port()
    settings = Settings(
        database_url=dsn(db), public_url=f"http://127.0.0.1:{port}", secret_key=driver.SECRET_KEY
    )
    api_key, parties = await driver.provision(settings, users)
    return settings, api_key, parties, port


def start_server(settings: Any, port: int, tmp: Path, name: str, **env: str) -> driver.Server:
    environ = {
        "PUSHGATE_DATABASE_URL": settings.database_url,
        "PUSHGATE_PUBLIC_URL": settings.public_url,
        "PUSHGATE_SECRET_KEY": driver.SECRET_KEY,
        **env,
    }
    return driver.Server(environ, port, 1, tmp / f"server-{name}.log")


# --- EXPLAIN ---------------------------------------------------------------------------------


# The arguments the adapter passes (`PostgresSessions.commit` / `.expire_due`), built the same
# way from the same values: a transition made by the machine with the server's followers.


def commit_case(move: Transition) -> tuple[str, list[Any]]:
    """`PostgresSessions.commit`'s statement and arguments for `move`."""
    after = move.session
    message = [] if move.message_id is None else [move.message_id]
    outbox = outbox_arrays(move.outbox, after.updated_ms) if move.outbox else []
    sql = pg_sessions.commit_statement(bool(message), bool(move.outbox))
    args = [after.id, after.status.value, after.detail, after.updated_ms, move.before_deadline]
    return sql, [*args, *audit_args(move.audit), *message, *outbox]


def expire_args(moves: list[Transition], now: int) -> list[Any]:
    """`PostgresSessions.expire_due`'s arguments of `EXPIRE` for `moves`."""
    after = [move.session for move in moves]
    return [
        [s.id for s in after],
        [s.status.value for s in after],
        [s.detail for s in after],
        [s.updated_ms for s in after],
        *arrays(schema.audit, (rows.audit_values(move.audit) for move in moves)),
        *outbox_arrays([m for move in moves for m in move.outbox], now),
        batches([s.id for s in after]),
    ]


Case = tuple[str, str, list[Any], list[tuple[str, list[Any]]]]


async def explain_hot_path(db: str, party: driver.Party, filler_user: str) -> dict[str, Any]:
    """Plans of the hot statements with the values of one real cycle on the full database."""
    conn = await asyncpg.connect(dsn(db))
    out: dict[str, Any] = {}
    try:
        user = await conn.fetchrow(
            "SELECT id FROM users WHERE realm = $1 AND username = $2", REALM, party.username
        )
        found = await conn.fetchrow(
            "SELECT * FROM sessions WHERE user_id = $1 ORDER BY created_ms DESC LIMIT 1",
            user["id"],
        )
        note = await conn.fetchrow(
            "SELECT message_id, device_id FROM notifications WHERE session_id = $1", found["id"]
        )
        t = now_ms()
        # The bench session was answered in the cycles; the answer's plan is that of a winning
        # compare-and-set, so it is reopened first (inside the rolled-back transaction).
        session = rows.session(found)
        reopened = rows.session(
            {
                **dict(found),
                "status": SessionStatus.PENDING.value,
                "detail": None,
                "expires_ms": t + DAY_MS,
            }
        )
        reopen = [
            (
                "UPDATE sessions SET status = $2, detail = NULL, expires_ms = $3 WHERE id = $1",
                [session.id, SessionStatus.PENDING.value, reopened.expires_ms],
            ),
            (
                "UPDATE notifications SET answered_ms = NULL WHERE message_id = $1",
                [note["message_id"]],
            ),
        ]
        answer = transition(
            reopened,
            Event.APPROVE,
            t,
            followers=FOLLOWERS,
            message_id=note["message_id"],
            audit_data={"device": note["device_id"]},
        )
        commit_sql, commit_args = commit_case(answer)
        all_due = t + 400 * DAY_MS  # past the filler sessions' sentinel deadline
        due = await conn.fetch(pg_sessions.DUE, all_due, 500)
        expiring = [
            transition(rows.session(r), Event.EXPIRE, all_due, followers=FOLLOWERS) for r in due
        ]
        # EXPLAIN ANALYZE executes the statement: each runs in a transaction rolled back after.
        cases: list[Case] = [
            (
                "create: devices.USER_AND_ACTIVE",
                pg_devices.USER_AND_ACTIVE,
                [REALM, party.username],
                [],
            ),
            (
                "create: devices.USER_AND_ACTIVE (filler user)",
                pg_devices.USER_AND_ACTIVE,
                [REALM, filler_user],
                [],
            ),
            (
                "pending: sessions.PENDING_FOR_DEVICE",
                pg_sessions.PENDING_FOR_DEVICE,
                [REALM, party.mechanism.mechanism_uid, t, 50],
                [],
            ),
            (
                "answer: sessions.OPEN_NOTIFICATION",
                pg_sessions.OPEN_NOTIFICATION,
                [note["message_id"], REALM],
                [],
            ),
            ("answer: sessions.commit_statement(True, False)", commit_sql, commit_args, reopen),
            ("GET: sessions.GET", pg_sessions.GET, [session.id, REALM], []),
            ("sweeper: sessions.DUE (nothing due)", pg_sessions.DUE, [t, 500], []),
            ("sweeper: sessions.DUE (all filler due)", pg_sessions.DUE, [all_due, 500], []),
            (
                f"sweeper: sessions.EXPIRE ({len(expiring)} due)",
                pg_sessions.EXPIRE,
                expire_args(expiring, all_due),
                [],
            ),
        ]
        if not expiring:
            cases.pop()  # nothing due: the adapter stops after DUE
        for name, sql, args, setup in cases:
            plans = {}
            for mode in ("force_custom_plan", "force_generic_plan"):
                tr = conn.transaction()
                await tr.start()
                try:
                    for setup_sql, setup_args in setup:
                        await conn.execute(setup_sql, *setup_args)
                    await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                    # EXPLAIN EXECUTE of a PREPAREd statement: the plan asyncpg's would get.
                    stmt = f"bench_{len(out)}_{mode}"
                    await conn.execute(f"PREPARE {stmt} AS {sql}")
                    lits = ", ".join(_literal(a) for a in args)
                    found_plan = await conn.fetch(
                        f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE {stmt}({lits})"
                    )
                    plans[mode] = [r[0] for r in found_plan]
                finally:
                    await tr.rollback()  # nothing written stays: EXPLAIN ANALYZE executes
            out[name] = plans
    finally:
        await conn.close()
    return out


def _literal(value: Any) -> str:
    """An EXECUTE argument; an array as an untyped `'{...}'`, which takes the parameter's type."""
    if isinstance(value, list):
        return "'" + _array(value).replace("'", "''") + "'"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no literal for {type(value).__name__}")


def _array(values: list[Any]) -> str:
    items = []
    for v in values:
        if v is None:
            items.append("NULL")
        elif isinstance(v, bool):
            items.append("t" if v else "f")
        elif isinstance(v, int):
            items.append(str(v))
        elif isinstance(v, str):
            items.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            raise TypeError(f"no array element for {type(v).__name__}")
    return "{" + ",".join(items) + "}"


def plan_summary(plans: dict[str, Any]) -> dict[str, Any]:
    """Execution time and any sequential scans, per statement and plan mode."""
    out: dict[str, Any] = {}
    for name, modes in plans.items():
        out[name] = {}
        for mode, lines in modes.items():
            ms = next(
                (float(x.split(":")[1].split()[0]) for x in lines if "Execution Time" in x), None
            )
            seq = sorted({x.strip().split(" on ")[1].split()[0] for x in lines if "Seq Scan" in x})
            out[name][mode.replace("force_", "").replace("_plan", "")] = {
                "execution_ms": ms,
                "seq_scans": seq,
            }
    return out


# --- expiry ----------------------------------------------------------------------------------
#
# Every variant works the same way: the filler sessions get one common deadline T a few
# seconds ahead (one UPDATE), then `VACUUM ANALYZE sessions` so the UPDATE's dead tuples are
# gone as they would be for sessions that simply reach their deadline, then the clock runs
# past T and the timing starts at T. `reset_filler` puts everything back afterwards.

EXPIRE_LEAD_MS = 4_000  # T - now when the deadline is set; the VACUUM must fit in it

# The baseline the adapter's expiry is compared with: the one-statement expiry that
# docs/PERFORMANCE.md recommended (recommendation 1) and the old adapter ran, before the
# outbox. It selects, expires and audits in one statement, the UPDATE reaching its rows by
# primary key (`= ANY(ARRAY(..))`), then NOTIFYs 200 ids at a time. The adapter now locks the
# due rows (`sessions.DUE`), lets the machine make each transition, and writes them all with
# `sessions.EXPIRE` (audit and outbox rows and the NOTIFYs in that statement), one transaction.
PROPOSED_EXPIRE = (
    "WITH due AS (SELECT id FROM sessions WHERE status = 'PENDING' AND expires_ms <= $1"
    " ORDER BY expires_ms LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " done AS (UPDATE sessions SET status = $2, updated_ms = $1"
    " WHERE id = ANY(ARRAY(SELECT id FROM due)) RETURNING id, realm),"
    " a AS (INSERT INTO audit (realm, at_ms, event, subject, data)"
    " SELECT realm, $1, 'session.expired', id, '{}' FROM done)"
    " SELECT id, realm FROM done"
)
PROPOSED_NOTIFY = f"SELECT pg_notify('{FINISHED_CHANNEL}', $1)"


async def set_deadline(db: str, from_ms: int, to_ms: int) -> dict[str, float]:
    """Pending filler sessions due at `from_ms` get `to_ms`; then VACUUM ANALYZE sessions."""
    conn = await asyncpg.connect(dsn(db))
    try:
        t = time.perf_counter()
        await conn.execute(
            "UPDATE sessions SET expires_ms = $2 WHERE status = 'PENDING' AND expires_ms = $1",
            from_ms,
            to_ms,
        )
        moved = time.perf_counter() - t
        await conn.execute("VACUUM ANALYZE sessions")
        vacuumed = time.perf_counter() - t - moved
    finally:
        await conn.close()
    if now_ms() >= to_ms:
        raise RuntimeError("the deadline passed before the VACUUM finished; raise the lead")
    return {"update_s": round(moved, 2), "vacuum_s": round(vacuumed, 2)}


async def until(deadline_ms: int) -> float:
    """Sleep until the wall clock reaches `deadline_ms`; the perf_counter() at that moment."""
    await asyncio.sleep(max(0.0, (deadline_ms - now_ms()) / 1000) + 0.002)
    return time.perf_counter()


async def reset_filler(db: str, far_ms: int) -> None:
    """Filler sessions pending again with the far deadline; the expiry's audit rows gone."""
    conn = await asyncpg.connect(dsn(db))
    try:
        await conn.execute(
            "UPDATE sessions SET status = 'PENDING', expires_ms = $1, updated_ms = created_ms"
            f" WHERE username LIKE '{FILLER_PREFIX}%'",
            far_ms,
        )
        await conn.execute("DELETE FROM audit WHERE event = 'session.expired'")
        await conn.execute("VACUUM ANALYZE sessions")
        await conn.execute("VACUUM ANALYZE audit")
    finally:
        await conn.close()


async def pending_filler(conn: asyncpg.Connection, deadline_ms: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE status = 'PENDING' AND expires_ms = $1",
            deadline_ms,
        )
    )


async def _proposed_batch(pool: asyncpg.Pool, limit: int) -> int:
    now = now_ms()
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetch(PROPOSED_EXPIRE, now, "EXPIRED", limit)
        ids = [r["id"] for r in found]
        for payload in batches(ids):
            await conn.execute(PROPOSED_NOTIFY, payload)
    return len(ids)


async def expire_in_process(
    settings: Any, db: str, far_ms: int, count: int, *, proposed: bool = False
) -> dict[str, Any]:
    """`SessionService.expire_due()` in the sweeper's loop (or, with `proposed`, the
    recommended statement on a plain asyncpg pool), from the deadline until a batch is short."""
    deadline = now_ms() + EXPIRE_LEAD_MS
    prep = await set_deadline(db, far_ms, deadline)
    services = build_services(settings)
    pool = await asyncpg.create_pool(dsn(db), min_size=1, max_size=1) if proposed else None
    batches, expired, sizes = 0, 0, []
    try:
        await until(deadline + 1)
        pg0 = await driver.pg_snapshot(db)
        cpu0 = driver.self_cpu()
        t0 = time.perf_counter()
        while True:
            b = time.perf_counter()
            if pool is None:
                n = await services.sessions.expire_due()
            else:
                n = await _proposed_batch(pool, 500)
            sizes.append(time.perf_counter() - b)
            batches += 1
            expired += n
            if n < 500:  # the sweeper loops `while n`: this skips its one empty batch
                break
        wall = time.perf_counter() - t0
        cpu = driver.self_cpu() - cpu0
        pg = driver.pg_delta(pg0, await driver.pg_snapshot(db))
    finally:
        await services.store.aclose()
        if pool is not None:
            await pool.close()
    result = {
        "sessions_expired": expired,
        "wall_s": round(wall, 2),
        "batches": batches,
        "sessions_per_s": round(expired / wall),
        "batch_ms_median": round(statistics.median(sizes) * 1000, 1),
        "batch_ms_max": round(max(sizes) * 1000, 1),
        "process_cpu_s": round(cpu, 2),
        "pg_backend_cpu_s": round(pg["backend_cpu_s"], 2),
        **prep,
    }
    print(f"  {'proposed statement' if proposed else 'in-process'} expiry: {result}", flush=True)
    if expired < count:
        raise RuntimeError(f"expected {count} expired, got {expired}")
    return result


async def expire_by_server(
    target: driver.Target, db: str, far_ms: int, count: int, load: int = 0
) -> dict[str, Any]:
    """The running server's own sweeper: from the common deadline until no filler session is
    pending (polled every 0.1 s). With `load`, the cycle load runs at that concurrency from
    before the deadline until the expiry is done."""
    deadline = now_ms() + EXPIRE_LEAD_MS
    prep = await set_deadline(db, far_ms, deadline)
    conn = await asyncpg.connect(dsn(db))
    load_task = None
    stop = asyncio.Event()
    try:
        if load:
            load_task = asyncio.create_task(
                driver.run_level(
                    target,
                    "cycle",
                    load,
                    warmup=max(0.0, (deadline - now_ms()) / 1000),
                    duration=600.0,
                    max_cycles=10**9,
                    client="raw",
                    quiet=0.0,
                    done=stop,
                )
            )
        pg0 = await driver.pg_snapshot(db)
        cpu0 = target.server.cpu()
        t0 = await until(deadline)
        first_seen = None
        left = count
        while left:
            await asyncio.sleep(0.1)
            left = await pending_filler(conn, deadline)
            if first_seen is None and left < count:
                first_seen = time.perf_counter() - t0
            if time.perf_counter() - t0 > 600:
                raise RuntimeError(f"{left} filler sessions still pending after 600 s")
        wall = time.perf_counter() - t0
        cpu = target.server.cpu() - cpu0
        pg = driver.pg_delta(pg0, await driver.pg_snapshot(db))
        level = None
        if load_task is not None:
            stop.set()  # ends the load's measured window now
            level = await load_task
    finally:
        if load_task is not None and not load_task.done():
            load_task.cancel()
            with contextlib.suppress(BaseException):
                await load_task
        await conn.close()
    result: dict[str, Any] = {
        "sessions_expired": count,
        "first_expiry_after_s": round(first_seen or 0.0, 2),
        "wall_s": round(wall, 2),
        "server_cpu_s": round(cpu, 2),
        "pg_backend_cpu_s": round(pg["backend_cpu_s"], 2),
        "concurrent_load": load,
        **prep,
    }
    if level is not None:
        result["cycles_during_expiry"] = _short(level)
    print(f"  server sweeper expiry{' under load' if load else ''}: {result}", flush=True)
    return result


def _short(level: dict[str, Any]) -> dict[str, Any]:
    legs = level["legs"]
    return {
        "cycles_per_s": level["per_second"],
        "count": level["count"],
        "errors": level["errors"],
        "server_cpu_ms_per_cycle": level["server_cpu_ms_per_op"],
        "pg_backend_cpu_ms_per_cycle": (level.get("postgres") or {}).get("backend_cpu_ms_per_op"),
        **{
            f"{leg}_ms": [legs[leg].get(k) for k in ("p50_ms", "p95_ms", "p99_ms")]
            for leg in LEG_KEYS
        },
    }


# --- the run ---------------------------------------------------------------------------------


def compare(empty: list[dict[str, Any]], full: list[dict[str, Any]]) -> dict[str, Any]:
    """Full ÷ empty for the mean over repetitions of each figure."""

    def mean(levels: list[dict[str, Any]], get: Any) -> float:
        return statistics.fmean(get(lv) for lv in levels)

    figures: dict[str, Any] = {
        "cycles_per_s": lambda lv: lv["per_second"],
        "server_cpu_ms_per_cycle": lambda lv: lv["server_cpu_ms_per_op"],
        "pg_backend_cpu_ms_per_cycle": lambda lv: lv["postgres"]["backend_cpu_ms_per_op"],
    }
    for leg in LEG_KEYS:
        for pct in ("p50_ms", "p95_ms", "p99_ms"):
            figures[f"{leg}_{pct}"] = lambda lv, leg=leg, pct=pct: lv["legs"][leg][pct]
    out = {}
    for name, get in figures.items():
        e, f = mean(empty, get), mean(full, get)
        out[name] = {"empty": round(e, 3), "full": round(f, 3), "ratio": round(f / e, 3)}
    return out


async def amain(args: argparse.Namespace) -> Path:
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="pushgate-scale-"))
    far_ms = now_ms() + 365 * DAY_MS  # the filler sessions' sentinel deadline
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": driver.machine(),
        "argv": sys.argv[1:],
        "devices": args.devices,
        "sessions": args.sessions,
    }
    servers: list[driver.Server] = []
    try:
        print(f"preparing {DB_EMPTY} and {DB_FULL} ({args.users} bench users each)", flush=True)
        s_empty, key_empty, parties_empty, port_empty = await prepare(DB_EMPTY, args.users)
        s_full, key_full, parties_full, port_full = await prepare(DB_FULL, args.users)
        print(f"loading {args.devices} devices, {args.sessions} sessions", flush=True)
        t = time.perf_counter()
        sealer = Sealer(load_secret_key(s_full))
        report["load"] = await load_filler(DB_FULL, sealer, args.devices, args.sessions, far_ms)
        report["load"]["total_s"] = round(time.perf_counter() - t, 1)
        print(f"  loaded in {report['load']['total_s']}s", flush=True)

        server_empty = start_server(s_empty, port_empty, tmp, "empty")
        servers.append(server_empty)
        server_full = start_server(s_full, port_full, tmp, "full")
        servers.append(server_full)
        await server_empty.ready()
        await server_full.ready()
        targets = {
            "empty": driver.Target(
                server_empty, key_empty, parties_empty, s_empty.lb_cookie, DB_EMPTY
            ),
            "full": driver.Target(server_full, key_full, parties_full, s_full.lb_cookie, DB_FULL),
        }
        # Priming: some cycles on both, then statistics for both. Without it the "empty"
        # database is planned as empty (sequential scans whose cost grows with every cycle
        # until autovacuum's ANALYZE comes round), which makes it the slower of the two.
        for target in targets.values():
            await driver.run_level(
                target,
                "cycle",
                8,
                warmup=0.0,
                duration=args.prime,
                max_cycles=10**9,
                client="raw",
                quiet=0.0,
            )
        report["load"]["settle_s"] = await settle(DB_EMPTY, DB_FULL)
        report["sizes"] = {"empty": await table_sizes(DB_EMPTY), "full": await table_sizes(DB_FULL)}
        print(f"  primed and analysed: {report['sizes']}", flush=True)
        levels: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
        comparisons = {}
        for c in args.concurrency:
            by_db: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
            for rep in range(args.reps):
                order = ("empty", "full") if rep % 2 == 0 else ("full", "empty")
                for which in order:
                    target = targets[which]
                    db = target.pg_db
                    assert db is not None
                    st0 = await table_stats(db)
                    level = await driver.run_level(
                        target,
                        "cycle",
                        c,
                        warmup=args.warmup,
                        duration=args.duration,
                        max_cycles=args.max_cycles,
                        client="raw",
                    )
                    level["tables_per_cycle"] = stats_delta(
                        st0, await table_stats(db), level["completed_total"]
                    )
                    level["database"] = which
                    level["rep"] = rep
                    by_db[which].append(level)
                    levels[which].append(level)
                    driver._print_level(which, 1, level)
            comparisons[str(c)] = compare(by_db["empty"], by_db["full"])
            cmp = comparisons[str(c)]
            print(
                f"  c={c} full/empty: "
                + ", ".join(
                    f"{k} {cmp[k]['ratio']:.2f}"
                    for k in (
                        "create_p50_ms",
                        "create_p99_ms",
                        "answer_p50_ms",
                        "answer_p99_ms",
                        "server_cpu_ms_per_cycle",
                    )
                ),
                flush=True,
            )
        report["levels"] = levels
        report["comparison"] = comparisons

        print("EXPLAIN of the hot statements on the full database", flush=True)
        plans = await explain_hot_path(DB_FULL, parties_full[0], f"{FILLER_PREFIX}{0:07d}")
        report["plans"] = plans
        report["plan_summary"] = plan_summary(plans)
        for name, modes in report["plan_summary"].items():
            print(f"  {name}: {modes}", flush=True)

        server_empty.stop()
        print("expiring the filler sessions", flush=True)
        expiry: dict[str, Any] = {}
        expiry["server_sweeper"] = await expire_by_server(
            targets["full"], DB_FULL, far_ms, args.sessions
        )
        await reset_filler(DB_FULL, far_ms)
        if args.expire_under_load:
            expiry["server_sweeper_under_load"] = await expire_by_server(
                targets["full"], DB_FULL, far_ms, args.sessions, load=args.expire_under_load
            )
            await reset_filler(DB_FULL, far_ms)
        server_full.stop()
        expiry["in_process"] = await expire_in_process(s_full, DB_FULL, far_ms, args.sessions)
        await reset_filler(DB_FULL, far_ms)
        expiry["in_process_proposed_statement"] = await expire_in_process(
            s_full, DB_FULL, far_ms, args.sessions, proposed=True
        )
        report["expiry"] = expiry
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            for db in (DB_EMPTY, DB_FULL):
                await driver.pg_admin(f"DROP DATABASE IF EXISTS {db}")
    report["wall_seconds"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scale{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))
    print(f"wrote {path} ({report['wall_seconds']} s)")
    return Path(path)


def markdown(report: dict[str, Any]) -> str:
    out = [
        f"{report['devices']:,} devices, {report['sessions']:,} pending sessions;"
        " mean over repetitions; full ÷ empty in brackets",
        "",
        "| conc. | figure | empty | full | full ÷ empty |",
        "|---|---|---|---|---|",
    ]
    keys = (
        "cycles_per_s",
        "server_cpu_ms_per_cycle",
        "pg_backend_cpu_ms_per_cycle",
        "create_p50_ms",
        "create_p95_ms",
        "create_p99_ms",
        "answer_p50_ms",
        "answer_p95_ms",
        "answer_p99_ms",
        "delivery_p50_ms",
        "result_p50_ms",
        "cycle_p50_ms",
        "cycle_p99_ms",
    )
    for c, cmp in report["comparison"].items():
        for k in keys:
            v = cmp[k]
            out.append(f"| {c} | {k} | {v['empty']:.2f} | {v['full']:.2f} | {v['ratio']:.2f} |")
    out.append("")
    out.append("| expiry | sessions | wall s | notes |")
    out.append("|---|---|---|---|")
    for name, e in report.get("expiry", {}).items():
        wall = e["wall_s"]
        notes = {
            k: v
            for k, v in e.items()
            if k not in ("sessions_expired", "wall_s", "cycles_during_expiry")
        }
        out.append(f"| {name} | {e['sessions_expired']:,} | {wall} | {notes} |")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=1_000_000, help="filler users/devices")
    p.add_argument("--sessions", type=int, default=100_000, help="pending filler sessions")
    p.add_argument("--users", type=int, default=64, help="bench users/devices per database")
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--reps", type=int, default=4, help="alternating repetitions per level")
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--max-cycles", type=int, default=20_000)
    p.add_argument("--prime", type=float, default=3.0, help="seconds of cycles before ANALYZE")
    p.add_argument(
        "--expire-under-load",
        type=int,
        default=8,
        help="concurrency of the cycle load while the sweeper expires (0: skip)",
    )
    p.add_argument("--keep", action="store_true", help="keep the databases")
    p.add_argument("--label", default="")
    p.add_argument("--out", type=Path, default=driver.RESULTS)
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.sessions > args.devices:
        p.error("--sessions must not exceed --devices (one notification per filler device)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(amain(args))


if __name__ == "__main__":
    main()
