"""Push Sender (`PushAuthenticationSenderNode`, seed 002; spec §8.4): one push session of
the same kind `/v1` makes, so every active device of the user is notified, and webhooks,
limits and delivery apply to it. Sends no callbacks.

The `pushMessageId` it writes is the session's id (one session, one message id per device).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Json
from pushgate.journeys.effects import (
    CreatePushSession,
    FailureReason,
    LookUpUser,
    PushCreated,
    PushNotSent,
    UserFacts,
)
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes.base import (
    NodeContext,
    NodeError,
    NodeType,
    Outcome,
    Perform,
    Reader,
    Step,
)
from pushgate.journeys.nodes.device_profile import PROFILE
from pushgate.journeys.state import (
    FAILURE_REASON,
    MFA_METHOD,
    PUSH_MESSAGE_ID,
    PUSH_NUMBER,
    PUSH_TIMEOUT,
)
from pushgate.protocol.encoding import compact_json
from pushgate.protocol.push_payload import MAX_CUSTOM_PAYLOAD_BYTES, PushType

SENT, NOT_REGISTERED, SKIPPED, FAILURE = "SENT", "NOT_REGISTERED", "SKIPPED", "FAILURE"
DEFAULT_MESSAGE = "Login attempt from {{user}} at {{issuer}}"
MISSING_IDENTITY = "Failed to fetch identity"
PAYLOAD_TOO_LARGE = "Payload data exceed maximum accepted size"
PUSH_TYPES = {
    "DEFAULT": PushType.DEFAULT,  # Tap to Accept
    "CHALLENGE": PushType.CHALLENGE,  # Display Challenge Code
    "BIOMETRIC": PushType.BIOMETRIC,  # Use Biometrics to Accept
}
MAX_TIMEOUT_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class SenderConfig:
    message_timeout_ms: int
    user_message: Localized
    mandatory: bool  # "Remove 'skip' option"
    context_info: bool
    custom_payload: tuple[str, ...]
    push_type: PushType
    capture_failure: bool


def parse(data: Mapping[str, Any]) -> SenderConfig:
    reader = Reader(data)
    config = SenderConfig(
        reader.integer("messageTimeout", 120_000, 1000, MAX_TIMEOUT_MS),
        reader.localized("userMessage", DEFAULT_MESSAGE),
        reader.flag("mandatory", False),
        reader.flag("contextInfo", False),
        reader.strings("customPayload"),
        PUSH_TYPES[reader.choice("pushType", "DEFAULT", tuple(PUSH_TYPES))],
        reader.flag("captureFailure", False),
    )
    reader.done()
    return config


def outcomes(config: SenderConfig) -> dict[str, str]:
    found = {SENT: "Sent", NOT_REGISTERED: "Not Registered"}
    if not config.mandatory:
        found[SKIPPED] = "Skipped"
    if config.capture_failure:
        found[FAILURE] = "Failure"
    return found


def _failed(ctx: NodeContext[SenderConfig], reason: FailureReason, message: str) -> Outcome:
    if not ctx.config.capture_failure:
        raise NodeError(message)
    return Outcome(FAILURE, ctx.state.with_shared(**{FAILURE_REASON: reason.value}))


def user_message(ctx: NodeContext[SenderConfig], username: str, issuer: str) -> str:
    text = ctx.text(ctx.config.user_message)
    return text.replace("{{user}}", username).replace("{{issuer}}", issuer)


def context_info(ctx: NodeContext[SenderConfig]) -> dict[str, Json] | None:
    """`remoteIp`, `userAgent` and `location` (from the Device Profile Collector)."""
    if not ctx.config.context_info:
        return None
    profile = ctx.state.shared.get(PROFILE)
    profile = profile if isinstance(profile, dict) else {}
    context: dict[str, Json] = {}
    if ctx.request.remote_ip:
        context["remoteIp"] = ctx.request.remote_ip
    agent = profile.get("userAgent") or ctx.request.user_agent
    if agent:
        context["userAgent"] = agent
    if isinstance(profile.get("location"), dict):
        context["location"] = profile["location"]
    return context


def custom_payload(ctx: NodeContext[SenderConfig]) -> str | None:
    """The named shared-state values as compact JSON; NodeError beyond 3 KB (seed 002)."""
    if not ctx.config.custom_payload:
        return None
    shared = ctx.state.shared
    payload = {name: shared[name] for name in ctx.config.custom_payload if name in shared}
    text = compact_json(payload)
    if len(text.encode()) > MAX_CUSTOM_PAYLOAD_BYTES:
        raise NodeError(PAYLOAD_TOO_LARGE)
    return text


def process(ctx: NodeContext[SenderConfig]) -> Step:
    state, config = ctx.state, ctx.config
    username = state.username
    if username is None:
        return _failed(ctx, FailureReason.MISSING_USERNAME, MISSING_IDENTITY)
    if state.shared.get(PUSH_MESSAGE_ID):
        # A push of this journey is still open: the tree reaches the sender again without
        # the verifier having closed it.
        return _failed(ctx, FailureReason.SENDER_ALREADY_USED, "a push is already pending")
    if not ctx.results:
        return Perform(LookUpUser(username))
    facts = ctx.results[0]
    if facts is None:
        return _failed(ctx, FailureReason.MISSING_USERNAME, MISSING_IDENTITY)
    assert isinstance(facts, UserFacts)
    if facts.devices == 0:
        if facts.opted_out and not config.mandatory:
            return Outcome(SKIPPED, state)
        return Outcome(NOT_REGISTERED, state.with_shared(**{MFA_METHOD: "push"}))
    if len(ctx.results) == 1:
        return Perform(
            CreatePushSession(
                username=username,
                message=user_message(ctx, username, facts.issuer),
                push_type=config.push_type,
                ttl_seconds=-(-config.message_timeout_ms // 1000),
                context=context_info(ctx),
                custom_payload=custom_payload(ctx),
            )
        )
    sent = ctx.results[1]
    if isinstance(sent, PushNotSent):
        return _failed(ctx, sent.reason, sent.detail)
    assert isinstance(sent, PushCreated)
    return Outcome(
        SENT,
        state.with_shared(
            **{
                PUSH_MESSAGE_ID: sent.session_id,
                PUSH_TIMEOUT: config.message_timeout_ms,
                PUSH_NUMBER: sent.challenge_number,
                FAILURE_REASON: None,
            }
        ),
    )


PUSH_SENDER = NodeType("PushAuthenticationSenderNode", "Push Sender", parse, outcomes, process)
