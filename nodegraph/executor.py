"""The executor: demand-driven, lazy, branch-aware and cached evaluation of a workflow.

A run starts from the requested outputs and evaluates only what they need, with an
explicit stack rather than recursion, so a 10,000-node chain runs without touching
the interpreter's recursion limit. Each node of the workflow ends the run with one
outcome: executed, cached, skipped (with a reason) or failed.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from nodegraph import document as workflow_document
from nodegraph.cache import OutputCache
from nodegraph.context import NodeContext, RunServices
from nodegraph.errors import Interrupted, NodeError, Problem, WorkflowInvalid
from nodegraph.events import summarize
from nodegraph.graph import CompiledGraph, CompiledNode, compile_graph, node_key
from nodegraph.models import ModelManager
from nodegraph.node import SKIPPED, Node, NodeResult
from nodegraph.registry import Registry
from nodegraph.validation import apply_params, validate

logger = logging.getLogger(__name__)

# Skip reasons, as they appear in `node.skipped` events and run records.
INACTIVE_BRANCH = "inactive_branch"
NOT_NEEDED = "not_needed"
MUTED = "muted"
BYPASSED = "bypassed"
RUN_FAILED = "run_failed"
RUN_INTERRUPTED = "run_interrupted"

EventSink = Callable[[dict], None]


@dataclass
class NodeOutcome:
    """The outcome of one node in a run: executed, cached, skipped or failed."""

    status: str
    reason: str | None = None
    seconds: float = 0.0


# Shared by every cached node; outcomes are not changed after they are recorded.
CACHED = NodeOutcome("cached")


@dataclass
class RunResult:
    """The end state of one run.

    Attributes:
        status: succeeded, failed, interrupted or invalid.
        nodes: node id to outcome, one for every node of the workflow.
        outputs: output node id to what it displays.
        values: node id to its raw outputs, for the nodes that executed or were cached.
        error: for a failed run, the node, its type, the exception type and message.
        problems: for an invalid run, every validation problem.
    """

    run_id: str
    status: str
    nodes: dict[str, NodeOutcome] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return the result as JSON, without raw values."""
        return {
            "run": self.run_id,
            "status": self.status,
            "nodes": {node_id: asdict(outcome) for node_id, outcome in self.nodes.items()},
            "outputs": self.outputs,
            "error": self.error,
            "errors": [problem.to_json() for problem in self.problems],
        }


def prepare(document: Any, registry: Registry, params: dict[str, Any] | None = None, params_as_text: bool = False,
            targets: Iterable[str] | None = None) -> tuple[dict | None, list[Problem]]:
    """Check, migrate, apply params to and validate a parsed workflow document.

    Returns the runnable document (None when the document itself is unusable) and the problems found.
    """
    try:
        document = workflow_document.check(document)
    except WorkflowInvalid as invalid:
        return None, invalid.problems
    problems: list[Problem] = []
    if params:
        document, problems = apply_params(document, registry, params, as_text=params_as_text)
    problems.extend(validate(document, registry, targets))
    return document, problems


@dataclass
class Plan:
    """Prepared workflow: the checked document, its problems, and once compiled, its graph and keys.

    Keys are kept only when no node computes a fingerprint at run time, so they depend on
    the document alone.
    """

    document: dict | None
    problems: list[Problem]
    graph: CompiledGraph | None = None
    keys: dict[str, str] | None = None
    cacheable: dict[str, bool] | None = None


# Prepared plans kept per executor, so a re-run of an unchanged workflow skips
# validation, compilation and key hashing.
MAX_PLANS = 16


def _digest(request: tuple) -> tuple[str, bytes] | None:
    """Return a digest of a run request and its serialized form, or None when it contains non-JSON objects."""
    try:
        data = marshal.dumps(request)
    except ValueError:
        return None
    return hashlib.blake2b(data, digest_size=16).hexdigest(), data


