"""Journey login benchmark (issue 9): a whole push login through AM's REST API
(`/json/realms/root/authenticate`) against a real `pushgate serve` on PostgreSQL, with the
simulator as the phone, and the server's CPU per login.

One login, as the ForgeRock JS SDK and a phone do it (7 requests):

    1. POST /authenticate            empty body → the credentials page
    2. POST /authenticate            username + password → the device profile
    3. POST /authenticate            the profile → Push Sender (a push session) → Push Wait
    4. POST /authenticate            the wait, resubmitted at once: held until the push ends
    5. device  _action=pending       the phone fetches the push (while 4 is held)
    6. device  _action=authenticate  the phone approves, with the number from step 3
       → 4 answers: tokenId + iPlanetDirectoryPro
    7. POST /sessions?_action=validate

The Data Store Decision's argon2id check is deliberately expensive (tens of ms of CPU at its
default parameters); it is measured apart, with users whose hashes use the cheapest argon2id
parameters (`cheap`) next to users with the default ones (`argon2`), so the figure of the
journey itself is `cheap`.

What the idle server does on its own (the expiry sweeper, the outbox worker, the listener) is
measured first and subtracted from every window.

A second level measures an idle wait: clients sitting at Push Wait with no answer coming,
each resubmitting as told; server CPU and PostgreSQL reads per poll.

    .venv/bin/python benchmarks/journey_login.py                # ~1.5 minutes
    .venv/bin/python benchmarks/journey_login.py --logins 300 --concurrency 1,8

Results: `benchmarks/results/journey-login.json`; docs/PERFORMANCE.md "Issue 9" has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import driver
from argon2 import PasswordHasher
from driver import PG_HOST, PG_PORT, PG_USER, SECRET_KEY, Server, free_port, pg_admin, pg_delta
from driver import pg_snapshot as snapshot
from rawhttp import Connection

from pushgate.protocol import device_messages as dm
from pushgate.protocol import qr
from pushgate.settings import Settings
from pushgate.simulator import (
    Mechanism,
    answer_body,
    mechanism_from_uri,
    new_device,
    poll_body,
    registration_body,
)
from pushgate.wiring import build_services, migrate_database

PG_DB = "pushgate_bench_journey"
AUTH = "/json/realms/root/authenticate?authIndexType=service&authIndexValue=PushAuthentication"
VALIDATE = "/json/realms/root/sessions?_action=validate"
PROFILE = json.dumps({"identifier": "bench", "metadata": {"browser": {"userAgent": "bench"}}})
HEADERS = {
    "Content-Type": "application/json",
    "Accept-API-Version": "protocol=1.0,resource=2.1",
    "X-Requested-With": "forgerock-sdk",
    "Accept-Language": "en-US,en;q=0.9",
    "User-Agent": "Mozilla/5.0 (bench) pushgate-journey-login",
}
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "bench-password"


class LoginError(Exception):
    pass


class Window:
    """Server CPU and PostgreSQL counters over a measured window, less what the idle server
    does on its own in that time (the expiry sweeper, the outbox worker, the listener)."""

    idle_cpu_per_s = 0.0
    idle_pg_per_s: dict[str, float] = {}  # noqa: RUF012 (set once, by `calibrate`)
    idle_scans_per_s: dict[str, float] = {}  # noqa: RUF012

    def __init__(self, server: Server, quiet: float = 1.1) -> None:
        self.server = server
        self.quiet = quiet

    async def __aenter__(self) -> Window:
        # PostgreSQL's statistics flush (see driver.run_level): approximate after 1.1 s of
        # quiet, exact after more than 10 s.
        await asyncio.sleep(self.quiet)
        self._pg0, self._pg_t0 = await snapshot(PG_DB), time.perf_counter()
        self._cpu0, self._t0 = self.server.cpu(), time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu_s = self.server.cpu() - self._cpu0 - self.idle_cpu_per_s * self.seconds
        await asyncio.sleep(max(1.2, self.quiet))
        pg = pg_delta(self._pg0, await snapshot(PG_DB))
        self.pg_seconds = time.perf_counter() - self._pg_t0
        self.pg = {
            k: v - self.idle_pg_per_s.get(k, 0.0) * self.pg_seconds
            for k, v in pg.items()
            if not k.startswith("back")
        }

    @classmethod
    async def calibrate(cls, server: Server, seconds: float) -> dict[str, Any]:
        async with cls(server, quiet=11) as idle:
            scans0 = await table_scans()
            await asyncio.sleep(seconds)
        scans1 = await table_scans()
        scan_seconds = idle.pg_seconds - idle.quiet
        cls.idle_scans_per_s = {
            k: (v - scans0.get(k, 0.0)) / scan_seconds for k, v in scans1.items()
        }
        cls.idle_cpu_per_s = idle.cpu_s / idle.seconds
        cls.idle_pg_per_s = {k: v / idle.pg_seconds for k, v in idle.pg.items()}
        return {
            "cpu_ms_per_s": round(cls.idle_cpu_per_s * 1000, 3),
            "postgres_per_s": {k: round(v, 3) for k, v in cls.idle_pg_per_s.items()},
        }


def fill(step: dict[str, Any], *values: object) -> bytes:
    given = iter(values)
    for callback in step["callbacks"]:
        for entry in callback.get("input", []):
            value = next(given, None)
            if value is not None:
                entry["value"] = value
    return json.dumps(step).encode()


def hidden(step: dict[str, Any], id_: str) -> str:
    for callback in step["callbacks"]:
        outputs = {o["name"]: o["value"] for o in callback["output"]}
        if outputs.get("id") == id_:
            return str(outputs["value"])
    raise LoginError(f"no {id_} in {[c['type'] for c in step['callbacks']]}")


async def table_scans() -> dict[str, float]:
    """Scans per table of the bench database (seq + index): what our statements read, apart
    from autovacuum and statistics work, which pg_stat_database counts too."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_DB)
    try:
        rows = await conn.fetch(
            "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans"
            " FROM pg_stat_user_tables"
        )
    finally:
        await conn.close()
    return {r["relname"]: float(r["scans"]) for r in rows}


