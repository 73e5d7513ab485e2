"""The one exception tree of pushgate (STYLE.md §6).

    PushgateError
    ├── InvalidRequest       400  malformed input (schema, types, JSON)
    ├── BadRequest           400  well-formed input the server will not act on
    │   └── BadDeviceMessage 400  device protocol failure (forged, replayed, expired, unknown)
    ├── Unauthorized         401
    ├── Forbidden            403
    ├── NotFound             404
    ├── Conflict             409  a compare-and-set lost: the session already ended
    ├── Unprocessable        422  an Idempotency-Key reused with another request
    ├── RateLimited          429  too many requests; `retry_after` seconds to wait
    ├── PayloadTooLarge      413
    ├── UnsupportedMediaType 415
    ├── InternalError        500
    └── Unavailable          503  the database cannot be reached; nothing was written
        └── SecretKeyMismatch 503 a sealed secret does not open under the configured key

Each class carries its HTTP status and its wire code for the UnifyID face (`{code, message}`);
the device face renders every failure as a CREST 400 (spec forgerock-push.md §4.1).
`message` is what the wire may see; `reason` is what only logs and audit see.
"""

from __future__ import annotations


class PushgateError(Exception):
    status: int = 500
    code: str = "internalError"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or message


class InvalidRequest(PushgateError):
    status = 400
    code = "invalidRequest"


class BadRequest(PushgateError):
    status = 400
    code = "badRequest"


class BadDeviceMessage(BadRequest):
    """A device message was refused. The wire message stays generic: no oracle for forgers."""


class Unauthorized(PushgateError):
    status = 401
    code = "unauthorized"


class Forbidden(PushgateError):
    status = 403
    code = "forbidden"


class NotFound(PushgateError):
    status = 404
    code = "badRequest"  # UnifyID's code enum has no notFound (spec peers.md §1.2)


class Conflict(PushgateError):
    status = 409
    code = "badRequest"


class Unprocessable(PushgateError):
    status = 422
    code = "invalidRequest"


class RateLimited(PushgateError):
    status = 429
    code = "rateLimited"

    def __init__(self, message: str, *, retry_after: int, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = max(1, retry_after)


class PayloadTooLarge(PushgateError):
    status = 413
    code = "invalidRequest"


class UnsupportedMediaType(PushgateError):
    status = 415
    code = "invalidRequest"


class InternalError(PushgateError):
    status = 500
    code = "internalError"


class Unavailable(PushgateError):
    status = 503
    code = "internalError"


class SecretKeyMismatch(Unavailable):
    """The processes of one deployment disagree on PUSHGATE_SECRET_KEY (or the key file): a
    device's sealed secret does not open. Nothing can be verified until the key is fixed."""


class ConfigError(PushgateError):
    """Settings that cannot be used; raised at start-up, never on a request."""
