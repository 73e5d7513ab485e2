"""Push delivery benchmark (issue 8): real `pushgate` processes pushing to the loopback FCM v1
and APNs HTTP/2 servers of `tests/transports/` (run in this process, over TLS with a test CA).

Three measurements:

- **latency**: `POST /v1/push/sessions` → the provider's receipt of the push, per transport,
  p50/p99, with sessions created one at a time and eight at a time against `pushgate serve`.
- **throughput**: N sessions are created in-process (their push rows committed, nobody sending
  them), then one `pushgate worker` process is started: pushes per second from its first
  receipt to its last, and the worker's CPU per push.
- **budget**: the full cycle of `driver.py` on PostgreSQL (create, poll, approve, read)
  without push providers, against the cycle with FCM configured (every device is an FCM
  device: one push per cycle) and with APNs configured (every device an iOS device), server
  CPU per cycle of each. With a provider the device waits until its push has reached the
  loopback server, as a phone learns of a session from its push (else its poll would win the
  race and the worker skip the send for an answered session); then it either polls as well
  (the same requests as without, plus the push) or answers from the push's data without a
  poll, as the ForgeRock Authenticator does. The result counts the pushes received against
  the cycles run. `--budget-kinds gcm` or `apns` measures one provider only.

    .venv/bin/python benchmarks/push_delivery.py                 # everything, ~3 minutes
    .venv/bin/python benchmarks/push_delivery.py --only latency,throughput --pushes 500
    .venv/bin/python benchmarks/push_delivery.py --only profile   # py-spy, FCM delivery on
    .venv/bin/python benchmarks/push_delivery.py --only profile --profile-kind apns

`--only profile` runs `profile_server.py`'s py-spy profile of the PostgreSQL cycle (c=8) with
FCM delivery on: `benchmarks/results/profile-postgres-issue8-fcm.txt`.

Results: `benchmarks/results/push-delivery.json`; docs/PERFORMANCE.md "Issue 8" has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/transports/: the providers

import driver
import profile_server
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rawhttp import Connection
from starlette.requests import Request
from starlette.responses import Response
from tests.transports.apns_server import ApnsServer, Received, apns_serving
from tests.transports.certs import LoopbackPki, make_pki
from tests.transports.conftest import (
    CLIENT_EMAIL,
    KEY_ID,
    PROJECT_ID,
    TEAM_ID,
    TOPIC,
    _pem,
    service_account_file,
)
from tests.transports.fcm_server import FcmServer, fcm_serving

from pushgate.clock import SystemClock
from pushgate.protocol import device_messages as dm
from pushgate.protocol import qr
from pushgate.sessions.model import Content
from pushgate.sessions.service import NewSession
from pushgate.settings import Settings
from pushgate.simulator import new_device, registration_body
from pushgate.wiring import build_services, migrate_database

KINDS = ("gcm", "apns")
PUSH_TIMEOUT_SECONDS = 10.0  # a push that does not arrive fails its cycle (counted as an error)
# Its own database: driver.py's may be in use by another benchmark at the same time.
driver.PG_DB = "pushgate_bench_push"


class Arrivals:
    """When each session's push reached a loopback provider, and what it carried (the data a
    phone answers from: `messageId`, `message`)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self._data: dict[str, dict[str, str]] = {}
        self._waiting: dict[str, asyncio.Event] = {}

    def note(self, operation: str, data: dict[str, str] | None) -> None:
        """A push of session `operation` arrived: its prompt (`data`) or a silent one (None)."""
        self.arrived.setdefault(operation, time.perf_counter())
        if data is None:
            return
        self._data.setdefault(operation, data)
        if (event := self._waiting.pop(operation, None)) is not None:
            event.set()

    async def arrival(self, operation: str) -> dict[str, str]:
        """The data of session `operation`'s push, once it has arrived (driver.push_arrival:
        the device answers from it)."""
        if operation not in self._data:
            event = self._waiting.setdefault(operation, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), PUSH_TIMEOUT_SECONDS)
            finally:
                self._waiting.pop(operation, None)
        return self._data.pop(operation)

    async def arrival_then_poll(self, operation: str) -> None:
        """Once the push has arrived, nothing: the device polls for the session as well."""
        await self.arrival(operation)


@dataclass
class TimedFcm(FcmServer):
    """The loopback FCM server, noting each session's push."""

    arrivals: Arrivals = field(default_factory=Arrivals)

    async def _send(self, request: Request) -> Response:
        body = json.loads(await request.body())  # Starlette keeps it for the server's read
        response = await super()._send(request)
        data = body["message"].get("data", {})
        operation = data.get("operationId")
        if operation and response.status_code == 200:
            self.arrivals.note(operation, data if "message" in data else None)
        return response


