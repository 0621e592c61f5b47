"""The compiled graph a run executes: bypassed nodes resolved, links indexed, cache keys computed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from nodegraph.node import Node
from nodegraph.registry import Registry
from nodegraph.validation import dependency_graph, is_link

# Link after bypass resolution: (source node id, output name).
Link = tuple[str, str]


@dataclass
class CompiledNode:
    """One node ready to run.

    Attributes:
        literals: input name to literal value, including defaults of omitted inputs.
        links: input name to (source node id, output name), after bypass resolution.
        consumers: ids of the nodes that link to this one.
    """

    id: str
    node_type: type[Node]
    mode: str
    literals: dict[str, Any]
    links: dict[str, Link]
    consumers: list[str] = field(default_factory=list)
    title: str = ""
    # Ids of the nodes this one links to, once each; filled by compile_graph.
    sources: tuple[str, ...] = ()


@dataclass
class CompiledGraph:
    nodes: dict[str, CompiledNode]
    order: list[str]  # topological order of all nodes


def compile_graph(document: dict, registry: Registry) -> CompiledGraph:
    """Compile a valid workflow document; bypassed nodes are routed around."""
    raw_nodes: dict[str, dict] = document["nodes"]
    nodes: dict[str, CompiledNode] = {}
    for node_id, raw in raw_nodes.items():
        node_type = registry.get(raw["type"])
        literals: dict[str, Any] = {}
        links: dict[str, Link] = {}
        given = raw.get("inputs", {})
        for spec in node_type.inputs:
            value = given.get(spec.name, _MISSING)
            if value is _MISSING:
                if spec.has_default:
                    literals[spec.name] = spec.default
            elif is_link(value):
                links[spec.name] = (value["from"][0], value["from"][1])
            else:
                literals[spec.name] = value
        nodes[node_id] = CompiledNode(node_id, node_type, raw.get("mode", "active"), literals, links, title=raw.get("title", ""))

    _resolve_bypass(nodes)
    for node in nodes.values():
        node.sources = tuple(dict.fromkeys(source for source, _ in node.links.values()))
        for source, _ in node.links.values():
            nodes[source].consumers.append(node.id)

    order = list(nx.topological_sort(dependency_graph_of(nodes)))
    return CompiledGraph(nodes, order)


_MISSING = object()


def dependency_graph_of(nodes: dict[str, CompiledNode]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((source, node.id) for node in nodes.values() for source, _ in node.links.values())
    return graph


def _resolve_bypass(nodes: dict[str, CompiledNode]) -> None:
    """Point links to a bypassed node's output at what feeds its first input of the same type."""
    for node in nodes.values():
        for name, link in list(node.links.items()):
            seen = set()
            while link is not None and nodes[link[0]].mode == "bypass":
                bypassed = nodes[link[0]]
                if bypassed.id in seen:
                    break
                seen.add(bypassed.id)
                output_type = bypassed.node_type.output_spec(link[1]).type
                through = next(spec for spec in bypassed.node_type.inputs if spec.type == output_type)
                if through.name in bypassed.links:
                    link = bypassed.links[through.name]
                else:
                    link = None
                    del node.links[name]
                    if through.name in bypassed.literals:
                        node.literals[name] = bypassed.literals[through.name]
            if link is not None:
                node.links[name] = link


def literal_text(literals: dict[str, Any]) -> str:
    return json.dumps(literals, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)


def node_key(node: CompiledNode, upstream_keys: dict[str, str], fingerprint: str) -> str:
    """Return a node's cache key: a fixed-size hash of its type, literals and the keys of what feeds it.

    Node ids are left out, so a copy of a subgraph under other ids has the same keys.
    """
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"{node.node_type.type_id}\0{node.node_type.version}\0".encode())
    hasher.update(literal_text(node.literals).encode())
    for name in sorted(node.links):
        source, output = node.links[name]
        hasher.update(f"\0{name}\0{upstream_keys[source]}\0{output}".encode())
    if fingerprint:
        hasher.update(b"\0fingerprint\0" + fingerprint.encode())
    return hasher.hexdigest()
