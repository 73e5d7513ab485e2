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


class SessionCreate(BaseModel):
    """The body of a new session; `session_create` gives it the deployment's lifetime limits."""

    model_config = ConfigDict(extra="forbid", strict=True)
    user: Text = Field(min_length=1, max_length=256, description="The user to ask")
    notification: Notification | None = None
    secondsToExpire: int | None = Field(default=None, ge=0)


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
