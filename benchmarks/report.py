"""Markdown tables from a driver results file (pasted into docs/PERFORMANCE.md).

.venv/bin/python benchmarks/report.py benchmarks/results/full.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _p(leg: dict[str, float]) -> str:
    return f"{leg.get('p50_ms', 0):.1f} / {leg.get('p95_ms', 0):.1f} / {leg.get('p99_ms', 0):.1f}"


def table(report: dict[str, Any]) -> str:
    out = [
        "| db | workers | conc. | cycles/s | server CPU ms/cycle | PG backend CPU ms/cycle"
        " | create | delivery | answer | result | whole cycle | healthz req/s"
        " | server CPU ms/healthz | errors |",
        "|" + "---|" * 14,
    ]
    for config in report["configs"]:
        floors = {lv["concurrency"]: lv for lv in config["levels"] if lv["kind"] == "floor"}
        for lv in config["levels"]:
            if lv["kind"] != "cycle":
                continue
            legs = lv["legs"]
            floor = floors.get(lv["concurrency"], {})
            pg = (lv.get("postgres") or {}).get("backend_cpu_ms_per_op")
            out.append(
                f"| {config['database']} | {config['workers']} | {lv['concurrency']}"
                f" | {lv['per_second']:.0f} | {lv['server_cpu_ms_per_op']:.1f}"
                f" | {'' if pg is None else f'{pg:.1f}'}"
                f" | {_p(legs['create'])} | {_p(legs['delivery'])} | {_p(legs['answer'])}"
                f" | {_p(legs['result'])} | {_p(legs['cycle'])}"
                f" | {floor.get('per_second', '')}"
                f" | {floor.get('server_cpu_ms_per_op', '')} | {lv['errors']} |"
            )
    return "\n".join(out)


def pg_counters(report: dict[str, Any]) -> str:
    out = [
        "| workers | conc. | xact_commit | tup_fetched | tup_returned | tup_inserted"
        " | tup_updated |"
    ]
    out.append("|---|---|---|---|---|---|---|")
    for config in report["configs"]:
        for lv in config["levels"]:
            pg = lv.get("postgres")
            if lv["kind"] != "cycle" or not pg:
                continue
            out.append(
                f"| {config['workers']} | {lv['concurrency']} | {pg['xact_commit_per_op']}"
                f" | {pg['tup_fetched_per_op']} | {pg['tup_returned_per_op']}"
                f" | {pg['tup_inserted_per_op']} | {pg['tup_updated_per_op']} |"
            )
    return "\n".join(out)


def sql_counts(report: dict[str, Any]) -> str:
    """The exact per-cycle counters of the sequential counting pass (`--sql-count`)."""
    out = [
        "| db | workers | cycles | xact_commit | xact_rollback | tup_fetched | tup_returned"
        " | tup_inserted | tup_updated | tup_deleted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config in report["configs"]:
        count = config.get("sql_count")
        if not count or not count.get("postgres"):
            continue
        pg = count["postgres"]
        out.append(
            f"| {config['database']} | {config['workers']} | {pg['counted_ops']}"
            f" | {pg['xact_commit_per_op']} | {pg['xact_rollback_per_op']}"
            f" | {pg['tup_fetched_per_op']} | {pg['tup_returned_per_op']}"
            f" | {pg['tup_inserted_per_op']} | {pg['tup_updated_per_op']}"
            f" | {pg['tup_deleted_per_op']} |"
        )
    return "\n".join(out)


def wait_table(report: dict[str, Any]) -> str:
    """For `--wait` runs: how long after the device's `200 {}` the relying party knew."""
    out = [
        "| db | workers | conc. | cycles/s | server CPU ms/cycle | result p50 / p95 / p99 / max ms"
        " | whole cycle p50 / p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config in report["configs"]:
        for lv in config["levels"]:
            if lv["kind"] != "cycle":
                continue
            r, c = lv["legs"]["result"], lv["legs"]["cycle"]
            out.append(
                f"| {config['database']} | {config['workers']} | {lv['concurrency']}"
                f" | {lv['per_second']:.0f} | {lv['server_cpu_ms_per_op']:.2f}"
                f" | {_p(r)} / {r.get('max_ms', 0):.1f}"
                f" | {c.get('p50_ms', 0):.1f} / {c.get('p99_ms', 0):.1f} | {lv['errors']} |"
            )
    return "\n".join(out)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        data = json.loads(Path(arg).read_text())
        waiting = any(
            lv.get("result_by", "").startswith("GET ?wait")
            for config in data["configs"]
            for lv in config["levels"]
        )
        print(wait_table(data) if waiting else table(data))
        print()
        print(pg_counters(data))
        if any(config.get("sql_count") for config in data["configs"]):
            print()
            print(sql_counts(data))
