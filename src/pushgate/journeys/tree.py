"""Journey trees as data: JSON close to an AM journey export, validated when loaded (seed
002; issue 9). Pure.

    {"_id": "PushAuthentication", "description": "...", "entryNodeId": "<id>",
     "nodes": {"<id>": {"nodeType": "PushAuthenticationSenderNode", "displayName": "...",
                        "config": {...}, "connections": {"SENT": "<id>", ...}}}}

A connection leads to a node of the tree or to one of AM's two terminals, Success
(`70e691a5-…`) and Failure (`e301438c-…`). Every outcome a node has with its configuration
must be connected, and only those; every problem is a `TreeError` that names the node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.errors import InvalidRequest
from pushgate.journeys.nodes import REGISTRY
from pushgate.journeys.nodes.base import ConfigError, NodeType

SUCCESS = "70e691a5-1e33-4ac3-a356-e7b6d60d92e0"
FAILURE = "e301438c-0bd0-429c-ab0c-66126501069a"
TERMINALS = {SUCCESS: "Success", FAILURE: "Failure"}
MAX_TREE_BYTES = 256 * 1024
MAX_NODES = 200
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NODE_KEYS = {"nodeType", "displayName", "config", "connections", "x", "y"}
_TREE_KEYS = {"_id", "description", "entryNodeId", "nodes", "staticNodes", "uiConfig", "enabled"}


class TreeError(InvalidRequest):
    """A tree that cannot be loaded; the message says where and why."""


@dataclass(frozen=True, slots=True)
class TreeNode:
    id: str
    type: NodeType[Any]
    config: Any
    connections: Mapping[str, str]
    display_name: str


@dataclass(frozen=True, slots=True)
class Tree:
    name: str
    description: str
    entry: str
    nodes: Mapping[str, TreeNode]
    source: Mapping[str, Any]  # the JSON it was loaded from, for export

    def next(self, node_id: str, outcome: str) -> str:
        target = self.nodes[node_id].connections.get(outcome)
        if target is None:  # the node returned an outcome its configuration does not have
            raise ConfigError(f"node {node_id} has no connection for outcome {outcome!r}")
        return target

    def to_json(self) -> str:
        return json.dumps(self.source, indent=2, ensure_ascii=False) + "\n"


def check_tree_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TreeError(
            "a journey name is 1-64 letters, digits, spaces, '_', '.' or '-', starting with a"
            " letter or digit"
        )
    return name


def _node(node_id: str, entry: object) -> TreeNode:
    where = f"node {node_id}"
    if not _NODE_ID.fullmatch(node_id) or node_id in TERMINALS:
        raise TreeError(f"{where}: a node id is 1-64 letters, digits, '_', '.' or '-'")
    if not isinstance(entry, Mapping):
        raise TreeError(f"{where}: must be an object")
    unknown = set(entry) - _NODE_KEYS
    if unknown:
        raise TreeError(f"{where}: unknown property {sorted(unknown)[0]!r}")
    type_name = entry.get("nodeType")
    node_type = REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if node_type is None:
        raise TreeError(f"{where}: unknown node type {type_name!r}")
    where = f"node {node_id} ({node_type.name})"
    try:
        config = node_type.parse(entry.get("config", {}) or {})
    except ConfigError as exc:
        raise TreeError(f"{where}: {exc}") from None
    connections = entry.get("connections", {})
    if not isinstance(connections, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in connections.items()
    ):
        raise TreeError(f"{where}: connections must map outcomes to node ids")
    expected = node_type.outcomes(config)
    for outcome in connections:
        if outcome not in expected:
            allowed = ", ".join(expected)
            raise TreeError(f"{where}: it has no outcome {outcome!r} (it has {allowed})")
    for outcome, label in expected.items():
        if outcome not in connections:
            raise TreeError(f"{where}: outcome {outcome!r} ({label}) is not connected")
    display = entry.get("displayName", node_type.display)
    if not isinstance(display, str) or len(display) > 128:
        raise TreeError(f"{where}: displayName must be text of at most 128 characters")
    return TreeNode(node_id, node_type, config, dict(connections), display)


def load_tree(source: str | bytes | Mapping[str, Any]) -> Tree:
    """A tree from its JSON (text or parsed); TreeError for anything that would not run."""
    if isinstance(source, str | bytes):
        if len(source) > MAX_TREE_BYTES:
            raise TreeError(f"a journey is at most {MAX_TREE_BYTES // 1024} KB of JSON")
        try:
            data = json.loads(source)
        except ValueError as exc:
            raise TreeError(f"the journey is not JSON: {exc}") from None
    else:
        data = source
    if not isinstance(data, Mapping):
        raise TreeError("a journey must be a JSON object")
    unknown = set(data) - _TREE_KEYS
    if unknown:
        raise TreeError(f"unknown journey property {sorted(unknown)[0]!r}")
    name = check_tree_name(data.get("_id"))  # type: ignore[arg-type]
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 1024:
        raise TreeError("description must be text of at most 1024 characters")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        raise TreeError("nodes must be an object of at least one node")
    if len(raw_nodes) > MAX_NODES:
        raise TreeError(f"a journey has at most {MAX_NODES} nodes")
    nodes = {node_id: _node(str(node_id), entry) for node_id, entry in raw_nodes.items()}
    entry = data.get("entryNodeId")
    if not isinstance(entry, str) or not entry:
        raise TreeError("the journey has no start: entryNodeId is missing")
    if entry not in nodes:
        raise TreeError(f"entryNodeId {entry!r} is not a node of the journey")
    for node in nodes.values():
        for outcome, target in node.connections.items():
            if target not in nodes and target not in TERMINALS:
                raise TreeError(
                    f"node {node.id} ({node.type.name}): outcome {outcome!r} leads to"
                    f" {target!r}, which is neither a node nor Success or Failure"
                )
    return Tree(name, description, entry, nodes, json.loads(json.dumps(data)))
