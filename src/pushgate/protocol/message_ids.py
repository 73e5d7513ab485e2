"""Message ids `REGISTER:<uuid4><ms>` and `AUTHENTICATE:<uuid4><ms>` (spec §3.2, §11.3).

The kind comes from the prefix, as in AM: the URL's `_action` does not decide it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum


class MessageKind(StrEnum):
    REGISTER = "REGISTER"
    AUTHENTICATE = "AUTHENTICATE"


MAX_MESSAGE_ID_CHARS = 128
_PATTERN = re.compile(
    r"(REGISTER|AUTHENTICATE):"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})([0-9]{1,15})"
)


@dataclass(frozen=True, slots=True)
class MessageId:
    kind: MessageKind
    uuid: str
    epoch_ms: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.uuid}{self.epoch_ms}"


def new_message_id(kind: MessageKind, now_ms: int) -> str:
    return str(MessageId(kind, str(uuid.uuid4()), now_ms))


def parse_message_id(text: object) -> MessageId:
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_ID_CHARS:
        raise ValueError("messageId is not a short string")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError("messageId is not KIND:<uuid><epochMillis>")
    return MessageId(MessageKind(match[1]), match[2], int(match[3]))
