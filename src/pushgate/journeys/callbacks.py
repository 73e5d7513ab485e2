"""AM's callbacks as JSON (spec forgerock-push.md §8.1-§8.2), and the strict reading of a
submitted step.

Each callback renders as `{"type", "output": [{name, value}], "input": [{name, value}]}`; the
input of the callback at 1-based position N is named `IDToken<N>`, counting output-only
callbacks too. `messageType` of a TextOutputCallback and `waitTime` of a PollingWaitCallback
are strings on the wire (the SDKs read them so); a ConfirmationCallback's `messageType` is an
int. A submitted step must hold the callbacks that were shown, in their order, each with its
`IDToken<N>` input and a value of its kind: anything else is `InvalidCallbacks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from pushgate.errors import InvalidRequest

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


class InvalidCallbacks(InvalidRequest):
    """A submitted step that is not the one shown; the journey state is unchanged."""


class InputKind(StrEnum):
    """What a callback's input holds, recorded in the journey state when it is shown."""

    NONE = "-"  # output only
    TEXT = "s"
    INDEX = "i"


class MessageType(IntEnum):
    INFORMATION = 0
    WARNING = 1
    ERROR = 2
    SCRIPT = 4  # a ScriptTextOutputCallback travels as a TextOutputCallback of type "4"


@dataclass(frozen=True, slots=True)
class Callback:
    """One callback: its AM type, outputs in order, and its input's kind and starting value."""

    type: str
    output: tuple[tuple[str, Json], ...]
    kind: InputKind = InputKind.NONE
    initial: Json = ""

    def to_json(self, position: int) -> dict[str, Json]:
        """The callback as AM renders it at 1-based `position` in the step."""
        rendered: dict[str, Json] = {
            "type": self.type,
            "output": [{"name": name, "value": value} for name, value in self.output],
        }
        if self.kind is not InputKind.NONE:
            rendered["input"] = [{"name": f"IDToken{position}", "value": self.initial}]
        return rendered

    def out(self, name: str) -> Json:
        return dict(self.output)[name]


def name_callback(prompt: str) -> Callback:
    return Callback("NameCallback", (("prompt", prompt),), InputKind.TEXT, "")


def password_callback(prompt: str) -> Callback:
    return Callback("PasswordCallback", (("prompt", prompt),), InputKind.TEXT, "")


def text_output(message: str, message_type: MessageType = MessageType.INFORMATION) -> Callback:
    return Callback(
        "TextOutputCallback", (("message", message), ("messageType", str(int(message_type))))
    )


def script_output(script: str) -> Callback:
    return text_output(script, MessageType.SCRIPT)


def hidden_value(id_: str, value: str) -> Callback:
    # The input starts as the id: the JS SDK finds the callback by it (spec §8.2).
    return Callback("HiddenValueCallback", (("value", value), ("id", id_)), InputKind.TEXT, id_)


def polling_wait(wait_ms: int, message: str) -> Callback:
    return Callback("PollingWaitCallback", (("waitTime", str(wait_ms)), ("message", message)))


def confirmation(
    options: Sequence[str],
    *,
    prompt: str = "",
    message_type: MessageType = MessageType.INFORMATION,
    default_option: int = 0,
    selected: int = 0,
) -> Callback:
    """optionType -1 (UNSPECIFIED_OPTION): the options are the labels given."""
    return Callback(
        "ConfirmationCallback",
        (
            ("prompt", prompt),
            ("messageType", int(message_type)),
            ("options", list(options)),
            ("optionType", -1),
            ("defaultOption", default_option),
        ),
        InputKind.INDEX,
        selected,
    )


def choice(prompt: str, choices: Sequence[str], default_choice: int = 0) -> Callback:
    return Callback(
        "ChoiceCallback",
        (("prompt", prompt), ("choices", list(choices)), ("defaultChoice", default_choice)),
        InputKind.INDEX,
        default_choice,
    )


def device_profile(*, metadata: bool, location: bool, message: str) -> Callback:
    """AM's DeviceProfileCallback: the SDK answers with the profile as a JSON string."""
    return Callback(
        "DeviceProfileCallback",
        (("metadata", metadata), ("location", location), ("message", message)),
        InputKind.TEXT,
        "",
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """The callbacks of a step, with what the browser or SDK sees besides them."""

    callbacks: tuple[Callback, ...]
    header: str | None = None
    description: str | None = None
    stage: str | None = None
    wait_for_session: str | None = None  # a push session whose end answers this step early
    kinds: tuple[InputKind, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(c.kind for c in self.callbacks))

    def to_json(self) -> list[Json]:
        return [c.to_json(i) for i, c in enumerate(self.callbacks, start=1)]


def _value(entry: object, position: int, type_: str, kind: InputKind) -> Json:
    if not isinstance(entry, Mapping):
        raise InvalidCallbacks(f"callback {position} must be an object")
    if entry.get("type") != type_:
        raise InvalidCallbacks(f"callback {position} must be a {type_}")
    inputs = entry.get("input")
    if kind is InputKind.NONE:
        if inputs not in (None, []):
            raise InvalidCallbacks(f"callback {position} ({type_}) takes no input")
        return None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], Mapping):
        raise InvalidCallbacks(f"callback {position} ({type_}) must have one input")
    name, value = inputs[0].get("name"), inputs[0].get("value")
    if name != f"IDToken{position}":
        raise InvalidCallbacks(f"callback {position} ({type_}): its input is IDToken{position}")
    if kind is InputKind.TEXT:
        if not isinstance(value, str):
            raise InvalidCallbacks(f"IDToken{position} ({type_}) must be a string")
        if len(value) > MAX_INPUT_CHARS:
            raise InvalidCallbacks(f"IDToken{position} is longer than {MAX_INPUT_CHARS}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCallbacks(f"IDToken{position} ({type_}) must be an integer")
    return value


MAX_INPUT_CHARS = 16_384  # a device profile is the largest input (its node caps it lower)


def parse_submission(
    types: Sequence[str], kinds: Sequence[InputKind], submitted: object
) -> tuple[Json, ...]:
    """The input values of a submitted `callbacks` list, by position (None for output-only
    callbacks), checked against the types and input kinds that were shown."""
    if not isinstance(submitted, list):
        raise InvalidCallbacks("callbacks must be a list")
    if len(submitted) != len(kinds):
        raise InvalidCallbacks(f"expected {len(kinds)} callbacks, got {len(submitted)}")
    return tuple(
        _value(entry, i, type_, kind)
        for i, (entry, type_, kind) in enumerate(zip(submitted, types, kinds, strict=True), 1)
    )
