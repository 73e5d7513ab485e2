"""The login pages (issue 9, "Login page"): `/login/{realm}[/{tree}]` runs a journey in the
browser, one server-rendered form per step, through the same `JourneyService` as the REST
face (`/json/.../authenticate`). The account page is `api/account.py`; what both share is
`api/page_forms.py`.

Realm `root` is `/`, `alpha` is `/alpha`. Each form carries the step's sealed `authId` and a
CSRF token; the token is the value of the HttpOnly cookie `pushgate_csrf` (double submit),
and its digest is sealed into the journey state when the journey begins, so a step only goes
on in the browser that started it: a leaked authId is of no use to a page elsewhere.

A step that waits for the phone (Push Wait, the QR code of Push Registration) asks again by
itself: pages.js posts the step with nothing pressed, or, without JavaScript, a
`<meta http-equiv=refresh>` GETs `?poll=1` with the authId in the HttpOnly cookie
`pushgate_wait` (never in a URL). The server holds such a poll, before it spends the step,
until the push session ends (the session events, no database polling), so the page moves on
the moment the phone answers, and a button pressed meanwhile still wins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route

from pushgate.accounts.model import normalize_realm
from pushgate.accounts.service import require_realm
from pushgate.api.context import client_ip, services
from pushgate.api.page_forms import (
    CSRF_COOKIE,
    PageRefusal,
    check_csrf,
    csrf_token,
    error_page,
    guarded,
    journeys,
    login_url,
    page,
    read_form,
    safe_goto,
    secure,
)
from pushgate.errors import InvalidRequest, NotFound
from pushgate.journeys.auth_id import AuthIds, ExpiredAuthId, InvalidAuthId
from pushgate.journeys.builtin import DEFAULT_TREE
from pushgate.journeys.callbacks import InputKind, Json
from pushgate.journeys.engine import Asking, Finished
from pushgate.journeys.locale import preferred_locales
from pushgate.journeys.nodes.base import RequestInfo
from pushgate.journeys.nodes.get_authenticator_app import APPLE, GOOGLE
from pushgate.journeys.nodes.push_registration import RegistrationConfig
from pushgate.journeys.service import JourneyService
from pushgate.journeys.state import PUSH_MESSAGE_ID, JourneyState
from pushgate.journeys.tree import TreeError, check_tree_name
from pushgate.logins.model import COOKIE as LOGIN_COOKIE
from pushgate.pages import view
from pushgate.pages.render import HEADERS, STATIC, qr_svg
from pushgate.services import Services
from pushgate.sessions.model import SessionStatus

log = logging.getLogger("pushgate.pages")
WAIT_COOKIE = "pushgate_wait"
BINDING = "pages:browser"  # shared-state keys of the pages; no node id has a ':'
GOTO = "pages:goto"
AUTH_ID_TTL_MS = 10 * 60_000  # a step left open longer starts over
HOLD_SECONDS = 20.0  # a poll held for the phone; well under any browser or proxy timeout
REFRESH_SECONDS = 2  # the no-JS refresh of a waiting page
MAX_COOKIE_CHARS = 3800  # a wait cookie must fit a browser's 4 KB per cookie
_ASSETS = {"pages.css": "text/css; charset=utf-8", "pages.js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Where:
    """The journey a page belongs to: the realm as in the URL and as pushgate names it."""

    segment: str  # `root`, `alpha`
    realm: str  # `/`, `/alpha`
    tree: str
    named: bool  # the tree was in the URL

    @property
    def action(self) -> str:
        base = f"/login/{quote(self.segment, safe='')}"
        return f"{base}/{quote(self.tree, safe='')}" if self.named else base


# the journey -----------------------------------------------------------------------------------


def _auth_ids(request: Request) -> AuthIds:
    return services(request).auth_ids  # the REST face's: one authId format, one key


def _digest(token: str) -> str:
    return hashlib.sha256(f"pushgate page binding\0{token}".encode()).hexdigest()[:32]


def _request_info(request: Request, finished: frozenset[str] = frozenset()) -> RequestInfo:
    return RequestInfo(
        locales=preferred_locales(request.headers.get("accept-language")),
        remote_ip=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        finished_sessions=finished,
    )


async def _where(request: Request) -> Where:
    segment = request.path_params.get("realm", "root")
    named = "tree" in request.path_params
    try:
        realm = normalize_realm(segment)
        tree = check_tree_name(request.path_params["tree"]) if named else DEFAULT_TREE
        svc = services(request)
        async with svc.store.autocommit() as db:
            await require_realm(db, realm)
        await journeys(svc).tree(realm, tree)
    except (InvalidRequest, NotFound, TreeError):
        raise PageRefusal(
            404,
            "Page not found",
            "There is no such sign-in page.",
            "Check the address, or ask the site that sent you here.",
        ) from None
    return Where(segment, realm, tree, named)


def _profile(request: Request) -> str:
    """The Device Profile Collector's answer for a browser, from its request: the page does
    not run the SDK's collector, and a location would need a permission prompt."""
    agent = (request.headers.get("user-agent") or "")[:512]
    identifier = _digest(csrf_token(request))
    return json.dumps({"identifier": identifier, "metadata": {"browser": {"userAgent": agent}}})


