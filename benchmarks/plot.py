"""Plot a driver results file: throughput, latency and server CPU per cycle by concurrency.

.venv/bin/python benchmarks/plot.py benchmarks/results/full.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot(path: Path) -> Path:
    report: dict[str, Any] = json.loads(path.read_text())
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8))
    ax_tp, ax_p50, ax_p99, ax_cpu = axes
    for config in report["configs"]:
        label = f"{config['database']}, {config['workers']} worker(s)"
        cycles = [lv for lv in config["levels"] if lv["kind"] == "cycle"]
        floor = [lv for lv in config["levels"] if lv["kind"] == "floor"]
        if cycles:
            c = [lv["concurrency"] for lv in cycles]
            (line,) = ax_tp.plot(c, [lv["per_second"] for lv in cycles], "o-", label=label)
            ax_p50.plot(c, [lv["legs"]["cycle"]["p50_ms"] for lv in cycles], "o-", label=label)
            ax_p99.plot(c, [lv["legs"]["cycle"]["p99_ms"] for lv in cycles], "o-", label=label)
            ax_cpu.plot(c, [lv["server_cpu_ms_per_op"] for lv in cycles], "o-", label=label)
            if floor:
                ax_tp.plot(
                    [lv["concurrency"] for lv in floor],
                    [lv["per_second"] / 4 for lv in floor],
                    "x--",
                    color=line.get_color(),
                    alpha=0.5,
                    label=f"{label}: healthz req/s ÷ 4",
                )
    ax_cpu.axhline(3.5, color="red", linestyle=":", label="target 3.5 ms")
    titles = (
        (ax_tp, "full cycles per second", "cycles/s"),
        (ax_p50, "cycle latency p50", "ms"),
        (ax_p99, "cycle latency p99", "ms"),
        (ax_cpu, "server CPU per cycle", "ms CPU"),
    )
    for ax, title, unit in titles:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent cycles")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    ax_p50.set_yscale("log")
    ax_p99.set_yscale("log")
    ax_cpu.set_yscale("log")  # SQLite (~20 ms) and PostgreSQL (~3.5 ms) on one axis
    ax_tp.legend(fontsize=7)
    ax_cpu.legend(fontsize=7)
    m = report["machine"]
    fig.suptitle(
        f"pushgate push cycle over loopback HTTP — {m['cpus']} CPUs, Python {m['python']}"
        f" ({report['started']})"
    )
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(plot(Path(arg)))