async def provision(settings: Settings, users: int, kind: str) -> list[tuple[str, Mechanism]]:
    """Users with a password and one registered device each (poll-only, as the simulator)."""
    services = build_services(settings)
    hasher = CHEAP if kind == "cheap" else PasswordHasher()
    hashed = hasher.hash(PASSWORD)
    try:
        await services.accounts.set_realm_policy("/", driver.BENCH_POLICY)
        parties = []
        run = uuid.uuid4().hex[:6]
        for i in range(users):
            name = f"{kind}-{run}-{i:04d}"
            user = await services.accounts.create_user("/", name, None)
            async with services.store.transaction() as tx:
                await tx.journeys.set_password_hash(user.id, hashed)
            started = await services.devices.start_registration("/", name)
            uri = qr.parse(started.uri)
            uid = str(uuid.uuid4())
            body = registration_body(uri, uid, new_device())
            await services.devices.register("/", dm.parse_message_request(body))
            parties.append((name, mechanism_from_uri(uri, uid)))
        return parties
    finally:
        await services.store.aclose()


def _path(url: str) -> str:
    return driver._path(url)


async def _json(conn: Connection, path: str, body: bytes, want: int = 200) -> dict[str, Any]:
    status, raw = await conn.request("POST", path, body)
    if status != want:
        raise LoginError(f"{path}: HTTP {status} {raw[:200]!r}")
    data: dict[str, Any] = json.loads(raw)
    return data


