"""The UnifyID PushAuth objects (seed 003) as pydantic models: request validation and the
OpenAPI document both come from them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SECONDS_TO_EXPIRE = 30 * 86_400
MAX_WAIT_SECONDS = 60


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
