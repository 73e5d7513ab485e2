"""The simulated device's message inbox (issue 8; PowerAuth's inbox API): the signed
`inbox_list`, `inbox_detail`, `inbox_read`, `inbox_read_all` and `inbox_count` actions on the
push endpoint, through a `DeviceClient` (its URLs, cookie and error handling)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.protocol import inbox_messages as rq
from pushgate.protocol import jwt
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Mechanism, SimulatorError, action_url


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: str
    type: str
    subject: str
    summary: str
    read: bool
    created_ms: int
    body: str | None = None  # in a detail only


def inbox_body(
    mechanism: Mechanism, action: str, now_ms: int, **arguments: object
) -> dict[str, str]:
    """`{"mechanismUid", "jwt"}` for one inbox action, its arguments signed in the JWT."""
    claims = rq.inbox_claims(mechanism.mechanism_uid, action, now_ms, **arguments)
    return {"mechanismUid": mechanism.mechanism_uid, "jwt": jwt.sign(claims, mechanism.secret)}


def _item(data: object) -> InboxItem:
    if not isinstance(data, dict):
        raise SimulatorError("inbox answer is not an object", status=200, body=json.dumps(data))
    try:
        body = data.get("body")
        return InboxItem(
            id=str(data["id"]),
            type=str(data["type"]),
            subject=str(data["subject"]),
            summary=str(data["summary"]),
            read=bool(data["read"]),
            created_ms=int(data["timestampCreated"]),
            body=body if isinstance(body, str) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SimulatorError(
            f"inbox message lacks {exc}", status=200, body=json.dumps(data)
        ) from None


class DeviceInbox:
    """One mechanism's inbox, spoken to through `client`."""

    def __init__(self, client: DeviceClient, mechanism: Mechanism) -> None:
        self._client = client
        self._mechanism = mechanism

    async def _call(self, action: str, **arguments: object) -> Mapping[str, Any]:
        mechanism = self._mechanism
        now_ms = self._client._clock.now_ms()  # the client's own clock (a fake one in tests)
        body = inbox_body(mechanism, action, now_ms, **arguments)
        url = action_url(mechanism.register_url, action)
        # The client's own POST: the LB cookie, the size cap and its SimulatorErrors.
        data = await self._client._post(url, body, mechanism.lb_cookie)
        if not isinstance(data, dict):
            raise SimulatorError("inbox answer is not an object", status=200, body=json.dumps(data))
        return data

    async def count(self) -> int:
        data = await self._call(rq.COUNT)
        count = data.get("countUnread")
        if not isinstance(count, int):
            raise SimulatorError("no countUnread in the answer", status=200, body=json.dumps(data))
        return count

    async def list(
        self, *, page: int = 0, size: int = 50, only_unread: bool = False
    ) -> list[InboxItem]:
        data = await self._call(rq.LIST, page=page, size=size, onlyUnread=only_unread)
        items = data.get("messages")
        if not isinstance(items, list):
            raise SimulatorError(
                "no messages list in the answer", status=200, body=json.dumps(data)
            )
        return [_item(item) for item in items]

    async def detail(self, message_id: str) -> InboxItem:
        return _item(await self._call(rq.DETAIL, id=message_id))

    async def read(self, message_id: str) -> None:
        await self._call(rq.READ, id=message_id)

    async def read_all(self) -> None:
        await self._call(rq.READ_ALL)