async def login(browser: Connection, phone: Connection, name: str, mech: Mechanism) -> int:
    """One push login; the number of HTTP requests it took."""
    requests = 0
    page = await _json(browser, AUTH, b"")
    profile = await _json(browser, AUTH, fill(page, name, PASSWORD))
    wait = await _json(browser, AUTH, fill(profile, PROFILE))
    requests += 3
    number = int(hidden(wait, "pushChallengeNumber"))
    held = asyncio.ensure_future(_json(browser, AUTH, fill(wait)))
    while True:  # the phone: its push is there at once (committed before step 3 answered)
        requests += 1
        poll = json.dumps(poll_body(mech, time.time_ns() // 1_000_000)).encode()
        notes = (await _json(phone, _path(mech.pending_url), poll))["notifications"]
        if notes:
            break
        await asyncio.sleep(0.001)
    note = notes[0]
    answer = answer_body(mech, note["messageId"], note["message"], True, number)
    status, raw = await phone.request(
        "POST", _path(mech.authenticate_url), json.dumps(answer).encode()
    )
    requests += 1
    if status != 200:
        raise LoginError(f"authenticate: HTTP {status} {raw[:200]!r}")
    done = await held
    requests += 1
    while "authId" in done:  # the approval landed before the server held the step: rare
        done = await _json(browser, AUTH, fill(done))
        requests += 1
    # The relying page checks the token (the raw client keeps no cookie jar: the body's
    # `tokenId`, which AM's validate reads too).
    check = json.dumps({"tokenId": done["tokenId"]}).encode()
    if not (await _json(browser, VALIDATE, check))["valid"]:
        raise LoginError("validate: the new token is not valid")
    requests += 1
    return requests


async def login_level(
    server: Server,
    parties: list[tuple[str, Mechanism]],
    concurrency: int,
    logins: int,
    seconds: float | None = None,
) -> dict[str, Any]:
    """`logins` logins by `concurrency` browser+phone pairs, each its own users."""
    per_worker = max(1, logins // concurrency)
    counts: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []

    deadline = time.perf_counter() + seconds + 1.1 if seconds else None

    async def worker(w: int) -> None:
        mine = parties[w::concurrency]
        for i in range(per_worker):
            if deadline is not None and time.perf_counter() > deadline:
                break
            # A fresh browser per login: its cookie jar is empty, as a new visitor's.
            browser = Connection("127.0.0.1", server.port, HEADERS)
            phone = Connection("127.0.0.1", server.port, {"Content-Type": "application/json"})
            name, mech = mine[i % len(mine)]
            t0 = time.perf_counter()
            try:
                counts.append(await login(browser, phone, name, mech))
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # counted and reported
                errors.append(repr(exc))
            finally:
                browser.close()
                phone.close()

    async with Window(server) as window:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    n = len(counts)
    return {
        "concurrency": concurrency,
        "logins": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(window.seconds, 2),
        "logins_per_second": round(n / window.seconds, 1),
        "requests_per_login": round(sum(counts) / n, 2) if n else None,
        "server_cpu_ms_per_login": round(window.cpu_s * 1000 / n, 2) if n else None,
        "latency_ms": driver.percentiles(latencies),
        "postgres_per_login": {k: round(v / n, 2) for k, v in window.pg.items() if n},
    }


async def idle_wait_level(
    server: Server, parties: list[tuple[str, Mechanism]], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` logins sitting at Push Wait, nobody answering: each resubmits the wait the
    moment it is answered (as told: waitTime "0"); what one such poll costs."""
    browsers = [Connection("127.0.0.1", server.port, HEADERS) for _ in range(clients)]

    async def to_wait(browser: Connection, name: str) -> dict[str, Any]:
        page = await _json(browser, AUTH, b"")
        profile = await _json(browser, AUTH, fill(page, name, PASSWORD))
        return await _json(browser, AUTH, fill(profile, PROFILE))

    waits = await asyncio.gather(
        *(to_wait(b, p[0]) for b, p in zip(browsers, parties, strict=False))
    )
    for browser in browsers:
        browser.close()
    polls = 0

    async def poller(wait: dict[str, Any]) -> None:
        nonlocal polls
        # A new connection: uvicorn closed the idle one during the quiet time.
        browser = Connection("127.0.0.1", server.port, HEADERS)
        try:
            while time.perf_counter() < stop:
                wait = await _json(browser, AUTH, fill(wait))
                polls += 1
        finally:
            browser.close()

    # The exact counters: more than 10 s of quiet on both sides of the window.
    stop = time.perf_counter() + 11 + seconds
    async with Window(server, quiet=11) as window:
        scans0 = await table_scans()
        await asyncio.gather(*(poller(w) for w in waits))
    # After the window's quiet end: the last polls' counters are flushed by then.
    scans = {k: v - scans0.get(k, 0.0) for k, v in (await table_scans()).items()}
    scan_seconds = window.pg_seconds - window.quiet
    return {
        "clients": clients,
        "seconds": seconds,
        "polls": polls,
        "polls_per_client_second": round(polls / clients / seconds, 3),
        "server_cpu_ms_per_poll": round(window.cpu_s * 1000 / polls, 3) if polls else None,
        "postgres_per_poll": {k: round(v / polls, 3) for k, v in window.pg.items() if polls},
        # Less what the idle server scans in that time (the sweeper reads `sessions`).
        "table_scans_per_poll": {
            k: round((v - scan_seconds * Window.idle_scans_per_s.get(k, 0.0)) / polls, 3)
            for k, v in sorted(scans.items())
            if polls and v
        },
    }


async def amain(args: argparse.Namespace) -> Path:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="pushgate-journey-bench-"))
    await pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
    await pg_admin(f"CREATE DATABASE {PG_DB}")
    url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
    settings = Settings(database_url=url, public_url=public_url, secret_key=SECRET_KEY)
    await migrate_database(settings)
    users = max(args.concurrency) * 4
    parties = {kind: await provision(settings, users, kind) for kind in ("cheap", "argon2")}
    idle = await provision(settings, args.idle_clients, "cheap")
    env = {
        "PUSHGATE_DATABASE_URL": url,
        "PUSHGATE_PUBLIC_URL": public_url,
        "PUSHGATE_SECRET_KEY": SECRET_KEY,
        **dict(kv.split("=", 1) for kv in args.env),
    }
    server = Server(env, port, 1, tmp / "server.log")
    levels: list[dict[str, Any]] = []
    try:
        await server.ready()
        idle_server = await Window.calibrate(server, args.calibrate_seconds)
        print(json.dumps({"idle_server": idle_server}))
        for kind in ("cheap", "argon2"):
            await login_level(server, parties[kind], 1, 10)  # warm-up: imports, caches, plans
            for c in args.concurrency:
                count = args.logins if kind == "cheap" else args.argon2_logins
                level = {"hash": kind, **await login_level(server, parties[kind], c, count)}
                levels.append(level)
                print(json.dumps(level))
        if args.profile:
            profile = await profiled(server, parties["cheap"], args, tmp)
            print(profile)
        idle_level = await idle_wait_level(server, idle, args.idle_clients, args.idle_seconds)
        print(json.dumps(idle_level))
    finally:
        server.stop()
        await pg_admin(f"DROP DATABASE IF EXISTS {PG_DB}")
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": driver.machine(),
        "argv": sys.argv[1:],
        "idle_server": idle_server,
        "logins": levels,
        "idle_wait": idle_level,
        "server_log": str(tmp / "server.log"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "journey-login.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return path


async def profiled(
    server: Server, parties: list[tuple[str, Mechanism]], args: argparse.Namespace, tmp: Path
) -> str:
    """py-spy on the server during cheap logins (c=4): where a login's CPU goes."""
    import profile_server

    raw = tmp / "stacks.txt"
    spy = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
        [
            str(driver.BIN / "py-spy"),
            "record",
            "--pid",
            str(server.proc.pid),
            "--duration",
            str(int(args.profile)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    level = await login_level(server, parties, 4, 10**6, seconds=args.profile)
    spy.wait(30)
    summary = (
        f"journey login (cheap hash), postgres, 1 worker, c=4, py-spy 250 Hz: "
        f"{level['logins']} logins, server CPU {level['server_cpu_ms_per_login']} ms/login\n"
        + profile_server.summarize(raw, 30)
    )
    (args.out / "profile-journey-login.txt").write_text(summary + "\n")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--logins", type=int, default=200, help="measured logins per level")
    p.add_argument("--argon2-logins", type=int, default=40, help="the same, default hashes")
    p.add_argument("--concurrency", default="1,8", help="comma list of browser+phone pairs")
    p.add_argument("--idle-clients", type=int, default=50, help="clients waiting, unanswered")
    p.add_argument("--idle-seconds", type=float, default=12.0)
    p.add_argument("--calibrate-seconds", type=float, default=10.0, help="idle server baseline")
    p.add_argument("--profile", type=float, default=0, help="seconds of py-spy on cheap logins")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the server")
    p.add_argument("--out", type=Path, default=driver.RESULTS)
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    main()
