"""docs/OPERATIONS.md and docs/grafana-dashboard.json against what `/metrics` exposes: a
renamed metric cannot leave the dashboard or the documentation behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pushgate.metrics import Exposition, Metrics, OutboxGauge

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bpushgate_[a-z_]+")


def _exposed() -> set[str]:
    metrics = Metrics()
    # A labelled family shows once it has a series.
    metrics.delivery("gcm", "delivered")
    metrics.http_request("/healthz", 0.001)
    text = Exposition(metrics).render(OutboxGauge(depth=0, oldest_seconds=0)).decode()
    return {
        _family(sample.name)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("pushgate_")
    }


def _family(name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_the_dashboard_queries_exposed_metrics_only() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["title"] == "pushgate"
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    queried = {_family(name) for expr in exprs for name in NAME.findall(expr)}
    assert queried == _exposed()  # and every metric has a panel


def test_operations_md_documents_every_metric() -> None:
    text = (DOCS / "OPERATIONS.md").read_text(encoding="utf-8")
    documented = {_family(name) for name in NAME.findall(text)}
    assert _exposed() <= documented, _exposed() - documented
