"""SNS platform endpoints at registration and refresh (issue 8: "a platform endpoint is created
at registration and refresh, as AM does"; forgerock-push.md §10).

With SNS configured, the push token pushgate keeps for an `apns`/`gcm` device is the endpoint
ARN made from the app's token (`delivery/model.py` routes such a token to SNS). The device
service calls this before its transaction opens: no network call inside one. SNS being down
or refusing the token does not fail the registration: the app's own token is kept, the device
is served by polling (or by a direct transport of its kind, where one is configured), and its
next refresh tries again.
"""

from __future__ import annotations

import logging

from pushgate.delivery.model import SNS_ENDPOINT
from pushgate.devices.model import redact_token
from pushgate.errors import BadDeviceMessage, BadRequest, Unavailable
from pushgate.protocol import device_messages as dm
from pushgate.transports.sns import Platform, SnsTransport

log = logging.getLogger("pushgate.delivery")
PLATFORMS: dict[str, Platform] = {"apns": "apns", "gcm": "gcm"}


class SnsEndpoints:
    """`DeviceService`'s push endpoint: the token to store for a device's push channel."""

    def __init__(self, sns: SnsTransport) -> None:
        self._sns = sns

    async def __call__(self, communication_type: str, token: str) -> str:
        platform = PLATFORMS.get(communication_type.lower())
        if platform is None:
            return token  # webpush, none: nothing to make
        # An app token never looks like an ARN: a device naming an endpoint would have pushes
        # published to an endpoint of someone else's choosing.
        if SNS_ENDPOINT.fullmatch(token):
            raise BadDeviceMessage(dm.REFUSED, reason="deviceId is an SNS endpoint ARN")
        try:
            arn = await self._sns.register(platform, token)
        except (BadRequest, Unavailable) as exc:
            log.warning(
                "SNS endpoint not made; the device is served by polling until it refreshes",
                extra={
                    "fields": {
                        "communicationType": platform,
                        "token": redact_token(token),
                        "reason": exc.reason,
                    }
                },
            )
            return token
        return token if arn is None else arn
