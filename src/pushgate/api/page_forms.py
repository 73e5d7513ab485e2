"""What every server-rendered page shares (the login pages, `api/pages.py`, and the account
page, `api/account.py`): rendering with the browser's CSRF token, the double-submit check,
reading a form, same-origin redirects, and the error page of whatever a page raised."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from pushgate.api.context import services
from pushgate.errors import PushgateError, Unavailable
from pushgate.journeys.callbacks import InvalidCallbacks
from pushgate.journeys.service import JourneyService
from pushgate.pages.render import HEADERS, render
from pushgate.services import Services

log = logging.getLogger("pushgate.pages")
BRAND = "pushgate"
CSRF_COOKIE = "pushgate_csrf"
MAX_FORM_BYTES = 32 * 1024


class PageRefusal(Exception):
    """A request the pages answer with an error page."""

    def __init__(self, status: int, title: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.hint = status, title, message, hint


def page(
    request: Request, template: str, context: Mapping[str, object], status: int = 200
) -> Response:
    body = render(template, {"lang": "en", "brand": BRAND, "csrf": csrf_token(request), **context})
    response = HTMLResponse(body, status, headers=dict(HEADERS))
    _keep_csrf(request, response)
    return response


def error_page(request: Request, refusal: PageRefusal, restart: str | None) -> Response:
    context = {
        "title": refusal.title,
        "message": refusal.message,
        "hint": refusal.hint,
        "restart": restart,
        "restart_label": "Start again",
    }
    return page(request, "error.html", context, refusal.status)


def secure(request: Request) -> bool:
    return services(request).settings.public_base.startswith("https://")


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: its cookie, or a new one (set on the response by `page`)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if not _looks_like_token(token):
        token = request.scope.setdefault("pushgate.csrf", secrets.token_urlsafe(32))
    return token


def _looks_like_token(token: str) -> bool:
    return 32 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()


def _keep_csrf(request: Request, response: Response) -> None:
    if "pushgate.csrf" in request.scope:
        response.set_cookie(
            CSRF_COOKIE,
            request.scope["pushgate.csrf"],
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path="/",
        )


def check_csrf(request: Request, form: Mapping[str, str]) -> str:
    """The cookie's token if the form carries the same; PageRefusal (403) otherwise."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    if not _looks_like_token(cookie) or not hmac.compare_digest(cookie, sent):
        raise PageRefusal(
            403,
            "This form has expired",
            "The page could not be verified, so nothing was done.",
            "This happens when a page was opened from another site or left open too long.",
        )
    return cookie


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind the pages send); the first value of each name."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageRefusal(413, "Too much data", "The form was larger than a page sends.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise PageRefusal(400, "Something went wrong", "The form could not be read.") from None
    form: dict[str, str] = {}
    for name, value in pairs[:64]:
        form.setdefault(name, value)
    return form


def safe_goto(goto: str | None) -> str | None:
    """A same-origin path to go to after the login, or None: never another site."""
    if not goto or len(goto) > 512 or not goto.startswith("/") or goto.startswith("//"):
        return None
    parts = urlsplit(goto)
    if parts.scheme or parts.netloc or "\\" in goto or any(ord(c) < 0x21 for c in goto):
        return None
    return goto


def login_url(segment: str, goto: str | None = None) -> str:
    url = f"/login/{quote(segment, safe='')}"
    return f"{url}?goto={quote(goto, safe='/')}" if goto else url


def realm_segment(realm: str) -> str:
    return "root" if realm == "/" else realm.lstrip("/")


def journeys(svc: Services) -> JourneyService:
    return svc.journeys


async def guarded(
    request: Request, restart: str, run: Callable[[], Awaitable[Response]]
) -> Response:
    """`run`'s page, or the error page of what it raised."""
    try:
        return await run()
    except PageRefusal as refusal:
        return error_page(request, refusal, restart)
    except InvalidCallbacks:
        return error_page(
            request,
            PageRefusal(400, "Something went wrong", "That answer does not fit this step."),
            restart,
        )
    except Unavailable:
        log.warning("page unavailable", exc_info=True)
        return error_page(
            request,
            PageRefusal(503, "Sign-in is unavailable", "Please try again in a minute."),
            restart,
        )
    except PushgateError as exc:
        status = exc.status if 400 <= exc.status < 500 else 500
        failure = PageRefusal(status, "Something went wrong", exc.message)
        return error_page(request, failure, restart)
