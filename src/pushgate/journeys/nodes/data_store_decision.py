"""Data Store Decision (`DataStoreDecisionNode`): the username and password of the step
against the user's argon2id hash (seed 002; DESIGN.md "passwords").

A wrong password counts toward the user's lock (the counter `/v1`'s denials count on), and a
locked user is refused whatever the password. An unknown user costs the same hash as a known
one, so the time taken tells nobody which usernames exist.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pushgate.journeys.effects import LookUpUser, RecordFailure, UserFacts
from pushgate.journeys.nodes.base import NodeContext, NodeType, Outcome, Perform, Step, no_config
from pushgate.journeys.state import PASSWORD

TRUE, FALSE = "true", "false"
_HASHER = PasswordHasher()


@functools.cache
def _decoy() -> str:
    return _HASHER.hash("not the password of anyone")


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _decoy(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def outcomes(_: object) -> dict[str, str]:
    return {TRUE: "True", FALSE: "False"}


def process(ctx: NodeContext[None]) -> Step:
    username, password = ctx.state.username, ctx.state.transient.get(PASSWORD)
    if username is None or not isinstance(password, str):
        return Outcome(FALSE, ctx.state)
    if not ctx.results:
        return Perform(LookUpUser(username))
    facts = ctx.results[0]
    assert facts is None or isinstance(facts, UserFacts)
    matches = password_matches(facts.password_hash if facts else None, password)
    if facts is not None and matches and not facts.locked:
        return Outcome(TRUE, ctx.state)
    if facts is None or facts.locked:
        return Outcome(FALSE, ctx.state)
    return Outcome(FALSE, ctx.state, (RecordFailure(username, "wrong password"),))


DATA_STORE_DECISION = NodeType(
    "DataStoreDecisionNode", "Data Store Decision", no_config, outcomes, process
)
