"""Mermaid flowcharts: import a chart as a workflow, export a workflow as a chart.

Import reads `graph`/`flowchart` charts (any direction), node shapes such as `A[..]`,
`A(..)`, `A{..}` and `A((..))`, edges `-->`, `---`, `-.->` and `==>` with labels
(`-->|label|` or `-- label -->`), chains `A --> B --> C` and `A & B --> C`. Each node label
is mapped to one or more node types through `LABELS`, which lists English and Chinese
names. Every type id maps to itself as well. Ports are then inferred by type:

1. Within a mapped node of several types (e.g. quality check = PromptQuality then
   QualityBranch), each node's required inputs are fed by the nearest earlier node of the
   group that has an output of the same name, or of the same type when only links carry
   that type (a model, conditioning, image).
2. An edge connects the source's first compatible output to the target's first compatible
   input that is still unconnected. Inputs rank in this order: required without a default,
   without a default, on a node that takes links, the rest (so a loader's settings come
   last). An edge label names a router output (高质量/high, 低质量/low) or, as
   `output→input`, both ports.
3. When two edges meet at one input, a `Merge` node joins them in edge order.
4. A required input that no edge feeds is fed from the nearest upstream node with a
   compatible output; failing that, a loader is added for model inputs (`LoadLLM` for
   LLM, `LoadDiffusionModel` for DIFFUSION_MODEL).

A label that maps to nothing becomes a placeholder node whose type is
`Unmapped(<label>)`, so validation reports it by name; its edges are kept in
`extra.mermaid.unresolved_edges`. Everything inferred is listed in the returned notes.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nodegraph import document as workflow_document
from nodegraph.errors import NodegraphError
from nodegraph.node import Node
from nodegraph.registry import Registry
from nodegraph.types import compatible

# Label (lowercased, spaces and punctuation removed) to the node types it stands for, in
# wiring order. Type ids map to themselves as well (see `_types_for_label`).
LABELS: dict[str, tuple[str, ...]] = {
    # Text input.
    "文本输入": ("Text",), "输入文本": ("Text",), "提示词": ("Text",), "文本": ("Text",),
    "textinput": ("Text",), "text": ("Text",), "prompt": ("Text",), "input": ("Text",),
    # Encoding.
    "llm编码": ("LLMEncode",), "文本编码": ("LLMEncode",), "编码": ("LLMEncode",),
    "llmencode": ("LLMEncode",), "encode": ("LLMEncode",), "textencoder": ("LLMEncode",), "embed": ("LLMEncode",),
    # Quality check: a scorer and a router.
    "文本描述质量": ("PromptQuality", "QualityBranch"), "质量判断": ("PromptQuality", "QualityBranch"),
    "质量检查": ("PromptQuality", "QualityBranch"), "描述质量": ("PromptQuality", "QualityBranch"),
    "qualitycheck": ("PromptQuality", "QualityBranch"), "promptquality": ("PromptQuality", "QualityBranch"),
    "quality": ("PromptQuality", "QualityBranch"),
    # Rewriting.
    "llm调整": ("LLMRewrite",), "llm改写": ("LLMRewrite",), "改写": ("LLMRewrite",), "提示词优化": ("LLMRewrite",),
    "llmrewrite": ("LLMRewrite",), "rewrite": ("LLMRewrite",), "llmadjust": ("LLMRewrite",), "improveprompt": ("LLMRewrite",),
    # Generation.
    "llm生成": ("LLMGenerate",), "llmgenerate": ("LLMGenerate",),
    "图像生成模型": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    "图像生成": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    "文生图": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    "imagegeneration": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    "imagegenerationmodel": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    "texttoimage": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    "generateimage": ("LoadDiffusionModel", "EncodePrompt", "TextToImage"),
    # Editing.
    "图像编辑": ("ImageToImage",), "图生图": ("ImageToImage",), "imagetoimage": ("ImageToImage",), "imageedit": ("ImageToImage",),
    "风格迁移": ("StyleTransfer",), "styletransfer": ("StyleTransfer",),
    # Outputs.
    "图像输出": ("SaveImage",), "保存图像": ("SaveImage",), "输出图像": ("SaveImage",),
    "imageoutput": ("SaveImage",), "saveimage": ("SaveImage",), "output": ("SaveImage",),
    "显示文本": ("ShowText",), "文本输出": ("ShowText",), "showtext": ("ShowText",), "textoutput": ("ShowText",),
    "合并": ("Merge",), "merge": ("Merge",),
}

# Edge labels that pick a router output.
OUTPUT_LABELS = {
    "高质量": "high", "高": "high", "high": "high", "good": "high", "highquality": "high", "yes": "high", "是": "high",
    "低质量": "low", "低": "low", "low": "low", "bad": "low", "lowquality": "low", "no": "low", "否": "low",
}

# Loader node types added for model inputs that nothing feeds.
LOADERS = {"LLM": ("LoadLLM", "llm"), "DIFFUSION_MODEL": ("LoadDiffusionModel", "model")}

_PARAM = re.compile(r"^%%\s*param\s+(\S+)\s*=\s*([^\s.]+)\.(\S+)\s*$")
_LITERAL = re.compile(r"^%%\s*literal\s+([^\s.]+)\.(\S+)\s*=\s*(.*)$")
_HEADER = re.compile(r"^(?:graph|flowchart)(?:\s+(TB|TD|BT|RL|LR))?\s*;?\s*$", re.IGNORECASE)
_ID = r"[A-Za-z0-9_\u0080-\uffff][\w\-\u0080-\uffff]*"
_SHAPES = [  # (open, close, shape name); longest openers first
    ("(((", ")))", "circle"), ("((", "))", "circle"), ("([", "])", "stadium"), ("[[", "]]", "subroutine"),
    ("[(", ")]", "cylinder"), ("{{", "}}", "hexagon"), ("[/", "/]", "parallelogram"), ("[\\", "\\]", "parallelogram"),
    ("[", "]", "rect"), ("(", ")", "round"), ("{", "}", "decision"), (">", "]", "flag"),
]
_ARROW = re.compile(
    r"\s*(?:"
    r"(?P<open>--|==|-\.)\s*(?P<mid>[^-=.>|][^>]*?)\s*(?P<close>-->|==>|\.->|---)"  # A -- label --> B
    r"|(?P<arrow><?-{2,}>|<?={2,}>|<?-\.+->|-{3,}|={3,}|-\.+-|~~~)"                      # A --> B
    r")\s*(?:\|(?P<label>[^|]*)\|)?\s*"
)


class MermaidError(NodegraphError):
    """Raised for a chart that cannot be read; the message gives the line."""


@dataclass
class ChartNode:
    id: str
    label: str
    shape: str = "rect"


@dataclass
class ChartEdge:
    source: str
    target: str
    label: str = ""


@dataclass
class Chart:
    direction: str = "TD"
    nodes: dict[str, ChartNode] = field(default_factory=dict)
    edges: list[ChartEdge] = field(default_factory=list)
    # (chart node id, input name) -> literal value, from `%% literal ID.INPUT = JSON` comments.
    literals: dict[tuple[str, str], Any] = field(default_factory=dict)
    # param name -> (chart node id, input name), from `%% param NAME = ID.INPUT` comments.
    params: dict[str, tuple[str, str]] = field(default_factory=dict)


def parse(text: str) -> Chart:
    """Parse a Mermaid flowchart.

    Raises:
        MermaidError: the chart has no flowchart header or a line cannot be read.
    """
    chart = Chart()
    seen_header = False
    for number, raw in enumerate(text.splitlines(), start=1):
        param = _PARAM.match(raw.strip())
        if param:
            chart.params[param.group(1)] = (param.group(2), param.group(3))
            continue
        literal = _LITERAL.match(raw.strip())
        if literal:
            try:
                chart.literals[(literal.group(1), literal.group(2))] = json.loads(literal.group(3))
            except json.JSONDecodeError as error:
                raise MermaidError(f"line {number}: the literal value is not valid JSON: {error.msg}") from error
            continue
        line = raw.split("%%", 1)[0].strip()
        if not line:
            continue
        if not seen_header:
            match = _HEADER.match(line)
            if not match:
                raise MermaidError(f"line {number}: expected a flowchart header such as 'graph TD' or 'flowchart LR', got {line!r}")
            chart.direction = (match.group(1) or "TD").upper()
            seen_header = True
            continue
        if re.match(r"^(subgraph|end\b|classDef|class\s|style\s|linkStyle|click\s|direction\s)", line):
            continue
        for statement in line.split(";"):
            if statement.strip():
                _parse_statement(chart, statement.strip(), number)
    if not seen_header:
        raise MermaidError("the chart is empty; expected a flowchart header such as 'graph TD'")
    return chart


def _parse_statement(chart: Chart, statement: str, number: int) -> None:
    position = 0
    groups: list[list[str]] = []
    labels: list[str] = []
    while True:
        group, position = _parse_node_group(chart, statement, position, number)
        groups.append(group)
        arrow = _ARROW.match(statement, position)
        if position >= len(statement):
            break
        if not arrow or arrow.end() == position:
            raise MermaidError(f"line {number}: cannot read {statement[position:]!r}; expected an edge such as '-->'")
        labels.append((arrow.group("label") or arrow.group("mid") or "").strip().strip('"'))
        position = arrow.end()
    for index, label in enumerate(labels):
        for source in groups[index]:
            for target in groups[index + 1]:
                chart.edges.append(ChartEdge(source, target, label))


def _parse_node_group(chart: Chart, text: str, position: int, number: int) -> tuple[list[str], int]:
    ids = []
    while True:
        node_id, position = _parse_node(chart, text, position, number)
        ids.append(node_id)
        match = re.compile(r"\s*&\s*").match(text, position)
        if not match:
            return ids, position
        position = match.end()


def _parse_node(chart: Chart, text: str, position: int, number: int) -> tuple[str, int]:
    match = re.compile(r"\s*(" + _ID + r")").match(text, position)
    if not match:
        raise MermaidError(f"line {number}: expected a node id at {text[position:]!r}")
    node_id = match.group(1)
    position = match.end()
    for opener, closer, shape in _SHAPES:
        if text.startswith(opener, position):
            end = text.find(closer, position + len(opener))
            if end < 0:
                raise MermaidError(f"line {number}: node {node_id!r} opens {opener!r} without a closing {closer!r}")
            label = text[position + len(opener):end].strip()
            if len(label) >= 2 and label[0] == label[-1] == '"':
                label = label[1:-1]
            label = re.sub(r"<br\s*/?>", " ", label).strip()
            chart.nodes[node_id] = ChartNode(node_id, label or node_id, shape)
            return node_id, end + len(closer)
    chart.nodes.setdefault(node_id, ChartNode(node_id, node_id))
    return node_id, position


# Import ----------------------------------------------------------------------------


def _normalize(label: str) -> str:
    return re.sub(r"[\s\-_·:：,，.。!！?？'\"()（）]+", "", label).lower()


def _types_for_label(label: str, registry: Registry) -> tuple[str, ...] | None:
    # An exported label ends with " · TypeId"; a bare type id maps to itself.
    tail = label.rsplit("·", 1)[-1].strip()
    if tail in registry:
        return (tail,)
    normalized = _normalize(label)
    if normalized in LABELS:
        return LABELS[normalized]
    for node_type in registry:
        if _normalize(node_type.type_id) == normalized:
            return (node_type.type_id,)
    return None


@dataclass
class _Unit:
    """The workflow nodes one chart node became, in wiring order."""

    chart_id: str
    node_ids: list[str]


class _Importer:
    def __init__(self, chart: Chart, registry: Registry):
        self.chart = chart
        self.registry = registry
        self.nodes: dict[str, dict[str, Any]] = {}
        self.units: dict[str, _Unit] = {}
        self.notes: list[str] = []
        self.unresolved: list[dict[str, str]] = []
        # workflow node id -> the chart node id it came from
        self.chart_id_of: dict[str, str] = {}
        # (node id, input name) -> list of links [source node, output]
        self.feeds: dict[tuple[str, str], list[list[str]]] = {}

    def node_type(self, node_id: str) -> type[Node] | None:
        return self.registry.get(self.nodes[node_id]["type"])

    def run(self) -> dict:
        self.create_units()
        self.apply_literals()
        self.wire_units()
        self.wire_edges()
        self.insert_merges()
        self.feed_missing_inputs()
        for (node_id, input_name), links in self.feeds.items():
            self.nodes[node_id].setdefault("inputs", {})[input_name] = {"from": links[0]}
        document = workflow_document.new_document("imported chart", "Imported from a Mermaid flowchart.")
        document["nodes"] = self.nodes
        document["params"] = self.params()
        document["extra"] = {"mermaid": {"notes": self.notes}}
        if self.unresolved:
            document["extra"]["mermaid"]["unresolved_edges"] = self.unresolved
        layout(document, self.chart.direction)
        return document

    # 1. One unit per chart node.

    def create_units(self) -> None:
        for chart_node in self.chart.nodes.values():
            types = _types_for_label(chart_node.label, self.registry)
            if types is None:
                node_id = self.new_id(chart_node.id)
                self.nodes[node_id] = {"type": f"Unmapped({chart_node.label})", "title": chart_node.label}
                self.units[chart_node.id] = _Unit(chart_node.id, [node_id])
                self.chart_id_of[node_id] = chart_node.id
                self.notes.append(f"{chart_node.id} [{chart_node.label}]: no node type matches this label; "
                                  f"left as placeholder node {node_id!r}")
                continue
            missing = [type_id for type_id in types if type_id not in self.registry]
            if missing:
                raise MermaidError(f"label {chart_node.label!r} maps to {', '.join(missing)}, which this installation does not have")
            node_ids = []
            for index, type_id in enumerate(types):
                node_id = self.new_id(chart_node.id if len(types) == 1 else f"{chart_node.id}_{_snake(type_id)}")
                self.nodes[node_id] = {"type": type_id, "title": chart_node.label if len(types) == 1 else f"{chart_node.label} ({type_id})"}
                node_ids.append(node_id)
            self.units[chart_node.id] = _Unit(chart_node.id, node_ids)
            self.chart_id_of.update(dict.fromkeys(node_ids, chart_node.id))
            self.notes.append(f"{chart_node.id} [{chart_node.label}] -> {' + '.join(types)}")

    def new_id(self, base: str) -> str:
        base = re.sub(r"\W+", "_", base).strip("_") or "node"
        candidate, counter = base, 2
        while candidate in self.nodes:
            candidate, counter = f"{base}_{counter}", counter + 1
        return candidate

    def apply_literals(self) -> None:
        for (chart_id, input_name), value in self.chart.literals.items():
            unit = self.units.get(chart_id)
            if unit is None or len(unit.node_ids) != 1:
                self.notes.append(f"literal {chart_id}.{input_name} ignored: no single node {chart_id!r} in the chart")
                continue
            self.nodes[unit.node_ids[0]].setdefault("inputs", {})[input_name] = value

    def has_literal(self, node_id: str, input_name: str) -> bool:
        return input_name in self.nodes[node_id].get("inputs", {})

    # 2. Inside a unit, feed each node from the nearest earlier node of the unit.

    def wire_units(self) -> None:
        for unit in self.units.values():
            for position, node_id in enumerate(unit.node_ids):
                node_type = self.node_type(node_id)
                if node_type is None:
                    continue
                for spec in node_type.inputs:
                    if not spec.required or spec.has_default:
                        continue
                    for earlier in reversed(unit.node_ids[:position]):
                        output = self.inside_output(earlier, spec)
                        if output is not None:
                            self.connect(earlier, output, node_id, spec.name, "inside")
                            break

    def inside_output(self, node_id: str, spec: Any) -> str | None:
        """Return the output of an earlier node of the same unit that feeds `spec`: one of the
        same name, or one of a type only links carry (a model, conditioning, image)."""
        node_type = self.node_type(node_id)
        if node_type is None:
            return None
        for output in node_type.outputs:
            if not compatible(output.type, spec.type):
                continue
            if output.name == spec.name or (not spec.accepts_literal and output.type == spec.type):
                return output.name
        return None

    # 3. Chart edges between units.

    def wire_edges(self) -> None:
        for edge in self.chart.edges:
            source_unit, target_unit = self.units[edge.source], self.units[edge.target]
            source_id = source_unit.node_ids[-1]
            source_type = self.node_type(source_id)
            target_types = [self.node_type(node_id) for node_id in target_unit.node_ids]
            if source_type is None or any(item is None for item in target_types):
                self.unresolved.append({"from": edge.source, "to": edge.target, "label": edge.label})
                self.notes.append(f"edge {edge.source} -> {edge.target}: kept in extra.mermaid.unresolved_edges "
                                  "because one end is a placeholder")
                continue
            output_name, input_hint = self.ports_from_label(source_type, edge.label)
            if not self.connect_edge(edge, source_id, output_name, target_unit, input_hint):
                self.notes.append(f"edge {edge.source} -> {edge.target}: no compatible ports; not connected")

    def ports_from_label(self, source_type: type[Node], label: str) -> tuple[str | None, str | None]:
        if "→" in label or "->" in label:
            output, _, input_name = re.split(r"(→|->)", label, maxsplit=1)
            output, input_name = output.strip(), input_name.strip()
            return (output if source_type.output_spec(output) else None), (input_name or None)
        routed = OUTPUT_LABELS.get(_normalize(label))
        if routed and source_type.output_spec(routed):
            return routed, None
        if label and source_type.output_spec(label.strip()):
            return label.strip(), None
        return None, None

    def connect_edge(self, edge: ChartEdge, source_id: str, output_name: str | None, target_unit: _Unit,
                     input_hint: str | None) -> bool:
        source_type = self.node_type(source_id)
        outputs = [source_type.output_spec(output_name)] if output_name else list(source_type.outputs)
        for target_id, spec in self.ranked_inputs(target_unit, input_hint):
            for output in outputs:
                if not compatible(output.type, spec.type):
                    continue
                if (target_id, spec.name) in self.feeds and not self.merge_allowed(target_id, spec.name):
                    continue
                if self.has_literal(target_id, spec.name) and not input_hint:
                    continue
                self.connect(source_id, output.name, target_id, spec.name, f"edge {edge.source} -> {edge.target}")
                return True
        return False

    def merge_allowed(self, target_id: str, input_name: str) -> bool:
        # A second edge into an input already fed by another chart edge becomes a Merge.
        return all(self.unit_of(link[0]) != self.unit_of(target_id) for link in self.feeds[(target_id, input_name)])

    def ranked_inputs(self, unit: _Unit, input_hint: str | None) -> list[tuple[str, Any]]:
        """Order the unit's inputs as edge targets: a named input, then required ones without a
        default, then ones without a default, then inputs of nodes that take links (a loader's
        settings come last), then the rest."""
        entries = [(node_id, spec) for node_id in unit.node_ids for spec in self.node_type(node_id).inputs]
        if input_hint:
            named = [(node_id, spec) for node_id, spec in entries if spec.name == input_hint]
            if named:
                return named

        def rank(entry: tuple[str, Any]) -> int:
            node_id, spec = entry
            if spec.required and not spec.has_default:
                return 0
            if not spec.has_default:
                return 1
            if any(not item.accepts_literal for item in self.node_type(node_id).inputs):
                return 2
            return 3

        return sorted(entries, key=rank)

    def unit_of(self, node_id: str) -> str:
        """Return the chart node a workflow node came from ("" for added Merges and loaders)."""
        return self.chart_id_of.get(node_id, "")

    def connect(self, source_id: str, output: str, target_id: str, input_name: str, why: str) -> None:
        self.feeds.setdefault((target_id, input_name), []).append([source_id, output])
        self.notes.append(f"{why}: {source_id}.{output} -> {target_id}.{input_name}")

    def first_output(self, node_id: str, input_type: str) -> str | None:
        node_type = self.node_type(node_id)
        if node_type is None:
            return None
        for output in node_type.outputs:
            if compatible(output.type, input_type):
                return output.name
        return None

    # 4. Merges where two edges meet at one input.

    def insert_merges(self) -> None:
        for (target_id, input_name), links in list(self.feeds.items()):
            if len(links) < 2:
                continue
            merge_id = self.new_id(f"{target_id}_merge")
            self.nodes[merge_id] = {"type": "Merge", "title": f"merge into {input_name}"}
            chain_id = merge_id
            remaining = list(links)
            self.feeds[(chain_id, "first")] = [remaining.pop(0)]
            self.feeds[(chain_id, "second")] = [remaining.pop(0)]
            while remaining:  # more than two edges: chain Merges
                next_id = self.new_id(f"{target_id}_merge")
                self.nodes[next_id] = {"type": "Merge", "title": f"merge into {input_name}"}
                self.feeds[(next_id, "first")] = [[chain_id, "value"]]
                self.feeds[(next_id, "second")] = [remaining.pop(0)]
                chain_id = next_id
            self.feeds[(target_id, input_name)] = [[chain_id, "value"]]
            self.notes.append(f"{len(links)} edges meet at {target_id}.{input_name}: joined by Merge {merge_id!r}")

    # 5. Required inputs nothing feeds: nearest upstream compatible output, else a loader.

    def feed_missing_inputs(self) -> None:
        upstream = self.upstream_map()
        loaders: dict[str, str] = {}
        for node_id in list(self.nodes):
            node_type = self.node_type(node_id)
            if node_type is None:
                continue
            for spec in node_type.inputs:
                if (node_id, spec.name) in self.feeds or not spec.required or spec.has_default:
                    continue
                if self.has_literal(node_id, spec.name):
                    continue
                source = self.nearest_upstream(node_id, spec, upstream)
                if source is not None:
                    self.connect(source[0], source[1], node_id, spec.name, "nearest upstream")
                    continue
                if spec.type in LOADERS:
                    loader_type, output = LOADERS[spec.type]
                    if spec.type not in loaders and loader_type in self.registry:
                        loaders[spec.type] = self.new_id(_snake(loader_type))
                        self.nodes[loaders[spec.type]] = {"type": loader_type, "title": loader_type}
                        self.notes.append(f"added loader {loaders[spec.type]!r} ({loader_type})")
                    if spec.type in loaders:
                        self.connect(loaders[spec.type], output, node_id, spec.name, "loader")

    def upstream_map(self) -> dict[str, list[str]]:
        sources: dict[str, list[str]] = {}
        for (target_id, _), links in self.feeds.items():
            for source_id, _ in links:
                sources.setdefault(target_id, []).append(source_id)
        # The chart predecessors of a unit count as upstream of each of its nodes.
        for edge in self.chart.edges:
            for node_id in self.units[edge.target].node_ids:
                sources.setdefault(node_id, []).append(self.units[edge.source].node_ids[-1])
        return sources

    def nearest_upstream(self, node_id: str, spec: Any, upstream: dict[str, list[str]]) -> tuple[str, str] | None:
        # Text and numbers are not taken from the node's own unit: a quality check's router
        # wants the prompt, not the scorer's reasons.
        own_unit = self.unit_of(node_id)
        seen = {node_id}
        queue = deque(upstream.get(node_id, []))
        while queue:
            candidate = queue.popleft()
            if candidate in seen:
                continue
            seen.add(candidate)
            queue.extend(upstream.get(candidate, []))
            if spec.accepts_literal and self.unit_of(candidate) == own_unit:
                continue
            output = self.first_output(candidate, spec.type)
            if output is not None and not _routes(self.node_type(candidate)):
                return candidate, output
        return None

    def params(self) -> dict[str, list[str]]:
        if self.chart.params:
            found = {}
            for name, (chart_id, input_name) in self.chart.params.items():
                unit = self.units.get(chart_id)
                if unit is not None and len(unit.node_ids) == 1:
                    found[name] = [unit.node_ids[0], input_name]
                else:
                    self.notes.append(f"param {name!r} ignored: no single node {chart_id!r} in the chart")
            return found
        texts = [node_id for node_id, node in self.nodes.items() if node["type"] == "Text"]
        if len(texts) == 1:
            return {"prompt": [texts[0], "text"]}
        return {}


def _routes(node_type: type[Node] | None) -> bool:
    return bool(node_type and node_type.routes)


def _snake(type_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", type_id).lower()


def import_chart(text: str, registry: Registry) -> tuple[dict, list[str]]:
    """Convert a Mermaid flowchart into a workflow document.

    Returns:
        The workflow and notes saying what was mapped and inferred.

    Raises:
        MermaidError: the chart cannot be read.
    """
    chart = parse(text)
    if not chart.nodes:
        raise MermaidError("the chart has no nodes")
    importer = _Importer(chart, registry)
    document = importer.run()
    return document, importer.notes


def layout(document: dict, direction: str = "LR") -> None:
    """Place nodes in columns (LR/RL) or rows (TD/TB/BT) by their depth in the graph."""
    nodes = document["nodes"]
    depth: dict[str, int] = {}
    sources = {node_id: [value["from"][0] for value in node.get("inputs", {}).values()
                         if isinstance(value, dict) and "from" in value and value["from"][0] in nodes]
               for node_id, node in nodes.items()}
    for node_id in nodes:
        stack = [node_id]
        while stack:  # iterative longest-path depth
            current = stack[-1]
            pending = [source for source in sources[current] if source not in depth and source not in stack]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[current] = 1 + max((depth.get(source, 0) for source in sources[current]), default=-1)
    slots: dict[int, int] = {}
    for node_id in nodes:
        level = depth[node_id]
        index = slots.get(level, 0)
        slots[level] = index + 1
        across, along = level * 340, index * 200
        position = [40 + across, 40 + along] if direction in ("LR", "RL") else [40 + along * 1.6, 40 + across * 0.6]
        nodes[node_id].setdefault("ui", {})["pos"] = position


# Export ----------------------------------------------------------------------------


def export_chart(document: dict, registry: Registry | None = None) -> str:
    """Write a workflow as a Mermaid flowchart: titles and types as labels, routers as decisions.

    Literal input values and params go in `%% literal` and `%% param` comments, which
    Mermaid ignores and `import_chart` reads back, so an export imports as the same workflow.
    """
    ids: dict[str, str] = {}
    for index, node_id in enumerate(document["nodes"]):
        candidate = _mermaid_id(node_id, index)
        while candidate in ids.values():
            candidate = f"{candidate}_{index}"
        ids[node_id] = candidate
    lines = ["flowchart LR"]
    for node_id, node in document["nodes"].items():
        node_type = registry.get(node["type"]) if registry is not None else None
        title = node.get("title") or node_id
        label = f"{title} · {node['type']}".replace('"', "'")
        if node_type is not None and node_type.routes and node["type"] != "Merge":
            lines.append(f'    {ids[node_id]}{{"{label}"}}')
        elif node_type is not None and node_type.output_node:
            lines.append(f'    {ids[node_id]}(["{label}"])')
        else:
            lines.append(f'    {ids[node_id]}["{label}"]')
    for node_id, node in document["nodes"].items():
        for input_name, value in node.get("inputs", {}).items():
            if isinstance(value, dict) and "from" in value and value["from"][0] in ids:
                source, output = value["from"]
                lines.append(f"    {ids[source]} -->|{output}→{input_name}| {ids[node_id]}")
    for node_id, node in document["nodes"].items():
        for input_name, value in node.get("inputs", {}).items():
            if not (isinstance(value, dict) and "from" in value):
                lines.append(f"    %% literal {ids[node_id]}.{input_name} = {json.dumps(value, ensure_ascii=False)}")
    for name, (node_id, input_name) in document.get("params", {}).items():
        if node_id in ids and re.fullmatch(r"\S+", name):
            lines.append(f"    %% param {name} = {ids[node_id]}.{input_name}")
    return "\n".join(lines) + "\n"


def _mermaid_id(node_id: str, index: int) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", node_id)
    if not cleaned or cleaned[0].isdigit() or cleaned.lower() in ("end", "graph", "flowchart", "subgraph"):
        cleaned = f"n{index}_{cleaned}"
    return cleaned
