"""Opt-out Multi-Factor Authentication (`OptOutMultiFactorAuthenticationNode`, seed 002):
marks the user as skipping the MFA method of the shared state's `mfaMethod`, so a later
Push Sender takes its Skipped outcome. No callbacks."""

from __future__ import annotations

from pushgate.journeys.effects import MarkOptOut
from pushgate.journeys.nodes.base import (
    SINGLE,
    NodeContext,
    NodeError,
    NodeType,
    Outcome,
    Step,
    no_config,
    single_outcome,
)
from pushgate.journeys.state import MFA_METHOD


def process(ctx: NodeContext[None]) -> Step:
    username = ctx.state.username
    if username is None:
        raise NodeError("Failed to fetch identity")
    method = ctx.state.shared.get(MFA_METHOD, "push")
    return Outcome(SINGLE, ctx.state, (MarkOptOut(username, str(method)),))


OPT_OUT = NodeType(
    "OptOutMultiFactorAuthenticationNode",
    "Opt-out Multi-Factor Authentication",
    no_config,
    single_outcome,
    process,
)
