"""The journey state between two steps, as in AM: shared state, transient state, the node the
journey stands at, and what it last showed (spec forgerock-push.md §8; AM's node states).

Shared state travels with the journey: the REST layer seals `to_json()` into the `authId`, so
it is kept small (names, ids, counters; never a secret). Transient state lives for one step
only, as AM's does: the password a Page node collects and the recovery codes Push
Registration makes are read by the next nodes of the same step and never leave the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import cast

from pushgate.journeys.callbacks import InputKind, InvalidCallbacks, Json, Shown

STATE_VERSION = 1
MAX_STATE_BYTES = 4096  # an authId must stay a comfortable header and cookie size

USERNAME = "username"  # shared: written by the username collectors
PASSWORD = "password"  # noqa: S105 (a state key) transient: written by the password collectors
# Written by the Push Sender, read by Push Wait and the Push Result Verifier (spec §8.4).
PUSH_MESSAGE_ID = "pushMessageId"  # here: the id of the push session
PUSH_NUMBER = "pushNumberChallengeKey"
PUSH_TIMEOUT = "t"
MFA_METHOD = "mfaMethod"
FAILURE_REASON = "PushAuthFailureReason"


def _frozen(values: Mapping[str, Json]) -> Mapping[str, Json]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True)
class JourneyState:
    realm: str
    tree: str
    node: str  # the node that runs on the next submission
    started_ms: int
    shared: Mapping[str, Json] = field(default_factory=dict)
    transient: Mapping[str, Json] = field(default_factory=dict)
    # The callbacks shown at `node`, as (type, input kind): what a submission must match.
    shown: tuple[tuple[str, InputKind], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "shared", _frozen(self.shared))
        object.__setattr__(self, "transient", _frozen(self.transient))

    def with_shared(self, **values: object) -> JourneyState:
        """`None` removes a key."""
        merged: dict[str, object] = {**self.shared, **values}
        kept = {k: cast(Json, v) for k, v in merged.items() if v is not None}
        return replace(self, shared=kept)

    def with_transient(self, **values: object) -> JourneyState:
        merged: dict[str, object] = {**self.transient, **values}
        kept = {k: cast(Json, v) for k, v in merged.items() if v is not None}
        return replace(self, transient=kept)

    def at(self, node: str) -> JourneyState:
        return replace(self, node=node, shown=())

    def showing(self, node: str, shown: Shown) -> JourneyState:
        """Stopped at `node` with `shown`: the transient state ends with the step."""
        recorded = tuple((c.type, c.kind) for c in shown.callbacks)
        return replace(self, node=node, shown=recorded, transient={})

    @property
    def username(self) -> str | None:
        value = self.shared.get(USERNAME)
        return value if isinstance(value, str) and value else None

    def counter(self, key: str) -> int:
        value = self.shared.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def to_json(self) -> str:
        """The state to seal into an authId: compact JSON, without the transient state."""
        data = {
            "v": STATE_VERSION,
            "r": self.realm,
            "t": self.tree,
            "n": self.node,
            "s": self.started_ms,
            "sh": dict(self.shared),
            "cb": [f"{type_}:{kind.value}" for type_, kind in self.shown],
        }
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > MAX_STATE_BYTES:
            raise ValueError(f"journey state exceeds {MAX_STATE_BYTES} bytes")
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> JourneyState:
        """The state `to_json` wrote; InvalidCallbacks for anything else (an authId opens
        only if it was sealed by us, so this is a version or corruption check)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
                raise ValueError("unknown journey state version")
            shown = []
            for entry in data["cb"]:
                type_, _, kind = str(entry).rpartition(":")
                shown.append((type_, InputKind(kind)))
            shared = data["sh"]
            if not isinstance(shared, dict):
                raise ValueError("shared state must be an object")
            return cls(
                realm=str(data["r"]),
                tree=str(data["t"]),
                node=str(data["n"]),
                started_ms=int(data["s"]),
                shared=shared,
                shown=tuple(shown),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidCallbacks("the journey state cannot be read") from exc
