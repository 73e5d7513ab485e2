"""`POST /v1/inbox/messages` (issue 8; PowerAuth's inbox): a relying party posts a message to
one of its realm's users. The device side is on the device face (`api/device.py`, the
`inbox_*` actions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pushgate.api.context import client_ip, services
from pushgate.audit.model import Origin, apikey_actor
from pushgate.errors import InvalidRequest, UnsupportedMediaType
from pushgate.inbox.model import (
    MAX_BODY,
    MAX_SUBJECT,
    MAX_SUMMARY,
    Draft,
    InboxMessage,
    MessageType,
    detail,
)
from pushgate.protocol.encoding import strict_json_object

# U+0000 has no place in a message, and PostgreSQL text cannot hold it.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


class InboxMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    user: str = Field(min_length=1, max_length=256, description="The username in the key's realm")
    subject: Text = Field(min_length=1, max_length=MAX_SUBJECT)
    summary: Text = Field(default="", max_length=MAX_SUMMARY, description="Shown in the list")
    body: Text = Field(
        min_length=1,
        max_length=MAX_BODY,
        description="An `html` body with nothing left once cleaned is refused (400)",
    )
    type: Literal["text", "html"] = Field(
        default="text", description="`html` bodies are cleaned to a small allow-list of tags"
    )


def message_json(message: InboxMessage, username: str) -> dict[str, object]:
    return {**detail(message), "user": username}


async def post_message(request: Request) -> JSONResponse:
    svc = services(request)
    realm, key_id = await svc.accounts.api_key_holder(request.headers.get("x-api-key"))
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("the body must be application/json")
    try:
        body = InboxMessageCreate.model_validate(strict_json_object(await request.body()))
    except ValueError as exc:  # ValidationError is one
        raise InvalidRequest(_message(exc)) from exc
    draft = Draft(body.subject, body.summary, body.body, MessageType(body.type))
    origin = Origin(apikey_actor(key_id), client_ip(request))
    message = await svc.inbox.post(realm, body.user, draft, origin)
    return JSONResponse(message_json(message, body.user), status_code=201)


def _message(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return f"request body is not a valid JSON object: {exc}"
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else str(first["msg"])


routes = [Route("/v1/inbox/messages", post_message, methods=["POST"])]

_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "user", "type", "subject", "summary", "body", "read", "timestampCreated"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "user": {"type": "string"},
        "type": {"enum": ["text", "html"]},
        "subject": {"type": "string"},
        "summary": {"type": "string"},
        "body": {"type": "string", "description": "For `html`: as cleaned, not as posted"},
        "read": {"type": "boolean"},
        "timestampCreated": {"type": "integer", "description": "Epoch milliseconds"},
    },
    "additionalProperties": False,
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    400: "Missing or invalid fields (sizes: subject 255, summary 1024, body 32768 characters)",
    401: "Missing or unknown X-API-Key",
    404: "No such user in this API key's realm",
    413: "Request body too large",
    415: "The body is not `application/json`",
    500: "Internal error",
    503: "Storage unavailable",
}
# The operation for `api/openapi.py`.
OPENAPI_POST: dict[str, Any] = {
    "tags": ["Inbox"],
    "summary": "Post a message to a user's inbox and announce it to the user's devices",
    "operationId": "postInboxMessage",
    "security": [{"APIKeyHeader": []}],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": InboxMessageCreate.model_json_schema()}},
    },
    "responses": {
        "201": {
            "description": "The stored message",
            "content": {"application/json": {"schema": _MESSAGE_SCHEMA}},
        },
        **{
            str(status): {
                "description": text,
                "content": {"application/json": {"schema": _ERROR}},
            }
            for status, text in _ERRORS.items()
        },
    },
}
