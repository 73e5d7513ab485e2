"""Strict Base64 variants and JSON helpers (spec forgerock-push.md §2, RFC 7515 §2).

Clients are picky about which variant goes where, and forgers are creative with the ones we
read, so every decoder here refuses anything but the one canonical form.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

_URL_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
# What PostgreSQL text cannot hold (U+0000) and no encoder can write (lone UTF-16 surrogates,
# which JSON's `\ud800` escapes can produce): refused in every string a client sends.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def b64std(data: bytes) -> str:
    """Standard alphabet, padded: the form of challenges, secrets and `response` claims."""
    return base64.b64encode(data).decode("ascii")


def b64std_decode(text: str) -> bytes:
    """Decode standard padded Base64; anything non-canonical raises ValueError."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not standard Base64") from exc
    if b64std(data) != text:
        raise ValueError("not canonical standard Base64")
    return data


def b64url(data: bytes) -> str:
    """URL alphabet without padding: QR parameters and JWS segments."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; refuses padding, '+', '/' and non-canonical trailing bits."""
    if not _URL_ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Python keeps the last duplicate silently; another parser may keep the first.
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _holds_unstorable_text(value: object) -> bool:
    # A loop, not recursion: json.loads accepts nesting deeper than a recursive walk could take.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def strict_json_object(data: bytes | str) -> dict[str, Any]:
    """Parse a UTF-8 JSON object, refusing duplicate names, NaN/Infinity, non-objects and any
    string (names too) that no database can store: U+0000 or a lone UTF-16 surrogate."""
    try:
        if isinstance(data, bytes):
            text = data.decode("utf-8")  # json.loads would also guess UTF-16 and UTF-32
            # Valid UTF-8 holds no surrogates, and JSON strings no raw control characters, so
            # without a `\u` escape there is nothing to look for: the common case costs one scan.
            suspect = "\\u" in text
        else:
            text, suspect = data, True
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("invalid JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("JSON value is not an object")
    if suspect and _holds_unstorable_text(value):
        raise ValueError("a string holds U+0000 or a lone UTF-16 surrogate")
    return value


def compact_json(value: object) -> str:
    """Compact JSON with key order kept: the byte form AM and the SDKs produce."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
