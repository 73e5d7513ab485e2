"""What a node is (STYLE.md §3): a pure function of its context to `Show`, `Outcome` or
`Perform`, with a configuration parsed once when its tree loads.

A node asking for an effect's result (`Perform`) is run again, from the start of its visit,
with every result it has had so far in `ctx.results`: a node is a plain function of what it
was given, with no hidden resumption state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pushgate.journeys.callbacks import Json, Shown
from pushgate.journeys.effects import Effect, Result
from pushgate.journeys.locale import LocaleError, Localized
from pushgate.journeys.state import JourneyState

C = TypeVar("C")
SINGLE = "outcome"  # AM's id of the one outcome of a single-outcome node


class NodeError(Exception):
    """A node cannot go on (AM's NodeProcessException): the journey fails, the message goes
    to the log."""


class ConfigError(ValueError):
    """A node's configuration is not valid: the tree does not load."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the step's HTTP request says about the person's browser."""

    locales: tuple[str, ...] = ()
    remote_ip: str | None = None
    user_agent: str | None = None
    # Push sessions the REST layer saw finish while it held the step (session events).
    finished_sessions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NodeContext(Generic[C]):
    node_id: str
    config: C
    state: JourneyState
    inputs: tuple[Json, ...] | None  # the values submitted for what this node showed
    now_ms: int
    request: RequestInfo = RequestInfo()
    results: tuple[Result, ...] = ()

    def key(self, name: str) -> str:
        """A shared-state key of this node's own (AM keeps node counters so, too)."""
        return f"{self.node_id}.{name}"

    def text(self, message: Localized) -> str:
        return message.pick(self.request.locales)


@dataclass(frozen=True, slots=True)
class Show:
    shown: Shown
    state: JourneyState


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    state: JourneyState
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Perform:
    effect: Effect


Step = Show | Outcome | Perform


@dataclass(frozen=True, slots=True)
class NodeType(Generic[C]):
    """One node type: AM's `nodeType` name, its configuration parser and its outcomes (ids,
    with the names the AM console shows), and its process function."""

    name: str
    display: str
    parse: Callable[[Mapping[str, Any]], C]
    outcomes: Callable[[C], Mapping[str, str]]  # outcome id → display name
    process: Callable[[NodeContext[C]], Step]
    pageable: bool = False  # may sit in a Page node (collects input, one outcome)


def single_outcome(_: object) -> Mapping[str, str]:
    return {SINGLE: "Outcome"}


@dataclass
class Reader:
    """Reads a node's configuration: each getter validates one property; `done()` refuses the
    properties nobody read (a misspelt one must not be silently ignored)."""

    data: Mapping[str, Any]
    read: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not isinstance(self.data, Mapping):
            raise ConfigError("the configuration must be an object")

    def value(self, name: str, default: object) -> object:
        """The property as given, for a node to check itself."""
        self.read.add(name)
        return self.data.get(name, default)

    def flag(self, name: str, default: bool) -> bool:
        value = self.value(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.value(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{name} must be an integer from {low} to {high}")
        return value

    def string(self, name: str, default: str, max_chars: int = 256) -> str:
        value = self.value(name, default)
        if not isinstance(value, str) or len(value) > max_chars:
            raise ConfigError(f"{name} must be text of at most {max_chars} characters")
        return value

    def choice(self, name: str, default: str, allowed: Sequence[str]) -> str:
        value = self.value(name, default)
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}")
        return str(value)

    def strings(self, name: str, max_items: int = 32, max_chars: int = 128) -> tuple[str, ...]:
        value = self.value(name, [])
        if (
            not isinstance(value, list)
            or len(value) > max_items
            or not all(isinstance(v, str) and 0 < len(v) <= max_chars for v in value)
        ):
            raise ConfigError(f"{name} must be a list of at most {max_items} names")
        return tuple(value)

    def localized(self, name: str, default: str) -> Localized:
        try:
            return Localized.parse(self.value(name, None), default)
        except LocaleError as exc:
            raise ConfigError(str(exc)) from None
        except ValueError as exc:
            raise ConfigError(f"{name} {exc}") from None

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise ConfigError(f"unknown configuration property {unknown[0]!r}")


def no_config(data: Mapping[str, Any]) -> None:
    Reader(data).done()


def needs_input(ctx: NodeContext[Any], count: int) -> tuple[Json, ...] | None:
    """The submitted values if this visit answers what the node showed, else None."""
    if ctx.inputs is None or len(ctx.inputs) != count:
        return None
    return ctx.inputs
