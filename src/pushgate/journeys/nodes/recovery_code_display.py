"""Recovery Code Display (`RecoveryCodeDisplayNode`, spec §8.4): the codes Push Registration
put in the transient state, once, as the script the SDKs parse; passes straight on when
there are none."""

from __future__ import annotations

from pushgate.journeys import recovery_codes
from pushgate.journeys.callbacks import Shown, script_output
from pushgate.journeys.nodes.base import (
    SINGLE,
    NodeContext,
    NodeType,
    Outcome,
    Show,
    Step,
    needs_input,
    no_config,
    single_outcome,
)
from pushgate.journeys.nodes.push_registration import DEVICE_NAME, RECOVERY_CODES


def process(ctx: NodeContext[None]) -> Step:
    if needs_input(ctx, 1) is not None:
        return Outcome(SINGLE, ctx.state)
    codes = ctx.state.transient.get(RECOVERY_CODES)
    if not isinstance(codes, list) or not codes:
        return Outcome(SINGLE, ctx.state)
    name = ctx.state.transient.get(DEVICE_NAME)
    script = recovery_codes.display_script(
        tuple(str(c) for c in codes), name if isinstance(name, str) else recovery_codes.DEVICE_NAME
    )
    return Show(Shown((script_output(script),)), ctx.state)


RECOVERY_CODE_DISPLAY = NodeType(
    "RecoveryCodeDisplayNode", "Recovery Code Display Node", no_config, single_outcome, process
)
