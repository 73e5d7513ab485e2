"""MFA Registration Options (`MultiFactorRegistrationOptionsNode`, seed 002): a title and a
ConfirmationCallback of Register device / Get the app / Skip this step / Opt-out; the option
picked is the outcome. Get the app shows only with `getApp`; Skip and Opt-out only without
`mandatory` ("Remove 'skip' option")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Shown, confirmation, text_output
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes.base import (
    NodeContext,
    NodeType,
    Outcome,
    Reader,
    Show,
    Step,
    needs_input,
)

REGISTER, GET_APP = "registerOutcome", "getAppOutcome"
SKIP, OPT_OUT = "skipOutcome", "optOutOutcome"
_NAMES = {REGISTER: "Register", GET_APP: "Get App", SKIP: "Skip", OPT_OUT: "Opt-out"}


@dataclass(frozen=True, slots=True)
class OptionsConfig:
    get_app: bool
    mandatory: bool
    message: Localized
    labels: Mapping[str, Localized]

    @property
    def options(self) -> tuple[str, ...]:
        shown = [REGISTER]
        if self.get_app:
            shown.append(GET_APP)
        if not self.mandatory:
            shown += [SKIP, OPT_OUT]
        return tuple(shown)


def parse(data: Mapping[str, Any]) -> OptionsConfig:
    reader = Reader(data)
    config = OptionsConfig(
        get_app=reader.flag("getApp", True),
        mandatory=reader.flag("mandatory", False),
        message=reader.localized("message", "Register a device for multi-factor authentication"),
        labels={
            REGISTER: reader.localized("registerDeviceLabel", "Register device"),
            GET_APP: reader.localized("getAppLabel", "Get the app"),
            SKIP: reader.localized("skipStepLabel", "Skip this step"),
            OPT_OUT: reader.localized("optOutLabel", "Opt-out"),
        },
    )
    reader.done()
    return config


def outcomes(config: OptionsConfig) -> dict[str, str]:
    return {outcome: _NAMES[outcome] for outcome in config.options}


def process(ctx: NodeContext[OptionsConfig]) -> Step:
    options = ctx.config.options
    labels = [ctx.text(ctx.config.labels[o]) for o in options]
    shown = Shown((text_output(ctx.text(ctx.config.message)), confirmation(labels)))
    inputs = needs_input(ctx, 2)
    if inputs is None or not isinstance(inputs[1], int) or not 0 <= inputs[1] < len(options):
        return Show(shown, ctx.state)
    return Outcome(options[inputs[1]], ctx.state)


MFA_REGISTRATION_OPTIONS = NodeType(
    "MultiFactorRegistrationOptionsNode", "MFA Registration Options", parse, outcomes, process
)
