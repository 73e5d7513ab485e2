"""Structured logs: JSON lines when stderr is not a terminal, short text when it is.

Callers pass fields with `extra={"fields": {...}}`. Nothing secret is ever passed: no shared
secrets, challenges, JWTs or whole push tokens (`devices.model.redact_token` shortens tokens),
and a test greps the logs of an end-to-end run to keep it so.

A JSON line carries `ts` (ISO 8601, UTC, milliseconds) and, within an HTTP request, the
request's id (`requestId`, also its `X-Request-Id` header: api/observe.py sets `REQUEST_ID`),
so that every line of one request can be found (docs/OPERATIONS.md, "Logs").
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

# The id of the HTTP request being served, None outside one (background tasks, the CLI).
REQUEST_ID: ContextVar[str | None] = ContextVar("pushgate_request_id", default=None)


def iso_utc(created: float) -> str:
    """`2026-12-02T07:24:50.123Z` for a `time.time()` value."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["requestId"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        extra = ""
        if isinstance(fields, dict):
            extra = " " + " ".join(f"{k}={v}" for k, v in fields.items())
        request_id = REQUEST_ID.get()
        if request_id is not None:
            extra += f" requestId={request_id}"
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}{extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record, like logging's own
    last-resort handler: a stream swapped by a test runner and closed since is never used."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    # What a record would otherwise collect on every call and no line of ours prints: the
    # caller's frame, thread and process (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # SQL statements carry secrets as parameters: never log them, whatever the level.
    for name in ("sqlalchemy", "aiosqlite", "asyncpg"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Alembic narrates every start-up at info level (plugins, "will assume transactional
    # DDL"); only a debugging run wants to read that.
    if root.level > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
