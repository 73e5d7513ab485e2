"""Push Result Verifier (`PushResultVerifierNode`, spec §8.4): the push session's state as
the outcome. Sends no callbacks.

The number matching is checked where the phone answers (`SessionService.answer`: a wrong
pick is refused and counted), so an approved session is a matched one. A finished push is
cleared from the shared state, so the sender may send the next one (Expired → Push Sender).
Pushes are sent after the Push Sender has moved on, so a session none of whose pushes could
be delivered ends here: Failure, with `PushAuthFailureReason` `TRANSMISSION_FAILURE`.
"""

from __future__ import annotations

from pushgate.journeys.effects import FailureReason, PushRead, PushState, ReadPushSession
from pushgate.journeys.nodes.base import (
    NodeContext,
    NodeError,
    NodeType,
    Outcome,
    Perform,
    Step,
    no_config,
)
from pushgate.journeys.state import FAILURE_REASON, PUSH_MESSAGE_ID, PUSH_NUMBER, PUSH_TIMEOUT

TRUE, FALSE, EXPIRED, WAITING = "TRUE", "FALSE", "EXPIRED", "WAITING"
_OUTCOME = {
    PushState.APPROVED: TRUE,
    PushState.DENIED: FALSE,
    PushState.GONE: FALSE,
    PushState.UNDELIVERED: FALSE,
    PushState.EXPIRED: EXPIRED,
    PushState.PENDING: WAITING,
}


def outcomes(_: object) -> dict[str, str]:
    return {TRUE: "Success", FALSE: "Failure", EXPIRED: "Expired", WAITING: "Waiting"}


def process(ctx: NodeContext[None]) -> Step:
    session_id = ctx.state.shared.get(PUSH_MESSAGE_ID)
    if not isinstance(session_id, str):
        raise NodeError("no push to verify: a Push Sender must come first")
    if not ctx.results:
        return Perform(ReadPushSession(session_id))
    read = ctx.results[0]
    assert isinstance(read, PushRead)
    outcome = _OUTCOME[read.state]
    if outcome == WAITING:
        return Outcome(WAITING, ctx.state)
    cleared = ctx.state.with_shared(
        **{PUSH_MESSAGE_ID: None, PUSH_NUMBER: None, PUSH_TIMEOUT: None}
    )
    if read.state is PushState.UNDELIVERED:
        cleared = cleared.with_shared(**{FAILURE_REASON: FailureReason.TRANSMISSION_FAILURE.value})
    return Outcome(outcome, cleared)


PUSH_RESULT_VERIFIER = NodeType(
    "PushResultVerifierNode", "Push Result Verifier", no_config, outcomes, process
)