@dataclass
class TimedApns(ApnsServer):
    """The loopback APNs server, noting each session's push."""

    arrivals: Arrivals = field(default_factory=Arrivals)

    def _answer(self, received: Received) -> Any:
        answer = super()._answer(received)
        try:
            payload = json.loads(received.body)
        except ValueError:
            payload = {}
        operation, aps = payload.get("operationId"), payload.get("aps", {})
        if operation:
            prompt = {"messageId": aps.get("messageId"), "message": aps.get("data")}
            self.arrivals.note(operation, prompt if "data" in aps else None)
        return answer


@dataclass
class Providers:
    fcm: TimedFcm
    apns: TimedApns
    fcm_env: dict[str, str]
    apns_env: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {**self.fcm_env, **self.apns_env}

    def env_for(self, kind: str | None) -> dict[str, str]:
        """The settings of one provider only (none: polling only)."""
        return {"gcm": self.fcm_env, "apns": self.apns_env}.get(kind or "", {})

    def arrived(self, kind: str) -> dict[str, float]:
        return (self.fcm if kind == "gcm" else self.apns).arrivals.arrived


def _device(kind: str, n: int) -> Any:
    if kind == "apns":
        token = uuid.uuid4().hex + uuid.uuid4().hex
        return dataclasses.replace(
            new_device(), device_id=token, device_type="ios", communication_type="apns"
        )
    return dataclasses.replace(new_device(), device_id=f"fcm-bench-{n}-{uuid.uuid4().hex}")


async def provision(settings: Settings, kind: str, users: int) -> tuple[str, list[str]]:
    """`users` users with one `kind` device each, and the realm's API key."""
    await migrate_database(settings)
    services = build_services(settings)
    try:
        await services.accounts.set_realm_policy("/", driver.BENCH_POLICY)
        key = (await services.accounts.create_api_key("/")).key
        run = uuid.uuid4().hex[:6]
        names = []
        for i in range(users):
            name = f"push-{kind}-{run}-{i:05d}"
            await services.accounts.create_user("/", name, None)
            started = await services.devices.start_registration("/", name)
            uri = qr.parse(started.uri)
            body = registration_body(uri, str(uuid.uuid4()), _device(kind, i))
            await services.devices.register("/", dm.parse_message_request(body))
            names.append(name)
        return key, names
    finally:
        await services.store.aclose()


def _base_env(url: str, public_url: str) -> dict[str, str]:
    return {
        "PUSHGATE_DATABASE_URL": url,
        "PUSHGATE_PUBLIC_URL": public_url,
        "PUSHGATE_SECRET_KEY": driver.SECRET_KEY,
        "PUSHGATE_LOG_LEVEL": "WARNING",  # one line per push at INFO would be what we measure
    }


async def _fresh_database(db: str, tmp: Path) -> str:
    if db == "sqlite":
        return f"sqlite:///{tmp / f'push-{uuid.uuid4().hex[:6]}.db'}"
    await driver.pg_admin(f"DROP DATABASE IF EXISTS {driver.PG_DB}")
    await driver.pg_admin(f"CREATE DATABASE {driver.PG_DB}")
    return f"postgresql://{driver.PG_USER}@{driver.PG_HOST}:{driver.PG_PORT}/{driver.PG_DB}"


def _percentiles(values: list[float]) -> dict[str, float]:
    return driver.percentiles(values)


# --- latency ------------------------------------------------------------------------------


@dataclass
class Level:
    counter: Iterator[int]
    waits: list[float] = field(default_factory=list)
    timeouts: int = 0


