"""The admin API `/admin/...` (issue 10 "Administration", docs/ADMIN.md): realms, users,
devices, relying-party API keys, webhooks and journeys, for operators' scripts.

Every request carries an admin key (`Authorization: Bearer pga_...`, admin/model.py) that
holds the route's scope; the key is checked before the body is read. Errors have the `/v1`
shape `{code, message}` (api/errors.py): 401 for a missing, unknown or revoked key, 403 for a
missing scope. Changes are audited with the key as their actor (`admin:<key id>`). The
routes are described by `/admin/openapi.json` (api/admin_openapi.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pushgate.accounts.model import normalize_realm
from pushgate.admin.model import Scope
from pushgate.admin.service import admin_actor
from pushgate.admin.views import (
    admin_key_json,
    api_key_json,
    delivery_json,
    device_json,
    realm_json,
    user_json,
    webhook_json,
)
from pushgate.api import admin_openapi
from pushgate.api.context import services
from pushgate.api.raw_path import RawPathRoute
from pushgate.errors import InvalidRequest, UnsupportedMediaType
from pushgate.outbox.model import OutboxState
from pushgate.protocol.encoding import strict_json_object
from pushgate.services import Services
from pushgate.sessions.wire import timestamp

Handler = Callable[[Request, Services, str], Awaitable[Response]]
_MAX_LIMIT = 1000


async def _body(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("the body must be application/json")
    try:
        return strict_json_object(await request.body())
    except ValueError as exc:
        raise InvalidRequest(f"request body is not a valid JSON object: {exc}") from exc


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name}: a string is required")
    return value


def _only(body: Mapping[str, Any], *names: str) -> None:
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: unknown field")


def _limit(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= _MAX_LIMIT:
        raise InvalidRequest(f"limit: an integer from 1 to {_MAX_LIMIT}")
    return int(raw)


def _path(request: Request, name: str) -> str:
    return str(request.path_params[name])


def _resource(**methods: tuple[Scope, Handler]) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint per path (so a 405 names every method it has), each method with its
    scope: the key is checked before anything else is read."""

    async def endpoint(request: Request) -> Response:
        scope, handler = methods[request.method]
        svc = services(request)
        key = await svc.admin.authorize(request.headers.get("authorization"), scope)
        return await handler(request, svc, admin_actor(key))

    return endpoint


def _route(path: str, **methods: tuple[Scope, Handler]) -> Route:
    # Matched on the raw path: a name with `/` in it is written `%2F` (docs/ADMIN.md). Named
    # after its first handler (each handler serves one path), so `url_path_for` finds it.
    name = next(iter(methods.values()))[1].__name__
    return RawPathRoute(path, _resource(**methods), methods=list(methods), name=name)


# Realms ---------------------------------------------------------------------------------------


async def list_realms(request: Request, svc: Services, actor: str) -> Response:
    found = await svc.admin.list_realms()
    return JSONResponse({"realms": [realm_json(r) for r in found]})


async def create_realm(request: Request, svc: Services, actor: str) -> Response:
    body = await _body(request)
    _only(body, "realm")
    created = await svc.accounts.create_realm(str(_text(body, "realm")))
    return JSONResponse(realm_json(created), 201)


async def show_realm(request: Request, svc: Services, actor: str) -> Response:
    realm, contents = await svc.admin.show_realm(_path(request, "realm"))
    return JSONResponse(realm_json(realm, contents))


async def update_realm(request: Request, svc: Services, actor: str) -> Response:
    """The realm's settings: the names of `RealmPolicy.as_json`, those given changed."""
    name = _path(request, "realm")
    body = await _body(request)
    await svc.accounts.set_realm_policy(name, body, actor=actor)
    realm, contents = await svc.admin.show_realm(name)
    return JSONResponse(realm_json(realm, contents))


async def remove_realm(request: Request, svc: Services, actor: str) -> Response:
    removed = await svc.admin.remove_realm(_path(request, "realm"), actor=actor)
    return JSONResponse({"realm": removed.name, "removed": True})


# Users ----------------------------------------------------------------------------------------


async def list_users(request: Request, svc: Services, actor: str) -> Response:
    found = await svc.admin.list_users(
        _path(request, "realm"),
        after=request.query_params.get("after"),
        limit=_limit(request),
    )
    return JSONResponse({"users": [user_json(u) for u in found]})


async def create_user(request: Request, svc: Services, actor: str) -> Response:
    body = await _body(request)
    _only(body, "username", "password")
    created = await svc.accounts.create_user(
        _path(request, "realm"),
        str(_text(body, "username")),
        _text(body, "password", required=False),
    )
    return JSONResponse(user_json(created), 201)


async def show_user(request: Request, svc: Services, actor: str) -> Response:
    user, facts = await svc.admin.show_user(_path(request, "realm"), _path(request, "username"))
    return JSONResponse(user_json(user, facts))