async def _answer_profiles(
    request: Request, journey: JourneyService, progress: Asking | Finished
) -> Asking | Finished:
    while isinstance(progress, Asking) and all(
        c.type == "DeviceProfileCallback" for c in progress.shown.callbacks
    ):
        callbacks: list[Json] = [
            {"type": c.type, "input": [{"name": f"IDToken{i}", "value": _profile(request)}]}
            for i, c in enumerate(progress.shown.callbacks, start=1)
        ]
        progress = await journey.step(progress.state, callbacks, _request_info(request))
    return progress


async def _show(
    request: Request, where: Where, progress: Asking | Finished, error: str = ""
) -> Response:
    svc = services(request)
    journey = journeys(svc)
    progress = await _answer_profiles(request, journey, progress)
    if isinstance(progress, Finished):
        return await _finished(request, where, progress)
    now = svc.clock.now_ms()
    auth_id = _auth_ids(request).seal(progress.state, now, AUTH_ID_TTL_MS)
    screen = view.screen(progress.shown)
    context: dict[str, object] = {
        "title": screen.title,
        "screen": screen,
        "auth_id": auth_id,
        "action": where.action,
        "restart": where.action,
        "error": error,
        "goto": None,
        "poll_url": None,
        "refresh_seconds": REFRESH_SECONDS,
        "poll_ms": 0 if screen.kind is view.Kind.WAITING else (screen.poll_ms or 2000),
        "valid_seconds": 0,
        "valid_for": "",
        "qr": None,
        "app_links": {"apple": APPLE, "google": GOOGLE},
    }
    if screen.registration_uri:
        context["qr"] = qr_svg(screen.registration_uri, "QR code to scan with the authenticator")
        context.update(await _registration_deadline(journey, progress.state, now))
    if screen.kind is view.Kind.WAITING:
        context.update(await _push_deadline(svc, progress.state))
    pollable = view.can_poll(progress.state.shown) and len(auth_id) <= MAX_COOKIE_CHARS
    if pollable:
        context["poll_url"] = f"{where.action}?poll=1"
    response = page(request, "step.html", context)
    if pollable:
        response.set_cookie(
            WAIT_COOKIE,
            auth_id,
            max_age=AUTH_ID_TTL_MS // 1000,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path="/login",
        )
    elif WAIT_COOKIE in request.cookies:
        response.delete_cookie(WAIT_COOKIE, path="/login")
    return response


