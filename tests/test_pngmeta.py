"""Tests for nodegraph.pngmeta: writing and reading PNG text chunks."""

from __future__ import annotations

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from nodegraph.images import ImageUnreadable
from nodegraph.pngmeta import a1111_parameters, build_pnginfo, read_png_metadata


def _workflow() -> dict:
    return {
        "format": "nodegraph/workflow", "version": 1, "name": "猫 and flowers",
        "nodes": {"prompt": {"type": "Text", "inputs": {"text": "a cat among flowers"}},
                  "show": {"type": "ShowText", "inputs": {"text": {"from": ["prompt", "text"]}}}},
        "params": {"prompt": ["prompt", "text"]},
    }


def test_round_trip(tmp_path):
    path = tmp_path / "out.png"
    generation = {"prompt": "a cat\namong flowers", "negative": "blurry", "steps": 20, "sampler": "euler",
                  "guidance": 7.0, "seed": 42, "width": 64, "height": 32, "model": "tiny"}
    Image.new("RGB", (8, 8)).save(path, pnginfo=build_pnginfo(_workflow(), {"prompt": "a cat"}, generation))
    metadata = read_png_metadata(path)
    assert metadata.workflow == _workflow()
    assert metadata.params == {"prompt": "a cat"}
    assert metadata.parameters == (
        "a cat among flowers\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: euler, CFG scale: 7.0, Seed: 42, Size: 64x32, Model: tiny, Version: nodegraph"
    )


def test_large_workflow_survives(tmp_path):
    # Beyond Pillow's default 1 MiB text chunk limit once decompressed.
    workflow = _workflow()
    workflow["description"] = "x" * (2 * 1024 * 1024)
    path = tmp_path / "big.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=build_pnginfo(workflow, {}))
    assert read_png_metadata(path).workflow["description"] == workflow["description"]


def test_missing_chunks_read_as_none(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    metadata = read_png_metadata(path)
    assert metadata.workflow is None
    assert metadata.params is None
    assert metadata.parameters is None


def test_broken_json_chunk_is_reported(tmp_path):
    path = tmp_path / "broken.png"
    info = PngInfo()
    info.add_itxt("nodegraph:workflow", "{not json")
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    with pytest.raises(ImageUnreadable, match="'nodegraph:workflow' text chunk of .* is not valid JSON"):
        read_png_metadata(path)


def test_a1111_optional_fields():
    text = a1111_parameters({"prompt": "a dog", "steps": 4, "strength": 0.5, "loras": ["ink", "paper"]})
    assert text == 'a dog\nSteps: 4, Denoising strength: 0.5, Lora hashes: "ink, paper", Version: nodegraph'
