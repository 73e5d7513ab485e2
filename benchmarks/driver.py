"""The push-cycle benchmark: a real `pushgate serve` on loopback, driven by simulated relying
parties and devices (issue 3).

One cycle: the relying party creates a session (`POST /v1/push/sessions`) → the device polls
(`_action=pending`) until the push is there → the device approves with a real HMAC response in
an HS256 JWT (`_action=authenticate`) → the relying party reads the session (`GET`) until it is
no longer `sent`. Each concurrent worker owns its own users/devices and two keep-alive
connections (one relying party, one device), so workers never see each other's pushes.

The floor is the same workers and connections doing `GET /healthz` (one DB read).

The bench realm (`/`) gets a policy that lifts the anti-fatigue limits (issue 7): workers cycle
the same users far faster than a person could, so the defaults (10 creates per user per
minute, a lock after 5 failures) would answer 429. The checks still run on every create
(`BENCH_POLICY`: the transaction, the user's lock, the read of the rate and of the pending
sessions, which a cycle's one pending session per user never trips), so their cost is in the
figures.

`--webhook` subscribes a loopback receiver (answering 204) to every event of the realm, so each
cycle also costs the server one signed delivery of `session.accepted`.

    .venv/bin/python benchmarks/driver.py            # full run, ~6 minutes
    .venv/bin/python benchmarks/driver.py --quick    # ~1.5 minutes
    .venv/bin/python benchmarks/driver.py --db postgres --workers 1 --webhook
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from rawhttp import Connection, HttpxConnection

from pushgate.protocol import device_messages as dm
from pushgate.protocol import qr
from pushgate.settings import Settings
from pushgate.simulator import (
    Mechanism,
    SimulatedDevice,
    answer_body,
    mechanism_from_uri,
    new_device,
    poll_body,
    registration_body,
)
from pushgate.wiring import build_services, migrate_database

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_DB = "pushgate_bench"
CLK = os.sysconf("SC_CLK_TCK")
# The key that seals device secrets, shared by the in-process provisioning and the server (so
# no `pushgate.key` file is made in the working directory).
SECRET_KEY = base64.b64encode(os.urandom(32)).decode()
LEGS = ("create", "delivery", "answer", "result", "cycle")
# Lifted, not switched off: the per-user create count and the pending check still run.
# 600 a minute: far above the driver's ~50 per user and minute, and a bound on what the rate
# check reads (the N-th newest of the user's sessions in the window).
BENCH_POLICY = {"createsPerMinute": 600, "lockAfterFailures": 100}


# --- CPU accounting from /proc ------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime seconds) of one process, or None if it is gone or not visible."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK


def tree_cpu(root: int) -> float:
    """utime+stime of `root` and all its live descendants (uvicorn's worker processes)."""
    stats: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (s := _stat(int(name))) is not None:
            stats[int(name)] = s
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- PostgreSQL helpers -------------------------------------------------------------------


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_snapshot(db: str) -> dict[str, float]:
    """Counters of pg_stat_database plus the CPU of the backends serving `db` (if visible)."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,"
            " tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1",
            db,
        )
        pids = [
            r["pid"]
            for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
        ]
    finally:
        await conn.close()
    snap = {k: float(v) for k, v in dict(row).items()}
    cpu = {pid: s[1] for pid in pids if (s := _stat(pid)) is not None}
    snap["_backends_visible"] = float(len(cpu))
    snap.update({f"_pid{pid}": v for pid, v in cpu.items()})
    return snap


def pg_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    out = {k: after[k] - before[k] for k in after if not k.startswith("_")}
    # Backend CPU: pids alive at the end; ones that started during the run count from zero.
    out["backend_cpu_s"] = sum(
        v - before.get(k, 0.0) for k, v in after.items() if k.startswith("_pid")
    )
    out["backends_visible"] = after["_backends_visible"]
    return out


# --- provisioning, in-process on the same database ----------------------------------------


@dataclass(frozen=True)
class Party:
    username: str
    mechanism: Mechanism
    pending_path: str
    authenticate_path: str


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def provision(
    settings: Settings, users: int, webhook_url: str | None = None
) -> tuple[str, list[Party]]:
    await migrate_database(settings)
    services = build_services(settings)
    try:
        await services.accounts.set_realm_policy("/", BENCH_POLICY)
        if webhook_url is not None:
            await services.webhooks.add("/", webhook_url)  # every event type
        key = (await services.accounts.create_api_key("/")).key
        parties = []
        run = uuid.uuid4().hex[:6]
        for i in range(users):
            name = f"bench-{run}-{i:05d}"
            await services.accounts.create_user("/", name, None)
            started = await services.devices.start_registration("/", name)
            uri = qr.parse(started.uri)
            uid = str(uuid.uuid4())
            body = registration_body(uri, uid, bench_device())
            await services.devices.register("/", dm.parse_message_request(body))
            mech = mechanism_from_uri(uri, uid)
            parties.append(Party(name, mech, _path(mech.pending_url), _path(mech.authenticate_url)))
        return key, parties
    finally:
        await services.store.aclose()


# --- the relying party's webhook receiver ---------------------------------------------------


class WebhookReceiver:
    """An HTTP/1.1 keep-alive receiver on loopback that answers every request `204` and counts
    them. It checks no signature: that is the relying party's cost, not the server's. It counts
    the connections too: one per delivery means the sender's keep-alive is not reused."""

    def __init__(self) -> None:
        self.received = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/webhook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.received += 1
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:  # the sender's idle keep-alive connections
            writer.close()


# --- the server under test ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], port: int, workers: int, log: Path) -> None:
        self.port = port
        cmd = [str(BIN / "pushgate"), "serve", "--port", str(port), "--workers", str(workers)]
        cmd.append("--no-access-log")
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=self._log, stderr=self._log
        )

    async def ready(self, within_s: float = 30.0) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            conn = Connection("127.0.0.1", self.port)
            try:
                status, _ = await conn.request("GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --- the load ------------------------------------------------------------------------------


@dataclass
class Run:
    measuring: bool = False
    stop: bool = False
    max_records: int = 10**9
    records: list[tuple[float, ...]] = field(default_factory=list)
    completed: int = 0  # every successful cycle/request, warm-up included (for SQL counters)
    errors: int = 0
    first_error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, values: tuple[float, ...]) -> None:
        self.completed += 1
        if self.measuring:
            self.records.append(values)
            if len(self.records) >= self.max_records:
                self.done.set()


