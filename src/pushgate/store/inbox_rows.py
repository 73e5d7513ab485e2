"""Inbox rows ↔ `InboxMessage`, shared by both adapters (`store/sqlite/inbox.py`,
`store/postgres/inbox.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pushgate.inbox.model import InboxMessage, MessageType


def message_values(message: InboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "realm": message.realm,
        "user_id": message.user_id,
        "type": message.type.value,
        "subject": message.subject,
        "summary": message.summary,
        "body": message.body,
        "created_ms": message.created_ms,
        "read_ms": message.read_ms,
    }


def message(row: Mapping[str, Any]) -> InboxMessage:
    return InboxMessage(
        id=row["id"],
        realm=row["realm"],
        user_id=row["user_id"],
        type=MessageType(row["type"]),
        subject=row["subject"],
        summary=row["summary"],
        body=row["body"],
        created_ms=row["created_ms"],
        read_ms=row["read_ms"],
    )
