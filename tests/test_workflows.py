"""Every shipped workflow validates and runs; the seed chart imports and runs.

The runs use a tiny diffusion pipeline built in the test and a scripted OpenAI-compatible
server on 127.0.0.1 in place of the embedded models, so they stay fast. The embedded models
run the main job in test_main_job.py.
"""

from __future__ import annotations

import pytest
from PIL import Image

from conftest import CASES, REPO
from llm_fixtures import MockServer, chat_answer, start_mock_server
from nodegraph import document as workflow_document
from nodegraph import pngmeta
from nodegraph.mermaid import import_chart
from nodegraph.validation import validate

WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tiny_diffusion import build_pipeline

    folder = tmp_path_factory.mktemp("tiny-sd")
    build_pipeline(folder)
    return str(folder)


@pytest.fixture
def llm_server():
    servers = []

    def start(*answers: str) -> MockServer:
        mock = MockServer(script=[chat_answer(answer) for answer in answers])
        servers.append(start_mock_server(mock))
        return mock

    yield start
    for stop in servers:
        stop()


def small(document: dict) -> dict:
    """Shrink every image size and step count so the tiny model runs in a moment."""
    params = {}
    for node_id, node in document["nodes"].items():
        for name, value in node.get("inputs", {}).items():
            if name in ("width", "height") and isinstance(value, int):
                params[f"{node_id}.{name}"] = 64
            elif name == "steps" and isinstance(value, int):
                params[f"{node_id}.{name}"] = 2
    return params


def llm_params(mock: MockServer) -> dict:
    return {"llm_source": "openai-compatible", "llm_base_url": mock.url, "llm_model": "test"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_shipped_workflow_is_valid_and_described(registry, path):
    document = workflow_document.load_path(path)
    assert validate(document, registry) == []
    assert document["name"]
    assert document["description"]
    assert all("pos" in node.get("ui", {}) for node in document["nodes"].values())


def test_prompt_to_image_good_prompt_skips_llm(executor, tiny_model, events):
    document = workflow_document.load_path(REPO / "workflows" / "prompt-to-image.json")
    params = {"model": tiny_model, "llm_source": "openai-compatible", "llm_base_url": "http://127.0.0.1:9/v1", **small(document)}
    result = executor.run(document, params=params, on_event=events)

    assert result.status == "succeeded", result.error
    assert result.nodes["rewrite"].status == "skipped"
    assert result.nodes["rewrite"].reason == "inactive_branch"
    assert result.nodes["llm"].status == "skipped"
    assert result.nodes["llm"].reason == "not_needed"
    assert float(result.outputs["show_score"]["text"][0]) >= 0.6
    assert result.outputs["show_prompt"]["text"] == [document["nodes"]["prompt"]["inputs"]["text"]]
    (saved,) = result.outputs["save"]["images"]
    with Image.open(saved["path"]) as image:
        assert image.size == (64, 64)
    metadata = pngmeta.read_png_metadata(saved["path"])
    assert validate(metadata.workflow, executor.registry) == []
    assert metadata.params["model"] == tiny_model


def test_prompt_to_image_weak_prompt_is_rewritten(executor, tiny_model, llm_server):
    mock = llm_server("a small red ball on green grass under a blue sky, bright daylight, centered")
    document = workflow_document.load_path(REPO / "workflows" / "prompt-to-image.json")
    params = {"prompt": "red ball", "model": tiny_model, **llm_params(mock), **small(document)}
    result = executor.run(document, params=params)

    assert result.status == "succeeded", result.error
    assert result.nodes["rewrite"].status == "executed"
    assert result.nodes["gate"].status == "executed"
    assert "high" not in result.values["gate"]
    assert result.outputs["show_prompt"]["text"] == ["a small red ball on green grass under a blue sky, bright daylight, centered"]
    assert "too short" in result.outputs["show_reasons"]["text"][0]
    assert len(mock.requests) == 1


def test_edit_image_applies_the_edit(executor, tiny_model, llm_server):
    mock = llm_server("a blue ball on the sand under a blue sky")
    document = workflow_document.load_path(REPO / "workflows" / "edit-image.json")
    result = executor.run(document, params={"model": tiny_model, **llm_params(mock), **small(document)})

    assert result.status == "succeeded", result.error
    assert result.outputs["show_target"]["text"] == ["a blue ball on the sand under a blue sky"]
    request = mock.requests[0]["body"]["messages"]
    assert "make the ball blue and put it on the sand" in str(request)
    (saved,) = result.outputs["save"]["images"]
    with Image.open(saved["path"]) as image:
        assert image.width >= 128  # two 64-pixel images side by side


def test_style_transfer_uses_expanded_style(executor, tiny_model, llm_server):
    mock = llm_server("a snowy winter scene with cold white light and pale blue shadows")
    document = workflow_document.load_path(REPO / "workflows" / "style-transfer.json")
    result = executor.run(document, params={"model": tiny_model, **llm_params(mock), **small(document)})

    assert result.status == "succeeded", result.error
    assert result.outputs["show_style"]["text"] == ["a snowy winter scene with cold white light and pale blue shadows"]
    assert result.nodes["restyle"].status == "executed"


@pytest.mark.parametrize("name", ["generate-and-edit.json", "text-branching.json"])
def test_other_examples_run(executor, tiny_model, name):
    document = workflow_document.load_path(REPO / "workflows" / name)
    params = small(document)
    if any(node["type"] == "LoadDiffusionModel" for node in document["nodes"].values()):
        params["model.source"] = tiny_model
    result = executor.run(document, params=params)
    assert result.status == "succeeded", result.error


def test_seed_chart_imports_and_runs(registry, executor, tiny_model, llm_server):
    mock = llm_server("a small red ball on green grass under a blue sky, bright daylight, centered")
    document, notes = import_chart((CASES / "seed-flow.mmd").read_text(encoding="utf-8"), registry)
    assert validate(document, registry) == []
    types = sorted(node["type"] for node in document["nodes"].values())
    assert types == sorted(["Text", "LLMEncode", "PromptQuality", "QualityBranch", "LoadDiffusionModel", "EncodePrompt",
                            "TextToImage", "LLMRewrite", "LoadLLM", "Merge", "SaveImage"])

    params = {"prompt": "一只可爱的小狗在草地上玩耍。", "D_load_diffusion_model.source": tiny_model,
              "loadllm.source": "openai-compatible", "loadllm.base_url": mock.url, "loadllm.model": "test",
              "D_text_to_image.width": 64, "D_text_to_image.height": 64, "D_text_to_image.steps": 2}
    result = executor.run(document, params=params)

    assert result.status == "succeeded", result.error
    assert result.nodes["E"].status == "executed"  # a Chinese prompt scores low for the English image model
    assert result.nodes["F"].status == "executed"
