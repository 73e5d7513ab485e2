"""The one place errors become HTTP responses (STYLE.md §6).

`/v1` (UnifyID) renders `{code, message}`; `/json` (AM) renders CREST
`{code, reason, message}`. Foreign exceptions are translated here, once; what no handler
here catches is answered by `guard.Guard`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from pushgate.api.outage import OutageLog
from pushgate.errors import (
    BadDeviceMessage,
    PushgateError,
    RateLimited,
    SecretKeyMismatch,
    Unavailable,
)

log = logging.getLogger("pushgate.api")

_CODE_BY_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    500: "internalError",
    503: "internalError",
}


def is_am_path(path: str) -> bool:
    return path.startswith("/json/") or path == "/json"


def crest(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": status, "reason": HTTPStatus(status).phrase, "message": message}, status
    )


def v1_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status)


def error_response(path: str, status: int, code: str, message: str) -> JSONResponse:
    """The face's error shape: CREST under `/json`, UnifyID's `{code, message}` elsewhere."""
    if is_am_path(path):
        return crest(status, message)
    return v1_error(status, code, message)


def render(request: Request, status: int, code: str, message: str) -> JSONResponse:
    return error_response(request.url.path, status, code, message)


# Fixed wire texts for the 503s (the OpenAPI document's): an adapter's message may name more.
UNAVAILABLE = "storage is unavailable"
KEY_MISMATCH = "the server's secret key does not match the key the device secrets were sealed with"


def _pushgate_error(request: Request, exc: PushgateError) -> JSONResponse:
    level = logging.WARNING if isinstance(exc, BadDeviceMessage) else logging.INFO
    if exc.status >= 500:
        level = logging.ERROR
    log.log(
        level,
        "request refused",
        extra={"fields": {"path": request.url.path, "status": exc.status, "reason": exc.reason}},
    )
    status = _am_status(exc.status) if is_am_path(request.url.path) else exc.status
    response = render(request, status, exc.code, exc.message)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _am_status(status: int) -> int:
    # AM answers every device-message failure with 400 (spec §4.1).
    return 400 if status in (400, 404, 409) else status


def device_error(exc: PushgateError) -> JSONResponse:
    """The CREST answer the handlers below give `exc` on the device face (`/json/...`), for
    `pushgate action` (cli/ops.py), which runs the device face's code without HTTP."""
    if isinstance(exc, Unavailable):
        return crest(503, KEY_MISMATCH if isinstance(exc, SecretKeyMismatch) else UNAVAILABLE)
    return crest(_am_status(exc.status), exc.message)


def _unavailable(request: Request, exc: Unavailable, outage: OutageLog) -> JSONResponse:
    outage.failed(exc, request.url.path)
    message = KEY_MISMATCH if isinstance(exc, SecretKeyMismatch) else UNAVAILABLE
    return render(request, 503, exc.code, message)


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _CODE_BY_STATUS.get(exc.status_code, "badRequest")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    response = render(request, exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def handlers(outage: OutageLog) -> dict[Any, Handler]:
    # Coroutines: Starlette runs a plain function handler in a worker thread, per refusal.
    async def pushgate_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PushgateError)
        if isinstance(exc, Unavailable):
            return _unavailable(request, exc, outage)
        return _pushgate_error(request, exc)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_error(request, exc)

    return {PushgateError: pushgate_error, StarletteHTTPException: http_error}
