"""Prometheus metrics (issue 10, "Seeing what it does"; docs/OPERATIONS.md): the instruments
the services feed and the text `/metrics` serves. prometheus-client lives here only."""

from pushgate.metrics.exposition import CONTENT_TYPE, MULTIPROCESS, Exposition, OutboxGauge
from pushgate.metrics.instruments import Metrics

__all__ = ["CONTENT_TYPE", "MULTIPROCESS", "Exposition", "Metrics", "OutboxGauge"]
