"""Push Wait (`PushWaitNode`, spec §8.4): a PollingWaitCallback, the number to pick for a
challenge push (HiddenValueCallback `pushChallengeNumber`), and a ConfirmationCallback whose
one option exits (seed 002: "Lost phone? Use a recovery code").

AM waits out the whole wait time even after the phone answered. Here the step also ends as
soon as the REST layer saw the push session finish (`RequestInfo.finished_sessions`, learnt
from the session events without a database read), so a login completes right after approval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.callbacks import Shown, confirmation, hidden_value, polling_wait
from pushgate.journeys.effects import CancelPushSession
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
from pushgate.journeys.state import PUSH_MESSAGE_ID, PUSH_NUMBER

DONE, EXITED = "DONE", "EXITED"
EXIT_INDEX = 0
UNSELECTED = 100  # AM's starting selectedIndex: "not pressed"
MIN_WAIT_MS = 500  # what is left of the wait, never a busy loop


@dataclass(frozen=True, slots=True)
class WaitConfig:
    seconds: int
    waiting: Localized
    challenge: Localized
    exit: Localized


def parse(data: Mapping[str, Any]) -> WaitConfig:
    reader = Reader(data)
    config = WaitConfig(
        reader.integer("secondsToWait", 5, 1, 60),
        reader.localized("waitingMessage", "Waiting for response..."),
        reader.localized(
            "challengeMessage",
            "Tap the number [{{challenge}}] on the Push Notification to continue.",
        ),
        reader.localized("exitMessage", "Cancel"),
    )
    reader.done()
    return config


def outcomes(_: WaitConfig) -> dict[str, str]:
    return {DONE: "Done", EXITED: "Exit"}


def process(ctx: NodeContext[WaitConfig]) -> Step:
    state, config = ctx.state, ctx.config
    until_key = ctx.key("waitUntil")
    until = state.counter(until_key)
    number = state.shared.get(PUSH_NUMBER)
    session = state.shared.get(PUSH_MESSAGE_ID)
    session_id = session if isinstance(session, str) else None
    wait_ms = config.seconds * 1000
    if until:
        wait_ms = max(MIN_WAIT_MS, min(wait_ms, until - ctx.now_ms))
    seconds = str(-(-wait_ms // 1000))
    if isinstance(number, str):
        message = ctx.text(config.challenge).replace("{{challenge}}", number)
    else:
        message = ctx.text(config.waiting)
    callbacks = [polling_wait(wait_ms, message.replace("{{time}}", seconds))]
    if isinstance(number, str):
        callbacks.append(hidden_value("pushChallengeNumber", number))
    callbacks.append(confirmation([ctx.text(config.exit)], selected=UNSELECTED))
    shown = Shown(tuple(callbacks), wait_for_session=session_id)
    inputs = needs_input(ctx, len(callbacks))
    if inputs is not None and until:
        if inputs[-1] == EXIT_INDEX:
            # The person gave up on the phone (lost?): its push must not stay answerable.
            effects = (CancelPushSession(session_id),) if session_id else ()
            cleared = state.with_shared(**{until_key: None, PUSH_MESSAGE_ID: None})
            return Outcome(EXITED, cleared.with_shared(**{PUSH_NUMBER: None}), effects)
        if ctx.now_ms >= until or session_id in ctx.request.finished_sessions:
            return Outcome(DONE, state.with_shared(**{until_key: None}))
        return Show(shown, state)
    if session_id is not None and session_id in ctx.request.finished_sessions:
        return Outcome(DONE, state.with_shared(**{until_key: None}))
    return Show(shown, state.with_shared(**{until_key: ctx.now_ms + config.seconds * 1000}))


PUSH_WAIT = NodeType("PushWaitNode", "Push Wait", parse, outcomes, process)
