"""pytest configuration for the benchmarks only (`make test` collects `tests/`, never this).

`--benchmark-json` writes every timing of every round (~2 MB); keep the statistics only."""

from __future__ import annotations

from typing import Any


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    for bench in output_json.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)
