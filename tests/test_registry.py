"""The node registry: built-in nodes, entry-point packs, node folders, declaration checks."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from nodegraph import registry as registry_module
from nodegraph.node import Input, Node, Output
from nodegraph.registry import Registry, RegistryError, default_registry, load_directory, load_entry_points


class Upper(Node):
    type_id = "PackUpper"
    inputs = (Input("text", "STRING"),)
    outputs = (Output("text", "STRING"),)

    def run(self, ctx, text):
        return {"text": text.upper()}


def test_builtin_nodes_have_catalog_entries():
    catalog = default_registry(entry_point_packs=False).catalog()
    for type_id in ("Text", "Int", "Float", "Boolean", "Seed", "TextConcat", "TextTemplate", "ShowText",
                    "QualityBranch", "Merge", "Switch"):
        assert catalog[type_id]["source"] == "builtin"
        assert catalog[type_id]["description"]
    assert catalog["Seed"]["inputs"][0]["widget"] == "seed"
    assert catalog["Text"]["inputs"][0]["multiline"] is True
    assert catalog["Switch"]["inputs"][1]["lazy"] is True
    assert catalog["ShowText"]["output_node"] is True
    assert catalog["Text"]["translations"]["zh-CN"]["display_name"] == "文本"


def test_entry_point_pack_is_loaded_and_logged(monkeypatch, caplog):
    point = SimpleNamespace(name="upper", value="pack:NODE_TYPES", load=lambda: (Upper,))
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [point] if group == "nodegraph.nodes" else [])
    registry = Registry()
    with caplog.at_level(logging.INFO, logger="nodegraph.registry"):
        load_entry_points(registry)

    assert registry.get("PackUpper") is Upper
    assert registry.source_of("PackUpper") == "entry point upper"
    assert "loaded node pack upper (pack:NODE_TYPES): 1 node types" in caplog.text


def test_entry_point_that_fails_to_import(monkeypatch):
    def broken():
        raise ImportError("No module named 'missing_dependency'")

    point = SimpleNamespace(name="broken", value="broken_pack", load=broken)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [point])
    with pytest.raises(RegistryError, match="node pack 'broken' \\(broken_pack\\) failed to import: No module named"):
        load_entry_points(Registry())


def test_nodes_dir_loads_files(tmp_path):
    (tmp_path / "shout.py").write_text(
        "from nodegraph.node import Input, Node, Output\n"
        "class Shout(Node):\n"
        "    type_id = 'Shout'\n"
        "    inputs = (Input('text', 'STRING'),)\n"
        "    outputs = (Output('text', 'STRING'),)\n"
        "    def run(self, ctx, text):\n"
        "        return {'text': text + '!'}\n"
        "NODE_TYPES = (Shout,)\n", encoding="utf-8")
    (tmp_path / "_private.py").write_text("raise RuntimeError('not loaded')\n", encoding="utf-8")
    registry = Registry()
    load_directory(registry, tmp_path)
    assert "Shout" in registry
    assert len(registry) == 1


def test_nodes_dir_file_that_raises(tmp_path):
    (tmp_path / "bad.py").write_text("1 / 0\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="bad.py failed to import: ZeroDivisionError: division by zero"):
        load_directory(Registry(), tmp_path)


def test_nodes_dir_without_node_types(tmp_path):
    (tmp_path / "empty.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="has no NODE_TYPES tuple"):
        load_directory(Registry(), tmp_path)


def test_missing_nodes_dir(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        load_directory(Registry(), tmp_path / "nope")


def test_duplicate_type_id_is_rejected():
    class Other(Upper):
        pass

    registry = Registry()
    registry.register(Upper, "first")
    with pytest.raises(RegistryError, match="node type 'PackUpper' from second is already defined by first"):
        registry.register(Other, "second")


@pytest.mark.parametrize("attributes, message", [
    ({"type_id": ""}, "has no type_id"),
    ({"type_id": "X", "inputs": (Input("a", "STRNG"),)}, "port 'a' has unknown type 'STRNG'"),
    ({"type_id": "X", "inputs": (Input("a", "INT"), Input("a", "INT"))}, "declares input 'a' twice"),
])
def test_broken_declarations(attributes, message):
    broken = type("Broken", (Node,), attributes)
    with pytest.raises(RegistryError, match=message):
        Registry().register(broken)


def test_cli_nodes_dir_error_is_clear(tmp_path, capsys):
    from nodegraph.cli import main

    code = main(["--nodes-dir", str(tmp_path / "nope"), "nodes"])
    assert code == 1
    assert f"node folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