def _deadline(until_ms: int, now_ms: int) -> dict[str, object]:
    seconds = max(0, (until_ms - now_ms) // 1000)
    minutes, rest = divmod(seconds, 60)
    text = f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
    return {"valid_seconds": seconds, "valid_for": text}


async def _registration_deadline(
    journey: JourneyService, state: JourneyState, now_ms: int
) -> dict[str, object]:
    """Until when the QR code can be scanned: the Push Registration node's timeout."""
    tree = await journey.tree(state.realm, state.tree)
    node = tree.nodes.get(state.node)
    started = state.counter(f"{state.node}.startedAt")
    if node is None or not isinstance(node.config, RegistrationConfig) or not started:
        return {}
    return _deadline(started + node.config.timeout_seconds * 1000, now_ms)


async def _push_deadline(svc: Services, state: JourneyState) -> dict[str, object]:
    session_id = state.shared.get(PUSH_MESSAGE_ID)
    if not isinstance(session_id, str):
        return {}
    try:
        session = await svc.sessions.get(state.realm, session_id)
    except NotFound:
        return {}
    return _deadline(session.expires_ms, svc.clock.now_ms())


async def _finished(request: Request, where: Where, progress: Finished) -> Response:
    svc = services(request)
    state = progress.state
    if progress.success and state.username:
        token, _ = await svc.logins.open(state.realm, state.username, state.tree)
        goto = state.shared.get(GOTO)
        target = goto if isinstance(goto, str) and safe_goto(goto) else "/account"
        response: Response = RedirectResponse(target, 303, headers=dict(HEADERS))
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="lax", secure=secure(request), path="/"
        )
        response.delete_cookie(WAIT_COOKIE, path="/login")
        return response
    refusal = PageRefusal(
        401,
        "Sign-in failed",
        "We could not sign you in.",
        "Check your username and password and try again. If the sign-in was refused on your"
        " phone, or after too many failed attempts (which lock the account until an"
        " administrator unlocks it), start again or ask your administrator.",
    )
    response = error_page(request, refusal, where.action)
    response.delete_cookie(WAIT_COOKIE, path="/login")
    return response


async def _opened(
    request: Request, where: Where, auth_id: str, cookie: str
) -> tuple[JourneyState, str, int]:
    now = services(request).clock.now_ms()
    try:
        opened = _auth_ids(request).open_step(auth_id, where.realm, where.tree, now)
    except ExpiredAuthId:
        raise PageRefusal(
            401,
            "Your sign-in timed out",
            "This sign-in page was left open too long.",
            "Start again: it only takes a moment.",
        ) from None
    except InvalidAuthId as exc:
        log.info("page step refused", extra={"fields": {"reason": exc.reason}})
        raise PageRefusal(
            400, "This page is no longer valid", "This sign-in step cannot be continued."
        ) from None
    binding = opened.state.shared.get(BINDING)
    if not isinstance(binding, str) or not hmac.compare_digest(binding, _digest(cookie)):
        raise PageRefusal(
            403,
            "This form has expired",
            "This sign-in was started in another browser or tab session.",
            "Start again here.",
        )
    return opened.state, opened.step_id, opened.expires_ms


async def _spend(request: Request, step_id: str, expires_ms: int) -> None:
    if not await services(request).logins.consume_step(step_id, expires_ms):
        raise PageRefusal(
            400,
            "This page is no longer valid",
            "This step was sent already (perhaps twice, or from a page you went back to).",
            "Start again to sign in.",
        )


async def _hold(svc: Services, state: JourneyState) -> frozenset[str]:
    """Wait (up to HOLD_SECONDS) for the step's push to end; its id once it has. Woken by
    the session events, with a re-read every `wait_recheck_seconds` for what no one
    announces, as `/v1`'s `?wait=` (an expiry before the sweeper, another SQLite process)."""
    session_id = state.shared.get(PUSH_MESSAGE_ID)
    if not isinstance(session_id, str):
        return frozenset()
    with anyio.move_on_after(HOLD_SECONDS):
        while True:
            # Subscribed before the read: an answer between the two is not missed.
            async with svc.events.subscribe(session_id) as ended:
                try:
                    session = await svc.sessions.get(state.realm, session_id)
                except NotFound:
                    return frozenset({session_id})
                now = svc.clock.now_ms()
                if session.status_at(now) is not SessionStatus.PENDING:
                    return frozenset({session_id})
                left = (session.expires_ms - now) / 1000
                with anyio.move_on_after(max(0.0, min(svc.settings.wait_recheck_seconds, left))):
                    await ended.wait()
    return frozenset()


async def _step(
    request: Request, where: Where, state: JourneyState, form: Mapping[str, str]
) -> Response:
    """The step the person submitted (a button, a form), not a poll."""
    svc = services(request)
    finished: frozenset[str] = frozenset()
    if view.can_poll(state.shown) and state.shared.get(PUSH_MESSAGE_ID):
        finished = await _ended_already(svc, state)
    progress = await journeys(svc).step(
        state, view.submission(state.shown, form), _request_info(request, finished)
    )
    error = ""
    typed = any(kind is InputKind.TEXT for _, kind in state.shown)
    again = isinstance(progress, Asking) and progress.state.node == state.node
    if again and typed and not view.can_poll(state.shown):
        error = "That did not work. Check what you entered and try again."
    return await _show(request, where, progress, error)


