"""What the audit trail needs from persistence (DESIGN.md layer 2)."""

from __future__ import annotations

from typing import Protocol

from pushgate.audit.model import AuditEntry


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> None: ...
