"""The message inbox (issue 8; PowerAuth's inbox API, peers.md §2.3): messages a relying party
posts to a user, listed, read and counted on the user's devices. Pure.

A message belongs to the user, not to one device: every device of the user sees the same
inbox and the same read state, as in PowerAuth. HTML bodies are cleaned with nh3 (the
`ammonia` sanitiser) to a small allow-list before they are stored, so a device can render
what it gets without trusting the relying party's markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import nh3

from pushgate.protocol.inbox_messages import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE

MAX_SUBJECT = 255
MAX_SUMMARY = 1024
MAX_BODY = 32 * 1024  # characters, as posted (a cleaned body is never longer)

# What a message body may keep: text structure, emphasis, lists, tables and links. No images
# (they would fetch from anywhere on open), no forms, no styles, no scripts.
ALLOWED_TAGS = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i",
        "li", "ol", "p", "pre", "small", "span", "strong", "sub", "sup", "table", "tbody",
        "td", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan"}, "th": {"colspan"}}
URL_SCHEMES = frozenset({"https", "mailto", "tel"})


class MessageType(StrEnum):
    TEXT = "text"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class Draft:
    """What a relying party posts; `new_message` checks and cleans it."""

    subject: str
    summary: str
    body: str
    type: MessageType = MessageType.TEXT


@dataclass(frozen=True, slots=True)
class InboxMessage:
    id: str
    realm: str
    user_id: str
    type: MessageType
    subject: str
    summary: str
    body: str
    created_ms: int
    read_ms: int | None = None

    @property
    def read(self) -> bool:
        return self.read_ms is not None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a user's inbox, newest first: PowerAuth's `page` (from 0) and `size`."""

    number: int = 0
    size: int = DEFAULT_PAGE_SIZE
    only_unread: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.number <= MAX_PAGE:
            raise ValueError(f"page is a whole number from 0 to {MAX_PAGE}")
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise ValueError(f"size is a whole number from 1 to {MAX_PAGE_SIZE}")

    @property
    def offset(self) -> int:
        return self.number * self.size


def sanitise_html(body: str) -> str:
    return nh3.clean(
        body,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def _text(name: str, value: str, limit: int, *, required: bool) -> str:
    if "\x00" in value:  # no text needs it, and PostgreSQL cannot store it
        raise ValueError(f"{name} holds U+0000")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    if required and not value:
        raise ValueError(f"{name} is empty")
    return value


def new_message(
    message_id: str, realm: str, user_id: str, draft: Draft, now_ms: int
) -> InboxMessage:
    """The message to store; ValueError says which field is wrong."""
    subject = _text("subject", draft.subject, MAX_SUBJECT, required=True)
    summary = _text("summary", draft.summary, MAX_SUMMARY, required=False)
    body = _text("body", draft.body, MAX_BODY, required=True)
    if draft.type is MessageType.HTML:
        body = sanitise_html(body)
        if not body:
            raise ValueError("body is empty once cleaned of what HTML messages may not hold")
    return InboxMessage(
        message_id, realm, user_id, draft.type, subject, summary, body, now_ms, read_ms=None
    )


def list_item(message: InboxMessage) -> dict[str, object]:
    """A message in a device's list (PowerAuth's list items: no body)."""
    return {
        "id": message.id,
        "type": message.type.value,
        "subject": message.subject,
        "summary": message.summary,
        "read": message.read,
        "timestampCreated": message.created_ms,
    }


def detail(message: InboxMessage) -> dict[str, object]:
    return {**list_item(message), "body": message.body}
