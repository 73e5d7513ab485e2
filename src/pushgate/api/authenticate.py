"""AM's REST authentication API for the ForgeRock SDKs (spec forgerock-push.md §8, §11.9;
issue 9): `POST /json/realms/root[/realms/{realm}]/authenticate` steps a journey,
`POST /json/realms/root/sessions?_action=logout|validate|getSessionInfo` serves its tokens.

A step is one call of `JourneyService.begin/step`; its state travels sealed in the `authId`
(journeys/auth_id.py), whose step id is consumed once (one insert), so a step replayed or
submitted twice at once is refused before anything is performed.

A Push Wait is answered with `waitTime` "0": the client comes straight back, and that
resubmission is *held* on the session events hub until the push session ends (at most
PUSHGATE_JOURNEY_HOLD_SECONDS, 3 s: under the SDKs' 5 s request timeout), then the step runs
at once, so the login completes as soon as the phone answers, without a database read per
poll. The first showing is not held: the page must show the number to pick. The Push Result
Verifier still reads the session once per wait period, as in AM, which catches an answer
that came while no request was held.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pushgate.accounts.model import normalize_realm
from pushgate.accounts.service import require_realm
from pushgate.api.context import client_ip, services
from pushgate.api.errors import crest
from pushgate.errors import InvalidRequest, NotFound, PushgateError, Unavailable
from pushgate.journeys.auth_id import InvalidAuthId, OpenedAuthId
from pushgate.journeys.builtin import DEFAULT_TREE
from pushgate.journeys.callbacks import Json, parse_submission
from pushgate.journeys.engine import Asking, Finished
from pushgate.journeys.locale import preferred_locales
from pushgate.journeys.nodes.base import RequestInfo
from pushgate.journeys.state import PUSH_MESSAGE_ID, JourneyState
from pushgate.journeys.tree import TreeError, check_tree_name
from pushgate.logins.model import COOKIE, Login
from pushgate.protocol.encoding import strict_json_object
from pushgate.services import Services

log = logging.getLogger("pushgate.api")

AUTH_ID_TTL_MS = 5 * 60_000  # a step's authId, as AM's default authentication session
SUCCESS_URL = "/account"
LOGIN_FAILURE = "Login failure"
MAX_USER_AGENT = 512
_REALMS = re.compile(r"(?:/realms/[^/]+)*")
_CORS_HEADERS = (
    "Accept, Accept-API-Version, Accept-Language, Content-Type, X-Requested-With,"
    " X-Requested-Platform, iPlanetDirectoryPro"
)


class StepReplayed(InvalidRequest):
    """An authId whose step was submitted already: the journey went on (or is going on)."""


def _realm(request: Request) -> str:
    """The realm of `/json/authenticate`, `/json/realms/root[/realms/a[/realms/b]]/...`:
    nested realms read as `/a/b` (pushgate has one level; deeper ones are unknown)."""
    nested = request.path_params.get("nested", "")
    if nested and not _REALMS.fullmatch("/" + nested):
        raise NotFound("No such realm", reason=f"not a realm path: {nested!r}")
    names = nested.split("/")[1::2] if nested else []
    try:
        return normalize_realm("/".join(names))
    except InvalidRequest:
        raise NotFound("No such realm", reason=f"no realm {'/'.join(names)!r}") from None


def _tree(request: Request) -> str | None:
    kind = request.query_params.get("authIndexType")
    value = request.query_params.get("authIndexValue")
    if kind not in (None, "service"):
        raise InvalidRequest(f"authIndexType {kind!r} is not supported: use service")
    if value is None:
        return None
    try:
        return check_tree_name(value)
    except TreeError:
        raise NotFound("No such journey", reason=f"bad tree name {value!r}") from None


def _request_info(request: Request) -> RequestInfo:
    user_agent = request.headers.get("user-agent") or ""
    return RequestInfo(
        locales=preferred_locales(request.headers.get("accept-language")),
        remote_ip=client_ip(request),
        user_agent=user_agent[:MAX_USER_AGENT] or None,
    )


def _am_error(exc: PushgateError) -> JSONResponse:
    # Unlike the device face (every refusal a 400), the journey face keeps 401 and 404.
    status = 400 if exc.status in (409, 422) else exc.status
    fields = {"status": status, "reason": exc.reason}
    log.log(
        logging.ERROR if status >= 500 else logging.INFO,
        "journey request refused",
        extra={"fields": fields},
    )
    return crest(status, exc.message)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}  # the SDKs' first request: an empty body (or `{}`)
    try:
        return strict_json_object(raw)
    except ValueError as exc:
        raise InvalidRequest(f"the body must be a JSON object: {exc}") from None


# authenticate ----------------------------------------------------------------------------------


async def _authenticate(request: Request) -> Response:
    svc = services(request)
    try:
        realm, tree = _realm(request), _tree(request)
        body = await _body(request)
        info = _request_info(request)
        auth_id = body.get("authId")
        if auth_id is None or auth_id == "":
            async with svc.store.autocommit() as db:
                await require_realm(db, realm)
            progress = await svc.journeys.begin(realm, tree or DEFAULT_TREE, info)
        else:
            submitted = _open(svc, realm, tree, auth_id)
            # Listen before the step runs: an answer committed meanwhile is not missed.
            async with _watching(svc, submitted.state) as finished:
                progress = await _step(svc, submitted, body.get("callbacks"), info)
                if isinstance(progress, Asking) and _waited_already(submitted, progress):
                    assert finished is not None
                    # An answer between the client's last response and this request.
                    issued_ms = submitted.expires_ms - AUTH_ID_TTL_MS
                    session_id = progress.shown.wait_for_session
                    if session_id and svc.events.published_since(session_id, issued_ms):
                        finished.set()
                    progress = await _hold(svc, progress, info, finished)
        if isinstance(progress, Asking):
            return _asking(svc, progress)
        return await _finished(svc, request, progress)
    except Unavailable:
        raise  # the app's handler: 503, and the outage log
    except PushgateError as exc:
        return _am_error(exc)


def _open(svc: Services, realm: str, tree: str | None, auth_id: object) -> OpenedAuthId:
    if not isinstance(auth_id, str):
        raise InvalidAuthId("Invalid authId", reason="authId is not a string")
    return svc.auth_ids.open_step(auth_id, realm, tree, svc.clock.now_ms())


async def _step(
    svc: Services, opened: OpenedAuthId, callbacks: object, info: RequestInfo
) -> Asking | Finished:
    state = opened.state
    # Check the submission before the step id is spent: a mistyped step can be sent again.
    parse_submission([t for t, _ in state.shown], [k for _, k in state.shown], callbacks)
    if not await svc.logins.consume_step(opened.step_id, opened.expires_ms):
        raise StepReplayed(
            "This journey step was submitted already", reason=f"step {opened.step_id} replayed"
        )
    return await svc.journeys.step(state, callbacks, info)


def _waited_already(submitted: OpenedAuthId | None, asking: Asking) -> bool:
    """A Push Wait shown again for the push it showed before: hold it. Its first showing is
    answered at once, so that the page can show the number to pick."""
    session_id = asking.shown.wait_for_session
    if submitted is None or session_id is None:
        return False
    before = submitted.state
    return before.node == asking.state.node and before.shared.get(PUSH_MESSAGE_ID) == session_id


@asynccontextmanager
async def _watching(svc: Services, state: JourneyState) -> AsyncIterator[anyio.Event | None]:
    """The end of the push session the submitted step was waiting for, if any."""
    session_id = state.shared.get(PUSH_MESSAGE_ID)
    if not isinstance(session_id, str):
        yield None
        return
    async with svc.events.subscribe(session_id) as finished:
        yield finished


async def _hold(
    svc: Services, asking: Asking, info: RequestInfo, finished: anyio.Event
) -> Asking | Finished:
    """Wait for the step's push session to end (or the hold time), then run the step as the
    client would resubmit it, knowing the session ended: no database read while waiting."""
    session_id = asking.shown.wait_for_session
    assert session_id is not None
    hold_max_ms = int(svc.settings.journey_hold_seconds * 1000)
    hold_ms = min(_wait_time(asking) or hold_max_ms, hold_max_ms)
    with anyio.move_on_after(hold_ms / 1000):
        await finished.wait()
    if not finished.is_set():
        return asking
    resubmitted = replace(info, finished_sessions=frozenset({session_id}))
    return await svc.journeys.step(asking.state, asking.shown.to_json(), resubmitted)


def _wait_time(asking: Asking) -> int | None:
    for callback in asking.shown.callbacks:
        if callback.type == "PollingWaitCallback":
            value = callback.out("waitTime")
            return int(value) if isinstance(value, str) and value.isdigit() else None
    return None


def _asking(svc: Services, asking: Asking) -> JSONResponse:
    callbacks = asking.shown.to_json()
    if asking.shown.wait_for_session is not None:
        callbacks = [_come_back(c) for c in callbacks]
    body: dict[str, Json] = {
        "authId": svc.auth_ids.seal(asking.state, svc.clock.now_ms(), AUTH_ID_TTL_MS),
        "callbacks": callbacks,
    }
    for name in ("header", "description", "stage"):
        value = getattr(asking.shown, name)
        if value is not None:
            body[name] = value
    return JSONResponse(body)


def _come_back(callback: Json) -> Json:
    """A Push Wait's PollingWaitCallback: the server does the waiting (it holds the next
    submission until the push ends), so the client comes straight back."""
    if not isinstance(callback, dict) or callback.get("type") != "PollingWaitCallback":
        return callback
    outputs = callback.get("output")
    assert isinstance(outputs, list)
    waited = [
        {**o, "value": "0"} if isinstance(o, dict) and o.get("name") == "waitTime" else o
        for o in outputs
    ]
    return {**callback, "output": waited}


async def _finished(svc: Services, request: Request, finished: Finished) -> Response:
    username = finished.state.username
    if not finished.success or username is None:
        if finished.success:
            log.warning("a journey succeeded without a user", extra={"fields": {}})
        return crest(401, LOGIN_FAILURE)
    realm = finished.state.realm
    if request.query_params.get("noSession") == "true":  # AM: authenticate, no SSO token
        return JSONResponse({"successUrl": SUCCESS_URL, "realm": realm})
    try:
        token, _ = await svc.logins.open(realm, username, finished.state.tree)
    except NotFound:  # the user went away meanwhile
        return crest(401, LOGIN_FAILURE)
    response = JSONResponse({"tokenId": token, "successUrl": SUCCESS_URL, "realm": realm})
    secure = "; Secure" if svc.settings.public_url.lower().startswith("https://") else ""
    response.headers.append(
        "Set-Cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/{secure}"
    )
    return response


# sessions --------------------------------------------------------------------------------------


def _token(request: Request, body: dict[str, Any]) -> str | None:
    """AM's order: the header, then the cookie, then `tokenId` in the body (validate)."""
    token = request.headers.get(COOKIE) or request.cookies.get(COOKIE)
    if not token and isinstance(body.get("tokenId"), str):
        token = body["tokenId"]
    return token or None


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


