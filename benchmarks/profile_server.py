"""Profile the server under the cycle load with py-spy (attached to the one-worker server).

    .venv/bin/python benchmarks/profile_server.py --db postgres --concurrency 8 --seconds 10
    .venv/bin/python benchmarks/profile_server.py --webhook --label webhook   # + one delivery

Prints the functions with the most own and cumulative samples and writes that summary to
`benchmarks/results/profile-<db>[-label].txt`. The raw collapsed stacks (for flamegraph tools
or speedscope; ~1 MB) stay in a temporary directory unless `--raw PATH` asks for them.
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


def _package(frame: str) -> str:
    """`fn (pkg/mod.py:12)` → `pkg` (`pushgate.<sub>` for our own code)."""
    where = frame.rpartition(" (")[2].rstrip(")")
    parts = where.split(":")[0].split("/")
    if parts[0] == "pushgate" and len(parts) > 1:
        return f"pushgate.{parts[1].removesuffix('.py')}"
    return parts[0].removesuffix(".py")


def summarize(collapsed: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    own_pkg: collections.Counter[str] = collections.Counter()
    cum_pkg: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        own_pkg[_package(frames[-1])] += n
        for frame in set(frames):
            cum[frame] += n
        for pkg in {_package(f) for f in frames}:
            cum_pkg[pkg] += n
    out = [f"{total} samples (busy only)", "", "own, by package (leaf frame):"]
    out += [f"{n / total:6.1%}  {f}" for f, n in own_pkg.most_common(top)]
    out += ["", "cumulative, by package (anywhere on the stack):"]
    out += [f"{n / total:6.1%}  {f}" for f, n in cum_pkg.most_common(top)]
    out += ["", "own:"]
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
    settings = driver.Settings(
        database_url=url, public_url=public_url, secret_key=driver.SECRET_KEY
    )
    receiver = driver.WebhookReceiver() if args.webhook else None
    hook_url = await receiver.start() if receiver is not None else None
    api_key, parties = await driver.provision(settings, max(64, args.concurrency), hook_url)
    env = {
        "PUSHGATE_DATABASE_URL": url,
        "PUSHGATE_PUBLIC_URL": public_url,
        "PUSHGATE_SECRET_KEY": driver.SECRET_KEY,
    }
    env.update(dict(kv.split("=", 1) for kv in args.env))
    server = driver.Server(env, port, 1, tmp / "server.log")
    out = driver.RESULTS / f"profile-{args.db}{'-' + args.label if args.label else ''}.txt"
    raw = args.raw or tmp / "stacks.txt"
    try:
        await server.ready()
        target = driver.Target(server, api_key, parties, settings.lb_cookie, pg_db, receiver)
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
                str(raw),
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
        if receiver is not None:
            receiver.close()
        if pg_db:
            await driver.pg_admin(f"DROP DATABASE IF EXISTS {pg_db}")
    hooks = f", webhook deliveries per cycle {level['webhooks_per_op']}" if receiver else ""
    summary = (
        f"{args.db}, 1 worker, c={args.concurrency}, {args.seconds:g} s, py-spy 250 Hz{hooks}:"
        f" {level['per_second']} cycles/s, server CPU {level['server_cpu_ms_per_op']} ms/cycle\n"
        + summarize(raw, args.top)
    )
    print(summary)
    out.write_text(summary + "\n")
    print(f"summary: {out}; collapsed stacks: {raw}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="postgres", choices=("sqlite", "postgres"))
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--label", default="")
    p.add_argument(
        "--webhook", action="store_true", help="subscribe a loopback receiver to every event"
    )
    p.add_argument("--raw", type=Path, default=None, help="where to keep the collapsed stacks")
    args = p.parse_args()
    driver.RESULTS.mkdir(parents=True, exist_ok=True)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
