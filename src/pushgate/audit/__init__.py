"""The audit trail: one append-only record per security event (DESIGN.md, security.md §8)."""
