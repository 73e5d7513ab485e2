"""Retry Limit Decision (`RetryLimitDecisionNode`, seed 002): Retry until the journey has
come here `retryLimit` times, then Reject ("three attempts to enter a recovery code").

With `incrementUserAttributeOnFailure` (AM's "Save Retry Limit to User") every pass also
counts a failure on the user, toward the lock `/v1`'s denials count on, so starting a new
journey does not buy a new set of guesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.journeys.effects import RecordFailure
from pushgate.journeys.nodes.base import NodeContext, NodeType, Outcome, Reader, Step

RETRY, REJECT = "Retry", "Reject"


@dataclass(frozen=True, slots=True)
class RetryConfig:
    limit: int
    count_on_user: bool


def parse(data: Mapping[str, Any]) -> RetryConfig:
    reader = Reader(data)
    config = RetryConfig(
        reader.integer("retryLimit", 3, 1, 100),
        reader.flag("incrementUserAttributeOnFailure", True),
    )
    reader.done()
    return config


def outcomes(_: RetryConfig) -> dict[str, str]:
    return {RETRY: "Retry", REJECT: "Reject"}


def process(ctx: NodeContext[RetryConfig]) -> Step:
    key = ctx.key("retryCount")
    count = ctx.state.counter(key) + 1
    username = ctx.state.username
    effects = (
        (RecordFailure(username, "retry limit decision"),)
        if ctx.config.count_on_user and username
        else ()
    )
    if count < ctx.config.limit:
        return Outcome(RETRY, ctx.state.with_shared(**{key: count}), effects)
    return Outcome(REJECT, ctx.state.with_shared(**{key: None}), effects)


RETRY_LIMIT_DECISION = NodeType(
    "RetryLimitDecisionNode", "Retry Limit Decision", parse, outcomes, process
)
