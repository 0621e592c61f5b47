"""Validation of a workflow against the node catalog, before anything runs.

Every problem is reported at once, each with the node id, the input name, a stable
machine-readable `code` and a sentence a person can act on. The codes:

    unknown_type, unknown_input, missing_input, missing_node, missing_output,
    type_mismatch, wrong_type, out_of_range, invalid_choice, cycle, no_output,
    unknown_param, invalid_param_value, bypass_impossible, unknown_target
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import networkx as nx

from nodegraph.errors import Problem
from nodegraph.node import Input, Node
from nodegraph.registry import Registry
from nodegraph.types import compatible, literal_matches, parse_text_value


def is_link(value: Any) -> bool:
    return isinstance(value, dict) and "from" in value


def validate(document: dict, registry: Registry, targets: Iterable[str] | None = None) -> list[Problem]:
    """Return every problem of a schema-checked workflow document; an empty list means valid."""
    nodes: dict[str, dict] = document.get("nodes", {})
    problems: list[Problem] = []

    for node_id, node in nodes.items():
        node_type = registry.get(node["type"])
        if node_type is None:
            problems.append(_unknown_type(registry, node_id, node["type"]))
            continue
        problems.extend(_check_inputs(node_id, node, node_type, nodes, registry))
        if node.get("mode") == "bypass":
            problems.extend(_check_bypass(node_id, node_type))

    problems.extend(_check_cycles(nodes))
    problems.extend(_check_params(document, registry))
    problems.extend(_check_outputs(nodes, registry, targets))
    return problems


def _unknown_type(registry: Registry, node_id: str, type_id: str) -> Problem:
    suggestions = registry.suggest(type_id)
    hint = f"; did you mean {' or '.join(repr(name) for name in suggestions)}?" if suggestions else \
        "; run `nodegraph nodes` to list the node types, or install the node pack that defines it"
    return Problem("unknown_type", f"unknown node type {type_id!r}{hint}", node_id)


def _check_inputs(node_id: str, node: dict, node_type: type[Node], nodes: dict[str, dict], registry: Registry) -> list[Problem]:
    problems = []
    given: dict[str, Any] = node.get("inputs", {})
    type_id = node_type.type_id

    for name in given:
        if node_type.input_spec(name) is None:
            known = ", ".join(spec.name for spec in node_type.inputs) or "none"
            problems.append(Problem("unknown_input", f"{type_id} has no input {name!r}; its inputs are: {known}", node_id, name))

    for spec in node_type.inputs:
        if spec.name not in given:
            if spec.required and not spec.has_default:
                how = "connect an output to it" if not spec.accepts_literal else "give it a value or connect an output to it"
                problems.append(Problem("missing_input", f"required input {spec.name!r} ({spec.type}) of {type_id} is missing; {how}", node_id, spec.name))
            continue
        value = given[spec.name]
        if is_link(value):
            problems.extend(_check_link(node_id, spec, value["from"], nodes, registry))
        else:
            problems.extend(check_literal(node_id, type_id, spec, value))
    return problems


def _check_link(node_id: str, spec: Input, source: list, nodes: dict[str, dict], registry: Registry) -> list[Problem]:
    source_id, output_name = source
    where = f"{node_id}.{spec.name}"
    if source_id not in nodes:
        return [Problem("missing_node", f"input {where} links to node {source_id!r}, which is not in the workflow; "
                        "connect it to an existing node", node_id, spec.name)]
    source_type = registry.get(nodes[source_id]["type"])
    if source_type is None:
        return []  # reported as unknown_type on the source node
    output = source_type.output_spec(output_name)
    if output is None:
        known = ", ".join(item.name for item in source_type.outputs) or "none"
        return [Problem("missing_output", f"input {where} links to output {output_name!r} of {source_id} ({source_type.type_id}), "
                        f"which has no such output; its outputs are: {known}", node_id, spec.name)]
    if not compatible(output.type, spec.type):
        return [Problem("type_mismatch", f"input {where} takes {spec.type}, but {source_id}.{output_name} gives {output.type}; "
                        f"connect an output of type {spec.type}", node_id, spec.name)]
    return []


def check_literal(node_id: str | None, type_id: str, spec: Input, value: Any) -> list[Problem]:
    """Check a literal value against an input's type, limits and choices."""
    shown = _show(value)
    if not spec.accepts_literal:
        return [Problem("wrong_type", f"input {spec.name!r} of {type_id} takes a link of type {spec.type}, not the value {shown}; "
                        "connect an output to it", node_id, spec.name)]
    if not literal_matches(spec.type, value):
        return [Problem("wrong_type", f"input {spec.name!r} of {type_id} expects {_type_phrase(spec.type)}, got {shown}", node_id, spec.name)]
    if spec.type in ("INT", "FLOAT"):
        if spec.min is not None and value < spec.min:
            return [Problem("out_of_range", f"input {spec.name!r} of {type_id} is {shown}, below the minimum {spec.min}", node_id, spec.name)]
        if spec.max is not None and value > spec.max:
            return [Problem("out_of_range", f"input {spec.name!r} of {type_id} is {shown}, above the maximum {spec.max}", node_id, spec.name)]
    if spec.choices is not None and not spec.open_choices:
        choices = spec.choice_list() or []
        if value not in choices:
            listed = ", ".join(repr(choice) for choice in choices[:20])
            return [Problem("invalid_choice", f"input {spec.name!r} of {type_id} is {shown}, which is not one of: {listed}", node_id, spec.name)]
    return []


