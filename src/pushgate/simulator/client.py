"""The simulated device on the wire: POSTs to the push endpoint like the Android SDK (spec §4).

URLs come from the QR code's `r`/`a`, so the same client talks to AM, to pushgate or to a
loopback server in a test. Success is exactly HTTP 200 `{}` (legacy Android accepts nothing
else); everything else raises SimulatorError with the status and body.
"""

from __future__ import annotations

import http.cookiejar
import json
from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import Self

import httpx

from pushgate.clock import Clock, SystemClock
from pushgate.protocol import qr
from pushgate.protocol.encoding import compact_json
from pushgate.simulator.device import (
    Mechanism,
    Notification,
    SimulatedDevice,
    SimulatorError,
    answer_body,
    decode_notification,
    mechanism_from_uri,
    new_mechanism_uid,
    poll_body,
    refresh_body,
    registration_body,
)

# Android's headers; the LB cookie goes in `Cookie` (legacy iOS would use `Set-Cookie`).
HEADERS = {
    "Content-Type": "application/json",
    "Accept-API-Version": "resource=1.0, protocol=1.0",
}
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_PENDING = 100


def _no_cookie_jar() -> http.cookiejar.CookieJar:
    # OkHttp keeps no cookies by default, and a shared client must not leak one device's
    # cookies into another's requests: the only cookie sent is the QR's LB cookie.
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class DeviceClient:
    """One simulated phone talking to its servers. `device` is replaced after every success.

    Pass `http` to share one `httpx.AsyncClient` (and its keep-alive pool) between many
    simulated devices; it is then not closed by `aclose`. Or pass `transport` for tests.
    """

    def __init__(
        self,
        device: SimulatedDevice,
        *,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        if http is not None and transport is not None:
            raise ValueError("pass either http or transport, not both")
        self.device = device
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._owns_http = http is None
        self._http = (
            http
            if http is not None
            else httpx.AsyncClient(transport=transport, timeout=timeout, cookies=_no_cookie_jar())
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def register(self, uri_text: str, *, mechanism_uid: str | None = None) -> Mechanism:
        """Scan a `pushauth://` QR code and register with its `r` URL."""
        try:
            uri = qr.parse(uri_text.strip())
        except ValueError as exc:
            raise SimulatorError(f"not a registration URI: {exc}") from exc
        uid = mechanism_uid if mechanism_uid is not None else new_mechanism_uid()
        body = registration_body(uri, uid, self.device)
        await self._expect_empty(uri.register_url, body, uri.lb_cookie)
        mechanism = mechanism_from_uri(uri, uid)
        self.device = self.device.with_mechanism(mechanism)
        return mechanism

    async def pending(self, mechanism: Mechanism) -> list[Notification]:
        """Fetch the pushes the server holds for `mechanism`, verified as the app would.

        A push whose JWT does not verify with the mechanism's secret, or names another
        mechanism in `u`, is dropped silently, like the app drops it.
        """
        body = poll_body(mechanism, self._clock.now_ms())
        data = await self._post(mechanism.pending_url, body, mechanism.lb_cookie)
        items = data.get("notifications") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise SimulatorError(
                "pending answer has no notifications list", status=200, body=json.dumps(data)
            )
        received_ms = self._clock.now_ms()
        decoded: list[Notification] = []
        for item in items[:MAX_PENDING]:
            if not isinstance(item, dict):
                continue
            message_id, token = item.get("messageId"), item.get("message")
            if not isinstance(message_id, str) or not message_id or not isinstance(token, str):
                continue
            try:
                decoded.append(decode_notification(mechanism, message_id, token, received_ms))
            except SimulatorError:
                continue
        self.device = self.device.with_notifications(decoded)
        # The stored copy wins for a messageId the device already knows.
        return [self.device.notification(n.message_id) or n for n in decoded]

    def receive(self, message_id: str, push_jwt: str) -> Notification:
        """Take a push delivered some other way (an FCM loopback, a test hook)."""
        for mechanism in self.device.mechanisms:
            try:
                notification = decode_notification(
                    mechanism, message_id, push_jwt, self._clock.now_ms()
                )
            except SimulatorError:
                continue
            self.device = self.device.with_notifications([notification])
            return self.device.notification(message_id) or notification
        raise SimulatorError("push matches no mechanism on this device")

    async def approve(
        self,
        notification: Notification,
        *,
        number: int | None = None,
        detail: str | None = None,
        code: str | None = None,
        operation_data: str | None = None,
    ) -> Notification:
        """Approve: `number` picked on a challenge, `code` typed on a code push. A push with an
        operation is bound to its data (`operationHash`) unless `operation_data` says the
        device showed something else."""
        mechanism = self.device.mechanism(notification.mechanism_uid)
        body = answer_body(
            mechanism,
            notification.message_id,
            notification.jwt,
            True,
            number,
            detail,
            code=code,
            operation_data=operation_data,
        )
        return await self._answer(mechanism, notification, body)

    async def deny(
        self,
        notification: Notification,
        *,
        number: int | None = None,
        detail: str | None = None,
        deny_reason: str | None = None,
    ) -> Notification:
        """Deny, saying why if `deny_reason` is given (UNEXPECTED_OPERATION: "this wasn't me")."""
        mechanism = self.device.mechanism(notification.mechanism_uid)
        body = answer_body(
            mechanism,
            notification.message_id,
            notification.jwt,
            False,
            number,
            detail,
            deny_reason=deny_reason,
        )
        return await self._answer(mechanism, notification, body)

    async def refresh(
        self,
        mechanism: Mechanism,
        *,
        device_id: str | None = None,
        device_name: str | None = None,
    ) -> None:
        """Tell the server about a new push token and/or device name (spec §4.4)."""
        updated = replace(
            self.device,
            device_id=device_id if device_id is not None else self.device.device_id,
            device_name=device_name if device_name is not None else self.device.device_name,
        )
        await self._expect_empty(
            mechanism.refresh_url, refresh_body(mechanism, updated), mechanism.lb_cookie
        )
        self.device = replace(
            self.device, device_id=updated.device_id, device_name=updated.device_name
        )

    async def _answer(
        self, mechanism: Mechanism, notification: Notification, body: Mapping[str, str]
    ) -> Notification:
        await self._expect_empty(mechanism.authenticate_url, body, mechanism.lb_cookie)
        self.device = self.device.with_answered(notification.message_id)
        return replace(notification, answered=True)

    async def _expect_empty(self, url: str, body: Mapping[str, str], lb_cookie: str) -> None:
        data = await self._post(url, body, lb_cookie)
        if data != {}:
            raise SimulatorError(
                "server answered 200 with a body other than {}", status=200, body=json.dumps(data)
            )

    async def _post(self, url: str, body: Mapping[str, str], lb_cookie: str) -> object:
        headers = dict(HEADERS)
        if lb_cookie:
            headers["Cookie"] = lb_cookie
        content = compact_json(dict(body)).encode("utf-8")
        try:
            async with self._http.stream("POST", url, content=content, headers=headers) as reply:
                raw = bytearray()
                async for chunk in reply.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise SimulatorError(
                            f"answer from {url} is larger than {MAX_RESPONSE_BYTES} bytes",
                            status=reply.status_code,
                        )
                status = reply.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SimulatorError(f"POST {url} failed: {exc!r}") from exc
        text = raw.decode("utf-8", "replace")
        if status != 200:
            raise SimulatorError(f"POST {url} was refused", status=status, body=text)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise SimulatorError(
                f"POST {url} answered 200 without JSON", status=status, body=text
            ) from exc