async def _until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` (set by the loopback servers in this same loop) for up to `seconds`."""
    deadline = time.perf_counter() + seconds
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.0002)
    return True


async def _creates(
    conn: Connection, level: Level, users: list[str], arrived: dict[str, float]
) -> None:
    for i in level.counter:
        body = json.dumps({"user": users[i % len(users)], "secondsToExpire": 600})
        t0 = time.perf_counter()
        status, reply = await conn.request("POST", "/v1/push/sessions", body.encode())
        driver._expect(status, reply, 201, "create")
        session = json.loads(reply)["id"]
        if await _until(lambda: session in arrived, 10):  # noqa: B023 - awaited at once
            level.waits.append(arrived[session] - t0)  # seconds: driver.percentiles gives ms
        else:
            level.timeouts += 1


async def latency(
    providers: Providers, db: str, kind: str, sessions: int, tmp: Path
) -> dict[str, Any]:
    port = driver.free_port()
    public_url = f"http://127.0.0.1:{port}"
    url = await _fresh_database(db, tmp)
    settings = Settings(database_url=url, public_url=public_url, secret_key=driver.SECRET_KEY)
    key, users = await provision(settings, kind, 64)
    env = {**_base_env(url, public_url), **providers.env}
    server = driver.Server(env, port, 1, tmp / f"latency-{db}-{kind}.log")
    results: dict[str, Any] = {"database": db, "transport": kind}
    try:
        await server.ready()
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        arrived = providers.arrived(kind)
        for concurrency in (1, 8):
            level = Level(iter(range(sessions)))
            conns = [Connection("127.0.0.1", port, headers) for _ in range(concurrency)]
            try:
                await asyncio.gather(*(_creates(c, level, users, arrived) for c in conns))
            finally:
                for conn in conns:
                    conn.close()
            results[f"c{concurrency}"] = {
                "sessions": len(level.waits),
                "timeouts": level.timeouts,
                "create_to_receipt_ms": _percentiles(level.waits),
            }
            print(f"[latency {db} {kind} c={concurrency}] {results[f'c{concurrency}']}")
    finally:
        server.stop()
    return results


# --- throughput ---------------------------------------------------------------------------


async def throughput(
    providers: Providers, db: str, kind: str, pushes: int, tmp: Path
) -> dict[str, Any]:
    url = await _fresh_database(db, tmp)
    public_url = "http://127.0.0.1:9"  # no device calls in: the worker only sends
    settings = Settings(database_url=url, public_url=public_url, secret_key=driver.SECRET_KEY)
    _, users = await provision(settings, kind, min(pushes, 256))
    # Rows committed by a process that knows the providers, so that its follower writes them.
    push_settings = settings.model_copy(update=_settings_fields(providers.env))
    services = build_services(push_settings, SystemClock())
    try:
        for i in range(pushes):
            await services.sessions.create(
                "/", NewSession(users[i % len(users)], Content(title="Sign in"), 600)
            )
    finally:
        await services.pushes.aclose()
        await services.store.aclose()
    arrived = providers.arrived(kind)
    before = len(arrived)
    env = {**_base_env(url, settings.public_url), **providers.env}
    log = open(tmp / f"worker-{db}-{kind}.log", "ab")  # noqa: SIM115, ASYNC230 - closed below
    process = await asyncio.create_subprocess_exec(
        str(driver.BIN / "pushgate"), "worker", env={**os.environ, **env},
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        await _until(lambda: len(arrived) > before, 60)
        first, cpu0 = time.perf_counter(), driver.tree_cpu(process.pid)
        await _until(lambda: len(arrived) - before >= pushes, 300)
        last, cpu1 = time.perf_counter(), driver.tree_cpu(process.pid)
    finally:
        process.terminate()
        await process.wait()
        log.close()
    done = len(arrived) - before
    result = {
        "database": db,
        "transport": kind,
        "pushes": done,
        "pushes_per_second": round((done - 1) / (last - first), 1) if last > first else None,
        "worker_cpu_ms_per_push": round((cpu1 - cpu0) * 1000 / max(done - 1, 1), 3),
    }
    print(f"[throughput {db} {kind}] {result}")
    return result


def _settings_fields(env: dict[str, str]) -> dict[str, str]:
    return {name.removeprefix("PUSHGATE_").lower(): value for name, value in env.items()}


# --- the 1 ms budget ----------------------------------------------------------------------


async def budget(
    providers: Providers, seconds: float, concurrency: list[int], kinds: list[str]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    variants: list[tuple[str, str | None, driver.PushArrival | None]] = [
        ("without delivery", None, None)
    ]
    for kind in kinds:
        arrivals = (providers.fcm if kind == "gcm" else providers.apns).arrivals
        name = "FCM" if kind == "gcm" else "APNs"
        variants += [
            (f"with {name} delivery, the device polls too", kind, arrivals.arrival_then_poll),
            (f"with {name} delivery, the device answers from the push", kind, arrivals.arrival),
        ]
    for label, transport, arrival in variants:
        server_env = {**providers.env_for(transport), "PUSHGATE_LOG_LEVEL": "WARNING"}
        args = driver.parse_args(
            ["--db", "postgres", "--workers", "1", "--kinds", "cycle", "--no-plot"]
            + ["--concurrency", ",".join(map(str, concurrency)), "--duration", str(seconds)]
            + ["--warmup", "2", "--users", "256", "--sql-count", "0"]
            + [arg for kv in server_env.items() for arg in ("--env", "=".join(kv))]
        )  # fmt: skip
        arrived = providers.arrived(transport or "gcm")
        received = len(arrived)
        driver.push_arrival = arrival
        driver.bench_device = lambda: _device(transport or "gcm", 0)  # noqa: B023 - used at once
        try:
            config = await driver.run_config("postgres", 1, args)
        finally:
            driver.push_arrival = None
            driver.bench_device = new_device
        results[label] = {
            f"c{level['concurrency']}": {
                "cycles_per_second": level["per_second"],
                "server_cpu_ms_per_cycle": level["server_cpu_ms_per_op"],
                "cycle_ms": level["legs"]["cycle"],
                "errors": level["errors"],
            }
            for level in config["levels"]
        }
        # That the pushes were made: one receipt per cycle, warm-up cycles included.
        results[label]["cycles_completed"] = sum(lv["completed_total"] for lv in config["levels"])
        results[label]["pushes_received"] = len(arrived) - received
    print(f"[budget postgres] {json.dumps(results, indent=2)}")
    return results


# --- the providers ------------------------------------------------------------------------


async def amain(args: argparse.Namespace) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="pushgate-push-bench-"))
    pki: LoopbackPki = make_pki(tmp)
    fcm_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    apns_key = ec.generate_private_key(ec.SECP256R1())
    apns_key_file = tmp / f"AuthKey_{KEY_ID}.p8"
    apns_key_file.write_bytes(_pem(apns_key))
    fcm = TimedFcm(PROJECT_ID, CLIENT_EMAIL, fcm_key.public_key())
    apns = TimedApns(apns_key.public_key(), KEY_ID, TEAM_ID, TOPIC, SystemClock())  # type: ignore[arg-type]
    out: dict[str, Any] = {"machine": driver.machine()}
    async with fcm_serving(fcm, pki), apns_serving(apns, pki):
        credentials = service_account_file(tmp, fcm_key, f"{fcm.base_url}/token")
        fcm_env = {
            "PUSHGATE_TLS_CA_FILE": str(pki.ca_file),
            "PUSHGATE_FCM_CREDENTIALS_FILE": str(credentials),
            "PUSHGATE_FCM_URL": fcm.base_url,
        }
        apns_env = {
            "PUSHGATE_TLS_CA_FILE": str(pki.ca_file),
            "PUSHGATE_APNS_KEY_FILE": str(apns_key_file),
            "PUSHGATE_APNS_KEY_ID": KEY_ID,
            "PUSHGATE_APNS_TEAM_ID": TEAM_ID,
            "PUSHGATE_APNS_TOPIC": TOPIC,
            "PUSHGATE_APNS_URL": apns.url,
        }
        providers = Providers(fcm, apns, fcm_env, apns_env)
        if "latency" in args.only:
            out["latency"] = [
                await latency(providers, db, kind, args.sessions, tmp)
                for db in args.db
                for kind in KINDS
            ]
        if "throughput" in args.only:
            out["throughput"] = [
                await throughput(providers, db, kind, args.pushes, tmp)
                for db in args.db
                for kind in KINDS
            ]
        if "budget" in args.only:
            kinds = args.budget_kinds.split(",")
            out["budget"] = await budget(providers, args.seconds, args.concurrency, kinds)
        if "profile" in args.only:
            # profile_server.py's py-spy run of the PostgreSQL cycle, one provider on.
            kind = args.profile_kind
            server_env = {**providers.env_for(kind), "PUSHGATE_LOG_LEVEL": "WARNING"}
            # Every cycle's push is sent and answered from (see budget).
            driver.push_arrival = (fcm if kind == "gcm" else apns).arrivals.arrival
            driver.bench_device = lambda: _device(kind, 0)
            name = "fcm" if kind == "gcm" else "apns"
            await profile_server.amain(
                argparse.Namespace(
                    db="postgres",
                    concurrency=args.profile_concurrency,
                    seconds=args.seconds,
                    top=25,
                    env=[f"{k}={v}" for k, v in server_env.items()],
                    label=f"issue8-{name}{'-' + args.label if args.label else ''}",
                    webhook=False,
                    raw=None,
                )
            )
            driver.push_arrival = None
            driver.bench_device = new_device
    if set(out) == {"machine"}:  # a profile only: profile_server.py wrote its own summary
        return driver.RESULTS
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"push-delivery{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default="latency,throughput,budget")
    p.add_argument("--db", default="postgres,sqlite", help="for latency and throughput")
    p.add_argument("--sessions", type=int, default=400, help="per latency level")
    p.add_argument("--pushes", type=int, default=2000, help="per throughput run")
    p.add_argument("--seconds", type=float, default=15.0, help="per budget level")
    p.add_argument("--concurrency", default="1,8", help="budget levels")
    p.add_argument("--budget-kinds", default="gcm,apns", help="the budget's push transports")
    p.add_argument("--profile-concurrency", type=int, default=8)
    p.add_argument("--profile-kind", default="gcm", choices=KINDS)
    p.add_argument("--label", default="")
    p.add_argument("--out", type=Path, default=driver.RESULTS)
    args = p.parse_args(argv)
    args.only = set(args.only.split(","))
    args.db = args.db.split(",")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
