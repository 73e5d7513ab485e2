"""A journey step as a page (issue 9, "Login page"): the callbacks a step shows, turned into
what the templates draw, and a submitted form turned back into AM's callbacks JSON. Pure.

One engine, two faces: the REST face sends `Shown.to_json()`, the pages draw the same
callbacks as an HTML form whose fields are named `IDToken<n>`, as AM's own XUI names them,
and submit them back through the same `JourneyService.step`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pushgate.journeys.callbacks import Callback, InputKind, Json, MessageType, Shown

# The SDKs' own pattern for the codes in Recovery Code Display's script (recovery_codes.py).
_CODES = re.compile(r'\s[\w\W]"([\w]*)\\')
_DEVICE_NAME = re.compile(r"<em>(.*?)</em>")
_LINK = re.compile(r"https://[^\s()<>\"']+")
UNSELECTED = 100  # AM's "no button pressed" for a ConfirmationCallback (Push Wait's exit)
REGISTRATION_URI = "mfaDeviceRegistration"
CHALLENGE_NUMBER = "pushChallengeNumber"


class Kind(StrEnum):
    """What a step is, for its heading, its layout and whether it moves on by itself."""

    CREDENTIALS = "credentials"
    WAITING = "waiting"  # a push was sent: pick the number, wait for the phone
    REGISTER = "register"  # the QR code to scan
    RECOVERY_CODES = "recovery-codes"  # the codes to save, shown once
    RECOVERY_ENTRY = "recovery-entry"  # "enter one of your recovery codes"
    CHOICE = "choice"  # buttons only (MFA Registration Options, Get the app)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a message: text, or a link when `href` is set."""

    text: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    segments: tuple[Segment, ...]
    level: str = "info"  # info, warning or error


@dataclass(frozen=True, slots=True)
class Input:
    name: str  # IDToken<n>
    label: str
    secret: bool = False
    autocomplete: str = "off"


@dataclass(frozen=True, slots=True)
class Buttons:
    name: str
    labels: tuple[str, ...]
    default: int = 0


@dataclass(frozen=True, slots=True)
class Hidden:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Screen:
    kind: Kind
    title: str
    messages: tuple[Message, ...] = ()
    inputs: tuple[Input, ...] = ()
    buttons: tuple[Buttons, ...] = ()
    hidden: tuple[Hidden, ...] = ()
    number: str | None = None  # the number to pick on the phone
    registration_uri: str | None = None
    codes: tuple[str, ...] = ()
    device_name: str | None = None
    poll_ms: int | None = None  # moves on by itself: the step is submitted again after this
    wants_profile: bool = False  # a DeviceProfileCallback the face answers for the browser


def message(text: str, level: str = "info") -> Message:
    """`text` with its https links as links (Get Authenticator App names its stores so)."""
    segments: list[Segment] = []
    at = 0
    for found in _LINK.finditer(text):
        if found.start() > at:
            segments.append(Segment(text[at : found.start()]))
        segments.append(Segment(found.group(), found.group()))
        at = found.end()
    if at < len(text):
        segments.append(Segment(text[at:]))
    return Message(tuple(segments), level)


_LEVELS = {
    str(int(MessageType.WARNING)): "warning",
    str(int(MessageType.ERROR)): "error",
}


def _title(kind: Kind, header: str | None) -> str:
    if header:
        return header
    return {
        Kind.CREDENTIALS: "Sign in",
        Kind.WAITING: "Check your phone",
        Kind.REGISTER: "Set up your phone",
        Kind.RECOVERY_CODES: "Save your recovery codes",
        Kind.RECOVERY_ENTRY: "Use a recovery code",
        Kind.CHOICE: "Two-step sign-in",
        Kind.OTHER: "Sign in",
    }[kind]


def _kind(callbacks: Sequence[Callback]) -> Kind:
    types = {c.type for c in callbacks}
    hidden = {str(c.out("id")) for c in callbacks if c.type == "HiddenValueCallback"}
    if REGISTRATION_URI in hidden:
        return Kind.REGISTER
    if "PollingWaitCallback" in types:
        return Kind.WAITING
    if "PasswordCallback" in types:
        return Kind.CREDENTIALS
    if any(c.type == "NameCallback" and c.out("prompt") == "Recovery Code" for c in callbacks):
        return Kind.RECOVERY_ENTRY
    if "NameCallback" in types:
        return Kind.CREDENTIALS
    if any(_codes(c) for c in callbacks):
        return Kind.RECOVERY_CODES
    if types and types <= {"TextOutputCallback", "ConfirmationCallback", "ChoiceCallback"}:
        return Kind.CHOICE
    return Kind.OTHER