async def remove_user(request: Request, svc: Services, actor: str) -> Response:
    realm, username = _path(request, "realm"), _path(request, "username")
    removed = await svc.admin.remove_user(realm, username, actor=actor)
    return JSONResponse({"realm": removed.realm, "username": removed.username, "removed": True})


async def lock_user(request: Request, svc: Services, actor: str) -> Response:
    realm, username = _path(request, "realm"), _path(request, "username")
    canceled = await svc.admin.lock_user(realm, username, svc.sessions.cancel, actor=actor)
    user, facts = await svc.admin.show_user(realm, username)
    return JSONResponse({**user_json(user, facts), "canceledSessions": canceled})


async def unlock_user(request: Request, svc: Services, actor: str) -> Response:
    realm, username = _path(request, "realm"), _path(request, "username")
    await svc.accounts.unlock_user(realm, username, actor=actor)
    user, facts = await svc.admin.show_user(realm, username)
    return JSONResponse(user_json(user, facts))


async def reset_opt_outs(request: Request, svc: Services, actor: str) -> Response:
    realm, username = _path(request, "realm"), _path(request, "username")
    cleared = await svc.admin.reset_opt_outs(realm, username, actor=actor)
    return JSONResponse({"username": username, "cleared": cleared})


# Devices --------------------------------------------------------------------------------------


async def list_devices(request: Request, svc: Services, actor: str) -> Response:
    realm, username = _path(request, "realm"), _path(request, "username")
    found = await svc.devices.list_for_user(realm, username)
    return JSONResponse({"devices": [device_json(d) for d in found]})


def _device(request: Request) -> tuple[str, str, str]:
    return _path(request, "realm"), _path(request, "username"), _path(request, "device")


async def rename_device(request: Request, svc: Services, actor: str) -> Response:
    realm, username, device_id = _device(request)
    body = await _body(request)
    _only(body, "name")
    renamed = await svc.devices.rename(
        realm, username, device_id, str(_text(body, "name")), actor=actor
    )
    return JSONResponse(device_json(renamed))


async def remove_device(request: Request, svc: Services, actor: str) -> Response:
    removed = await svc.devices.remove(*_device(request), actor=actor)
    return JSONResponse(device_json(removed))


async def block_device(request: Request, svc: Services, actor: str) -> Response:
    return JSONResponse(device_json(await svc.devices.block(*_device(request), actor=actor)))


async def unblock_device(request: Request, svc: Services, actor: str) -> Response:
    return JSONResponse(device_json(await svc.devices.unblock(*_device(request), actor=actor)))


# API keys -------------------------------------------------------------------------------------


async def list_api_keys(request: Request, svc: Services, actor: str) -> Response:
    found = await svc.admin.list_api_keys(request.query_params.get("realm"))
    return JSONResponse({"apiKeys": [api_key_json(k) for k in found]})


async def create_api_key(request: Request, svc: Services, actor: str) -> Response:
    body = await _body(request)
    _only(body, "label")
    label = _text(body, "label", required=False)
    issued = await svc.accounts.create_api_key(_path(request, "realm"), label=label, actor=actor)
    now = svc.clock.now_ms()
    shown = {
        "id": issued.id,
        "realm": issued.realm,
        "label": issued.label,
        "createdAt": timestamp(now),
        "apiKey": issued.key,
    }
    return JSONResponse(shown, 201)


async def revoke_api_key(request: Request, svc: Services, actor: str) -> Response:
    revoked = await svc.admin.revoke_api_key(_path(request, "key"), actor=actor)
    return JSONResponse(api_key_json(revoked))


async def list_admin_keys(request: Request, svc: Services, actor: str) -> Response:
    found = await svc.admin.list_admin_keys()
    return JSONResponse({"adminKeys": [admin_key_json(k) for k in found]})


# Webhooks and journeys ------------------------------------------------------------------------


async def list_webhooks(request: Request, svc: Services, actor: str) -> Response:
    found = await svc.webhooks.list(request.query_params.get("realm"))
    return JSONResponse({"webhooks": [webhook_json(w) for w in found]})


async def add_webhook(request: Request, svc: Services, actor: str) -> Response:
    body = await _body(request)
    _only(body, "url", "events")
    events = body.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidRequest("events: a list of event types is required")
    created = await svc.webhooks.add(_path(request, "realm"), str(_text(body, "url")), events)
    return JSONResponse({**webhook_json(created), "secret": created.secret}, 201)


async def remove_webhook(request: Request, svc: Services, actor: str) -> Response:
    removed = await svc.webhooks.remove(_path(request, "webhook"))
    return JSONResponse({"id": removed.id, "removed": True})


async def list_deliveries(request: Request, svc: Services, actor: str) -> Response:
    raw_state = request.query_params.get("state")
    states = {s.value: s for s in OutboxState}
    if raw_state is not None and raw_state not in states:
        raise InvalidRequest(f"state: one of {', '.join(states)}")
    found = await svc.webhooks.deliveries(
        request.query_params.get("realm"),
        states[raw_state] if raw_state is not None else None,
        _limit(request),
    )
    return JSONResponse({"deliveries": [delivery_json(v) for v in found]})


