"""The instruments: what each metric counts, fed by hooks the wiring hands to the services.

Each hook is a dictionary lookup and an increment: the per-request and per-session cost is a
few microseconds (docs/PERFORMANCE.md, "Issue 10"). Sessions are counted from their committed
changes in the process that made them, never from a database read; with several processes
Prometheus (or the multi-process collector) adds them up.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from pushgate.sessions.machine import Event
from pushgate.sessions.model import PushSession, SessionStatus

# The `_created` series would name a timestamp `pushgate_sessions_created_created`: a trap
# for dashboards, and multi-process mode does not export them anyway.
disable_created_metrics()  # type: ignore[no-untyped-call]

# A person answers in seconds to minutes; a session lives at most its lifetime.
ANSWER_BUCKETS = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0)
# From a cached read (well under a millisecond) to a relying party's long wait (up to 60 s).
HTTP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
UNMATCHED_ROUTE = "unmatched"  # any path no route knows: one series, not one per probe


class Metrics:
    """One process's instruments, in their own registry (so that tests can build many)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.sessions_created = Counter(
            "pushgate_sessions_created",
            "Push sessions created (every realm; fanned out to zero or more devices).",
            registry=registry,
        )
        self.sessions_finished = Counter(
            "pushgate_sessions_finished",
            "Push sessions that reached a terminal status, by that status.",
            ["status"],
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "pushgate_answer_seconds",
            "Time from a session's creation to the device's approval or denial.",
            buckets=ANSWER_BUCKETS,
            registry=registry,
        )
        self.deliveries = Counter(
            "pushgate_deliveries",
            "Push sends to a provider, by transport and result.",
            ["transport", "result"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "pushgate_http_request_duration_seconds",
            "HTTP request duration, by route template (never the raw path).",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        # Children by label value: `labels()` takes a lock and builds a tuple on every call.
        self._finished = {
            status: self.sessions_finished.labels(_status_label(status))
            for status in SessionStatus
            if status.terminal
        }
        self._routes: dict[str, Histogram] = {}

    def session_changed(self, session: PushSession, event: Event | None) -> None:
        """A committed change of a session: created (`event` None) or a terminal move."""
        if event is None:
            self.sessions_created.inc()
            if not session.status.terminal:
                return  # a session with no device to ask fails at once, and is counted so
        self._finished[session.status].inc()
        if event in (Event.APPROVE, Event.DENY):
            self.answer_seconds.observe(max(0, session.updated_ms - session.created_ms) / 1000)

    def delivery(self, transport: str, result: str) -> None:
        self.deliveries.labels(transport, result).inc()

    def http_request(self, route: str, seconds: float) -> None:
        child = self._routes.get(route)
        if child is None:
            child = self._routes[route] = self.http_duration.labels(route)
        child.observe(seconds)


def _status_label(status: SessionStatus) -> str:
    return status.value.lower()  # approved, denied, expired, canceled, failed
