"""Starting a device registration: secret, challenge, message id and QR URI (spec §3, §11). Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pushgate.accounts.model import User
from pushgate.devices.model import PendingRegistration
from pushgate.protocol import qr
from pushgate.protocol.challenge import new_challenge, new_secret
from pushgate.protocol.message_ids import MessageKind, new_message_id


@dataclass(frozen=True, slots=True)
class QrSettings:
    public_base: str
    issuer: str
    lb_cookie: str


def new_registration(user: User, now_ms: int, ttl_seconds: int) -> PendingRegistration:
    return PendingRegistration(
        message_id=new_message_id(MessageKind.REGISTER, now_ms),
        realm=user.realm,
        user_id=user.id,
        device_id=str(uuid.uuid4()),
        secret=new_secret(),
        challenge=new_challenge(),
        created_ms=now_ms,
        expires_ms=now_ms + ttl_seconds * 1000,
    )


def registration_uri(registration: PendingRegistration, user: User, config: QrSettings) -> str:
    endpoint = qr.push_endpoint(config.public_base, registration.realm)
    return qr.build(
        qr.RegistrationUri(
            issuer=config.issuer,
            account=user.username,
            secret=registration.secret,
            challenge=registration.challenge,
            message_id=registration.message_id,
            register_url=endpoint + "?_action=register",
            authenticate_url=endpoint + "?_action=authenticate",
            lb_cookie=config.lb_cookie,
            user_id=user.username,  # AM 8 puts the username here; devices send it on refresh
            device_profile_id=registration.device_id,
        )
    )
