"""The JSON shapes of realms, users, devices and keys, the same on the admin API and the CLI's
`--json` (docs/ADMIN.md). Never a secret, a key hash or a whole push token. Pure."""

from __future__ import annotations

from pushgate.accounts.model import ApiKey, Realm, RealmContents, User, UserFacts
from pushgate.admin.model import AdminKey, Scope
from pushgate.devices.model import Device, redact_token
from pushgate.sessions.wire import timestamp
from pushgate.webhooks.model import DeliveryView, Webhook


def _time(ms: int | None) -> str | None:
    return timestamp(ms) if ms is not None else None


def realm_json(realm: Realm, contents: RealmContents | None = None) -> dict[str, object]:
    shown: dict[str, object] = {
        "realm": realm.name,
        "createdAt": timestamp(realm.created_ms),
        "settings": realm.policy.as_json(),
    }
    if contents is not None:
        shown["contents"] = {
            "users": contents.users,
            "apiKeys": contents.api_keys,
            "webhooks": contents.webhooks,
            "journeys": contents.journeys,
        }
    return shown


def user_json(user: User, facts: UserFacts | None = None) -> dict[str, object]:
    shown: dict[str, object] = {
        "id": user.id,
        "realm": user.realm,
        "username": user.username,
        "createdAt": timestamp(user.created_ms),
        "hasPassword": user.password_hash is not None,
        "locked": user.locked,
        "lockedAt": _time(user.locked_ms),
        "failureCount": user.failure_count,
    }
    if facts is not None:
        shown["devices"] = facts.devices
        shown["pendingSessions"] = facts.pending_sessions
        shown["recoveryCodes"] = facts.recovery_codes
        shown["optOuts"] = list(facts.opt_outs)
    return shown


def device_json(device: Device) -> dict[str, object]:
    return {
        "id": device.id,
        "mechanismUid": device.mechanism_uid,
        "name": device.name,
        "status": device.status.value,
        "deviceType": device.device_type,
        "communicationType": device.communication_type,
        "pushToken": redact_token(device.push_token) if device.push_token else None,
        "createdAt": timestamp(device.created_ms),
        "updatedAt": timestamp(device.updated_ms),
    }


def api_key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "realm": key.realm,
        "label": key.label,
        "createdAt": timestamp(key.created_ms),
        "lastUsedAt": _time(key.last_used_ms),
        "revokedAt": _time(key.revoked_ms),
    }


def admin_key_json(key: AdminKey) -> dict[str, object]:
    return {
        "id": key.id,
        "label": key.label,
        "scopes": [s.value for s in Scope if s in key.scopes],
        "createdAt": timestamp(key.created_ms),
        "lastUsedAt": _time(key.last_used_ms),
        "revokedAt": _time(key.revoked_ms),
    }


def webhook_json(webhook: Webhook) -> dict[str, object]:
    """A subscription, never its secret."""
    return {
        "id": webhook.id,
        "realm": webhook.realm,
        "url": webhook.url,
        "events": sorted(webhook.events) if webhook.events is not None else None,
        "createdAt": timestamp(webhook.created_ms),
    }


def delivery_json(view: DeliveryView) -> dict[str, object]:
    return {
        "id": view.row_id,
        "webhookId": view.message_id,
        "webhook": view.webhook_id,
        "realm": view.realm,
        "type": view.type,
        "url": view.url,
        "state": view.state,
        "attempts": view.attempts,
        "lastError": view.last_error,
        "nextAttemptAt": _time(view.next_attempt_ms),
    }