def _type_phrase(port_type: str) -> str:
    return {"INT": "an integer (INT)", "FLOAT": "a number (FLOAT)", "STRING": "text (STRING)", "BOOLEAN": "true or false (BOOLEAN)"}.get(port_type, port_type)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_bypass(node_id: str, node_type: type[Node]) -> list[Problem]:
    problems = []
    for output in node_type.outputs:
        if not any(spec.type == output.type for spec in node_type.inputs):
            problems.append(Problem("bypass_impossible", f"{node_type.type_id} cannot be bypassed: output {output.name!r} ({output.type}) "
                                    "has no input of the same type to pass through; set its mode to active or mute", node_id))
    return problems


def dependency_graph(nodes: dict[str, dict]) -> nx.DiGraph:
    """Return the graph with an edge from each link's source node to its consumer (existing nodes only)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for node_id, node in nodes.items():
        for value in node.get("inputs", {}).values():
            if is_link(value) and value["from"][0] in nodes:
                graph.add_edge(value["from"][0], node_id)
    return graph


def _check_cycles(nodes: dict[str, dict]) -> list[Problem]:
    graph = dependency_graph(nodes)
    problems = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        cycle = [edge[0] for edge in nx.find_cycle(graph.subgraph(component))]
        path = " → ".join([*cycle, cycle[0]])
        problems.append(Problem("cycle", f"the workflow has a cycle: {path}; remove one of these links", cycle[0]))
    return problems


def _check_params(document: dict, registry: Registry) -> list[Problem]:
    nodes = document.get("nodes", {})
    problems = []
    for param, (node_id, input_name) in document.get("params", {}).items():
        if node_id not in nodes:
            problems.append(Problem("unknown_param", f"param {param!r} targets node {node_id!r}, which is not in the workflow; "
                                    "fix the params section", node_id, input_name))
            continue
        node_type = registry.get(nodes[node_id]["type"])
        if node_type is not None and node_type.input_spec(input_name) is None:
            problems.append(Problem("unknown_param", f"param {param!r} targets input {input_name!r}, which {node_type.type_id} does not have",
                                    node_id, input_name))
    return problems


def _check_outputs(nodes: dict[str, dict], registry: Registry, targets: Iterable[str] | None) -> list[Problem]:
    if targets is not None:
        return [Problem("unknown_target", f"target node {target!r} is not in the workflow", target)
                for target in targets if target not in nodes]
    for node in nodes.values():
        node_type = registry.get(node["type"])
        if node_type is not None and node_type.output_node and node.get("mode", "active") == "active":
            return []
    return [Problem("no_output", "the workflow has no active output node, so running it would compute nothing; "
                    "add an output node such as ShowText or SaveImage")]


def resolve_param_target(document: dict, name: str) -> tuple[str, str] | None:
    """Return the (node, input) a param name or a `node.input` reference targets, or None."""
    params = document.get("params", {})
    if name in params:
        return tuple(params[name])
    node_id, dot, input_name = name.rpartition(".")
    if dot and node_id in document.get("nodes", {}):
        return node_id, input_name
    return None


def apply_params(document: dict, registry: Registry, values: dict[str, Any], as_text: bool = False) -> tuple[dict, list[Problem]]:
    """Return a copy of the document with param values set on their target inputs.

    Args:
        values: param name (or `node.input`) to value.
        as_text: the values are text from a command line; convert each by the target input's type.

    Returns:
        The new document and the problems found (unknown param, unconvertible or invalid value).
    """
    problems: list[Problem] = []
    nodes = dict(document.get("nodes", {}))
    for name, value in values.items():
        target = resolve_param_target(document, name)
        if target is None:
            known = ", ".join(document.get("params", {})) or "none"
            problems.append(Problem("unknown_param", f"unknown param {name!r}; this workflow's params are: {known} "
                                    "(or use node.input)"))
            continue
        node_id, input_name = target
        node = nodes.get(node_id)
        node_type = registry.get(node["type"]) if node else None
        spec = node_type.input_spec(input_name) if node_type else None
        if spec is None:
            problems.append(Problem("unknown_param", f"param {name!r} targets {node_id}.{input_name}, which does not exist", node_id, input_name))
            continue
        if as_text or (isinstance(value, str) and spec.type in ("INT", "FLOAT", "BOOLEAN")):
            try:
                value = parse_text_value(spec.type, value)
            except ValueError as error:
                problems.append(Problem("invalid_param_value", f"param {name!r} ({node_id}.{input_name}, {spec.type}): {error}", node_id, input_name))
                continue
        found = check_literal(node_id, node_type.type_id, spec, value)
        if found:
            problems.extend(Problem("invalid_param_value", f"param {name!r}: {problem.message}", node_id, input_name) for problem in found)
            continue
        node = dict(node)
        node["inputs"] = {**node.get("inputs", {}), input_name: value}
        nodes[node_id] = node
    return {**document, "nodes": nodes}, problems