async def _ended_already(svc: Services, state: JourneyState) -> frozenset[str]:
    session_id = state.shared.get(PUSH_MESSAGE_ID)
    assert isinstance(session_id, str)
    try:
        session = await svc.sessions.get(state.realm, session_id)
    except NotFound:
        return frozenset({session_id})
    if session.status_at(svc.clock.now_ms()) is SessionStatus.PENDING:
        return frozenset()
    return frozenset({session_id})


# routes ------------------------------------------------------------------------------------------


async def login_root(request: Request) -> Response:
    goto = safe_goto(request.query_params.get("goto"))
    return RedirectResponse(login_url("root", goto), 303, headers=dict(HEADERS))


async def login_get(request: Request) -> Response:
    try:
        where = await _where(request)
    except PageRefusal as refusal:
        return error_page(request, refusal, "/login/root")

    async def run() -> Response:
        if request.query_params.get("poll") == "1" and WAIT_COOKIE in request.cookies:
            cookie = request.cookies.get(CSRF_COOKIE, "")
            state, step_id, expires = await _opened(
                request, where, request.cookies[WAIT_COOKIE], cookie
            )
            if not view.can_poll(state.shown):
                return RedirectResponse(where.action, 303, headers=dict(HEADERS))
            svc = services(request)
            finished = await _hold(svc, state)
            await _spend(request, step_id, expires)
            return await _step_after_hold(request, where, state, finished)
        return await _begin(request, where)

    return await guarded(request, where.action, run)


async def _step_after_hold(
    request: Request, where: Where, state: JourneyState, finished: frozenset[str]
) -> Response:
    svc = services(request)
    progress = await journeys(svc).step(
        state, view.submission(state.shown, {}), _request_info(request, finished)
    )
    return await _show(request, where, progress)


async def _begin(request: Request, where: Where) -> Response:
    svc = services(request)
    progress = await journeys(svc).begin(where.realm, where.tree, _request_info(request))
    if isinstance(progress, Asking):
        extra: dict[str, object] = {BINDING: _digest(csrf_token(request))}
        goto = safe_goto(request.query_params.get("goto"))
        if goto:
            extra[GOTO] = goto
        progress = Asking(progress.state.with_shared(**extra), progress.shown)
    return await _show(request, where, progress)


async def login_post(request: Request) -> Response:
    try:
        where = await _where(request)
    except PageRefusal as refusal:
        return error_page(request, refusal, "/login/root")

    async def run() -> Response:
        form = await read_form(request)
        cookie = check_csrf(request, form)
        state, step_id, expires = await _opened(request, where, form.get("authId", ""), cookie)
        if form.get("wait") == "1":
            # pages.js, without leaving the page: has the push ended? Spends nothing.
            ended = await _hold(services(request), state) if view.can_poll(state.shown) else ()
            return JSONResponse({"ended": bool(ended)}, headers=dict(HEADERS))
        poll = form.get("poll") == "1"
        if poll and view.can_poll(state.shown):
            # Held before the step is spent: a button pressed meanwhile spends it instead.
            finished = await _hold(services(request), state)
            await _spend(request, step_id, expires)
            return await _step_after_hold(request, where, state, finished)
        await _spend(request, step_id, expires)
        return await _step(request, where, state, form)

    return await guarded(request, where.action, run)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        return Response("Not Found", 404, media_type="text/plain")
    return FileResponse(
        STATIC / name,
        media_type=_ASSETS[name],
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",  # the URL names the version
            "X-Content-Type-Options": "nosniff",
        },
    )


routes: list[BaseRoute] = [
    Route("/login", login_root, methods=["GET"]),
    Route("/login/{realm}", login_get, methods=["GET"]),
    Route("/login/{realm}", login_post, methods=["POST"]),
    Route("/login/{realm}/{tree}", login_get, methods=["GET"]),
    Route("/login/{realm}/{tree}", login_post, methods=["POST"]),
    Route("/pages/static/{name}", static, methods=["GET"]),
]
