"""The UnifyID PushAuth objects (seed 003) as pydantic models: request validation and the
OpenAPI document both come from them, with the limits of the deployment's settings."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

# U+0000 has no place in a name or a message, and PostgreSQL text cannot hold it.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


class Notification(BaseModel):
    """What the person sees. All four fields together, as the push's JSON `p` claim, must fit
    in 3072 bytes (PingAM's limit on a custom payload)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    title: Text | None = Field(default=None, max_length=256, description="Default title if absent")
    subtitle: Text | None = Field(default=None, max_length=256)
    body: Text | None = Field(default=None, max_length=1024)
    payload: Text | None = Field(default=None, max_length=2048)


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Context(BaseModel):
    """What the person should see of the sign-in: it goes into the push (the `x` claim)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    remoteIp: Text | None = Field(default=None, max_length=64)
    userAgent: Text | None = Field(default=None, max_length=512)
    location: Location | None = None


class Operation(BaseModel):
    """What the approval authorizes. The device's approval must carry `operationHash`, the
    unpadded base64url SHA-256 of `data`, or it counts as a failure (dynamic linking)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]+$")] = Field(
        min_length=1, max_length=64, description="`login`, `authorize_payment`, any name"
    )
    data: Text | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="PowerAuth operation data, e.g."
        " `A1*A100CZK*ICZ2730300000001165254011*R/VS123456*D20180425`",
    )


PushTypeName = Literal["default", "challenge", "biometric", "code"]


class SessionCreate(BaseModel):
    """The body of a new session; `session_create` gives it the deployment's lifetime limits."""

    model_config = ConfigDict(extra="forbid", strict=True)
    user: Text = Field(min_length=1, max_length=256, description="The user to ask")
    notification: Notification | None = None
    secondsToExpire: int | None = Field(default=None, ge=0)
    pushType: PushTypeName | None = Field(
        default=None,
        description="Absent: the realm's default (`default` unless the realm says otherwise)."
        " `challenge`: the response carries `challengeNumber` for the login page, the person"
        " picks it among three. `code`: the response carries a 6-digit `code` the person types.",
    )
    context: Context | None = None
    operation: Operation | None = None


@lru_cache(maxsize=8)
def session_create(max_ttl_seconds: int, default_ttl_seconds: int) -> type[SessionCreate]:
    """`SessionCreate` bounded by PUSHGATE_MAX_SESSION_TTL_SECONDS: one model per setting, so
    the 400 a request gets and the OpenAPI document's maximum never disagree."""
    return create_model(
        "SessionCreate",
        __base__=SessionCreate,
        __module__=__name__,
        secondsToExpire=(
            int | None,
            Field(
                default=None,
                ge=0,
                le=max_ttl_seconds,
                description=f"0 or absent: {default_ttl_seconds}. A JSON integer: `60`, not `60.0`",
            ),
        ),
    )


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["canceled"]


class OperationShown(BaseModel):
    name: str
    data: str | None


class PushAuthenticationSession(BaseModel):
    id: str
    status: Literal["sent", "accepted", "rejected", "expired", "canceled", "error"]
    notificationCount: int
    detail: str | None
    expiresAt: datetime
    updatedAt: datetime
    pushType: PushTypeName
    failureCount: int = Field(description="Wrong numbers, codes or operation bindings so far")
    denyReason: Literal["UNKNOWN", "INCORRECT_DATA", "UNEXPECTED_OPERATION"] | None = Field(
        description='Why the device denied, if it said; UNEXPECTED_OPERATION: "this wasn\'t me"'
    )
    challengeNumber: str | None = Field(
        default=None, description="`challenge` while `sent`: show it on the login page"
    )
    code: str | None = Field(
        default=None, description="`code` while `sent`: the 6 digits to type on the device"
    )
    context: Context | None = None
    operationId: str | None = None
    operation: OperationShown | None = None


class Error(BaseModel):
    code: Literal[
        "invalidRequest", "badRequest", "unauthorized", "forbidden", "rateLimited", "internalError"
    ]
    message: str
