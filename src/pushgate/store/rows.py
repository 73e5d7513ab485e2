"""Row ↔ model mapping shared by the store adapters. A row is any mapping of column name to
value: an asyncpg Record or a SQLAlchemy row's `_mapping`. Shared secrets are sealed on the
way in and opened on the way out (`sealing.py`), so nothing above the store sees a sealed
value and nothing below it a plain one. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pushgate.accounts.model import ApiKey, Realm, RealmPolicy, User, realm_policy
from pushgate.audit.model import MAX_ACTOR, MAX_REMOTE_IP, AuditEntry, AuditRecord
from pushgate.devices.model import Device, DeviceStatus, PendingRegistration
from pushgate.outbox.model import OutboxMessage, OutboxRow, OutboxState
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.model import Content, Notification, Operation, PushSession, SessionStatus
from pushgate.store.sealing import Sealer

Row = Mapping[Any, Any]


def realm(row: Row) -> Realm:
    settings = row["settings"]
    return Realm(
        row["name"], row["created_ms"], realm_policy(json.loads(settings) if settings else None)
    )


def realm_values(r: Realm) -> dict[str, Any]:
    default = r.policy == RealmPolicy()
    return {
        "name": r.name,
        "created_ms": r.created_ms,
        "settings": None if default else to_json(r.policy.as_json()),
    }


def user(row: Row) -> User:
    return User(
        row["id"],
        row["realm"],
        row["username"],
        row["password_hash"],
        row["created_ms"],
        row["failure_count"],
        row["locked_ms"],
    )


def user_values(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "realm": u.realm,
        "username": u.username,
        "password_hash": u.password_hash,
        "created_ms": u.created_ms,
        "failure_count": u.failure_count,
        "locked_ms": u.locked_ms,
    }


def api_key_values(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "realm": k.realm,
        "key_hash": k.key_hash,
        "created_ms": k.created_ms,
        "revoked_ms": k.revoked_ms,
        "label": k.label,
        "last_used_ms": k.last_used_ms,
    }


def api_key(row: Row) -> ApiKey:
    return ApiKey(
        row["id"],
        row["realm"],
        row["key_hash"],
        row["created_ms"],
        row["revoked_ms"],
        row["label"],
        row["last_used_ms"],
    )


def _registration_context(message_id: str) -> str:
    return f"registrations/{message_id}"


def _device_context(device_id: str) -> str:
    return f"devices/{device_id}"


def registration(row: Row, sealer: Sealer) -> PendingRegistration:
    message_id = row["message_id"]
    return PendingRegistration(
        message_id=message_id,
        realm=row["realm"],
        user_id=row["user_id"],
        device_id=row["device_id"],
        secret=sealer.open(bytes(row["secret"]), _registration_context(message_id)),
        challenge=bytes(row["challenge"]),
        created_ms=row["created_ms"],
        expires_ms=row["expires_ms"],
        completed_ms=row["completed_ms"],
    )


def registration_values(r: PendingRegistration, sealer: Sealer) -> dict[str, Any]:
    return {
        "message_id": r.message_id,
        "realm": r.realm,
        "user_id": r.user_id,
        "device_id": r.device_id,
        "secret": sealer.seal(r.secret, _registration_context(r.message_id)),
        "challenge": r.challenge,
        "created_ms": r.created_ms,
        "expires_ms": r.expires_ms,
        "completed_ms": r.completed_ms,
    }


def device(row: Row, sealer: Sealer) -> Device:
    device_id = row["id"]
    return Device(
        id=device_id,
        realm=row["realm"],
        user_id=row["user_id"],
        mechanism_uid=row["mechanism_uid"],
        secret=sealer.open(bytes(row["secret"]), _device_context(device_id)),
        push_token=row["push_token"],
        device_type=row["device_type"],
        communication_type=row["communication_type"],
        name=row["name"],
        status=DeviceStatus(row["status"]),
        created_ms=row["created_ms"],
        updated_ms=row["updated_ms"],
    )


def device_values(d: Device, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": d.id,
        "realm": d.realm,
        "user_id": d.user_id,
        "mechanism_uid": d.mechanism_uid,
        "secret": sealer.seal(d.secret, _device_context(d.id)),
        "push_token": d.push_token,
        "device_type": d.device_type,
        "communication_type": d.communication_type,
        "name": d.name,
        "status": d.status.value,
        "created_ms": d.created_ms,
        "updated_ms": d.updated_ms,
    }


def session(row: Row) -> PushSession:
    return PushSession(
        id=row["id"],
        realm=row["realm"],
        username=row["username"],
        user_id=row["user_id"],
        status=SessionStatus(row["status"]),
        content=Content(row["title"], row["subtitle"], row["body"], row["payload"]),
        push_type=PushType(row["push_type"]),
        notification_count=row["notification_count"],
        detail=row["detail"],
        created_ms=row["created_ms"],
        expires_ms=row["expires_ms"],
        updated_ms=row["updated_ms"],
        answer_code=row["answer_code"],
        context=json.loads(row["context"]) if row["context"] else None,
        operation=(
            Operation(row["operation_name"], row["operation_data"])
            if row["operation_name"] is not None
            else None
        ),
        deny_reason=row["deny_reason"],
        failure_count=row["failure_count"],
    )


def session_values(s: PushSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "realm": s.realm,
        "username": s.username,
        "user_id": s.user_id,
        "status": s.status.value,
        "title": s.content.title,
        "subtitle": s.content.subtitle,
        "body": s.content.body,
        "payload": s.content.payload,
        "push_type": s.push_type.value,
        "notification_count": s.notification_count,
        "detail": s.detail,
        "created_ms": s.created_ms,
        "expires_ms": s.expires_ms,
        "updated_ms": s.updated_ms,
        "answer_code": s.answer_code,
        "context": to_json(s.context) if s.context is not None else None,
        "operation_name": s.operation.name if s.operation else None,
        "operation_data": s.operation.data if s.operation else None,
        "deny_reason": s.deny_reason,
        "failure_count": s.failure_count,
    }


def notification(row: Row) -> Notification:
    numbers = row["numbers"]
    return Notification(
        message_id=row["message_id"],
        session_id=row["session_id"],
        device_id=row["device_id"],
        challenge=bytes(row["challenge"]),
        numbers=tuple(int(n) for n in numbers.split(",")) if numbers else None,
        answer=row["answer"],
        created_ms=row["created_ms"],
        answered_ms=row["answered_ms"],
    )


def notification_values(n: Notification) -> dict[str, Any]:
    return {
        "message_id": n.message_id,
        "session_id": n.session_id,
        "device_id": n.device_id,
        "challenge": n.challenge,
        "numbers": ",".join(map(str, n.numbers)) if n.numbers else None,
        "answer": n.answer,
        "created_ms": n.created_ms,
        "answered_ms": n.answered_ms,
    }


def to_json(data: Mapping[str, object]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def audit_values(entry: AuditEntry) -> dict[str, Any]:
    """Without `id`: the database numbers audit rows. An over-long actor or address (an IPv6
    zone, a proxy's odd header) is cut to its column rather than failing the event."""
    return {
        "realm": entry.realm,
        "at_ms": entry.at_ms,
        "event": entry.event,
        "subject": entry.subject,
        "data": to_json(entry.data),
        "actor": entry.actor[:MAX_ACTOR] if entry.actor else None,
        "remote_ip": entry.remote_ip[:MAX_REMOTE_IP] if entry.remote_ip else None,
    }


def audit_record(row: Row) -> AuditRecord:
    return AuditRecord(
        row["id"],
        AuditEntry(
            realm=row["realm"],
            event=row["event"],
            subject=row["subject"],
            at_ms=row["at_ms"],
            data=json.loads(row["data"]),
            actor=row["actor"],
            remote_ip=row["remote_ip"],
        ),
    )


def outbox_values(m: OutboxMessage, now_ms: int) -> dict[str, Any]:
    """A new pending row, without `id`: the database numbers outbox rows. A leased one counts
    its first attempt: the handoff that makes it is its claim."""
    lease = m.lease
    return {
        "kind": m.kind,
        "realm": m.realm,
        "idempotency_key": m.key,
        "payload": to_json(m.payload),
        "state": OutboxState.PENDING.value,
        "attempts": 0 if lease is None else 1,
        "next_attempt_ms": now_ms if m.not_before_ms is None else m.not_before_ms,
        "lease_owner": None if lease is None else lease.owner,
        "lease_until_ms": None if lease is None else lease.until_ms,
        "last_error": None,
        "created_ms": now_ms,
        "updated_ms": now_ms,
    }


def outbox_row(row: Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        kind=row["kind"],
        realm=row["realm"],
        key=row["idempotency_key"],
        payload=json.loads(row["payload"]),
        state=OutboxState(row["state"]),
        attempts=row["attempts"],
        next_attempt_ms=row["next_attempt_ms"],
        lease_owner=row["lease_owner"],
        lease_until_ms=row["lease_until_ms"],
        last_error=row["last_error"],
        created_ms=row["created_ms"],
        updated_ms=row["updated_ms"],
    )
