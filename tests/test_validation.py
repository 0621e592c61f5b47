"""Validation: one test per problem code, all problems reported at once."""

from __future__ import annotations

import pytest

from conftest import link, workflow
from nodegraph.validation import apply_params, validate


def codes(problems):
    return [(problem.code, problem.node, problem.input) for problem in problems]


def test_valid_workflow_has_no_problems(registry):
    document = workflow({
        "p": {"type": "Text", "inputs": {"text": "hi"}},
        "show": {"type": "ShowText", "inputs": {"text": link("p", "text")}},
    })
    assert validate(document, registry) == []


def test_unknown_type_suggests_close_match(registry):
    document = workflow({"p": {"type": "Txet"}, "show": {"type": "ShowText", "inputs": {"text": "x"}}})
    (problem,) = validate(document, registry)
    assert problem.code == "unknown_type"
    assert problem.node == "p"
    assert problem.message == "unknown node type 'Txet'; did you mean 'Text'?"


def test_unknown_type_without_match_says_how_to_list(registry):
    document = workflow({"p": {"type": "Zzzzzz"}, "show": {"type": "ShowText", "inputs": {"text": "x"}}})
    (problem,) = validate(document, registry)
    assert "nodegraph nodes" in problem.message


def test_missing_required_input(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {}}})
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("missing_input", "show", "text")]
    assert problem.message == "required input 'text' (*) of ShowText is missing; give it a value or connect an output to it"


def test_unknown_input_lists_known_ones(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": "x", "colour": "red"}}})
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("unknown_input", "show", "colour")]
    assert problem.message == "ShowText has no input 'colour'; its inputs are: text"


def test_link_to_missing_node(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": link("gone", "text")}}})
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("missing_node", "show", "text")]
    assert "'gone'" in problem.message


def test_link_to_missing_output(registry):
    document = workflow({
        "p": {"type": "Text", "inputs": {"text": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": link("p", "value")}},
    })
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("missing_output", "show", "text")]
    assert problem.message.endswith("its outputs are: text")


def test_type_mismatch_names_both_types_and_ends(registry):
    document = workflow({
        "n": {"type": "Int", "inputs": {"value": 3}},
        "join": {"type": "TextConcat", "inputs": {"first": link("n", "value"), "second": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": link("join", "text")}},
    })
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("type_mismatch", "join", "first")]
    assert problem.message == "input join.first takes STRING, but n.value gives INT; connect an output of type STRING"


def test_wrong_literal_type(registry):
    document = workflow({
        "n": {"type": "Int", "inputs": {"value": "512px"}},
        "show": {"type": "ShowText", "inputs": {"text": "x"}},
    })
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("wrong_type", "n", "value")]
    assert problem.message == "input 'value' of Int expects an integer (INT), got \"512px\""


@pytest.mark.parametrize("value, code, message", [
    (2000, "out_of_range", "input 'a' of TestSum is 2000, above the maximum 1000"),
    (-2000, "out_of_range", "input 'a' of TestSum is -2000, below the minimum -1000"),
    (True, "wrong_type", "input 'a' of TestSum expects an integer (INT), got true"),
    (1.5, "wrong_type", "input 'a' of TestSum expects an integer (INT), got 1.5"),
])
def test_literal_limits(registry, value, code, message):
    document = workflow({
        "s": {"type": "TestSum", "inputs": {"a": value}},
        "show": {"type": "ShowText", "inputs": {"text": link("s", "value")}},
    })
    (problem,) = validate(document, registry)
    assert (problem.code, problem.message) == (code, message)


def test_invalid_choice(registry):
    document = workflow({
        "f": {"type": "TestFail", "inputs": {"kind": "explode"}},
        "show": {"type": "ShowText", "inputs": {"text": link("f", "text")}},
    })
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("invalid_choice", "f", "kind")]
    assert problem.message == "input 'kind' of TestFail is \"explode\", which is not one of: 'bug', 'node_error'"


def test_link_only_input_rejects_literal(registry):
    from nodegraph.node import Input
    from nodegraph.validation import check_literal

    (problem,) = check_literal("n", "Example", Input("image", "IMAGE"), "photo.png")
    assert problem.code == "wrong_type"
    assert problem.message == "input 'image' of Example takes a link of type IMAGE, not the value \"photo.png\"; connect an output to it"


