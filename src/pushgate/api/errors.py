"""The one place errors become HTTP responses (STYLE.md §6).

`/v1` (UnifyID) renders `{code, message}`; `/json` (AM) renders CREST
`{code, reason, message}`. Foreign exceptions are translated here, once.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pushgate.errors import BadDeviceMessage, PushgateError

log = logging.getLogger("pushgate.api")

_CODE_BY_STATUS = {
    400: "invalidRequest",  # FastAPI's "error parsing the body": not JSON, too deep, bad UTF-8
    401: "unauthorized",
    403: "forbidden",
    413: "invalidRequest",
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


def render(request: Request, status: int, code: str, message: str) -> JSONResponse:
    if is_am_path(request.url.path):
        return crest(status, message)
    return v1_error(status, code, message)


def _pushgate_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PushgateError)
    level = logging.WARNING if isinstance(exc, BadDeviceMessage) else logging.INFO
    if exc.status >= 500:
        level = logging.ERROR
    log.log(
        level,
        "request refused",
        extra={"fields": {"path": request.url.path, "status": exc.status, "reason": exc.reason}},
    )
    status = exc.status
    if is_am_path(request.url.path) and status in (400, 404, 409):
        status = 400  # AM answers every device-message failure with 400 (spec §4.1)
    return render(request, status, exc.code, exc.message)


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON"
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    text = str(first.get("msg", "invalid value"))
    return f"{location}: {text}" if location else text


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return render(request, 400, "invalidRequest", _validation_message(exc))


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "badRequest")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    response = render(request, exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
    return render(request, 500, "internalError", "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(PushgateError, _pushgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