class CycleError(Exception):
    pass


def _expect(status: int, body: bytes, want: int, what: str) -> None:
    if status != want:
        raise CycleError(f"{what}: HTTP {status} {body[:200]!r}")


async def _timed(coro: Any) -> tuple[int, bytes, float]:
    status, body = await coro
    return status, body, time.perf_counter()


# The device each bench user registers; push_delivery.py makes APNs devices with it.
bench_device: Callable[[], SimulatedDevice] = new_device

# Set by a benchmark that delivers pushes (push_delivery.py): the device then waits for the
# push of each session (by its id), as a phone learns of a session from its push; otherwise
# its poll would answer first and the worker would skip the pointless send. When the hook
# returns the push's data (`messageId`, `message`), the device answers from it without a
# poll, as the ForgeRock Authenticator does; when it returns None, the device polls as well.
PushArrival = Callable[[str], Awaitable[dict[str, str] | None]]
push_arrival: PushArrival | None = None


async def cycle_worker(
    run: Run, rp: Any, dev: Any, parties: list[Party], now_ms: Callable[[], int], wait: int
) -> None:
    clock = time.perf_counter
    i = 0
    while not run.stop:
        party = parties[i % len(parties)]
        i += 1
        mech = party.mechanism
        try:
            t0 = clock()
            status, body = await rp.request(
                "POST", "/v1/push/sessions", b'{"user":"%s"}' % party.username.encode()
            )
            _expect(status, body, 201, "create")
            session_id = json.loads(body)["id"]
            t1 = clock()
            waiter = None
            if wait:
                # The relying party long-polls while the device works (`?wait=`).
                path = f"/v1/push/sessions/{session_id}?wait={wait}"
                waiter = asyncio.ensure_future(_timed(rp.request("GET", path)))
            pushed = await push_arrival(session_id) if push_arrival is not None else None
            polls = 0
            while pushed is None:
                polls += 1
                poll = json.dumps(poll_body(mech, now_ms())).encode()
                status, body = await dev.request("POST", party.pending_path, poll)
                _expect(status, body, 200, "pending")
                notes = json.loads(body)["notifications"]
                if notes:
                    break
                await asyncio.sleep(0.001)
            t2 = clock()
            note = pushed or notes[0]
            answer = answer_body(mech, note["messageId"], note["message"], True)
            status, body = await dev.request(
                "POST", party.authenticate_path, json.dumps(answer).encode()
            )
            _expect(status, body, 200, "authenticate")
            if body != b"{}":
                raise CycleError(f"authenticate answered {body!r}")
            t3 = clock()
            gets = 0
            while waiter is not None:
                gets += 1
                status, body, t4 = await waiter
                _expect(status, body, 200, "wait")
                state = json.loads(body)["status"]
                waiter = None
            while not wait:
                gets += 1
                status, body = await rp.request("GET", f"/v1/push/sessions/{session_id}")
                _expect(status, body, 200, "get")
                state = json.loads(body)["status"]
                if state != "sent":
                    break
                await asyncio.sleep(0.001)
            if not wait:
                t4 = clock()
            if state != "accepted":
                raise CycleError(f"session ended {state}")
            # With `wait`, the long-poll can complete before the device's own 200 is read
            # (the server wakes the waiter before it answers the device): counted as 0.
            run.record((t1 - t0, t2 - t1, t3 - t2, max(0.0, t4 - t3), t4 - t0, polls, gets))
        except Exception as exc:  # counted and reported; the run goes on
            run.errors += 1
            run.first_error = run.first_error or repr(exc)
            await asyncio.sleep(0.01)


