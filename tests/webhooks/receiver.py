"""A relying party's webhook endpoint on loopback: a real HTTP server that records every
request, answers with the statuses a test scripts, and checks signatures as a receiver would,
with the Standard Webhooks reference library."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.api.live import serving


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def timestamp(self) -> int:
        return int(self.headers["webhook-timestamp"])

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verify(self, secret: str) -> dict[str, Any]:
        """What `standardwebhooks` makes of it (against the wall clock, ±5 min)."""
        verified: dict[str, Any] = standardwebhooks.Webhook(secret).verify(self.body, self.headers)
        return verified


@dataclass
class Receiver:
    url: str = ""
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    received: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.received.append(Received(dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.received]


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serving(receiver.app()) as port:
        receiver.url = f"http://127.0.0.1:{port}/hook"
        yield receiver
