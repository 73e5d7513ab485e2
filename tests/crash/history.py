"""A history checker for the crash tests (security.md §9 F5): what clients asked, what they were
answered and when, recorded on the client's side; the invariants are checked on that record
alone, never on pushgate's own logs or tables.

Each request is an `Event`: the operation, the session, when it was sent and when its answer
(or its failure) came back, the HTTP status (None: no answer at all, the connection died) and
the session status the answer showed. An answer that is not 2xx is indeterminate: a request
whose connection was cut may or may not have been committed, and so may a 503. A 2xx is a
promise, and the invariants are about promises:

- a session whose creation got a 2xx exists afterwards;
- at most one terminal operation (approve, deny, cancel) of a session gets a 2xx;
- once a terminal operation got a 2xx, every read sent after that answer shows its status;
- a session is seen in at most one terminal status, ever, by reads and answers alike;
- no answer is a 5xx other than 503 (a database outage), and no request goes unanswered
  unless the test killed a server;
- webhooks: at most one terminal event type per session, and a session that ended has its
  terminal event delivered.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType

import httpx

from pushgate.simulator.device import SimulatorError


class Op(StrEnum):
    CREATE = "create"
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    READ = "read"


# The status a terminal operation's 2xx promises (the /v1 wire names).
PROMISES = {Op.APPROVE: "accepted", Op.DENY: "rejected", Op.CANCEL: "canceled"}
TERMINAL = frozenset({"accepted", "rejected", "canceled", "expired", "error"})
UNAVAILABLE = 503


@dataclass(frozen=True, slots=True)
class Event:
    op: Op
    session: str
    started: float  # time.monotonic() when the request was sent
    ended: float  # ... when its answer or its failure came back
    status: int | None  # None: no answer
    seen: str | None = None  # the session status the answer showed, if it showed one

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Call:
    """One request in flight: the test sets `status` and `seen` from the answer."""

    op: Op
    session: str
    started: float
    status: int | None = None
    seen: str | None = None
    skip: bool = False  # nothing was asked after all: not recorded

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def answered(self, response: httpx.Response) -> httpx.Response:
        self.status = response.status_code
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("status"), str):
                self.seen = body["status"]
        return response


@dataclass
class History:
    events: list[Event] = field(default_factory=list)

    def call(self, op: Op, session: str) -> Recording:
        """`async with history.call(op, session) as call:` around one request. A lost
        connection (httpx's or the simulator's) is recorded as no answer, and swallowed."""
        return Recording(self, Call(op, session, time.monotonic()))

    def sessions(self) -> list[str]:
        """Every session named (a creation that failed names none)."""
        return list(dict.fromkeys(e.session for e in self.events if e.session))

    def of(self, session: str) -> list[Event]:
        return [e for e in self.events if e.session == session]


class Recording:
    def __init__(self, history: History, call: Call) -> None:
        self._history = history
        self._call = call

    async def __aenter__(self) -> Call:
        return self._call

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        call = self._call
        swallow = False
        if isinstance(exc, httpx.TransportError):
            call.status, swallow = None, True
        elif isinstance(exc, SimulatorError):
            call.status, swallow = exc.status, True  # None when the connection failed
        elif exc is not None:
            return False
        if call.skip:
            return swallow
        self._history.events.append(
            Event(call.op, call.session, call.started, time.monotonic(), call.status, call.seen)
        )
        return swallow


def violations(
    history: History,
    *,
    crashes: bool,
    webhooks: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """Every broken invariant, one line each; empty when the history is sound. `crashes`:
    the test killed a server, so requests without an answer are expected. `webhooks`: the
    terminal statuses each session's delivered webhooks announced (`session.accepted` →
    `accepted`), when the test received them."""
    found: list[str] = []
    for event in history.events:
        if event.status is None and not crashes:
            found.append(f"{event.op} {event.session}: no answer, and no server was killed")
        elif event.status is not None and event.status >= 500 and event.status != UNAVAILABLE:
            found.append(f"{event.op} {event.session}: HTTP {event.status}, not 503")
    for session in history.sessions():
        found.extend(_session_violations(session, history.of(session)))
    for session, announced in (webhooks or {}).items():
        kinds = set(announced)
        if len(kinds) > 1:
            found.append(f"{session}: webhooks announced {sorted(kinds)}")
    if webhooks is not None:
        for session in history.sessions():
            final = _final_read(history.of(session))
            if final is not None and final.seen in TERMINAL and not set(webhooks.get(session, ())):
                found.append(f"{session}: ended {final.seen}, but no webhook announced it")
    return found


def _final_read(events: list[Event]) -> Event | None:
    reads = [e for e in events if e.op is Op.READ and e.status is not None]
    return max(reads, key=lambda e: e.started, default=None)


def _session_violations(session: str, events: list[Event]) -> list[str]:
    found: list[str] = []
    created = [e for e in events if e.op is Op.CREATE and e.ok]
    final = _final_read(events)
    if created and final is None:
        found.append(f"{session}: created, but never read back (the test must read it)")
    elif created and final is not None and final.status == 404:
        found.append(f"{session}: its creation got {created[0].status}, but it is gone")

    promised = [e for e in events if e.op in PROMISES and e.ok]
    if len(promised) > 1:
        ops = ", ".join(f"{e.op} {e.status}" for e in promised)
        found.append(f"{session}: {len(promised)} terminal operations succeeded ({ops})")
    for promise in promised:
        wanted = PROMISES[promise.op]
        for read in events:
            later = read.op is Op.READ and read.ok and read.started > promise.ended
            if later and read.seen != wanted:
                found.append(
                    f"{session}: {promise.op} got {promise.status}, a later read shows {read.seen}"
                )
                break

    terminal: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.ok and event.seen in TERMINAL:
            terminal[event.seen] += 1
    for promise in promised:
        terminal[PROMISES[promise.op]] += 1
    if len(terminal) > 1:
        found.append(f"{session}: seen in more than one terminal status {sorted(terminal)}")
    return found
