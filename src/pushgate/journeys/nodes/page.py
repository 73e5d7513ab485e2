"""Page node (`PageNode`): the callbacks of several input nodes on one page, one submission
for all of them (seed 002: the credentials page of the example journey)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pushgate.journeys.callbacks import Callback, Shown
from pushgate.journeys.locale import Localized
from pushgate.journeys.nodes import password, username
from pushgate.journeys.nodes.base import (
    SINGLE,
    ConfigError,
    NodeContext,
    NodeType,
    Outcome,
    Perform,
    Reader,
    Show,
    Step,
    single_outcome,
)

# The nodes a page may hold: input collectors with one outcome and no effects.
CHILDREN: Mapping[str, NodeType[Any]] = {
    t.name: t
    for t in (username.PLATFORM, username.COLLECTOR, password.PLATFORM, password.COLLECTOR)
}
MAX_CHILDREN = 16


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    type: NodeType[Any]
    config: object


@dataclass(frozen=True, slots=True)
class PageConfig:
    children: tuple[Child, ...]
    header: Localized
    description: Localized
    stage: str


def _child(entry: object, position: int) -> Child:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"nodes[{position}] must be an object")
    node_type = CHILDREN.get(str(entry.get("nodeType")))
    if node_type is None:
        names = ", ".join(sorted(CHILDREN))
        raise ConfigError(f"nodes[{position}]: a page holds only {names}")
    child_id = entry.get("_id", f"{position}")
    if not isinstance(child_id, str) or not child_id:
        raise ConfigError(f"nodes[{position}]._id must be text")
    unknown = set(entry) - {"_id", "nodeType", "displayName", "config"}
    if unknown:
        raise ConfigError(f"nodes[{position}]: unknown property {sorted(unknown)[0]!r}")
    try:
        config = node_type.parse(entry.get("config", {}))
    except ConfigError as exc:
        raise ConfigError(f"nodes[{position}] ({node_type.name}): {exc}") from None
    return Child(child_id, node_type, config)


def parse(data: Mapping[str, Any]) -> PageConfig:
    reader = Reader(data)
    entries = reader.value("nodes", [])
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_CHILDREN:
        raise ConfigError(f"nodes must be a list of 1 to {MAX_CHILDREN} nodes")
    children = tuple(_child(entry, i) for i, entry in enumerate(entries))
    config = PageConfig(
        children,
        reader.localized("pageHeader", ""),
        reader.localized("pageDescription", ""),
        reader.string("stage", ""),
    )
    reader.done()
    return config


def _visit(ctx: NodeContext[PageConfig], child: Child, inputs: Any) -> Step:
    return child.type.process(
        NodeContext(child.id, child.config, ctx.state, inputs, ctx.now_ms, ctx.request)
    )


def process(ctx: NodeContext[PageConfig]) -> Step:
    callbacks: list[Callback] = []
    counts: list[int] = []
    for child in ctx.config.children:
        step = _visit(ctx, child, None)
        assert isinstance(step, Show)  # collectors show their callback when not answered
        callbacks.extend(step.shown.callbacks)
        counts.append(len(step.shown.callbacks))
    page = Shown(
        tuple(callbacks),
        header=ctx.text(ctx.config.header) or None,
        description=ctx.text(ctx.config.description) or None,
        stage=ctx.config.stage or None,
    )
    if ctx.inputs is None or len(ctx.inputs) != len(callbacks):
        return Show(page, ctx.state)
    state, offset = ctx.state, 0
    for child, count in zip(ctx.config.children, counts, strict=True):
        step = _visit(replace(ctx, state=state), child, ctx.inputs[offset : offset + count])
        offset += count
        if isinstance(step, Show):  # one of them wants its input again: the page again
            return Show(page, ctx.state)
        assert not isinstance(step, Perform)
        state = step.state
    return Outcome(SINGLE, state)


PAGE = NodeType("PageNode", "Page Node", parse, single_outcome, process)