async def floor_worker(run: Run, rp: Any) -> None:
    clock = time.perf_counter
    while not run.stop:
        try:
            t0 = clock()
            status, body = await rp.request("GET", "/healthz")
            _expect(status, body, 200, "healthz")
            run.record((clock() - t0,))
        except Exception as exc:
            run.errors += 1
            run.first_error = run.first_error or repr(exc)
            await asyncio.sleep(0.01)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    s = sorted(values)

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] * 1000

    return {
        "p50_ms": round(at(0.50), 3),
        "p95_ms": round(at(0.95), 3),
        "p99_ms": round(at(0.99), 3),
        "max_ms": round(s[-1] * 1000, 3),
        "mean_ms": round(sum(s) / len(s) * 1000, 3),
    }


@dataclass(frozen=True)
class Target:
    server: Server
    api_key: str
    parties: list[Party]
    lb_cookie: str
    pg_db: str | None
    webhook: WebhookReceiver | None = None


async def run_level(
    target: Target,
    kind: str,
    concurrency: int,
    *,
    warmup: float,
    duration: float,
    max_cycles: int,
    client: str,
    wait: int = 0,
    quiet: float = 1.1,
    done: asyncio.Event | None = None,
) -> dict[str, Any]:
    make = Connection if client == "raw" else HttpxConnection
    port = target.server.port
    rp_headers = {"X-API-Key": target.api_key, "Content-Type": "application/json"}
    dev_headers = {
        "Content-Type": "application/json",
        "Accept-API-Version": "resource=1.0, protocol=1.0",
        "Cookie": target.lb_cookie,
    }
    run = Run(max_records=max_cycles)
    if done is not None:  # the caller may end the measured window early
        run.done = done
    conns: list[Any] = []
    tasks = []

    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    # PostgreSQL's statistics counters lag: a backend flushes them at most once a second, and
    # one that finished a transaction <1 s after its last flush (or lost the race for the
    # shared stats lock) keeps them pending for 10 s of idleness (PG 15 PGSTAT_IDLE_INTERVAL).
    # So the SQL counters come from snapshots taken while the server is idle, over the whole
    # level, warm-up included, divided by all completed operations: approximate with the
    # default `quiet` of 1.1 s, exact with `quiet` > 10 s (`sql_count_level`). Backend CPU
    # (from /proc, not lagged) covers the measured window only.
    quiet0 = None
    if target.pg_db:
        await asyncio.sleep(quiet)
        quiet0 = await pg_snapshot(target.pg_db)
    for w in range(concurrency):
        rp = make("127.0.0.1", port, rp_headers)
        conns.append(rp)
        if kind == "cycle":
            dev = make("127.0.0.1", port, dev_headers)
            conns.append(dev)
            mine = target.parties[w::concurrency]
            tasks.append(asyncio.create_task(cycle_worker(run, rp, dev, mine, now_ms, wait)))
        else:
            tasks.append(asyncio.create_task(floor_worker(run, rp)))
    await asyncio.sleep(warmup)
    pg0 = await pg_snapshot(target.pg_db) if target.pg_db else None
    hooks0 = target.webhook.received if target.webhook else 0
    conns0 = target.webhook.connections if target.webhook else 0
    cpu0, me0, t0 = target.server.cpu(), self_cpu(), time.perf_counter()
    run.measuring = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.done.wait(), duration)
    run.measuring = False
    elapsed = time.perf_counter() - t0
    cpu1, me1 = target.server.cpu(), self_cpu()
    hooks = (target.webhook.received if target.webhook else 0) - hooks0
    hook_conns = (target.webhook.connections if target.webhook else 0) - conns0
    pg1 = await pg_snapshot(target.pg_db) if target.pg_db else None
    run.stop = True
    await asyncio.gather(*tasks)
    for conn in conns:
        if isinstance(conn, HttpxConnection):
            await conn.aclose()
        else:
            conn.close()
    pg = cpu_pg = None
    if target.pg_db and pg0 is not None and pg1 is not None and quiet0 is not None:
        cpu_pg = pg_delta(pg0, pg1)
        await asyncio.sleep(max(quiet, 1.2))
        pg = pg_delta(quiet0, await pg_snapshot(target.pg_db))

    n = len(run.records)
    result: dict[str, Any] = {
        "kind": kind,
        "concurrency": concurrency,
        "client": client,
        "result_by": f"GET ?wait={wait}" if wait else "GET polling",
        "seconds": round(elapsed, 3),
        "count": n,
        "per_second": round(n / elapsed, 1),
        "completed_total": run.completed,
        "errors": run.errors,
        "first_error": run.first_error,
        "server_cpu_ms_per_op": round((cpu1 - cpu0) * 1000 / n, 3) if n else None,
        "server_cpu_utilisation": round((cpu1 - cpu0) / elapsed, 3),
        "driver_cpu_ms_per_op": round((me1 - me0) * 1000 / n, 3) if n else None,
    }
    if target.webhook is not None:
        # Deliveries lag the cycles a little; about 1.0 per cycle in steady state.
        result["webhooks_per_op"] = round(hooks / n, 3) if n else None
        result["webhook_connections_per_op"] = round(hook_conns / n, 3) if n else None
    if kind == "cycle":
        cols = list(zip(*run.records, strict=True)) if n else [[]] * 7
        result["legs"] = {leg: percentiles(list(cols[i])) for i, leg in enumerate(LEGS)}
        result["polls_per_cycle"] = round(sum(cols[5]) / n, 3) if n else None
        result["gets_per_cycle"] = round(sum(cols[6]) / n, 3) if n else None
        result["requests_per_cycle"] = (
            round(2 + (sum(cols[5]) + sum(cols[6])) / n, 3) if n else None
        )
    else:
        result["latency"] = percentiles([r[0] for r in run.records])
    if pg is not None and cpu_pg is not None and n:
        done = run.completed
        result["postgres"] = {
            "backend_cpu_ms_per_op": round(cpu_pg["backend_cpu_s"] * 1000 / n, 3)
            if cpu_pg["backends_visible"]
            else None,
            "counted_ops": done,
            **{
                f"{k}_per_op": round(v / done, 2) for k, v in pg.items() if not k.startswith("back")
            },
        }
    return result