class Executor:
    """Runs workflows; keeps the output cache and the model manager between runs.

    One executor may run several workflows at once from different threads; each run has
    its own interruption flag.
    """

    def __init__(self, registry: Registry, *, models: ModelManager | None = None, cache: OutputCache | None = None,
                 output_dir: Path | str = "output", input_dir: Path | str = ".", temp_dir: Path | str | None = None):
        self.registry = registry
        self.models = models if models is not None else ModelManager()
        self.cache = cache if cache is not None else OutputCache()
        self.output_dir = Path(output_dir)
        self.input_dir = Path(input_dir)
        self.temp_dir = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir()) / "nodegraph"
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._plans_lock = threading.Lock()

    def plan(self, document: Any, params: dict[str, Any] | None = None, params_as_text: bool = False,
             targets: Iterable[str] | None = None) -> Plan:
        """Prepare a run request, reusing the plan of an identical earlier request.

        A reused plan keeps a private copy of the document (a marshal round trip), so later
        changes to the caller's document cannot leak into it. A request that marshal cannot
        serialize is prepared afresh and not kept.
        """
        targets = list(targets) if targets is not None else None
        digested = _digest((document, params, params_as_text, targets))
        if digested is None:
            return Plan(*prepare(document, self.registry, params, params_as_text, targets))
        digest, data = digested
        with self._plans_lock:
            plan = self._plans.get(digest)
            if plan is not None:
                self._plans.move_to_end(digest)
                return plan
        private = marshal.loads(data)
        plan = Plan(*prepare(private[0], self.registry, private[1], params_as_text, targets))
        with self._plans_lock:
            self._plans[digest] = plan
            while len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        return plan

    def run(self, document: Any, *, params: dict[str, Any] | None = None, params_as_text: bool = False,
            targets: list[str] | None = None, run_id: str | None = None, on_event: EventSink | None = None,
            interrupt: threading.Event | None = None, validated: bool = False) -> RunResult:
        """Validate and run a workflow document.

        Args:
            document: the parsed workflow document.
            params: param name (or `node.input`) to value, applied before validation.
            params_as_text: the param values are text to convert by each input's type.
            targets: node ids to evaluate; by default every active output node.
            run_id: the run's id; a new one is made when None.
            on_event: called with each event dict, from the thread running the workflow.
            interrupt: set it from another thread to stop the run between nodes or sampler steps.
            validated: the document was already prepared with `prepare` (skips a second validation).

        Returns:
            The run's result; the method itself raises only for programmer errors.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        emit = on_event if on_event is not None else _ignore
        if validated:
            plan = Plan(document, [])
        else:
            plan = self.plan(document, params, params_as_text, targets)
            if plan.problems:
                problems = plan.problems
                logger.info("run %s is invalid: %d problems", run_id, len(problems))
                emit({"event": "run.invalid", "run": run_id, "time": time.time(), "errors": [problem.to_json() for problem in problems]})
                return RunResult(run_id, "invalid", problems=problems, params=dict(params or {}))
        run = _Run(self, plan, run_id, emit, interrupt or threading.Event(), targets, dict(params or {}))
        return run.execute()


def _ignore(event: dict) -> None:
    pass


class _Run:
    """The state of one run while it executes."""

    def __init__(self, executor: Executor, plan: Plan, run_id: str, emit: EventSink, interrupt: threading.Event,
                 targets: list[str] | None, params: dict[str, Any]):
        self.executor = executor
        self.plan = plan
        self.cache = executor.cache
        self.run_id = run_id
        self.emit = emit
        self.quiet = emit is _ignore
        document = plan.document
        if plan.graph is None:
            plan.graph = compile_graph(document, executor.registry)
        self.graph: CompiledGraph = plan.graph
        self.services = RunServices(
            run_id=run_id, models=executor.models, output_dir=executor.output_dir, input_dir=executor.input_dir,
            temp_dir=executor.temp_dir, interrupt=interrupt, emit=emit, workflow=document, params=params,
        )
        self.targets = targets if targets is not None else [
            node_id for node_id, node in self.graph.nodes.items() if node.node_type.output_node and node.mode == "active"
        ]
        self.results: dict[str, dict[str, Any] | None] = {}  # None for a skipped node
        self.outcomes: dict[str, NodeOutcome] = {}
        self.displays: dict[str, Any] = {}
        self.keys: dict[str, str] = {}
        self.cacheable: dict[str, bool] = {}

    # 1. Keys ---------------------------------------------------------------

    def compute_keys(self) -> None:
        if self.plan.keys is not None:
            self.keys, self.cacheable = self.plan.keys, self.plan.cacheable
            return
        dynamic = False
        for node_id in self.graph.order:
            node = self.graph.nodes[node_id]
            fingerprint = ""
            if node.node_type.fingerprint is not Node.fingerprint or not node.node_type.deterministic:
                dynamic = True
                instance = node.node_type()
                fingerprint = instance.fingerprint(self.context(node), dict(node.literals))
            cacheable = fingerprint is not None and all(self.cacheable[source] for source, _ in node.links.values())
            self.cacheable[node_id] = cacheable
            self.keys[node_id] = node_key(node, self.keys, fingerprint or "") if cacheable else uuid.uuid4().hex
        if not dynamic:
            self.plan.keys, self.plan.cacheable = self.keys, self.cacheable

    # 2. The run ------------------------------------------------------------

    def execute(self) -> RunResult:
        started = time.perf_counter()
        logger.info("run %s started: %d nodes, %d targets", self.run_id, len(self.graph.nodes), len(self.targets))
        self.event("run.started", nodes=len(self.graph.nodes))
        status, error, end_reason = "succeeded", None, NOT_NEEDED
        try:
            self.compute_keys()
            self.evaluate()
        except Interrupted:
            status, end_reason = "interrupted", RUN_INTERRUPTED
        except _NodeFailure as failure:
            status, error, end_reason = "failed", failure.error, RUN_FAILED

        for node_id in self.graph.order:
            if node_id not in self.outcomes:
                mode = self.graph.nodes[node_id].mode
                inactive = self.inactive_input(node_id) if end_reason == NOT_NEEDED else None
                if mode != "active":
                    self.skip(node_id, MUTED if mode == "mute" else BYPASSED)
                elif inactive is not None:
                    self.skip(node_id, INACTIVE_BRANCH, inactive)
                else:
                    self.skip(node_id, end_reason)
        self.release_all()

        seconds = time.perf_counter() - started
        if logger.isEnabledFor(logging.DEBUG):
            hits = sorted(node_id for node_id, outcome in self.outcomes.items() if outcome is CACHED)
            logger.debug("run %s: %d nodes served from the cache: %s", self.run_id, len(hits), ", ".join(hits[:50]))
        logger.info("run %s %s in %.3f s", self.run_id, status, seconds)
        fields: dict[str, Any] = {"seconds": round(seconds, 4), "outputs": {key: value for key, value in self.displays.items()}}
        if error is not None:
            fields["error"] = error
        self.event(f"run.{status}", **fields)
        values = {node_id: outputs for node_id, outputs in self.results.items() if outputs is not None}
        return RunResult(self.run_id, status, self.outcomes, dict(self.displays), values, error, params=self.services.params)

    def evaluate(self) -> None:
        nodes = self.graph.nodes
        interrupt = self.services.interrupt
        pending_lazy: dict[str, tuple[Node, dict[str, Any]]] = {}
        stack = list(reversed(self.targets))

        while stack:
            node_id = stack[-1]
            if node_id in self.outcomes:
                stack.pop()
                continue
            if interrupt.is_set():
                raise Interrupted(self.run_id)
            node = nodes[node_id]

            if node_id in pending_lazy:
                instance, values = pending_lazy[node_id]
            else:
                # First visit: mode, cache, then the non-lazy inputs.
                if node.mode != "active":
                    stack.pop()
                    self.skip(node_id, MUTED if node.mode == "mute" else BYPASSED)
                    continue
                if self.try_cache(node_id):
                    stack.pop()
                    continue
                waiting = [source for name, (source, _) in node.links.items()
                           if source not in self.outcomes and not node.node_type.input_spec(name).lazy]
                if waiting:
                    stack.extend(waiting)
                    continue
                values, skipped_input = self.gather(node)
                if skipped_input is not None:
                    stack.pop()
                    source, output = node.links[skipped_input]
                    self.skip(node_id, INACTIVE_BRANCH, f"input {skipped_input!r} comes from {source}.{output}, which is inactive")
                    continue
                instance = node.node_type()
                if any(spec.lazy for spec in node.node_type.inputs):
                    pending_lazy[node_id] = (instance, values)

            if node_id in pending_lazy:
                # Lazy inputs: ask the node what it still needs, evaluate that, ask again.
                needed = [name for name in instance.needed_inputs(self.context(node), values)
                          if name not in values and name in node.links]
                waiting = [node.links[name][0] for name in needed if node.links[name][0] not in self.outcomes]
                if waiting:
                    stack.extend(waiting)
                    continue
                if needed:
                    for name in needed:
                        values[name] = self.read(node.links[name])
                    continue
                del pending_lazy[node_id]

            stack.pop()
            self.execute_node(node, instance, values)

    def gather(self, node: CompiledNode) -> tuple[dict[str, Any], str | None]:
        """Collect literal and non-lazy linked inputs; return the name of a required input that is skipped, if any."""
        values = dict(node.literals)
        for spec in node.node_type.inputs:
            # A lazy input with neither link nor value reads as skipped, so the node can tell it was asked.
            if spec.lazy and spec.name not in values and spec.name not in node.links:
                values[spec.name] = SKIPPED
        for name, link in node.links.items():
            spec = node.node_type.input_spec(name)
            if spec.lazy:
                continue
            value = self.read(link)
            if value is SKIPPED:
                if spec.required:
                    return values, name
                continue
            values[name] = value
        return values, None

    def inactive_input(self, node_id: str) -> str | None:
        """Describe a required input of an unvisited node that comes from an inactive branch, if any."""
        node = self.graph.nodes[node_id]
        for name, (source, output) in node.links.items():
            if not node.node_type.input_spec(name).required:
                continue
            outcome = self.outcomes.get(source)
            if outcome is None:
                continue
            if outcome.status in ("executed", "cached") and output not in (self.results.get(source) or {}):
                return f"input {name!r} comes from {source}.{output}, which is inactive"
            if outcome.status == "skipped" and outcome.reason == INACTIVE_BRANCH:
                return f"input {name!r} comes from {source}, which is skipped"
        return None

    def read(self, link: tuple[str, str]) -> Any:
        outputs = self.results.get(link[0])
        if outputs is None or link[1] not in outputs:
            return SKIPPED
        return outputs[link[1]]

    # 3. One node -----------------------------------------------------------

    def try_cache(self, node_id: str) -> bool:
        if not self.cacheable[node_id]:
            return False
        entry = self.cache.get(self.keys[node_id])
        if entry is None:
            return False
        self.record_cached(node_id, entry)

        # Report the cached ancestry too, without computing anything that is not cached.
        # This loop runs once per node of a fully cached workflow, so it is kept tight.
        nodes, outcomes, keys, cacheable, cache = self.graph.nodes, self.outcomes, self.keys, self.cacheable, self.cache
        results, displays, lookup = self.results, self.displays, cache.get
        plain = self.quiet and not self.services.release_callbacks  # no events, no callbacks to run
        stack = list(nodes[node_id].sources)
        while stack:
            source = stack.pop()
            if source in outcomes or not cacheable[source]:
                continue
            node = nodes[source]
            if node.mode != "active":
                continue
            upstream = lookup(keys[source])
            if upstream is None:
                continue
            if plain:
                results[source] = upstream.outputs
                outcomes[source] = CACHED
                if upstream.display is not None:
                    displays[source] = upstream.display
            else:
                self.record_cached(source, upstream, node)
            stack.extend(node.sources)
        return True

    def record_cached(self, node_id: str, entry, node: CompiledNode | None = None) -> None:
        node = node or self.graph.nodes[node_id]
        self.results[node_id] = entry.outputs
        self.outcomes[node_id] = CACHED
        if entry.display is not None:
            self.displays[node_id] = entry.display
        if not self.quiet:
            fields = {"outputs": {name: summarize(value) for name, value in entry.outputs.items()}}
            if entry.display is not None:
                fields["display"] = entry.display
            self.node_event("node.cached", node, **fields)
        if self.services.release_callbacks:
            self.consumer_done(node)

    def execute_node(self, node: CompiledNode, instance: Node, values: dict[str, Any]) -> None:
        ctx = self.context(node)
        if not self.quiet:
            self.node_event("node.started", node)
        started = time.perf_counter()
        try:
            result = instance.run(ctx, **{name: value for name, value in values.items() if value is not SKIPPED})
            outputs, display = self.check_result(node, result)
        except Interrupted:
            self.outcomes[node.id] = NodeOutcome("skipped", RUN_INTERRUPTED, time.perf_counter() - started)
            self.results[node.id] = None
            self.node_event("node.skipped", node, reason=RUN_INTERRUPTED)
            raise
        except Exception as error:  # a node's failure fails its run, never the process
            self.fail(node, error, values, time.perf_counter() - started)
        seconds = time.perf_counter() - started

        self.results[node.id] = outputs
        self.outcomes[node.id] = NodeOutcome("executed", seconds=seconds)
        if display is not None:
            self.displays[node.id] = display
        if self.cacheable[node.id]:
            self.cache.put(self.keys[node.id], outputs, display)
        if not self.quiet:
            fields = {"seconds": round(seconds, 6), "outputs": {name: summarize(value) for name, value in outputs.items()}}
            if display is not None:
                fields["display"] = display
            self.node_event("node.finished", node, **fields)
        self.consumer_done(node)

    def check_result(self, node: CompiledNode, result: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        display = None
        if isinstance(result, NodeResult):
            result, display = result.outputs, result.display
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise TypeError(f"{node.node_type.type_id}.run returned {type(result).__name__}, expected a dict of outputs")
        unknown = [name for name in result if node.node_type.output_spec(name) is None]
        if unknown:
            raise TypeError(f"{node.node_type.type_id}.run returned unknown outputs {unknown}")
        if not node.node_type.routes:
            missing = [spec.name for spec in node.node_type.outputs if spec.name not in result]
            if missing:
                raise TypeError(f"{node.node_type.type_id}.run returned no value for outputs {missing}")
        return result, display

    def fail(self, node: CompiledNode, error: Exception, values: dict[str, Any], seconds: float) -> None:
        message = str(error) or type(error).__name__
        if isinstance(error, NodeError):
            logger.info("run %s: node %s (%s) failed: %s", self.run_id, node.id, node.node_type.type_id, message)
        else:
            logger.error("run %s: node %s (%s) failed", self.run_id, node.id, node.node_type.type_id, exc_info=error)
        self.outcomes[node.id] = NodeOutcome("failed", seconds=seconds)
        self.results[node.id] = None
        details = {"node": node.id, "type": node.node_type.type_id, "error_type": type(error).__name__, "message": message}
        self.node_event("node.failed", node, error_type=details["error_type"], message=message,
                        inputs={name: summarize(value) for name, value in values.items()})
        raise _NodeFailure(details) from error

    def skip(self, node_id: str, reason: str, detail: str | None = None) -> None:
        node = self.graph.nodes[node_id]
        self.outcomes[node_id] = NodeOutcome("skipped", reason)
        self.results[node_id] = None
        if not self.quiet:
            fields = {"reason": reason}
            if detail:
                fields["detail"] = detail
            self.node_event("node.skipped", node, **fields)
        self.consumer_done(node)

    # 4. Services -----------------------------------------------------------

    def context(self, node: CompiledNode) -> NodeContext:
        def emit_node_event(name: str, **fields: Any) -> None:
            self.node_event(name, node, **fields)

        return NodeContext(self.services, node.id, node.node_type.type_id, emit_node_event)

    def consumer_done(self, node: CompiledNode) -> None:
        """Run the release callbacks of this node's sources whose consumers have all ended."""
        callbacks = self.services.release_callbacks
        if not callbacks:
            return
        for source, _ in node.links.values():
            if source in callbacks and all(consumer in self.outcomes for consumer in self.graph.nodes[source].consumers):
                self.call_release(source)

    def call_release(self, node_id: str) -> None:
        for callback in self.services.release_callbacks.pop(node_id, []):
            try:
                callback()
            except Exception:
                logger.exception("run %s: release callback of node %s failed", self.run_id, node_id)

    def release_all(self) -> None:
        for node_id in list(self.services.release_callbacks):
            self.call_release(node_id)

    def event(self, name: str, **fields: Any) -> None:
        if self.quiet:
            return
        self.emit({"event": name, "run": self.run_id, "time": time.time(), **fields})

    def node_event(self, name: str, node: CompiledNode, **fields: Any) -> None:
        if self.quiet:
            return
        self.emit({"event": name, "run": self.run_id, "time": time.time(), "node": node.id,
                   "type": node.node_type.type_id, **fields})


class _NodeFailure(Exception):
    def __init__(self, error: dict[str, Any]):
        super().__init__(error["message"])
        self.error = error