def _is_script(callback: Callback) -> bool:
    return callback.type == "TextOutputCallback" and callback.out("messageType") == str(
        int(MessageType.SCRIPT)
    )


def _codes(callback: Callback) -> tuple[str, ...]:
    if not _is_script(callback):
        return ()
    return tuple(code for code in _CODES.findall(str(callback.out("message"))) if code)


def screen(shown: Shown) -> Screen:
    """How the page draws `shown`; the n-th callback's input is the field `IDToken<n>`."""
    callbacks = shown.callbacks
    kind = _kind(callbacks)
    messages: list[Message] = []
    if shown.description:
        messages.append(message(shown.description))
    inputs: list[Input] = []
    buttons: list[Buttons] = []
    hidden: list[Hidden] = []
    number = uri = device_name = None
    codes: tuple[str, ...] = ()
    poll_ms = None
    wants_profile = False
    for position, callback in enumerate(callbacks, start=1):
        name = f"IDToken{position}"
        match callback.type:
            case "NameCallback":
                label = str(callback.out("prompt"))
                complete = "one-time-code" if kind is Kind.RECOVERY_ENTRY else "username"
                inputs.append(Input(name, label, autocomplete=complete))
            case "PasswordCallback":
                inputs.append(Input(name, str(callback.out("prompt")), True, "current-password"))
            case "HiddenValueCallback":
                value = str(callback.out("value"))
                if callback.out("id") == CHALLENGE_NUMBER:
                    number = value
                elif callback.out("id") == REGISTRATION_URI:
                    uri = value
                hidden.append(Hidden(name, str(callback.initial)))
            case "ConfirmationCallback" | "ChoiceCallback":
                labels = callback.out(
                    "options" if callback.type == "ConfirmationCallback" else "choices"
                )
                default = callback.out(
                    "defaultOption" if callback.type == "ConfirmationCallback" else "defaultChoice"
                )
                assert isinstance(labels, list)
                buttons.append(Buttons(name, tuple(str(x) for x in labels), _int(default)))
            case "PollingWaitCallback":
                poll_ms = _int(callback.out("waitTime"))
                if kind is Kind.WAITING:
                    messages.append(message(str(callback.out("message"))))
            case "DeviceProfileCallback":
                wants_profile = True
            case "TextOutputCallback" if _is_script(callback):
                found = _codes(callback)
                if found:
                    codes = found
                    named = _DEVICE_NAME.search(str(callback.out("message")))
                    device_name = named.group(1) if named else None
                # Any other script (the QR code's) is for the SDKs: the page draws its own.
            case "TextOutputCallback":
                level = _LEVELS.get(str(callback.out("messageType")), "info")
                messages.append(message(str(callback.out("message")), level))
            case _:
                messages.append(
                    message(
                        f"This step needs a {callback.type}, which a browser page cannot show.",
                        "error",
                    )
                )
    return Screen(
        kind,
        _title(kind, shown.header),
        tuple(messages),
        tuple(inputs),
        tuple(buttons),
        tuple(hidden),
        number,
        uri,
        codes,
        device_name,
        poll_ms,
        wants_profile,
    )


def _int(value: Json) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def submission(
    shown: Sequence[tuple[str, InputKind]], form: Mapping[str, str]
) -> list[dict[str, Json]]:
    """The callbacks JSON of a submitted form, for the step whose callbacks were `shown` (as
    the journey state records them). A missing text is empty and a missing button is
    `UNSELECTED` ("not pressed"): the engine decides whether that answers the step, and
    refuses what is not a number where a number belongs."""
    callbacks: list[dict[str, Json]] = []
    for position, (type_, kind) in enumerate(shown, start=1):
        entry: dict[str, Json] = {"type": type_}
        name = f"IDToken{position}"
        if kind is InputKind.TEXT:
            entry["input"] = [{"name": name, "value": form.get(name, "")}]
        elif kind is InputKind.INDEX:
            raw = form.get(name)
            value: Json = UNSELECTED if raw is None else raw
            if isinstance(value, str) and value.isdigit() and len(value) < 6:
                value = int(value)
            entry["input"] = [{"name": name, "value": value}]
        callbacks.append(entry)
    return callbacks


def can_poll(shown: Sequence[tuple[str, InputKind]]) -> bool:
    """Whether the step may be submitted again without the person: it waits for something
    (a PollingWaitCallback) and every input it has can stay at its default."""
    return any(type_ == "PollingWaitCallback" for type_, _ in shown)