# --- configurations -----------------------------------------------------------------------


async def sql_count_level(target: Target, cycles: int = 200) -> dict[str, Any]:
    """Exact PostgreSQL counters per cycle: `cycles` sequential cycles between two snapshots
    taken after >10 s of idleness (see `run_level`). The only other traffic is the expiry
    sweeper (one transaction per sweep interval, no rows) and the listener's keep-alive."""
    return await run_level(
        target,
        "cycle",
        1,
        warmup=0.0,
        duration=600.0,
        max_cycles=cycles,
        client="raw",
        quiet=10.5,
    )


async def run_config(db: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="pushgate-bench-"))
    pg_db = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        pg_db = PG_DB
        await pg_admin(f"DROP DATABASE IF EXISTS {pg_db}")
        await pg_admin(f"CREATE DATABASE {pg_db}")
        url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{pg_db}"
    settings = Settings(database_url=url, public_url=public_url, secret_key=SECRET_KEY)
    users = max(args.users, max(args.concurrency))
    t = time.perf_counter()
    receiver = WebhookReceiver() if args.webhook else None
    hook_url = await receiver.start() if receiver is not None else None
    api_key, parties = await provision(settings, users, hook_url)
    print(f"[{db} w{workers}] provisioned {users} users/devices in {time.perf_counter() - t:.1f}s")
    env = {
        "PUSHGATE_DATABASE_URL": url,
        "PUSHGATE_PUBLIC_URL": public_url,
        "PUSHGATE_SECRET_KEY": SECRET_KEY,
        **dict(kv.split("=", 1) for kv in args.env),
    }
    server = Server(env, port, workers, tmp / "server.log")
    levels = []
    sql_count = None
    try:
        await server.ready()
        target = Target(server, api_key, parties, settings.lb_cookie, pg_db, receiver)
        for kind in args.kinds:
            for c in args.concurrency:
                level = await run_level(
                    target,
                    kind,
                    c,
                    warmup=args.warmup,
                    duration=args.duration,
                    max_cycles=args.max_cycles,
                    client=args.client,
                    wait=args.wait if kind == "cycle" else 0,
                )
                levels.append(level)
                _print_level(db, workers, level)
        if pg_db and args.sql_count:
            sql_count = await sql_count_level(target, args.sql_count)
            print(
                f"[{db} w{workers}] SQL per cycle (exact, {sql_count['completed_total']} cycles):"
            )
            print(f"    {sql_count['postgres']}")
    finally:
        server.stop()
        if receiver is not None:
            receiver.close()
        if pg_db:
            await pg_admin(f"DROP DATABASE IF EXISTS {pg_db}")
    return {
        "database": db,
        "workers": workers,
        "webhook": args.webhook,
        "env": args.env,
        "users": users,
        "server_log": str(tmp / "server.log"),
        "levels": levels,
        "sql_count": sql_count,
    }


