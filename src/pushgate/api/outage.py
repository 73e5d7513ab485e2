"""Storage outages in the log: one line when one starts, not one per request (issue #6).

While the database is down every request fails the same way; a line (let alone a traceback)
for each would bury the one that matters and let any client flood the log. So the first
failure logs an error with its reason, later ones within `window_seconds` are only counted,
and the count comes out with the next line: the next failure after the window, or the first
success ("storage is available again"). Healthy, the cost is one attribute read per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pushgate.errors import SecretKeyMismatch, Unavailable

log = logging.getLogger("pushgate.api")


def _what(exc: Unavailable) -> str:
    if isinstance(exc, SecretKeyMismatch):
        return "sealed device secrets do not open under the configured secret key"
    return "storage is unavailable"


class OutageLog:
    def __init__(
        self, *, window_seconds: float = 60.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.active = False  # read on every request: a plain attribute, nothing to compute
        self._window = window_seconds
        self._now = now
        self._started = 0.0
        self._logged = 0.0
        self._unlogged = 0

    def failed(self, exc: Unavailable, path: str) -> None:
        """A request failed for want of storage: log it, or count it if logged lately."""
        now = self._now()
        if not self.active:
            self.active = True
            self._started = self._logged = now
            self._unlogged = 0
            log.error(_what(exc), extra={"fields": {"reason": exc.reason, "path": path}})
            return
        if now - self._logged < self._window:
            self._unlogged += 1
            return
        log.error(
            f"{_what(exc)}: {self._unlogged} more requests failed",
            extra={"fields": {"reason": exc.reason, "path": path, "failed": self._unlogged}},
        )
        self._logged = now
        self._unlogged = 0

    def recovered(self) -> None:
        """A request that needed storage succeeded: close the outage, with its tally."""
        if not self.active:
            return
        self.active = False
        down = round(self._now() - self._started, 1)
        suffix = f": {self._unlogged} more requests failed" if self._unlogged else ""
        log.warning(
            f"storage is available again{suffix}",
            extra={"fields": {"failed": self._unlogged, "down_seconds": down}},
        )
        self._unlogged = 0
