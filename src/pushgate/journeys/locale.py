"""Localized node messages: a map of locale → text with a default, picked for the locales a
request prefers (seed 002, Push Sender "User Message"). Pure.

AM takes the locales Java knows; here a locale is a BCP 47-style tag (`en`, `en-gb`,
`zh-Hant-TW`, `_` accepted for `-`), compared case-insensitively. Anything else is the seed's
configuration error `Invalid locale provided`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

INVALID_LOCALE = "Invalid locale provided"
_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8}){0,3}")
MAX_MESSAGE_CHARS = 1024
SERVER_LOCALE = "en"  # what a message falls back to before its built-in default


class LocaleError(ValueError):
    pass


def normalize_locale(tag: str) -> str:
    """`en_GB` → `en-gb`; LocaleError with the seed's message for what is not a locale."""
    if not isinstance(tag, str):
        raise LocaleError(INVALID_LOCALE)
    normal = tag.strip().replace("_", "-").lower()
    if not _TAG.fullmatch(normal):
        raise LocaleError(f"{INVALID_LOCALE}: {tag!r}")
    return normal


def preferred_locales(accept_language: str | None, limit: int = 8) -> tuple[str, ...]:
    """The locales of an Accept-Language header, best first (q=0 and junk dropped)."""
    if not accept_language:
        return ()
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        try:
            normal = normalize_locale(tag)
        except LocaleError:
            continue
        if quality > 0:
            ranked.append((-quality, position, normal))
    return tuple(tag for _, _, tag in sorted(ranked))[:limit]


@dataclass(frozen=True, slots=True)
class Localized:
    default: str
    messages: Mapping[str, str] = field(default_factory=dict)  # normalized locale → text

    @classmethod
    def parse(cls, value: object, default: str) -> Localized:
        """From a node's configuration: a map of locale → text (an empty one keeps the
        default); ValueError with a clear message otherwise."""
        if value is None:
            return cls(default)
        if isinstance(value, str):
            return cls(value or default)
        if not isinstance(value, Mapping):
            raise ValueError("must be a map of locale to message")
        messages: dict[str, str] = {}
        for tag, text in value.items():
            locale = normalize_locale(tag)
            if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
                raise ValueError(f"the {tag!r} message must be text of at most 1024 characters")
            messages[locale] = text
        return cls(default, messages)

    def pick(self, locales: Iterable[str]) -> str:
        """The message for the first locale that has one, exactly or by its language
        (`en-gb` falls back to `en`), then the server's locale's, else the default."""
        wanted = [*locales, SERVER_LOCALE]
        for tag in wanted:
            if tag in self.messages:
                return self.messages[tag]
            language = tag.split("-", 1)[0]
            if language in self.messages:
                return self.messages[language]
        return self.default

    def as_json(self) -> dict[str, str]:
        return dict(self.messages)
