"""Get Authenticator App (`GetAuthenticatorAppNode`, seed 002): where to download the
authenticator, and a Continue button."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Shown, confirmation, text_output
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes.base import (
    SINGLE,
    ConfigError,
    NodeContext,
    NodeType,
    Outcome,
    Reader,
    Show,
    Step,
    needs_input,
    single_outcome,
)

APPLE = "https://apps.apple.com/app/forgerock-authenticator/id1038442926"
GOOGLE = "https://play.google.com/store/apps/details?id=com.forgerock.authenticator"


@dataclass(frozen=True, slots=True)
class AppConfig:
    message: Localized
    continue_label: Localized
    apple_link: str
    google_link: str


def _link(reader: Reader, name: str, default: str) -> str:
    link = reader.string(name, default, 2048)
    if not link.startswith("https://"):
        raise ConfigError(f"{name} must be an https:// link")
    return link


def parse(data: Mapping[str, Any]) -> AppConfig:
    reader = Reader(data)
    config = AppConfig(
        reader.localized(
            "message",
            "Download the ForgeRock Authenticator for {{apple}} or {{google}}, then continue.",
        ),
        reader.localized("continueLabel", "Continue"),
        _link(reader, "appleLink", APPLE),
        _link(reader, "googleLink", GOOGLE),
    )
    reader.done()
    return config


def process(ctx: NodeContext[AppConfig]) -> Step:
    config = ctx.config
    message = (
        ctx.text(config.message)
        .replace("{{apple}}", f"iOS ({config.apple_link})")
        .replace("{{google}}", f"Android ({config.google_link})")
    )
    shown = Shown((text_output(message), confirmation([ctx.text(config.continue_label)])))
    if needs_input(ctx, 2) is None:
        return Show(shown, ctx.state)
    return Outcome(SINGLE, ctx.state)


GET_AUTHENTICATOR_APP = NodeType(
    "GetAuthenticatorAppNode", "Get Authenticator App", parse, single_outcome, process
)
