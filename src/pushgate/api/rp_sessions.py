"""The relying-party API `/v1/push/sessions` with UnifyID's field names (seed 003).

Plain Starlette routes: FastAPI's per-request machinery cost as much CPU as a whole handler
(issue #3). The key is checked before the body is read, bodies are parsed strictly (duplicate
names refused, as on the device face) and validated by the models in `rp_models`; the OpenAPI
document is written out in `openapi.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pushgate.api.context import client_ip, services
from pushgate.api.rp_models import SessionUpdate, session_create
from pushgate.audit.model import Origin, apikey_actor
from pushgate.errors import InvalidRequest, NotFound, UnsupportedMediaType
from pushgate.protocol.encoding import strict_json_object
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.model import Content, Operation
from pushgate.sessions.service import NewSession
from pushgate.sessions.wire import session_json

DEFAULT_TITLE = "Sign-in request"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_WAIT = re.compile(r"[0-9]{1,9}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
Model = TypeVar("Model", bound=BaseModel)


async def _realm(request: Request) -> str:
    return await services(request).accounts.realm_for_api_key(request.headers.get("x-api-key"))


async def _caller(request: Request) -> tuple[str, Origin]:
    """The key's realm, and who calls for the audit trail: the key, from the relying party's
    server (or the proxy in front of it)."""
    header = request.headers.get("x-api-key")
    realm, key_id = await services(request).accounts.api_key_holder(header)
    return realm, Origin(apikey_actor(key_id), client_ip(request))


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else str(first["msg"])


async def _body(request: Request, model: type[Model]) -> Model:
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("the body must be application/json")
    try:
        data = strict_json_object(await request.body())
    except ValueError as exc:
        raise InvalidRequest(f"request body is not a valid JSON object: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(_validation_message(exc)) from exc


def _session_id(request: Request) -> str:
    raw = request.path_params["id"]
    if not _UUID.fullmatch(raw):
        raise NotFound("no such session", reason="malformed session id")
    return str(raw)


def _wait_seconds(request: Request, limit: int) -> int:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0
    if not _WAIT.fullmatch(raw) or int(raw) > limit:
        raise InvalidRequest(f"wait: must be an integer from 0 to {limit}")
    return int(raw)


async def create_session(request: Request) -> JSONResponse:
    realm, origin = await _caller(request)
    svc = services(request)
    limits = svc.settings
    model = session_create(limits.max_session_ttl_seconds, limits.default_session_ttl_seconds)
    body = await _body(request, model)
    note = body.notification
    content = Content(
        title=(note.title if note else None) or DEFAULT_TITLE,
        subtitle=note.subtitle if note else None,
        body=note.body if note else None,
        payload=note.payload if note else None,
    )
    context = body.context.model_dump(exclude_none=True) if body.context else None
    operation = Operation(body.operation.name, body.operation.data) if body.operation else None
    request_hash = hashlib.sha256(
        json.dumps(body.model_dump(exclude_none=True), sort_keys=True).encode()
    ).hexdigest()
    new = NewSession(
        body.user,
        content,
        body.secondsToExpire,
        push_type=PushType(body.pushType) if body.pushType else None,
        context=context,
        operation=operation,
        idempotency_key=_idempotency_key(request),
        request_hash=request_hash,
    )
    session = await svc.sessions.create(realm, new, origin)
    return JSONResponse(session_json(session, svc.clock.now_ms()), 201)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest("Idempotency-Key: 1 to 255 printable ASCII characters")
    return key


async def get_session(request: Request) -> JSONResponse:
    realm = await _realm(request)
    session_id = _session_id(request)
    svc = services(request)
    wait = _wait_seconds(request, svc.settings.max_wait_seconds)
    if wait:
        session = await svc.sessions.wait(realm, session_id, wait)
    else:
        session = await svc.sessions.get(realm, session_id)
    return JSONResponse(session_json(session, svc.clock.now_ms()))


async def update_session(request: Request) -> JSONResponse:
    realm, origin = await _caller(request)
    session_id = _session_id(request)
    await _body(request, SessionUpdate)  # only {"status": "canceled"} gets this far
    svc = services(request)
    session = await svc.sessions.cancel(realm, session_id, origin)
    return JSONResponse(session_json(session, svc.clock.now_ms()))


async def session_resource(request: Request) -> JSONResponse:
    # One route per path, so that a 405 names every method the resource has.
    if request.method == "PATCH":
        return await update_session(request)
    return await get_session(request)


routes = [
    Route("/v1/push/sessions", create_session, methods=["POST"]),
    Route("/v1/push/sessions/{id}", session_resource, methods=["GET", "PATCH"]),
]