async def list_journeys(request: Request, svc: Services, actor: str) -> Response:
    found = await svc.journeys.list_trees(_path(request, "realm"))
    shown = [
        {
            "name": t.name,
            "builtin": t.builtin,
            "default": t.default,
            "updatedAt": timestamp(t.updated_ms) if t.updated_ms is not None else None,
        }
        for t in found
    ]
    return JSONResponse({"journeys": shown})


async def import_journey(request: Request, svc: Services, actor: str) -> Response:
    body = await _body(request)  # strict parsing first; the tree's own checks follow
    tree = await svc.journeys.import_tree(_path(request, "realm"), json.dumps(body))
    return JSONResponse({"name": tree.name, "nodes": len(tree.nodes)}, 201)


async def export_journey(request: Request, svc: Services, actor: str) -> Response:
    text = await svc.journeys.export_tree(_path(request, "realm"), _path(request, "name"))
    return Response(text, media_type="application/json")


async def read_audit(request: Request, svc: Services, actor: str) -> Response:
    """The newest entries, oldest first; with `after` (an entry's id), those appended since."""
    raw_realm = request.query_params.get("realm")
    realm = normalize_realm(raw_realm) if raw_realm is not None else None
    limit = _limit(request)
    raw_after = request.query_params.get("after")
    async with svc.store.autocommit() as db:
        if raw_after is None:
            found = await db.audit.newest(realm, limit)
        elif raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 18:
            found = await db.audit.after_id(int(raw_after), realm, limit)
        else:
            raise InvalidRequest("after: an audit entry's id")
    return JSONResponse({"entries": [record.as_json() for record in found]})


_REALM = "/admin/realms/{realm}"
_USER = _REALM + "/users/{username}"
_DEVICE = _USER + "/devices/{device}"

_DOCUMENT = admin_openapi.build()


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(_DOCUMENT)


routes = [
    Route("/admin/openapi.json", openapi_json),
    _route(
        "/admin/realms",
        GET=(Scope.REALMS_READ, list_realms),
        POST=(Scope.REALMS_WRITE, create_realm),
    ),
    _route(
        _REALM,
        GET=(Scope.REALMS_READ, show_realm),
        PATCH=(Scope.REALMS_WRITE, update_realm),
        DELETE=(Scope.REALMS_WRITE, remove_realm),
    ),
    _route(
        _REALM + "/users",
        GET=(Scope.USERS_READ, list_users),
        POST=(Scope.USERS_WRITE, create_user),
    ),
    _route(_USER, GET=(Scope.USERS_READ, show_user), DELETE=(Scope.USERS_WRITE, remove_user)),
    _route(_USER + "/lock", POST=(Scope.USERS_WRITE, lock_user)),
    _route(_USER + "/unlock", POST=(Scope.USERS_WRITE, unlock_user)),
    _route(_USER + "/opt-outs", DELETE=(Scope.USERS_WRITE, reset_opt_outs)),
    _route(_USER + "/devices", GET=(Scope.DEVICES_READ, list_devices)),
    _route(
        _DEVICE,
        PATCH=(Scope.DEVICES_WRITE, rename_device),
        DELETE=(Scope.DEVICES_WRITE, remove_device),
    ),
    _route(_DEVICE + "/block", POST=(Scope.DEVICES_WRITE, block_device)),
    _route(_DEVICE + "/unblock", POST=(Scope.DEVICES_WRITE, unblock_device)),
    _route(_REALM + "/api-keys", POST=(Scope.KEYS_WRITE, create_api_key)),
    _route("/admin/api-keys", GET=(Scope.KEYS_READ, list_api_keys)),
    _route("/admin/api-keys/{key}", DELETE=(Scope.KEYS_WRITE, revoke_api_key)),
    _route("/admin/admin-keys", GET=(Scope.KEYS_READ, list_admin_keys)),
    _route("/admin/webhooks", GET=(Scope.WEBHOOKS_READ, list_webhooks)),
    _route("/admin/webhooks/deliveries", GET=(Scope.WEBHOOKS_READ, list_deliveries)),
    _route("/admin/webhooks/{webhook}", DELETE=(Scope.WEBHOOKS_WRITE, remove_webhook)),
    _route(_REALM + "/webhooks", POST=(Scope.WEBHOOKS_WRITE, add_webhook)),
    _route(
        _REALM + "/journeys",
        GET=(Scope.JOURNEYS_READ, list_journeys),
        POST=(Scope.JOURNEYS_WRITE, import_journey),
    ),
    _route(_REALM + "/journeys/{name}", GET=(Scope.JOURNEYS_READ, export_journey)),
    _route("/admin/audit", GET=(Scope.AUDIT_READ, read_audit)),
]
