"""The device face: `POST /json[/realms/root][/realms/{realm} | /{realm}]/push/sns/message`
with `_action=register|authenticate|refresh|pending` (seeds 000/001, spec §3.4, §4).

Success is exactly `200 {}` (legacy Android accepts nothing else); every refusal is a CREST 400.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pushgate.accounts.model import normalize_realm
from pushgate.api.context import client_ip, services
from pushgate.audit.model import Origin
from pushgate.errors import BadDeviceMessage, InvalidRequest
from pushgate.protocol import device_messages as dm
from pushgate.protocol.encoding import strict_json_object
from pushgate.protocol.message_ids import MessageKind
from pushgate.services import Services

_EMPTY = b"{}"


def _realm(name: str | None) -> str:
    try:
        return normalize_realm(name or "/")
    except InvalidRequest as exc:
        raise BadDeviceMessage(dm.REFUSED, reason=exc.message) from exc


def _origin(request: Request) -> Origin:
    # The audit's remote IP; the device's own id is added once the message names it.
    return Origin(remote_ip=client_ip(request))


async def handle(
    svc: Services, realm_name: str | None, action: str | None, raw: bytes, origin: Origin
) -> dict[str, object] | None:
    """One device message: the JSON answered, None for AM's exact `200 {}`; a refusal raises.
    The HTTP route and `pushgate action` (cli/ops.py) both run this."""
    realm = _realm(realm_name)
    try:
        body = strict_json_object(raw)
    except ValueError as exc:
        raise BadDeviceMessage(dm.MALFORMED, reason=f"body: {exc}") from exc
    if action in ("register", "authenticate"):
        message = dm.parse_message_request(body)
        # As in AM, the message id's prefix decides the handler, not `_action` (spec §4.2).
        if message.message_id.kind is MessageKind.REGISTER:
            await svc.devices.register(realm, message, origin)
        else:
            await svc.sessions.answer(realm, message, origin)
    elif action == "refresh":
        await svc.devices.refresh(realm, dm.parse_refresh_request(body), origin)
    elif action is not None and action.startswith("inbox_"):
        return await svc.inbox.device(realm, action, dm.parse_poll_request(body))
    elif action == "pending":
        pushes = await svc.devices.pending(realm, dm.parse_poll_request(body))
        return {"notifications": [{"messageId": p.message_id, "message": p.jwt} for p in pushes]}
    else:
        raise BadDeviceMessage("Unknown action", reason=f"_action={action!r}")
    return None


async def _message(request: Request) -> Response:
    answer = await handle(
        services(request),
        request.path_params.get("realm"),
        request.query_params.get("_action"),
        await request.body(),
        _origin(request),
    )
    if answer is None:
        return Response(_EMPTY, 200, media_type="application/json")
    return JSONResponse(answer)


# Plain Starlette routes: the device face is not in the OpenAPI document, and FastAPI's request
# machinery would cost about as much CPU as the whole handler (issue #3).
routes = [
    Route(path, _message, methods=["POST"])
    for path in (
        "/json/push/sns/message",
        "/json/realms/root/push/sns/message",
        "/json/realms/root/realms/{realm}/push/sns/message",
        "/json/{realm}/push/sns/message",
    )
]
