"""The OpenAPI document of the `/v1` face, written out from the models (issue #2: it must
describe `/v1` exactly, error responses included). The routes themselves are plain Starlette
routes, so the document is built here rather than inferred from them, with the limits of the
deployment's settings (issue #6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from pushgate import __version__
from pushgate.api import inbox
from pushgate.api.rp_models import (
    Error,
    PushAuthenticationSession,
    SessionUpdate,
    session_create,
)
from pushgate.settings import Settings

_ERRORS = {
    400: "Missing or invalid parameters (including a notification over 3072 bytes in all)",
    401: "Missing or unknown X-API-Key",
    404: "No such session in this API key's realm",
    409: "The session is no longer `sent`",
    413: "Request body too large",
    415: "The body is not `application/json`",
    422: "This Idempotency-Key was used with another request in the last 24 hours",
    429: "Too many sessions for this user (the realm's createsPerMinute); `Retry-After` says"
    " how many seconds to wait",
    500: "Internal error",
    503: "Storage unavailable",
}
_SESSION_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The PushAuth session id",
    "schema": {"type": "string", "format": "uuid"},
}


# Web Push (api/webpush.py): public, so no security requirement.
_WEBPUSH_KEY: dict[str, Any] = {
    "tags": ["Web Push"],
    "summary": "The VAPID public key browsers subscribe with (applicationServerKey)",
    "operationId": "webPushKey",
    "security": [],
    "responses": {
        "200": {
            "description": "The server's VAPID public key: an uncompressed P-256 point in "
            "unpadded base64url (RFC 8292 §3.2)",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["publicKey"],
                        "properties": {
                            "publicKey": {"type": "string", "pattern": "^B[A-Za-z0-9_-]{86}$"}
                        },
                        "additionalProperties": False,
                    }
                }
            },
        },
        "500": {
            "description": _ERRORS[500],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    },
}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeating a create with the same key and body within 24 hours returns the"
    " same session and notifies no one again; the same key with another body answers 422",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until a create for this user is admitted again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _wait(max_wait_seconds: int) -> dict[str, Any]:
    return {
        "name": "wait",
        "in": "query",
        "required": False,
        "description": "Seconds to hold the request until the status leaves `sent` (answers at "
        "once when it does; 0 or absent: no waiting)",
        "schema": {"type": "integer", "minimum": 0, "maximum": max_wait_seconds},
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


# A new session's id leads to reading and cancelling it (OpenAPI links; schemathesis and
# generated clients follow them).
_SESSION_LINKS = {
    "GetSession": {
        "operationId": "getSession",
        "parameters": {"id": "$response.body#/id"},
    },
    "CancelSession": {
        "operationId": "updateSession",
        "parameters": {"id": "$response.body#/id"},
    },
}


def _operation(
    summary: str,
    operation_id: str,
    success: tuple[int, str],
    errors: tuple[int, ...],
    *,
    body: type[BaseModel] | None = None,
    parameters: tuple[dict[str, Any], ...] = (),
    links: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["PushAuth sessions"],
        "summary": summary,
        "operationId": operation_id,
        "security": [{"APIKeyHeader": []}],
        "responses": {
            str(success[0]): _json(PushAuthenticationSession, success[1]),
            **{str(status): _json(Error, _ERRORS[status]) for status in errors},
        },
    }
    if parameters:
        operation["parameters"] = list(parameters)
    if "429" in operation["responses"]:
        operation["responses"]["429"]["headers"] = _RETRY_AFTER
    if links:
        operation["responses"][str(success[0])]["links"] = links
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


def build(settings: Settings) -> dict[str, Any]:
    create = session_create(settings.max_session_ttl_seconds, settings.default_session_ttl_seconds)
    _, schemas = models_json_schema(
        [(m, "validation") for m in (create, SessionUpdate, PushAuthenticationSession, Error)],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pushgate",
            "version": __version__,
            "summary": "Push authentication: UnifyID-compatible relying-party API",
        },
        "paths": {
            "/v1/push/sessions": {
                "post": _operation(
                    "Create a PushAuth session and notify every device of the user",
                    "createSession",
                    (201, "The new session; `status` is `sent`, or `error` if nothing was sent"),
                    (400, 401, 413, 415, 422, 429, 500, 503),
                    body=create,
                    parameters=(_IDEMPOTENCY_KEY,),
                    links=_SESSION_LINKS,
                ),
            },
            "/v1/push/sessions/{id}": {
                "get": _operation(
                    "Read a PushAuth session, optionally waiting for its answer",
                    "getSession",
                    (200, "The session"),
                    (400, 401, 404, 413, 500, 503),
                    parameters=(_SESSION_ID, _wait(settings.max_wait_seconds)),
                ),
                "patch": _operation(
                    "Cancel a PushAuth session (the only update supported)",
                    "updateSession",
                    (200, "The canceled session"),
                    (400, 401, 404, 409, 413, 415, 500, 503),
                    body=SessionUpdate,
                    parameters=(_SESSION_ID,),
                ),
            },
            "/v1/push/sessions/{id}/events": {
                "get": {
                    "tags": ["PushAuth sessions"],
                    "summary": "Follow a PushAuth session: its changes as server-sent events",
                    "operationId": "sessionEvents",
                    "security": [{"APIKeyHeader": []}],
                    "parameters": [_SESSION_ID],
                    "responses": {
                        "200": {
                            "description": "Server-sent events: first the session as it is, "
                            "then one per change, each `event: session`, `id: <1, 2, ...>` and "
                            "`data: <the session JSON, as GET returns it>`; `: keep-alive` "
                            "comments in between. The body ends after the event whose status "
                            "is no longer `sent`.",
                            # OpenAPI 3.1 has `schema` describe one event (3.2's itemSchema).
                            "content": {
                                "text/event-stream": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["event", "id", "data"],
                                        "properties": {
                                            "event": {"const": "session"},
                                            "id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                                            "data": {
                                                "type": "string",
                                                "contentMediaType": "application/json",
                                                "contentSchema": _ref(PushAuthenticationSession),
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        **{str(s): _json(Error, _ERRORS[s]) for s in (401, 404, 413, 500, 503)},
                    },
                },
            },
            "/v1/webpush/key": {"get": _WEBPUSH_KEY},
            "/v1/inbox/messages": {"post": inbox.OPENAPI_POST},
        },
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "APIKeyHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "Server API key",
                }
            },
        },
    }