async def _sessions(request: Request) -> Response:
    svc = services(request)
    action = request.query_params.get("_action")
    try:
        _realm(request)
        body = await _body(request)
        token = _token(request, body)
        if action == "logout":
            closed = token is not None and await svc.logins.close(token)
            response: Response = (
                JSONResponse({"result": "Successfully logged out"})
                if closed
                else crest(401, "Access Denied")
            )
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
            return response
        login = await svc.logins.validate(token) if token else None
        if action == "validate":
            if login is None:
                return JSONResponse({"valid": False})
            return JSONResponse({"valid": True, "uid": login.username, "realm": login.realm})
        if action == "getSessionInfo":
            if login is None:
                return crest(401, "Access Denied")
            return JSONResponse(_session_info(login))
        raise InvalidRequest(f"Action {action!r} not implemented for this resource")
    except Unavailable:
        raise
    except PushgateError as exc:
        return _am_error(exc)


def _session_info(login: Login) -> dict[str, Json]:
    return {
        "username": login.username,
        "universalId": f"id={login.username},ou=user,o={login.realm}",
        "realm": login.realm,
        "latestAccessTime": _iso(login.created_ms),
        "maxIdleExpirationTime": _iso(login.expires_ms),
        "maxSessionExpirationTime": _iso(login.expires_ms),
        "properties": {"AMCtxId": "", "authIndexValue": login.tree},
    }


