"""The journey engine: runs a tree from its state and a submitted step to the next callbacks
or a terminal result (STYLE.md §3). Pure: effects leave as `Performing` values and come back
as results; `JourneyService` is the loop that performs them.

    step = start(tree, realm, now)                         # or: submit(tree, state, ...)
    while isinstance(step, Performing):
        step = resume(tree, step.run.performed(<result of step.effect>), now, request)
    # Asking(state, shown) or Finished(state, success, error)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pushgate.journeys.callbacks import InvalidCallbacks, Json, Shown, parse_submission
from pushgate.journeys.effects import Effect, Result
from pushgate.journeys.nodes.base import (
    ConfigError,
    NodeContext,
    NodeError,
    Outcome,
    Perform,
    RequestInfo,
    Show,
)
from pushgate.journeys.state import JourneyState
from pushgate.journeys.tree import FAILURE, SUCCESS, Tree

NO_REQUEST = RequestInfo()
MAX_VISITS = 64  # node visits in one step: a tree looping without callbacks ends here


@dataclass(frozen=True, slots=True)
class Run:
    """A step in progress: the node at `state.node` runs with `inputs` and `results`;
    `pending` are the effects of the last outcome, performed before the next node runs."""

    state: JourneyState
    inputs: tuple[Json, ...] | None = None
    results: tuple[Result, ...] = ()
    pending: tuple[Effect, ...] = ()
    visits: int = 0

    def performed(self, result: Result) -> Run:
        if self.pending:
            return replace(self, pending=self.pending[1:])
        return replace(self, results=(*self.results, result))


@dataclass(frozen=True, slots=True)
class Performing:
    effect: Effect
    run: Run


@dataclass(frozen=True, slots=True)
class Asking:
    state: JourneyState
    shown: Shown


@dataclass(frozen=True, slots=True)
class Finished:
    state: JourneyState
    success: bool
    error: str | None = None  # why a node failed the journey (for the log, not the wire)


Progress = Performing | Asking | Finished


def start(tree: Tree, realm: str, now_ms: int, request: RequestInfo = NO_REQUEST) -> Progress:
    state = JourneyState(realm=realm, tree=tree.name, node=tree.entry, started_ms=now_ms)
    return resume(tree, Run(state), now_ms, request)


def submit(
    tree: Tree,
    state: JourneyState,
    callbacks: object,
    now_ms: int,
    request: RequestInfo = NO_REQUEST,
) -> Progress:
    """The step after `callbacks` were submitted for what `state` showed; InvalidCallbacks
    (and nothing else happens) if they are not what was shown."""
    if state.tree != tree.name or state.node not in tree.nodes or not state.shown:
        raise InvalidCallbacks("this journey step cannot be continued")
    types = [type_ for type_, _ in state.shown]
    kinds = [kind for _, kind in state.shown]
    inputs = parse_submission(types, kinds, callbacks)
    return resume(tree, Run(state, inputs), now_ms, request)


def resume(tree: Tree, run: Run, now_ms: int, request: RequestInfo = NO_REQUEST) -> Progress:
    while True:
        if run.pending:
            return Performing(run.pending[0], run)
        node_id = run.state.node
        if node_id in (SUCCESS, FAILURE):
            return Finished(run.state.at(node_id), node_id == SUCCESS)
        if run.visits >= MAX_VISITS:
            return Finished(run.state, False, "the journey loops without showing anything")
        node = tree.nodes[node_id]
        context = NodeContext(
            node_id, node.config, run.state, run.inputs, now_ms, request, run.results
        )
        try:
            step = node.type.process(context)
            if isinstance(step, Perform):
                return Performing(step.effect, run)
            if isinstance(step, Show):
                return Asking(step.state.showing(node_id, step.shown), step.shown)
            assert isinstance(step, Outcome)
            target = tree.next(node_id, step.name)
        except (NodeError, ConfigError) as exc:
            return Finished(run.state, False, f"{node.display_name} ({node_id}): {exc}")
        run = Run(step.state.at(target), pending=step.effects, visits=run.visits + 1)
