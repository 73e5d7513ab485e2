"""Platform Password (`ValidatedPasswordNode`) and Password Collector (`PasswordCollectorNode`):
a PasswordCallback whose value goes to the transient state only (seed 002, Page node)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Shown, password_callback
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
from pushgate.journeys.state import PASSWORD


@dataclass(frozen=True, slots=True)
class PasswordConfig:
    prompt: Localized


def parse_platform(data: Mapping[str, Any]) -> PasswordConfig:
    reader = Reader(data)
    prompt = reader.localized("prompt", "Password")
    reader.string("passwordAttribute", "password")
    reader.flag("validateInput", False)
    reader.done()
    return PasswordConfig(prompt)


def parse_collector(data: Mapping[str, Any]) -> PasswordConfig:
    Reader(data).done()
    return PasswordConfig(Localized("Password"))


def process(ctx: NodeContext[PasswordConfig]) -> Step:
    shown = Shown((password_callback(ctx.text(ctx.config.prompt)),))
    inputs = needs_input(ctx, 1)
    if inputs is None or not isinstance(inputs[0], str) or not inputs[0]:
        return Show(shown, ctx.state)
    # Transient: the password is read by the Data Store Decision of this same step and is
    # never sealed into the authId.
    return Outcome(SINGLE, ctx.state.with_transient(**{PASSWORD: inputs[0]}))


PLATFORM = NodeType(
    "ValidatedPasswordNode", "Platform Password", parse_platform, single_outcome, process, True
)
COLLECTOR = NodeType(
    "PasswordCollectorNode", "Password Collector", parse_collector, single_outcome, process, True
)
