"""Push Registration (`PushRegistrationNode`, spec §8.3): the QR code to scan, polled until
the phone registers (Success, with 10 recovery codes), the time runs out (Time Out) or the
registration is gone (Failure).

Callbacks, in AM's order: the scan message, the QR script, the URI in HiddenValueCallback
`mfaDeviceRegistration` (where the JS SDK reads it), and a PollingWaitCallback of 2 s. The
URI holds the device secret, so it is read again on each poll instead of kept in the state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys import recovery_codes
from pushgate.journeys.callbacks import (
    Shown,
    hidden_value,
    polling_wait,
    script_output,
    text_output,
)
from pushgate.journeys.effects import (
    LookUpUser,
    ReadRegistration,
    RegistrationRead,
    SaveRecoveryCodes,
    StartRegistration,
    UserFacts,
)
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes.base import (
    ConfigError,
    NodeContext,
    NodeError,
    NodeType,
    Outcome,
    Perform,
    Reader,
    Show,
    Step,
)

SUCCESS, FAILURE, TIMEOUT = "successOutcome", "failureOutcome", "timeoutOutcome"
POLL_MS = 2000  # AM >= 7.2
RECOVERY_CODES = "recoveryCodes"  # transient, for the Recovery Code Display node
DEVICE_NAME = "recoveryCodeDeviceName"
_HEX_COLOUR = re.compile(r"[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class RegistrationConfig:
    issuer: str | None
    background: str
    timeout_seconds: int
    generate_recovery_codes: bool
    scan_message: Localized


def parse(data: Mapping[str, Any]) -> RegistrationConfig:
    reader = Reader(data)
    issuer = reader.string("issuer", "", 64)
    if ":" in issuer:
        raise ConfigError("issuer must not contain ':' (it would split the QR label)")
    reader.choice("accountName", "USERNAME", ("USERNAME",))
    background = reader.string("bgColor", "032b75", 7).removeprefix("#")
    if not _HEX_COLOUR.fullmatch(background):
        raise ConfigError("bgColor must be a colour as six hex digits")
    config = RegistrationConfig(
        issuer or None,
        background.lower(),
        reader.integer("timeout", 60, 10, 600),
        reader.flag("generateRecoveryCodes", True),
        reader.localized(
            "scanQRCodeMessage",
            "Scan the QR code image below with the ForgeRock Authenticator app to register"
            " your device with your login.",
        ),
    )
    reader.done()
    return config


def outcomes(_: RegistrationConfig) -> dict[str, str]:
    return {SUCCESS: "Success", FAILURE: "Failure", TIMEOUT: "Time Out"}


def js_escaped(text: str) -> str:
    """AM's Encode.forJavaScript: everything but letters, digits, space, `,._` as \\xHH."""
    out = []
    for char in text:
        if char.isascii() and (char.isalnum() or char in " ,._"):
            out.append(char)
        elif ord(char) < 256:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def qr_callbacks(ctx: NodeContext[RegistrationConfig], uri: str) -> Shown:
    script = (
        "window.QRCodeReader.createCode({ id: 'callback_0', text: '"
        + js_escaped(uri)
        + "', version: '20', code: 'L' });"
    )
    return Shown(
        (
            text_output(ctx.text(ctx.config.scan_message)),
            script_output(script),
            hidden_value("mfaDeviceRegistration", uri),
            polling_wait(POLL_MS, "Waiting for response..."),
        )
    )


def process(ctx: NodeContext[RegistrationConfig]) -> Step:
    state, config = ctx.state, ctx.config
    username = state.username
    if username is None:
        raise NodeError("Failed to fetch identity")
    message_key, started_key = ctx.key("messageId"), ctx.key("startedAt")
    message_id = state.shared.get(message_key)
    if not isinstance(message_id, str):
        if not ctx.results:
            return Perform(LookUpUser(username))
        facts = ctx.results[0]
        if facts is None:
            raise NodeError("Failed to fetch identity")
        assert isinstance(facts, UserFacts)
        if facts.devices > 0:
            return Outcome(SUCCESS, state)  # registered already (AM does the same)
        if len(ctx.results) == 1:
            return Perform(StartRegistration(username, config.issuer, config.background))
        started = ctx.results[1]
        assert isinstance(started, RegistrationRead)
        polling = state.with_shared(**{message_key: started.message_id, started_key: ctx.now_ms})
        return Show(qr_callbacks(ctx, started.uri), polling)
    if not ctx.results:
        return Perform(ReadRegistration(username, message_id, config.issuer, config.background))
    read = ctx.results[0]
    done = state.with_shared(**{message_key: None, started_key: None})
    if read is None:
        return Outcome(FAILURE, done)
    assert isinstance(read, RegistrationRead)
    if read.completed:
        if not config.generate_recovery_codes:
            return Outcome(SUCCESS, done)
        codes = recovery_codes.new_codes()
        shown = done.with_transient(
            **{RECOVERY_CODES: list(codes), DEVICE_NAME: recovery_codes.DEVICE_NAME}
        )
        return Outcome(SUCCESS, shown, (SaveRecoveryCodes(username, codes),))
    started_at = state.counter(started_key)
    if ctx.now_ms - started_at >= config.timeout_seconds * 1000 or ctx.now_ms >= read.expires_ms:
        return Outcome(TIMEOUT, done)
    return Show(qr_callbacks(ctx, read.uri), state)


PUSH_REGISTRATION = NodeType("PushRegistrationNode", "Push Registration", parse, outcomes, process)
