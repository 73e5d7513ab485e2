"""Row ↔ model mapping of admin keys, shared by both store adapters. Pure."""

from __future__ import annotations

from typing import Any

from pushgate.admin.model import AdminKey, Scope, scopes_text
from pushgate.store.rows import Row


def admin_key(row: Row) -> AdminKey:
    return AdminKey(
        id=row["id"],
        key_hash=row["key_hash"],
        # A scope a later version dropped is ignored, not an error for the whole key.
        scopes=frozenset(Scope(s) for s in row["scopes"].split() if s in _KNOWN),
        created_ms=row["created_ms"],
        label=row["label"],
        revoked_ms=row["revoked_ms"],
        last_used_ms=row["last_used_ms"],
    )


def admin_key_values(k: AdminKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "key_hash": k.key_hash,
        "scopes": scopes_text(k.scopes),
        "label": k.label,
        "created_ms": k.created_ms,
        "revoked_ms": k.revoked_ms,
        "last_used_ms": k.last_used_ms,
    }


_KNOWN = frozenset(s.value for s in Scope)
