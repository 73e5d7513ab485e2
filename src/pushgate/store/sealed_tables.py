"""The tables that hold sealed values, for the key rotation's adapters: the primary key of
each and the context its values are sealed with (the same as `rows.py` and `webhook_rows.py`
use, checked by tests/keys: a value re-sealed under another context would not open)."""

from __future__ import annotations

from collections.abc import Mapping

# table -> (primary key column, context prefix of `sealer.seal(secret, prefix + key)`)
SEALED: Mapping[str, tuple[str, str]] = {
    "devices": ("id", "devices/"),
    "registrations": ("message_id", "registrations/"),
    "webhooks": ("id", "webhooks/"),
}
