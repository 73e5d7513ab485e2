"""What a rotation reports: the sealed values of each table by the key that sealed them. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Every table holding sealed values, and what names a row (the sealed value's context).
SEALED_TABLES = ("devices", "registrations", "webhooks")
LEGACY = "legacy"  # sealed before key ids: opened by trying each key


def key_label(key_id: int | None) -> str:
    return LEGACY if key_id is None else f"{key_id:02x}"


@dataclass(frozen=True, slots=True)
class Census:
    """Sealed values per table, per key id (None: the format from before key ids)."""

    tables: Mapping[str, Mapping[int | None, int]] = field(default_factory=dict)

    def total(self) -> int:
        return sum(sum(by_key.values()) for by_key in self.tables.values())

    def under(self, key_id: int) -> int:
        return sum(by_key.get(key_id, 0) for by_key in self.tables.values())

    def as_json(self, primary: int) -> dict[str, object]:
        total = self.total()
        current = self.under(primary)
        return {
            "tables": {
                table: {key_label(k): n for k, n in sorted(by_key.items(), key=_order)}
                for table, by_key in self.tables.items()
            },
            "sealed": total,
            "underPrimary": current,
            "progress": 1.0 if total == 0 else round(current / total, 4),
        }


def _order(item: tuple[int | None, int]) -> int:
    return -1 if item[0] is None else item[0]


@dataclass(frozen=True, slots=True)
class ResealPage:
    """One batch of one table: how far it got (the last primary key read), rows read, rows
    re-sealed."""

    last: str | None
    scanned: int
    resealed: int
