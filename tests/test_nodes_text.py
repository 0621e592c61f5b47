"""The built-in text and value nodes."""

from __future__ import annotations

import pytest

from conftest import link, workflow


def show(executor, nodes: dict, source: tuple[str, str]) -> str:
    document = workflow({**nodes, "show": {"type": "ShowText", "inputs": {"text": link(*source)}}})
    result = executor.run(document)
    assert result.status == "succeeded", result.error or result.problems
    return result.outputs["show"]["text"][0]


def test_template_fills_fields(executor):
    nodes = {
        "n": {"type": "Int", "inputs": {"value": 3}},
        "f": {"type": "Float", "inputs": {"value": 0.25}},
        "t": {"type": "TextTemplate", "inputs": {"template": "{a} balls at {b}, {{literal}}", "a": link("n", "value"),
                                                 "b": link("f", "value")}},
    }
    assert show(executor, nodes, ("t", "text")) == "3 balls at 0.25, {literal}"


def test_template_unconnected_field_is_empty(executor):
    nodes = {"t": {"type": "TextTemplate", "inputs": {"template": "[{a}]"}}}
    assert show(executor, nodes, ("t", "text")) == "[]"


@pytest.mark.parametrize("template, message", [
    ("{name}", "input 'template' has the field {name}; only {a}, {b}, {c} and {d} exist (write {{ and }} for literal braces)"),
    ("{a", "input 'template' is not a valid template: expected '}' before end of string; write {{ and }} for literal braces"),
])
def test_template_errors_name_the_input(executor, template, message):
    document = workflow({
        "t": {"type": "TextTemplate", "inputs": {"template": template}},
        "show": {"type": "ShowText", "inputs": {"text": link("t", "text")}},
    })
    result = executor.run(document)
    assert result.status == "failed"
    assert result.error["message"] == message
    assert result.error["error_type"] == "NodeError"


def test_concat_separator(executor):
    nodes = {"c": {"type": "TextConcat", "inputs": {"first": "一只", "second": "小猫", "separator": ""}}}
    assert show(executor, nodes, ("c", "text")) == "一只小猫"


@pytest.mark.parametrize("node_type, value, shown", [
    ("Boolean", True, "true"),
    ("Int", -7, "-7"),
    ("Float", 1.0, "1"),
    ("Seed", 2**63, str(2**63)),
])
def test_value_nodes_show_as_text(executor, node_type, value, shown):
    nodes = {"v": {"type": node_type, "inputs": {"value": value}}}
    assert show(executor, nodes, ("v", "value")) == shown
