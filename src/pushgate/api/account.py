"""The account page (issue 9): `/account` for the person signed in with the login cookie
(`iPlanetDirectoryPro`): their devices (rename, remove), new recovery codes, sign-out.

Removal goes through `DeviceService.remove`, which tells the app (`mtoken.statusChange`)
where delivery exists. New recovery codes replace the old ones and are shown once, in the
answer to the POST that made them (never stored in a form or a URL). Every POST carries the
CSRF token of `api/page_forms.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pushgate.api.context import services
from pushgate.api.page_forms import (
    PageRefusal,
    check_csrf,
    guarded,
    journeys,
    login_url,
    page,
    read_form,
    realm_segment,
)
from pushgate.devices.model import Device, DeviceStatus
from pushgate.errors import InvalidRequest, NotFound
from pushgate.journeys import recovery_codes
from pushgate.journeys.effects import SaveRecoveryCodes
from pushgate.logins.model import COOKIE, Login
from pushgate.pages.render import HEADERS

_STATUS = {
    DeviceStatus.ACTIVE: "Active",
    DeviceStatus.INACTIVE: "Not reachable",  # its push token is dead until the app refreshes
    DeviceStatus.BLOCKED: "Blocked",
}
_TYPES = {"ios": "iPhone or iPad", "android": "Android", "web": "Web browser"}
_NOTICES = {
    "renamed": "The device was renamed.",
    "removed": "The device was removed. It can no longer approve your sign-ins.",
}


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    name: str
    type: str
    status: str
    status_label: str
    created: str
    created_iso: str
    used: str
    used_iso: str


def _when(ms: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%d %b %Y, %H:%M UTC"), moment.isoformat(timespec="seconds")


def _row(device: Device) -> DeviceRow:
    created, created_iso = _when(device.created_ms)
    used, used_iso = _when(device.updated_ms)
    return DeviceRow(
        device.id,
        device.name,
        _TYPES.get(device.device_type.lower(), device.device_type or "Phone"),
        device.status.value,
        _STATUS.get(device.status, device.status.value),
        created,
        created_iso,
        used,
        used_iso,
    )


async def _login(request: Request) -> Login | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    validated: Login | None = await services(request).logins.validate(token)
    return validated


def _to_login(request: Request) -> Response:
    segment = request.query_params.get("realm", "root")
    return RedirectResponse(login_url(segment, "/account"), 303, headers=dict(HEADERS))


async def _account(
    request: Request, login: Login, extra: Mapping[str, object], status: int = 200
) -> Response:
    svc = services(request)
    devices = await svc.devices.list_for_user(login.realm, login.username)
    left = await journeys(svc).recovery_codes_left(login.realm, login.username)
    notice = _NOTICES.get(request.query_params.get("done", ""), "")
    context = {
        "title": "Your account",
        "username": login.username,
        "devices": [_row(d) for d in devices],
        "codes_left": left,
        "codes": (),
        "notice": notice,
        "error": "",
        "error_device": None,
        **extra,
    }
    return page(request, "account.html", context, status)


async def account(request: Request) -> Response:
    login = await _login(request)
    if login is None:
        return _to_login(request)

    async def run() -> Response:
        return await _account(request, login, {})

    return await guarded(request, login_url(realm_segment(login.realm)), run)


def _posting(action: str) -> Callable[[Request], Awaitable[Response]]:
    """A POST handler of the account page: signed in, CSRF checked, then `action`."""

    async def handler(request: Request) -> Response:
        login = await _login(request)
        if login is None:
            return _to_login(request)

        async def run() -> Response:
            form = await read_form(request)
            check_csrf(request, form)
            return await ACTIONS[action](request, login, form)

        return await guarded(request, "/account", run)

    return handler


def _device_id(request: Request) -> str:
    return str(request.path_params["device_id"])


async def _rename(request: Request, login: Login, form: Mapping[str, str]) -> Response:
    device_id = _device_id(request)
    try:
        await services(request).devices.rename(
            login.realm, login.username, device_id, form.get("name", "").strip()
        )
    except InvalidRequest as exc:
        extra = {"error": exc.message, "error_device": device_id}
        return await _account(request, login, extra, 400)
    except NotFound:
        raise PageRefusal(404, "No such device", "That device is not one of yours.") from None
    return RedirectResponse("/account?done=renamed", 303, headers=dict(HEADERS))


async def _remove(request: Request, login: Login, form: Mapping[str, str]) -> Response:
    try:
        await services(request).devices.remove(login.realm, login.username, _device_id(request))
    except NotFound:
        raise PageRefusal(404, "No such device", "That device is not one of yours.") from None
    return RedirectResponse("/account?done=removed", 303, headers=dict(HEADERS))


async def _new_codes(request: Request, login: Login, form: Mapping[str, str]) -> Response:
    codes = recovery_codes.new_codes()
    journey = journeys(services(request))
    await journey.perform(login.realm, SaveRecoveryCodes(login.username, codes))
    return await _account(request, login, {"codes": codes})


async def _logout(request: Request, login: Login, form: Mapping[str, str]) -> Response:
    await services(request).logins.close(request.cookies.get(COOKIE, ""))
    response = RedirectResponse(login_url(realm_segment(login.realm)), 303, headers=dict(HEADERS))
    response.delete_cookie(COOKIE, path="/")
    return response


ACTIONS = {"rename": _rename, "remove": _remove, "codes": _new_codes, "logout": _logout}

routes: list[BaseRoute] = [
    Route("/account", account, methods=["GET"]),
    Route("/account/devices/{device_id}/rename", _posting("rename"), methods=["POST"]),
    Route("/account/devices/{device_id}/remove", _posting("remove"), methods=["POST"]),
    Route("/account/recovery-codes", _posting("codes"), methods=["POST"]),
    Route("/account/logout", _posting("logout"), methods=["POST"]),
]
