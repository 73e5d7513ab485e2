"""Several nodes on one PostgreSQL (issue 10): the push cycle against one `pushgate serve`
process and against three, side by side, on the same machine and database server.

Each configuration gets a fresh database, the driver's bench users and devices
(`driver.provision`) and, with `--webhook`, a loopback receiver subscribed to every event (so
each cycle also costs one outbox delivery, claimed by whichever node's worker gets it first).
With three nodes every cycle crosses nodes: worker `w` creates and reads on node `w % 3` and
its device polls and answers on node `(w + 1) % 3`, as a load balancer would spread them. With
`--wait N` the relying party long-polls `GET ?wait=N` on the creating node, which learns of the
answer given on the other node through LISTEN/NOTIFY only.

Per level: cycles per second, server CPU per cycle (every node's process tree), PostgreSQL
backend CPU per cycle, cycle latency, and webhooks received per cycle (1.0: none lost and
none doubled). The configurations alternate per level (one, three, one, three, ...) so drift
on a shared machine hits both alike.

    .venv/bin/python benchmarks/cluster.py                      # ~3 minutes
    .venv/bin/python benchmarks/cluster.py --concurrency 8 --duration 5 --wait 30 --webhook

Writes `benchmarks/results/cluster[-label].json` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
from rawhttp import Connection

from pushgate.settings import Settings

IDLE_SECONDS = 5.0  # how long each deployment's CPU is measured without load


@dataclass
class Deployment:
    name: str
    nodes: list[driver.Server]
    api_key: str
    parties: list[driver.Party]
    lb_cookie: str
    pg_db: str
    receiver: driver.WebhookReceiver | None
    idle_cpu_ms_per_s: float | None = None  # the background runtime alone, no requests

    def cpu(self) -> float:
        return sum(node.cpu() for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.receiver is not None:
            self.receiver.close()


async def deploy(name: str, count: int, args: argparse.Namespace, tmp: Path) -> Deployment:
    pg_db = f"pushgate_bench_{name}"
    await driver.pg_admin(f"DROP DATABASE IF EXISTS {pg_db}")
    await driver.pg_admin(f"CREATE DATABASE {pg_db}")
    url = f"postgresql://{driver.PG_USER}@{driver.PG_HOST}:{driver.PG_PORT}/{pg_db}"
    ports = [driver.free_port() for _ in range(count)]
    public_url = f"http://127.0.0.1:{ports[0]}"
    settings = Settings(database_url=url, public_url=public_url, secret_key=driver.SECRET_KEY)
    receiver = driver.WebhookReceiver() if args.webhook else None
    hook_url = await receiver.start() if receiver is not None else None
    api_key, parties = await driver.provision(settings, args.users, hook_url)
    env = {
        "PUSHGATE_DATABASE_URL": url,
        "PUSHGATE_PUBLIC_URL": public_url,
        "PUSHGATE_SECRET_KEY": driver.SECRET_KEY,
    }
    nodes = [driver.Server(env, port, 1, tmp / f"{name}-{i}.log") for i, port in enumerate(ports)]
    deployment = Deployment(name, nodes, api_key, parties, settings.lb_cookie, pg_db, receiver)
    try:
        for node in nodes:
            await node.ready()
        await asyncio.sleep(1.0)  # the listeners connect after /healthz answers
        cpu0, t0 = deployment.cpu(), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        idle = (deployment.cpu() - cpu0) / (time.perf_counter() - t0)
        deployment.idle_cpu_ms_per_s = round(idle * 1000, 1)
    except BaseException:
        deployment.stop()
        raise
    return deployment


async def run_level(
    target: Deployment, concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    rp_headers = {"X-API-Key": target.api_key, "Content-Type": "application/json"}
    dev_headers = {
        "Content-Type": "application/json",
        "Accept-API-Version": "resource=1.0, protocol=1.0",
        "Cookie": target.lb_cookie,
    }
    nodes = target.nodes
    run = driver.Run(max_records=args.max_cycles)
    conns: list[Connection] = []
    tasks = []

    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    hooks0 = target.receiver.received if target.receiver else 0
    for w in range(concurrency):
        rp = Connection("127.0.0.1", nodes[w % len(nodes)].port, rp_headers)
        dev = Connection("127.0.0.1", nodes[(w + 1) % len(nodes)].port, dev_headers)
        conns += [rp, dev]
        mine = target.parties[w::concurrency]
        tasks.append(
            asyncio.create_task(driver.cycle_worker(run, rp, dev, mine, now_ms, args.wait))
        )
    await asyncio.sleep(args.warmup)
    pg0 = await driver.pg_snapshot(target.pg_db)
    cpu0, t0 = target.cpu(), time.perf_counter()
    run.measuring = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.done.wait(), args.duration)
    run.measuring = False
    elapsed = time.perf_counter() - t0
    cpu1 = target.cpu()
    pg = driver.pg_delta(pg0, await driver.pg_snapshot(target.pg_db))
    run.stop = True
    await asyncio.gather(*tasks)
    for conn in conns:
        conn.close()
    n = len(run.records)
    # Deliveries lag the cycles a little: counted after the load stops, over all its cycles.
    await asyncio.sleep(2.0)
    hooks = (target.receiver.received if target.receiver else 0) - hooks0
    cols = list(zip(*run.records, strict=True)) if n else [()] * 7
    return {
        "deployment": target.name,
        "nodes": len(nodes),
        "concurrency": concurrency,
        "result_by": f"GET ?wait={args.wait}" if args.wait else "GET polling",
        "seconds": round(elapsed, 3),
        "cycles": n,
        "per_second": round(n / elapsed, 1),
        "errors": run.errors,
        "first_error": run.first_error,
        "server_cpu_ms_per_cycle": round((cpu1 - cpu0) * 1000 / n, 3) if n else None,
        "server_cpu_utilisation": round((cpu1 - cpu0) / elapsed, 3),
        "pg_backend_cpu_ms_per_cycle": round(pg["backend_cpu_s"] * 1000 / n, 3)
        if n and pg["backends_visible"]
        else None,
        "cycle_ms": driver.percentiles(list(cols[4])),
        "legs_ms": {leg: driver.percentiles(list(cols[i])) for i, leg in enumerate(driver.LEGS)},
        "polls_per_cycle": round(sum(cols[5]) / n, 2) if n else None,
        "gets_per_cycle": round(sum(cols[6]) / n, 2) if n else None,
        # Every delivery of the level (warm-up included, 2 s after the load for the last
        # ones) over every cycle it completed: 1.0 when none is lost and none doubled.
        "webhooks_per_cycle": round(hooks / run.completed, 3)
        if target.receiver and run.completed
        else None,
        "completed_total": run.completed,
    }


def table(levels: list[dict[str, Any]]) -> str:
    head = (
        "| nodes | concurrency | cycles/s | server CPU ms/cycle | PG CPU ms/cycle"
        " | cycle p50 / p95 ms | webhooks/cycle | errors |\n|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {r['nodes']} | {r['concurrency']} | {r['per_second']} | {r['server_cpu_ms_per_cycle']}"
        f" | {r['pg_backend_cpu_ms_per_cycle']}"
        f" | {r['cycle_ms'].get('p50_ms')} / {r['cycle_ms'].get('p95_ms')}"
        f" | {r['webhooks_per_cycle']} | {r['errors']} |"
        for r in levels
    ]
    return "\n".join([head, *rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", default="8,32", help="comma list of concurrent cycles")
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per level")
    p.add_argument("--rounds", type=int, default=2, help="times each level is run per config")
    p.add_argument("--max-cycles", type=int, default=50_000)
    p.add_argument("--users", type=int, default=128, help="users, one device each")
    p.add_argument("--wait", type=int, default=0, help="GET ?wait=N on the creating node")
    p.add_argument("--webhook", action="store_true", help="a loopback receiver, every event")
    p.add_argument("--label", default="")
    p.add_argument("--out", type=Path, default=driver.RESULTS)
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.users = max(args.users, max(args.concurrency))
    return args


async def amain(args: argparse.Namespace) -> Path:
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="pushgate-cluster-"))
    one = await deploy("one", 1, args, tmp)
    levels = []
    try:
        three = await deploy("three", 3, args, tmp)
        try:
            for concurrency in args.concurrency:
                for _ in range(args.rounds):
                    for target in (one, three):
                        level = await run_level(target, concurrency, args)
                        levels.append(level)
                        print(
                            f"[{target.name}] c={concurrency} {level['per_second']} cycles/s,"
                            f" server {level['server_cpu_ms_per_cycle']} ms/cycle,"
                            f" pg {level['pg_backend_cpu_ms_per_cycle']} ms/cycle,"
                            f" webhooks/cycle {level['webhooks_per_cycle']},"
                            f" errors {level['errors']} {level['first_error'] or ''}"
                        )
        finally:
            three.stop()
    finally:
        one.stop()
        for name in ("one", "three"):
            await driver.pg_admin(f"DROP DATABASE IF EXISTS pushgate_bench_{name}")
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "machine": driver.machine(),
        "argv": sys.argv[1:],
        "logs": str(tmp),
        "idle_cpu_ms_per_s": {"one": one.idle_cpu_ms_per_s, "three": three.idle_cpu_ms_per_s},
        "levels": levels,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cluster{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(table(levels))
    print(f"idle CPU, ms per second: {report['idle_cpu_ms_per_s']}")
    print(f"wrote {path} ({report['wall_seconds']} s)")
    return path


def main(argv: list[str] | None = None) -> None:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(amain(parse_args(argv)))


if __name__ == "__main__":
    main()
