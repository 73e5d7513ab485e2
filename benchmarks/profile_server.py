"""Profile the server under the cycle load with py-spy (attached to the one-worker server).

    .venv/bin/python benchmarks/profile_server.py --db postgres --concurrency 8 --seconds 10

Writes `benchmarks/results/profile-<db>.txt` (collapsed stacks, for flamegraph tools or
speedscope) and prints the functions with the most own and cumulative samples.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver


def summarize(collapsed: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            cum[frame] += n
    out = [f"{total} samples", "", "own:"]
    out += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "cumulative:"]
    out += [f"{n / total:6.1%}  {f}" for f, n in cum.most_common(top * 2)]
    return "\n".join(out)


async def amain(args: argparse.Namespace) -> None:
    ns = driver.parse_args(
        ["--db", args.db, "--workers", "1", "--concurrency", str(args.concurrency)]
        + [f"--env={e}" for e in args.env]
    )
    port = driver.free_port()
    public_url = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="pushgate-prof-"))
    if args.db == "sqlite":
        url, pg_db = f"sqlite:///{tmp / 'bench.db'}", None
    else:
        pg_db = driver.PG_DB
        await driver.pg_admin(f"DROP DATABASE IF EXISTS {pg_db}")
        await driver.pg_admin(f"CREATE DATABASE {pg_db}")
        url = f"postgresql://{driver.PG_USER}@{driver.PG_HOST}:{driver.PG_PORT}/{pg_db}"
    settings = driver.Settings(database_url=url, public_url=public_url)
    api_key, parties = await driver.provision(settings, max(64, args.concurrency))
    env = {"PUSHGATE_DATABASE_URL": url, "PUSHGATE_PUBLIC_URL": public_url}
    env.update(dict(kv.split("=", 1) for kv in args.env))
    server = driver.Server(env, port, 1, tmp / "server.log")
    out = driver.RESULTS / f"profile-{args.db}{'-' + args.label if args.label else ''}.txt"
    try:
        await server.ready()
        target = driver.Target(server, api_key, parties, settings.lb_cookie, pg_db)
        spy = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
            [
                str(driver.BIN / "py-spy"),
                "record",
                "--pid",
                str(server.proc.pid),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        level = await driver.run_level(
            target,
            "cycle",
            args.concurrency,
            warmup=0.5,
            duration=args.seconds,
            max_cycles=10**9,
            client=ns.client,
        )
        driver._print_level(args.db, 1, level)
        spy.wait(30)
    finally:
        server.stop()
        if pg_db:
            await driver.pg_admin(f"DROP DATABASE IF EXISTS {pg_db}")
    print(summarize(out, args.top))
    print(f"collapsed stacks: {out}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="postgres", choices=("sqlite", "postgres"))
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--label", default="")
    args = p.parse_args()
    driver.RESULTS.mkdir(parents=True, exist_ok=True)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
