"""What journeys keep: a realm's imported trees (DESIGN.md "Other entities"). Pure."""

from __future__ import annotations

from dataclasses import dataclass

OPT_OUT_METHODS = ("push",)


@dataclass(frozen=True, slots=True)
class StoredTree:
    realm: str
    name: str
    definition: str  # the tree's JSON, as imported (validated by `tree.load_tree`)
    created_ms: int
    updated_ms: int