def _print_level(db: str, workers: int, r: dict[str, Any]) -> None:
    head = f"[{db} w{workers}] {r['kind']:5} c={r['concurrency']:<3}"
    cpu = r["server_cpu_ms_per_op"]
    pg = r.get("postgres") or {}
    extra = ""
    if pg.get("backend_cpu_ms_per_op") is not None:
        extra = f" pg-cpu {pg['backend_cpu_ms_per_op']:.2f} ms"
    if r["kind"] == "cycle":
        legs = r["legs"]
        lat = " ".join(
            f"{leg} {legs[leg].get('p50_ms', 0):.1f}/{legs[leg].get('p99_ms', 0):.1f}"
            for leg in LEGS
        )
        if "webhooks_per_op" in r:
            extra += f" webhooks/cycle {r['webhooks_per_op']}"
            extra += f" (new connections/cycle {r['webhook_connections_per_op']})"
        print(
            f"{head} {r['per_second']:7.1f} cycles/s  server {cpu} ms/cycle{extra}"
            f"  p50/p99 ms: {lat}  errors {r['errors']}"
        )
    else:
        lat = r["latency"]
        print(
            f"{head} {r['per_second']:7.1f} req/s     server {cpu} ms/req{extra}"
            f"  p50/p99 {lat.get('p50_ms')}/{lat.get('p99_ms')} ms  errors {r['errors']}"
        )
    if r["first_error"]:
        print(f"    first error: {r['first_error']}")


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short levels, concurrency 1 and 32")
    p.add_argument("--db", default="sqlite,postgres", help="comma list: sqlite,postgres")
    p.add_argument("--workers", default="1,2", help="comma list of uvicorn worker counts")
    p.add_argument("--concurrency", default=None, help="comma list (default 1,8,32,128)")
    p.add_argument("--kinds", default="floor,cycle", help="comma list: floor,cycle")
    p.add_argument("--duration", type=float, default=None, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per level")
    p.add_argument("--max-cycles", type=int, default=20_000, help="bound per level")
    p.add_argument("--users", type=int, default=256, help="users, one device each")
    p.add_argument("--client", choices=("raw", "httpx"), default="raw")
    p.add_argument(
        "--wait",
        type=int,
        default=0,
        help="relying party long-polls GET ?wait=N from create on (0: GET until answered)",
    )
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the server")
    p.add_argument(
        "--webhook",
        action="store_true",
        help="subscribe a loopback receiver (204) to every event of the bench realm",
    )
    p.add_argument(
        "--sql-count",
        type=int,
        default=None,
        help="PostgreSQL: N sequential cycles between idle snapshots for exact SQL counters"
        " (0: skip; default 200, 0 with --quick; costs ~25 s)",
    )
    p.add_argument("--label", default="", help="suffix of the results file name")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    args.db = args.db.split(",")
    args.workers = [int(w) for w in args.workers.split(",")]
    args.kinds = args.kinds.split(",")
    default_c = "1,32" if args.quick else "1,8,32,128"
    args.concurrency = [int(c) for c in (args.concurrency or default_c).split(",")]
    args.duration = args.duration or (3.0 if args.quick else 6.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 1.5)
    if args.sql_count is None:
        args.sql_count = 0 if args.quick else 200
    if args.quick:
        args.users = min(args.users, 64)
    return args


async def amain(args: argparse.Namespace) -> Path:
    started = time.time()
    configs = []
    for db in args.db:
        for workers in args.workers:
            configs.append(await run_config(db, workers, args))
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "machine": machine(),
        "argv": sys.argv[1:],
        "configs": configs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "full"
    path = args.out / f"{name}{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path} ({report['wall_seconds']} s)")
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    path = runner(amain(args))
    if not args.no_plot:
        from plot import plot

        print(f"wrote {plot(path)}")


if __name__ == "__main__":
    main()