# CORS ------------------------------------------------------------------------------------------


def _cors(endpoint: Any) -> Any:
    """Credentialed cross-origin calls from the origins in PUSHGATE_CORS_ORIGINS (the JS SDK
    sends `credentials: include`); a preflight is answered here."""

    async def handle(request: Request) -> Response:
        allowed = _origins(services(request).settings.cors_origins)
        origin = request.headers.get("origin")
        if request.method == "OPTIONS":
            response: Response = Response(status_code=204 if origin in allowed else 403)
            if origin in allowed:
                response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await endpoint(request)
        if origin is not None and origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        return response

    return handle


def _origins(setting: str) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/") for o in setting.split(",") if o.strip())


_METHODS = ["POST", "OPTIONS"]
routes = [
    *(
        Route(f"{prefix}/authenticate", _cors(_authenticate), methods=_METHODS)
        for prefix in ("/json", "/json/realms/root", "/json/realms/root/{nested:path}")
    ),
    *(
        # The JS SDK's SessionManager posts to `.../sessions/?_action=logout`.
        Route(f"{prefix}/sessions{slash}", _cors(_sessions), methods=_METHODS)
        for prefix in ("/json", "/json/realms/root", "/json/realms/root/{nested:path}")
        for slash in ("", "/")
    ),
]
