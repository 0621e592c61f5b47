"""Mermaid import and export."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import CASES, REPO
from nodegraph import document as workflow_document
from nodegraph.mermaid import MermaidError, export_chart, import_chart, parse
from nodegraph.validation import validate


def test_parse_shapes_labels_and_chains():
    chart = parse("""flowchart LR
        %% a comment
        A[文本输入] --> B(round) --> C{decide}
        C -->|yes| D((circle))
        C -- no --> E[["sub"]]
        A & B --> F>flag]; F --- G
    """)
    assert chart.direction == "LR"
    assert {node_id: (node.label, node.shape) for node_id, node in chart.nodes.items()} == {
        "A": ("文本输入", "rect"), "B": ("round", "round"), "C": ("decide", "decision"), "D": ("circle", "circle"),
        "E": ("sub", "subroutine"), "F": ("flag", "flag"), "G": ("G", "rect"),
    }
    assert [(edge.source, edge.target, edge.label) for edge in chart.edges] == [
        ("A", "B", ""), ("B", "C", ""), ("C", "D", "yes"), ("C", "E", "no"), ("A", "F", ""), ("B", "F", ""), ("F", "G", ""),
    ]


@pytest.mark.parametrize("text, message", [
    ("", "the chart is empty; expected a flowchart header such as 'graph TD'"),
    ("sequenceDiagram\n A->>B: hi", "line 1: expected a flowchart header such as 'graph TD' or 'flowchart LR', got 'sequenceDiagram'"),
    ("graph TD\n A[open --> B", "line 2: node 'A' opens '[' without a closing ']'"),
    ("graph TD\n A --> ", "line 2: expected a node id at ''"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(MermaidError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_import_text_chart_with_branches_and_merge(registry):
    document, notes = import_chart("""graph TD
        P[Text] --> Q{QualityBranch}
        S[Float] --> Q
        Q -->|high| M[ShowText]
        Q -->|low| C[TextConcat]
        C --> M
    """, registry)
    nodes = document["nodes"]

    assert nodes["Q"]["inputs"]["prompt"] == {"from": ["P", "text"]}
    assert nodes["Q"]["inputs"]["score"] == {"from": ["S", "value"]}
    assert nodes["C"]["inputs"]["first"] == {"from": ["Q", "low"]}
    merge = nodes["M"]["inputs"]["text"]["from"][0]
    assert nodes[merge]["type"] == "Merge"
    assert nodes[merge]["inputs"] == {"first": {"from": ["Q", "high"]}, "second": {"from": ["C", "text"]}}
    assert any("joined by Merge" in note for note in notes)
    assert validate(document, registry) == []
    assert all("pos" in node["ui"] for node in nodes.values())


def test_unmapped_label_becomes_named_placeholder(registry):
    document, notes = import_chart("graph TD\n A[Text] --> B[魔法节点] --> C[ShowText]\n A --> C", registry)

    assert document["nodes"]["B"]["type"] == "Unmapped(魔法节点)"
    assert document["extra"]["mermaid"]["unresolved_edges"] == [
        {"from": "A", "to": "B", "label": ""}, {"from": "B", "to": "C", "label": ""},
    ]
    problems = validate(document, registry)
    assert [(problem.code, problem.node) for problem in problems] == [("unknown_type", "B")]
    assert "魔法节点" in problems[0].message


def test_required_input_fed_from_nearest_upstream(registry):
    document, _ = import_chart("graph LR\n A[Text] --> B[TestCount] --> C{QualityBranch} --> D[ShowText]\n F[Float] --> C",
                               registry)
    gate = document["nodes"]["C"]["inputs"]
    assert gate["prompt"] == {"from": ["B", "text"]}
    assert gate["score"] == {"from": ["F", "value"]}


@pytest.mark.parametrize("path", sorted((REPO / "workflows").glob("*.json")), ids=lambda path: path.name)
def test_export_then_import_keeps_types_and_links(registry, path):
    original = workflow_document.load_path(path)
    chart = export_chart(original, registry)
    imported, _ = import_chart(chart, registry)

    def shape(document):
        types = {node_id: node["type"] for node_id, node in document["nodes"].items()}
        links = sorted((node_id, name, tuple(value["from"])) for node_id, node in document["nodes"].items()
                       for name, value in node.get("inputs", {}).items() if isinstance(value, dict) and "from" in value)
        literals = {(node_id, name): value for node_id, node in document["nodes"].items()
                    for name, value in node.get("inputs", {}).items() if not (isinstance(value, dict) and "from" in value)}
        return types, links, literals

    assert shape(imported) == shape(original)
    assert imported["params"] == original.get("params", {})
    assert validate(imported, registry) == []


def test_export_marks_routers_and_outputs(registry):
    chart = export_chart(workflow_document.load_path(REPO / "workflows" / "text-branching.json"), registry)
    assert '    gate{"good enough? · QualityBranch"}' in chart
    assert '    show(["prompt used · ShowText"])' in chart
    assert "    gate -->|low→first| improve" in chart


def nodegraph(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nodegraph", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_import_writes_file_and_prints_inferences(tmp_path):
    chart = tmp_path / "chart.mmd"
    chart.write_text("graph TD\n A[文本输入] --> B[显示文本]\n", encoding="utf-8")
    completed = nodegraph("import-mermaid", str(chart), "-o", str(tmp_path / "wf.json"))

    assert completed.returncode == 0, completed.stderr
    assert "inferred: A [文本输入] -> Text" in completed.stderr
    assert "inferred: edge A -> B: A.text -> B.text" in completed.stderr
    document = workflow_document.load_path(tmp_path / "wf.json")
    assert document["nodes"]["B"]["type"] == "ShowText"
    assert nodegraph("run", str(tmp_path / "wf.json")).returncode == 0


def test_cli_import_bad_chart_exits_2(tmp_path):
    chart = tmp_path / "chart.mmd"
    chart.write_text("pie title x\n", encoding="utf-8")
    completed = nodegraph("import-mermaid", str(chart))
    assert completed.returncode == 2
    assert "expected a flowchart header" in completed.stderr


def test_cli_export_prints_chart():
    completed = nodegraph("export-mermaid", "text-branching")
    assert completed.returncode == 0
    assert completed.stdout.startswith("flowchart LR\n")


def test_seed_chart_parses():
    chart = parse((CASES / "seed-flow.mmd").read_text(encoding="utf-8"))
    assert [node.label for node in chart.nodes.values()] == ["文本输入", "LLM编码", "文本描述质量", "图像生成模型", "LLM调整", "图像输出"]
    assert [(edge.source, edge.target, edge.label) for edge in chart.edges] == [
        ("A", "B", ""), ("B", "C", ""), ("C", "D", "高质量"), ("C", "E", "低质量"), ("E", "D", ""), ("D", "F", ""),
    ]
