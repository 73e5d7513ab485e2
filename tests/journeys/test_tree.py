"""Trees are validated when loaded: each problem is one clear TreeError naming the node."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pushgate.journeys.builtin import builtin_tree
from pushgate.journeys.nodes import REGISTRY
from pushgate.journeys.tree import FAILURE, SUCCESS, TreeError, load_tree

BUILTIN = builtin_tree("PushAuthentication")
assert BUILTIN is not None
SOURCE: dict[str, Any] = dict(BUILTIN.source)


def changed(path: list[str], value: object) -> dict[str, Any]:
    data = copy.deepcopy(SOURCE)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()


def test_the_builtin_tree_loads_and_round_trips() -> None:
    assert BUILTIN.entry == "credentials"
    assert load_tree(BUILTIN.to_json()).nodes.keys() == BUILTIN.nodes.keys()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (changed(["nodes", "opt-out", "nodeType"], "TotpNode"), "unknown node type 'TotpNode'"),
        (
            changed(["nodes", "opt-out", "connections", "outcome"], "nowhere"),
            "outcome 'outcome' leads to 'nowhere', which is neither a node nor Success",
        ),
        (changed(["entryNodeId"], DELETE), "the journey has no start"),
        (changed(["entryNodeId"], "missing"), "entryNodeId 'missing' is not a node"),
        (
            changed(["nodes", "push-wait", "config", "exitMessage"], {"not a locale!": "x"}),
            "Invalid locale provided",
        ),
        (
            changed(["nodes", "push-sender", "config", "userMessage"], {"en_GB": "x", "1x": "y"}),
            "node push-sender (PushAuthenticationSenderNode): Invalid locale provided",
        ),
        (
            changed(["nodes", "push-sender", "connections", "SENT"], DELETE),
            "outcome 'SENT' (Sent) is not connected",
        ),
        (
            changed(["nodes", "push-sender", "config", "mandatory"], True),
            "it has no outcome 'SKIPPED'",
        ),
        (
            changed(["nodes", "push-sender", "config", "pushType"], "TAP"),
            "pushType must be one of DEFAULT, CHALLENGE, BIOMETRIC",
        ),
        (
            changed(["nodes", "push-sender", "config", "messageTimeout"], "120000"),
            "messageTimeout must be an integer",
        ),
        (
            changed(["nodes", "push-wait", "config", "secondsToWiat"], 5),
            "unknown configuration property 'secondsToWiat'",
        ),
        (
            changed(["nodes", "credentials", "config", "nodes"], [{"nodeType": "PushWaitNode"}]),
            "a page holds only",
        ),
        (
            changed(["nodes", "retry-limit", "config", "retryLimit"], 0),
            "retryLimit must be an integer from 1 to 100",
        ),
        (changed(["_id"], "bad/name"), "a journey name is"),
        (changed(["nodes"], {}), "nodes must be an object of at least one node"),
        (changed(["extra"], 1), "unknown journey property 'extra'"),
        (
            changed(["nodes", SUCCESS], {"nodeType": "PageNode"}),
            f"node {SUCCESS}: a node id is",
        ),
    ],
)
def test_invalid_trees_are_refused_with_a_clear_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(TreeError) as caught:
        load_tree(json.dumps(data))
    assert message in caught.value.message


def test_not_json_is_refused() -> None:
    with pytest.raises(TreeError, match="not JSON"):
        load_tree("{")


def test_a_terminal_may_be_the_target_of_any_outcome() -> None:
    data = changed(["nodes", "push-result-verifier", "connections", "EXPIRED"], FAILURE)
    assert load_tree(data).next("push-result-verifier", "EXPIRED") == FAILURE


def test_every_node_type_loads_with_its_defaults() -> None:
    for name, node_type in REGISTRY.items():
        config = {"nodes": [{"nodeType": "ValidatedUsernameNode"}]} if name == "PageNode" else {}
        parsed = node_type.parse(config)
        assert node_type.outcomes(parsed), name
