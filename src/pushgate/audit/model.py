"""An audit entry: who did what to which subject, in which realm, when. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AuditEntry:
    realm: str
    event: str
    subject: str
    at_ms: int
    data: Mapping[str, object] = field(default_factory=dict)
