"""Loading, checking, migrating and saving workflow documents."""

from __future__ import annotations

import json

import pytest

from nodegraph import document as workflow_document
from nodegraph.errors import WorkflowInvalid


def problem_of(data: bytes):
    with pytest.raises(WorkflowInvalid) as caught:
        workflow_document.load_bytes(data)
    (problem,) = caught.value.problems
    return problem


def test_round_trip_keeps_ui_and_unknown_fields(tmp_path):
    original = {
        "format": "nodegraph/workflow", "version": 1, "name": "round trip", "description": "d",
        "nodes": {"show": {"type": "ShowText", "title": "shown", "mode": "active", "inputs": {"text": "你好"},
                           "ui": {"pos": [1.5, 2], "size": [260, 120], "collapsed": True, "color": "#123", "future": {"x": 1}}}},
        "params": {"text": ["show", "text"]},
        "groups": [{"title": "g", "bounding": [0, 0, 10, 10], "color": "#335"}],
        "extra": {"editor": {"zoom": 1.25}},
    }
    path = tmp_path / "wf.json"
    workflow_document.save_path(original, path)
    loaded = workflow_document.load_path(path)

    assert loaded == original
    assert "你好" in path.read_text("utf-8")


@pytest.mark.parametrize("data, code, message", [
    (b"", "invalid_json", "the document is empty; a workflow is a JSON object"),
    (b"  \n", "invalid_json", "the document is empty; a workflow is a JSON object"),
    (b"[1, 2]", "schema", 'the document is an array; a workflow is a JSON object with "nodes"'),
    (b'"text"', "schema", 'the document is a string; a workflow is a JSON object with "nodes"'),
    (b"\xff\xfe{}", "not_utf8", "the document is not UTF-8 text (invalid byte at offset 0); save it as UTF-8 JSON"),
    (b'{"format": "nodegraph/workflow",\n "version": 1, "nodes": {', "invalid_json",
     "the document is not valid JSON: Expecting property name enclosed in double quotes (line 2, column 26)"),
])
def test_unusable_documents(data, code, message):
    problem = problem_of(data)
    assert (problem.code, problem.message) == (code, message)


def test_nodes_as_list_is_a_schema_problem():
    problem = problem_of(b'{"format": "nodegraph/workflow", "version": 1, "nodes": []}')
    assert problem.code == "schema"
    assert problem.message == "nodes: [] is not of type 'object'"


def test_bad_link_shape_names_node_and_input():
    data = json.dumps({"format": "nodegraph/workflow", "version": 1,
                       "nodes": {"show": {"type": "ShowText", "inputs": {"text": {"from": ["a"]}}}}}).encode()
    problem = problem_of(data)
    assert (problem.code, problem.node, problem.input) == ("schema", "show", "text")


def test_unknown_mode_is_rejected():
    data = json.dumps({"format": "nodegraph/workflow", "version": 1,
                       "nodes": {"show": {"type": "ShowText", "mode": "sleep"}}}).encode()
    problem = problem_of(data)
    assert (problem.code, problem.node) == ("schema", "show")
    assert "'sleep' is not one of ['active', 'bypass', 'mute']" in problem.message


def test_newer_version_is_rejected():
    problem = problem_of(b'{"format": "nodegraph/workflow", "version": 99, "nodes": {}}')
    assert problem.code == "unsupported_version"
    assert problem.message == ("the document has version 99, but this nodegraph reads versions up to 1; "
                               "upgrade nodegraph to open it")


def test_too_large_document_is_rejected(monkeypatch):
    monkeypatch.setattr(workflow_document, "MAX_DOCUMENT_BYTES", 100)
    problem = problem_of(b" " * 101)
    assert problem.code == "too_large"
    assert "101 bytes, over the limit of 100 bytes" in problem.message


def test_deep_nesting_is_rejected_without_recursion_error():
    problem = problem_of(b"[" * 200_000 + b"]" * 200_000)
    assert problem.code == "too_deep"


def test_moderate_nesting_is_rejected_before_schema_check():
    nested = "[" * 100 + "]" * 100
    data = ('{"format": "nodegraph/workflow", "version": 1, "nodes": {"a": {"type": "ShowText", "inputs": {"text": '
            + nested + "}}}}").encode()
    assert problem_of(data).code == "too_deep"


def test_migration_hook_runs_in_order(monkeypatch):
    monkeypatch.setattr(workflow_document, "CURRENT_VERSION", 3)
    monkeypatch.setitem(workflow_document.MIGRATIONS, 1, lambda doc: {**doc, "name": doc["name"] + " v2"})
    monkeypatch.setitem(workflow_document.MIGRATIONS, 2, lambda doc: {**doc, "name": doc["name"] + " v3"})
    original = {"format": "nodegraph/workflow", "version": 1, "name": "old", "nodes": {}}
    migrated = workflow_document.check(original)

    assert migrated["version"] == 3
    assert migrated["name"] == "old v2 v3"
    assert original["version"] == 1


def test_missing_file_message(tmp_path):
    with pytest.raises(WorkflowInvalid) as caught:
        workflow_document.load_path(tmp_path / "nope.json")
    assert caught.value.problems[0].message == f"workflow file {tmp_path / 'nope.json'} not found"


def test_schema_is_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(workflow_document.schema())


# Property: the fast shape check never accepts what the JSON Schema rejects. Documents
# are drawn valid, then one value somewhere inside is replaced by an arbitrary one.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=5))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=6)
names = st.text(min_size=1, max_size=4)
target = st.lists(names, min_size=2, max_size=2)
valid_node = st.fixed_dictionaries(
    {"type": names},
    optional={
        "title": st.text(max_size=4),
        "mode": st.sampled_from(["active", "bypass", "mute"]),
        "inputs": st.dictionaries(names, st.one_of(scalars, st.fixed_dictionaries({"from": target})), max_size=3),
        "ui": st.dictionaries(names, values, max_size=2),
    },
)
valid_document = st.fixed_dictionaries(
    {"format": st.just("nodegraph/workflow"), "version": st.integers(1, 3),
     "nodes": st.dictionaries(names, valid_node, min_size=1, max_size=3)},
    optional={
        "name": st.text(max_size=4), "description": st.text(max_size=4), "extra": st.dictionaries(names, values, max_size=2),
        "params": st.dictionaries(names, target, max_size=2),
        "groups": st.lists(st.fixed_dictionaries({}, optional={
            "title": st.text(max_size=3), "color": st.text(max_size=3),
            "bounding": st.lists(st.integers(0, 9) | st.floats(0, 9), min_size=4, max_size=4)}), max_size=2),
    },
)


@st.composite
def mutated_documents(draw):
    document = draw(valid_document)
    parent, key = None, None
    current = document
    # Walk down a random path, then replace (or add) the value at its end.
    while isinstance(current, (dict, list)) and current and draw(st.booleans()):
        key = draw(st.sampled_from(list(current) if isinstance(current, dict) else list(range(len(current)))))
        parent, current = current, current[key]
    replacement = draw(values)
    if parent is None:
        document[draw(st.sampled_from(["format", "version", "nodes", "params", "groups", "extra", "name", "other"]))] = replacement
    else:
        parent[key] = replacement
    return document


def test_valid_documents_conform():
    @settings(max_examples=100, deadline=None)
    @given(valid_document)
    def check(document):
        assert workflow_document.conforms(document)
        assert workflow_document.schema_problems(document) == []

    check()


@settings(max_examples=500, deadline=None)
@given(mutated_documents())
def test_fast_shape_check_agrees_with_schema(document):
    if workflow_document.conforms(document):
        assert workflow_document.schema_problems(document) == []