def test_cycle_names_its_nodes(registry):
    document = workflow({
        "a": {"type": "TextConcat", "inputs": {"first": link("b", "text"), "second": "x"}},
        "b": {"type": "TextConcat", "inputs": {"first": link("a", "text"), "second": "y"}},
        "show": {"type": "ShowText", "inputs": {"text": link("b", "text")}},
    })
    (problem,) = validate(document, registry)
    assert problem.code == "cycle"
    assert "a → b → a" in problem.message or "b → a → b" in problem.message


def test_self_loop_is_a_cycle(registry):
    document = workflow({
        "a": {"type": "TextConcat", "inputs": {"first": link("a", "text"), "second": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": link("a", "text")}},
    })
    assert [problem.code for problem in validate(document, registry)] == ["cycle"]


def test_no_output_node(registry):
    document = workflow({"p": {"type": "Text", "inputs": {"text": "x"}}})
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("no_output", None, None)]


def test_muted_output_node_counts_as_none(registry):
    document = workflow({"show": {"type": "ShowText", "mode": "mute", "inputs": {"text": "x"}}})
    assert [problem.code for problem in validate(document, registry)] == ["no_output"]


def test_unknown_param_target(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": "x"}}}, params={"prompt": ["q", "text"]})
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("unknown_param", "q", "text")]
    assert "'prompt'" in problem.message
    assert "'q'" in problem.message


def test_param_target_input_must_exist(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": "x"}}}, params={"prompt": ["show", "words"]})
    assert codes(validate(document, registry)) == [("unknown_param", "show", "words")]


def test_bypass_impossible(registry):
    document = workflow({
        "n": {"type": "TestLength", "mode": "bypass", "inputs": {"text": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": link("n", "length")}},
    })
    (problem,) = validate(document, registry)
    assert codes([problem]) == [("bypass_impossible", "n", None)]
    assert problem.message == ("TestLength cannot be bypassed: output 'length' (INT) has no input of the same type "
                               "to pass through; set its mode to active or mute")


def test_all_problems_reported_at_once(registry):
    document = workflow({
        "p": {"type": "Txet"},
        "n": {"type": "Int", "inputs": {"value": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": link("gone", "text")}},
    }, params={"prompt": ["q", "text"]})
    assert sorted(problem.code for problem in validate(document, registry)) == [
        "missing_node", "unknown_param", "unknown_type", "wrong_type",
    ]


def test_unknown_target(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": "x"}}})
    assert codes(validate(document, registry, targets=["nope"])) == [("unknown_target", "nope", None)]


def test_apply_params_converts_by_input_type(registry):
    document = workflow({
        "s": {"type": "TestSum", "inputs": {}},
        "t": {"type": "Text", "inputs": {"text": ""}},
        "show": {"type": "ShowText", "inputs": {"text": link("s", "value")}},
    }, params={"a": ["s", "a"], "words": ["t", "text"]})
    updated, problems = apply_params(document, registry, {"a": "12", "words": "12", "s.b": "3"}, as_text=True)

    assert problems == []
    assert updated["nodes"]["s"]["inputs"] == {"a": 12, "b": 3}
    assert updated["nodes"]["t"]["inputs"]["text"] == "12"
    assert document["nodes"]["s"]["inputs"] == {}


def test_apply_params_rejects_unknown_name(registry):
    document = workflow({"show": {"type": "ShowText", "inputs": {"text": "x"}}}, params={"prompt": ["show", "text"]})
    _, (problem,) = apply_params(document, registry, {"promt": "x"})
    assert problem.code == "unknown_param"
    assert problem.message == "unknown param 'promt'; this workflow's params are: prompt (or use node.input)"


def test_apply_params_checks_limits(registry):
    document = workflow({"s": {"type": "TestSum", "inputs": {}}, "show": {"type": "ShowText", "inputs": {"text": "x"}}})
    _, (problem,) = apply_params(document, registry, {"s.a": "5000"}, as_text=True)
    assert (problem.code, problem.node, problem.input) == ("invalid_param_value", "s", "a")
    assert problem.message == "param 's.a': input 'a' of TestSum is 5000, above the maximum 1000"
