"""The OpenAPI document of the `/v1` face, written out from the models (issue #2: it must
describe `/v1` exactly, error responses included). The routes themselves are plain Starlette
routes, so the document is built here rather than inferred from them, with the limits of the
deployment's settings (issue #6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from pushgate import __version__
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
                    (400, 401, 413, 415, 500, 503),
                    body=create,
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
