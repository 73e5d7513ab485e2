"""A server-sent events parser (WHATWG HTML, "Parsing an event stream"), line by line. No I/O.

Only what pushgate sends needs to work, but the parser follows the standard so that a proxy
that re-chunks or re-folds the stream changes nothing: several `data` lines are joined with
newlines, a comment line (`:`) is ignored, an event is dispatched at the blank line after it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None


class EventParser:
    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def line(self, line: str) -> ServerSentEvent | None:
        """Feed one line (without its line ending); the event it completes, if any."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None  # `retry` and unknown fields: nothing a client of pushgate needs

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        found = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data = "", []
        return found
