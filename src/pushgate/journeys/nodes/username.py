"""Platform Username (`ValidatedUsernameNode`) and Username Collector (`UsernameCollectorNode`):
a NameCallback whose value becomes the shared state's `username` (seed 002, Page node)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Shown, name_callback
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes.base import (
    SINGLE,
    NodeContext,
    NodeType,
    Outcome,
    Reader,
    Show,
    Step,
    needs_input,
    single_outcome,
)
from pushgate.journeys.state import USERNAME


@dataclass(frozen=True, slots=True)
class UsernameConfig:
    prompt: Localized


def parse_platform(data: Mapping[str, Any]) -> UsernameConfig:
    reader = Reader(data)
    prompt = reader.localized("prompt", "User Name")
    reader.string("usernameAttribute", "userName")  # AM's attribute; pushgate has one
    reader.flag("validateInput", False)  # usernames are always checked when used
    reader.done()
    return UsernameConfig(prompt)


def parse_collector(data: Mapping[str, Any]) -> UsernameConfig:
    Reader(data).done()
    return UsernameConfig(Localized("User Name"))


def process(ctx: NodeContext[UsernameConfig]) -> Step:
    shown = Shown((name_callback(ctx.text(ctx.config.prompt)),))
    inputs = needs_input(ctx, 1)
    if inputs is None or not isinstance(inputs[0], str) or not inputs[0].strip():
        return Show(shown, ctx.state)
    return Outcome(SINGLE, ctx.state.with_shared(**{USERNAME: inputs[0].strip()}))


PLATFORM = NodeType(
    "ValidatedUsernameNode", "Platform Username", parse_platform, single_outcome, process, True
)
COLLECTOR = NodeType(
    "UsernameCollectorNode", "Username Collector", parse_collector, single_outcome, process, True
)
