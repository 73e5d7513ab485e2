"""Recovery Code Collector Decision (`RecoveryCodeCollectorDecisionNode`, spec §7): a
NameCallback "Recovery Code"; a code of the user's is used up (single use) and is True."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pushgate.journeys.callbacks import Shown, name_callback
from pushgate.journeys.effects import UseRecoveryCode
from pushgate.journeys.nodes.base import (
    NodeContext,
    NodeError,
    NodeType,
    Outcome,
    Perform,
    Reader,
    Show,
    Step,
    needs_input,
)

TRUE, FALSE = "true", "false"


def parse(data: Mapping[str, Any]) -> None:
    reader = Reader(data)
    # One set of codes per user here, whatever kind of device they came with.
    reader.choice("recoveryCodeType", "PUSH", ("PUSH", "OATH", "WEB_AUTHN"))
    reader.done()


def outcomes(_: object) -> dict[str, str]:
    return {TRUE: "True", FALSE: "False"}


def process(ctx: NodeContext[None]) -> Step:
    username = ctx.state.username
    if username is None:
        raise NodeError("Failed to fetch identity")
    inputs = needs_input(ctx, 1)
    if inputs is None or not isinstance(inputs[0], str):
        return Show(Shown((name_callback("Recovery Code"),)), ctx.state)
    code = inputs[0].strip()
    if not code:
        return Outcome(FALSE, ctx.state)
    if not ctx.results:
        return Perform(UseRecoveryCode(username, code))
    return Outcome(TRUE if ctx.results[0] is True else FALSE, ctx.state)


RECOVERY_CODE_COLLECTOR = NodeType(
    "RecoveryCodeCollectorDecisionNode",
    "Recovery Code Collector Decision",
    parse,
    outcomes,
    process,
)
