"""A loopback FCM HTTP v1 server with its OAuth token endpoint (RFC 7523 JWT bearer grant), on
uvicorn over TLS in the test's own event loop.

The token endpoint verifies the service account's assertion as Google does (RS256 with the
key's public half, `iss` the client email, `aud` Google's token URL whatever the `token_uri`,
the FCM scope) and counts its calls; the send endpoint checks the access token and the
message shape, records each message and answers what the test scripts.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.transports.certs import LoopbackPki
from tests.transports.loopback import tls_serving

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@dataclass(frozen=True)
class FcmAnswer:
    status: int = 200
    error_code: str = ""  # the FcmError errorCode, if any
    message: str = ""
    retry_after: str | None = None
    bad_token_field: bool = False  # a BadRequest fieldViolation on message.token


@dataclass
class FcmServer:
    project_id: str
    client_email: str
    public_key: rsa.RSAPublicKey
    token_lifetime_seconds: int = 3600
    port: int = 0
    script: list[FcmAnswer] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    tokens_used: list[str] = field(default_factory=list)
    token_requests: int = 0
    refused_assertions: int = 0
    _valid_tokens: set[str] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def revoke_tokens(self) -> None:
        """Every access token issued so far is refused with 401 from now on."""
        self._valid_tokens.clear()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
            ]
        )

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self.public_key,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as exc:
            self.refused_assertions += 1
            return JSONResponse(
                {"error": "invalid_grant", "error_description": str(exc)}, status_code=400
            )
        if FCM_SCOPE not in str(claims["scope"]).split() or claims["exp"] - claims["iat"] > 3600:
            self.refused_assertions += 1
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        token = "ya29." + secrets.token_urlsafe(16)
        self._valid_tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": self.token_lifetime_seconds,
                "token_type": "Bearer",
            }
        )

    async def _send(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ")
        self.tokens_used.append(token)
        if request.path_params["project"] != self.project_id:
            return _error(403, "PERMISSION_DENIED", "wrong project")
        if not authorization.startswith("Bearer ") or token not in self._valid_tokens:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication")
        body = json.loads(await request.body())
        message = body["message"]
        data = message.get("data", {})
        if not all(isinstance(v, str) for v in data.values()):
            return _error(400, "INVALID_ARGUMENT", "Invalid value at message.data", "")
        self.messages.append(message)
        answer = self.script.pop(0) if self.script else FcmAnswer()
        if answer.status == 200:
            return JSONResponse(
                {"name": f"projects/{self.project_id}/messages/{len(self.messages)}"}
            )
        response = _error(
            answer.status,
            _STATUSES.get(answer.status, "UNKNOWN"),
            answer.message or "scripted error",
            answer.error_code,
            answer.bad_token_field,
        )
        if answer.retry_after is not None:
            response.headers["retry-after"] = answer.retry_after
        return response


_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error(
    status: int, grpc_status: str, message: str, code: str = "", bad_token: bool = False
) -> JSONResponse:
    details: list[dict[str, Any]] = []
    if code:
        details.append({"@type": FCM_ERROR, "errorCode": code})
    if bad_token:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "Invalid"}],
            }
        )
    error = {"code": status, "message": message, "status": grpc_status, "details": details}
    return JSONResponse({"error": error}, status_code=status)


@asynccontextmanager
async def fcm_serving(server: FcmServer, pki: LoopbackPki) -> AsyncIterator[FcmServer]:
    async with tls_serving(server.app(), pki) as port:
        server.port = port
        yield server
