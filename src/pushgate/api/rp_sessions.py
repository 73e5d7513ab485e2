"""The relying-party API `/v1/push/sessions` with UnifyID's field names (seed 003)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from pushgate.errors import NotFound
from pushgate.services import Services
from pushgate.sessions.model import Content, PushSession
from pushgate.sessions.service import NewSession

DEFAULT_TITLE = "Sign-in request"
MAX_SECONDS_TO_EXPIRE = 30 * 86_400
MAX_WAIT_SECONDS = 60

router = APIRouter(prefix="/v1/push/sessions", tags=["PushAuth sessions"])
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Server API key")


class Notification(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str | None = Field(default=None, max_length=256, description="Default title if absent")
    subtitle: str | None = Field(default=None, max_length=256)
    body: str | None = Field(default=None, max_length=1024)
    payload: str | None = Field(default=None, max_length=2048)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    user: str = Field(min_length=1, max_length=256, description="The user to ask")
    notification: Notification | None = None
    secondsToExpire: int | None = Field(
        default=None, ge=0, le=MAX_SECONDS_TO_EXPIRE, description="0 or absent: 86400"
    )


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["canceled"]


class PushAuthenticationSession(BaseModel):
    id: str
    status: Literal["sent", "accepted", "rejected", "expired", "canceled", "error"]
    notificationCount: int
    detail: str | None
    expiresAt: datetime
    updatedAt: datetime


class Error(BaseModel):
    code: Literal["invalidRequest", "badRequest", "unauthorized", "forbidden", "internalError"]
    message: str


def _errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    descriptions = {
        400: "Missing or invalid parameters",
        401: "Missing or unknown X-API-Key",
        404: "No such session in this API key's realm",
        409: "The session is no longer `sent`",
        413: "Request body too large",
        500: "Internal error",
        503: "Storage unavailable",
    }
    return {s: {"model": Error, "description": descriptions[s]} for s in statuses}


def _timestamp(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def session_json(session: PushSession, now_ms: int) -> dict[str, object]:
    return {
        "id": session.id,
        "status": session.status_at(now_ms).wire,
        "notificationCount": session.notification_count,
        "detail": session.detail,
        "expiresAt": _timestamp(session.expires_ms),
        "updatedAt": _timestamp(session.updated_ms),
    }


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def realm_of_key(request: Request, key: Annotated[str | None, Security(_api_key)]) -> str:
    return await services(request).accounts.realm_for_api_key(key)


Realm = Annotated[str, Depends(realm_of_key)]
SessionId = Annotated[str, Path(description="The PushAuth session id")]


def _session_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound("no such session", reason="malformed session id") from None


@router.post(
    "",
    status_code=201,
    response_model=PushAuthenticationSession,
    response_description="The new session; `status` is `sent`, or `error` if nothing was sent",
    responses=_errors(400, 401, 413, 500, 503),
    summary="Create a PushAuth session and notify every device of the user",
)
async def create_session(request: Request, body: SessionCreate, realm: Realm) -> JSONResponse:
    note = body.notification or Notification()
    content = Content(
        title=note.title or DEFAULT_TITLE,
        subtitle=note.subtitle,
        body=note.body,
        payload=note.payload,
    )
    svc = services(request)
    session = await svc.sessions.create(realm, NewSession(body.user, content, body.secondsToExpire))
    return JSONResponse(session_json(session, svc.clock.now_ms()), 201)


@router.get(
    "/{id}",
    response_model=PushAuthenticationSession,
    response_description="The session",
    responses=_errors(400, 401, 404, 500, 503),
    summary="Read a PushAuth session, optionally waiting for its answer",
)
async def get_session(
    request: Request,
    id: SessionId,
    realm: Realm,
    wait: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to hold the request until the status leaves `sent` "
            "(answers at once when it does; 0 or absent: no waiting)",
        ),
    ] = None,
) -> JSONResponse:
    svc = services(request)
    session_id = _session_id(id)
    if wait:
        limit = min(wait, svc.settings.max_wait_seconds)
        session = await svc.sessions.wait(realm, session_id, limit)
    else:
        session = await svc.sessions.get(realm, session_id)
    return JSONResponse(session_json(session, svc.clock.now_ms()))


@router.patch(
    "/{id}",
    response_model=PushAuthenticationSession,
    response_description="The canceled session",
    responses=_errors(400, 401, 404, 409, 413, 500, 503),
    summary="Cancel a PushAuth session (the only update supported)",
)
async def update_session(
    request: Request, id: SessionId, body: SessionUpdate, realm: Realm
) -> JSONResponse:
    svc = services(request)
    session = await svc.sessions.cancel(realm, _session_id(id))
    return JSONResponse(session_json(session, svc.clock.now_ms()))
