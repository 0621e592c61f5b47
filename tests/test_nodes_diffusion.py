"""Tests for the diffusion and image nodes, run through the executor on tiny random pipelines."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import link, workflow
from nodegraph.executor import Executor
from nodegraph.models import ModelManager
from nodegraph.pngmeta import read_png_metadata
from nodegraph.validation import validate
from tiny_diffusion import build_lora, build_pipeline, write_ldm_checkpoint

SIZE = 32  # pixels; the tiny VAE halves it to 16x16 latents

# Building the tiny pipelines takes about 15 s and the module about 2 minutes on 2 CPUs.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models folder with a tiny SD pipeline, a tiny instruct-pix2pix pipeline and a LoRA for the first."""
    root = tmp_path_factory.mktemp("models")
    pipe = build_pipeline(root / "diffusion" / "tiny-sd")
    build_pipeline(root / "diffusion" / "tiny-pix2pix", kind="pix2pix")
    build_pipeline(root / "diffusion" / "tiny-sdxl", kind="sdxl")
    build_lora(root / "lora", pipe)
    write_ldm_checkpoint(pipe, root / "diffusion" / "tiny-single.safetensors")
    for leftover in (root / "diffusion").glob("*-tokenizer-source"):
        for file in leftover.iterdir():
            file.unlink()
        leftover.rmdir()
    return root


@pytest.fixture
def manager(models_dir):
    return ModelManager(models_dir=models_dir)


@pytest.fixture
def run(registry, manager, tmp_path, events):
    """Run a workflow on an executor with the tiny models folder; returns the RunResult."""
    (tmp_path / "input").mkdir(exist_ok=True)
    executor = Executor(registry, models=manager, output_dir=tmp_path / "output", input_dir=tmp_path / "input",
                        temp_dir=tmp_path / "temp")

    def run_workflow(document, **kwargs):
        # A wrapper, because Executor.run treats a falsy sink (the empty EventLog) as no sink.
        return executor.run(document, on_event=lambda event: events(event), **kwargs)

    run_workflow.executor = executor
    return run_workflow


def generate(seed=1, steps=2, width=SIZE, height=SIZE, batch=1, source="tiny-sd", prompt="a red ball on the grass",
             extra=None, sampler_inputs=None):
    nodes = {
        "model": {"type": "LoadDiffusionModel", "inputs": {"source": source, "device": "cpu"}},
        "cond": {"type": "EncodePrompt", "inputs": {"model": link("model", "model"), "prompt": prompt}},
        "sample": {"type": "TextToImage", "inputs": {
            "model": link("model", "model"), "conditioning": link("cond", "conditioning"),
            "width": width, "height": height, "steps": steps, "guidance": 5.0, "seed": seed, "batch": batch,
            **(sampler_inputs or {})}},
        "preview": {"type": "PreviewImage", "inputs": {"image": link("sample", "image")}},
    }
    nodes.update(extra or {})
    return workflow(nodes)


def image_of(result, node="sample"):
    assert result.status == "succeeded", result.error or result.problems
    return result.values[node]["image"]


def failure(result):
    assert result.status == "failed", f"expected a failed run, got {result.status}"
    return result.error["message"]


def save_input_image(tmp_path, name="photo.png", size=SIZE, mode="RGB"):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (size, size, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    path = tmp_path / "input" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return name


# Text to image ----------------------------------------------------------------


def test_text_to_image_shape_and_range(run, events):
    image = image_of(run(generate()))
    assert image.shape == (1, SIZE, SIZE, 3)
    assert image.dtype == torch.float32
    assert image.min() >= 0.0
    assert image.max() <= 1.0
    assert image.std() > 0.0


def test_progress_events_per_step(run, events):
    image_of(run(generate(steps=4)))
    progress = [event for event in events.of("node.progress") if event["node"] == "sample"]
    assert [(event["step"], event["total"]) for event in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    previews = [event["preview"] for event in progress if event.get("preview") is not None]
    assert len(previews) == 1
    assert isinstance(previews[0], Image.Image)


def test_seed_reproduces_image(registry, models_dir, tmp_path):
    images = []
    for attempt in range(2):
        executor = Executor(registry, models=ModelManager(models_dir=models_dir), output_dir=tmp_path / f"out{attempt}")
        images.append(image_of(executor.run(generate(seed=7))))
    assert torch.equal(images[0], images[1])


def test_other_seed_changes_image(run):
    first = image_of(run(generate(seed=7)))
    second = image_of(run(generate(seed=8)))
    assert not torch.equal(first, second)


def test_batch_image_uses_next_seed(run):
    batch = image_of(run(generate(seed=7, batch=2)))
    single = image_of(run(generate(seed=8)))
    assert batch.shape == (2, SIZE, SIZE, 3)
    assert torch.allclose(batch[1], single[0], atol=1e-5)


def test_seed_change_reuses_encoding_and_model(run, manager, events):
    image_of(run(generate(seed=1)))
    loads = manager.load_count
    events.clear()
    result = run(generate(seed=2))
    image_of(result)
    assert result.nodes["cond"].status == "cached"
    assert result.nodes["model"].status == "cached"
    assert result.nodes["sample"].status == "executed"
    assert manager.load_count == loads


def test_unloaded_model_loads_again(run, manager):
    image_of(run(generate(seed=1)))
    manager.unload_all()
    result = run(generate(seed=3))
    image_of(result)
    assert result.nodes["model"].status == "cached"
    assert manager.load_count == 2


def test_interrupt_between_steps(run, events):
    interrupt = threading.Event()

    def stop_after_first_step(event):
        events(event)
        if event["event"] == "node.progress" and event["step"] == 1:
            interrupt.set()

    result = run.executor.run(generate(steps=6), on_event=stop_after_first_step, interrupt=interrupt)
    assert result.status == "interrupted"
    progress = [event for event in events.of("node.progress") if event["node"] == "sample"]
    assert [event["step"] for event in progress] == [1]
    assert result.nodes["sample"].reason == "run_interrupted"


# Editing ----------------------------------------------------------------------


def edit_workflow(kind, tmp_path, **inputs):
    save_input_image(tmp_path)
    nodes = {
        "model": {"type": "LoadDiffusionModel", "inputs": {"source": "tiny-sd", "device": "cpu"}},
        "load": {"type": "LoadImage", "inputs": {"image": "photo.png"}},
        "cond": {"type": "EncodePrompt", "inputs": {"model": link("model", "model"), "prompt": "a cat among flowers"}},
    }
    common = {"model": link("model", "model"), "image": link("load", "image"), "steps": 4, "guidance": 5.0, "seed": 3}
    if kind == "ImageToImage":
        sampler = {**common, "conditioning": link("cond", "conditioning"), "strength": 0.5}
    elif kind == "Inpaint":
        nodes["mask"] = {"type": "MaskFromRect", "inputs": {"x": 8, "y": 8, "rect_width": 16, "rect_height": 16,
                                                             "image": link("load", "image")}}
        sampler = {**common, "conditioning": link("cond", "conditioning"), "mask": link("mask", "mask"), "strength": 1.0}
    elif kind == "StyleTransfer":
        sampler = {**common, "style": "watercolor painting", "strength": 0.5}
    else:
        raise AssertionError(kind)
    sampler.update(inputs)
    nodes["sample"] = {"type": kind, "inputs": sampler}
    nodes["save"] = {"type": "SaveImage", "inputs": {"image": link("sample", "image"), "filename_prefix": kind}}
    return workflow(nodes)


@pytest.mark.parametrize("kind", ["ImageToImage", "Inpaint", "StyleTransfer"])
def test_edit_changes_image(run, tmp_path, events, kind):
    result = run(edit_workflow(kind, tmp_path))
    image = image_of(result)
    source = result.values["load"]["image"]
    assert image.shape == source.shape
    assert image.min() >= 0.0
    assert image.max() <= 1.0
    assert not torch.allclose(image, source, atol=1e-3)
    # strength 0.5 of 4 steps runs 2 denoising steps; inpaint at strength 1 runs all 4
    steps = [event["step"] for event in events.of("node.progress") if event["node"] == "sample"]
    assert steps == ([1, 2, 3, 4] if kind == "Inpaint" else [1, 2])


def test_inpaint_with_alpha_mask(run, tmp_path):
    save_input_image(tmp_path, "erased.png", mode="RGBA")
    document = workflow({
        "model": {"type": "LoadDiffusionModel", "inputs": {"source": "tiny-sd", "device": "cpu"}},
        "load": {"type": "LoadImage", "inputs": {"image": "erased.png"}},
        "cond": {"type": "EncodePrompt", "inputs": {"model": link("model", "model"), "prompt": "flowers"}},
        "sample": {"type": "Inpaint", "inputs": {"model": link("model", "model"), "image": link("load", "image"),
                                                "mask": link("load", "mask"), "conditioning": link("cond", "conditioning"),
                                                "steps": 2, "seed": 1}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("sample", "image")}},
    })
    assert image_of(run(document)).shape == (1, SIZE, SIZE, 3)


def test_instruct_edit(run, tmp_path):
    save_input_image(tmp_path)
    document = workflow({
        "model": {"type": "LoadDiffusionModel", "inputs": {"source": "tiny-pix2pix", "device": "cpu"}},
        "load": {"type": "LoadImage", "inputs": {"image": "photo.png"}},
        "sample": {"type": "InstructEdit", "inputs": {
            "model": link("model", "model"), "image": link("load", "image"),
            "instruction": "turn the puppy into a cat", "image_guidance": 1.5, "steps": 2, "seed": 4}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("sample", "image")}},
    })
    first = image_of(run(document))
    assert first.shape == (1, SIZE, SIZE, 3)
    assert first.min() >= 0.0
    assert first.max() <= 1.0
    run.executor.cache.clear()
    assert torch.equal(image_of(run(document)), first)


def test_instruct_edit_needs_pix2pix(run, tmp_path):
    save_input_image(tmp_path)
    document = workflow({
        "model": {"type": "LoadDiffusionModel", "inputs": {"source": "tiny-sd", "device": "cpu"}},
        "load": {"type": "LoadImage", "inputs": {"image": "photo.png"}},
        "sample": {"type": "InstructEdit", "inputs": {"model": link("model", "model"), "image": link("load", "image"),
                                                      "instruction": "make it blue", "steps": 2}},
        "show": {"type": "PreviewImage", "inputs": {"image": link("sample", "image")}},
    })
    assert failure(run(document)).startswith("InstructEdit needs an instruct-pix2pix model")


def test_sdxl_generate_then_edit(run, tmp_path):
    document = generate(source="tiny-sdxl", extra={
        "edit": {"type": "ImageToImage", "inputs": {
            "model": link("model", "model"), "image": link("sample", "image"),
            "conditioning": link("cond", "conditioning"), "strength": 0.5, "steps": 2, "seed": 2}},
        "save": {"type": "SaveImage", "inputs": {"image": link("edit", "image")}},
    })
    result = run(document)
    assert result.values["cond"]["conditioning"].tensors["pooled_prompt_embeds"].shape == (1, 32)
    assert image_of(result).shape == (1, SIZE, SIZE, 3)
    edited = image_of(result, "edit")
    assert edited.shape == (1, SIZE, SIZE, 3)
    assert not torch.allclose(edited, image_of(result), atol=1e-3)


# LoRA -------------------------------------------------------------------------


def lora_workflow(weight=1.0):
    return generate(seed=5, extra={
        "lora": {"type": "LoadLoRA", "inputs": {"model": link("model", "model"), "lora": "tiny_lora.safetensors",
                                                "weight": weight}},
        "sample": {"type": "TextToImage", "inputs": {
            "model": link("lora", "model"), "conditioning": link("cond", "conditioning"),
            "width": SIZE, "height": SIZE, "steps": 2, "guidance": 5.0, "seed": 5}},
    })


def test_lora_changes_output_and_leaves_base(run, manager):
    base_before = image_of(run(generate(seed=5)))
    with_lora = image_of(run(lora_workflow()))
    assert not torch.allclose(base_before, with_lora, atol=1e-4)

    run.executor.cache.clear()
    base_after = image_of(run(generate(seed=5)))
    assert torch.equal(base_before, base_after)

    lora_keys = [entry["key"] for entry in manager.loaded() if "lora=" in entry["key"]]
    assert len(lora_keys) == 1
    assert manager.unload(lora_keys[0])
    run.executor.cache.clear()
    assert torch.equal(image_of(run(generate(seed=5))), base_before)


def test_lora_chain_is_one_model(run, manager):
    document = lora_workflow(weight=0.5)
    document["nodes"]["lora2"] = {"type": "LoadLoRA", "inputs": {
        "model": link("lora", "model"), "lora": "tiny_lora.safetensors", "weight": 0.5}}
    document["nodes"]["sample"]["inputs"]["model"] = link("lora2", "model")
    image = image_of(run(document))
    assert image.shape == (1, SIZE, SIZE, 3)
    lora_keys = [entry["key"] for entry in manager.loaded() if "lora=" in entry["key"]]
    assert len(lora_keys) == 1
    assert lora_keys[0].count("tiny_lora.safetensors@0.5") == 2


def test_lora_missing_file(run):
    document = lora_workflow()
    document["nodes"]["lora"]["inputs"]["lora"] = "absent.safetensors"
    assert failure(run(document)) == (
        "LoRA 'absent.safetensors' was not found in the models folder's lora/ subfolder or as a path; "
        "put the file there or give its full path"
    )


# Loading ----------------------------------------------------------------------


def test_missing_model_file(run):
    message = failure(run(generate(source="absent-model.safetensors")))
    assert message == (
        "diffusion model 'absent-model.safetensors' was not found in the models folder or as a path; "
        "put the file or folder under the models folder's diffusion/ subfolder or give its full path"
    )


def test_offline_hub_id(run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = failure(run(generate(source="nodegraph-tests/no-such-model")))
    assert message.startswith("diffusion model 'nodegraph-tests/no-such-model' is not in the local Hugging Face cache "
                              "and the hub is offline here (HF_HUB_OFFLINE is set)")
    assert "give the path of a local diffusers folder or .safetensors checkpoint" in message


def test_single_file_matches_folder(run):
    from_folder = image_of(run(generate(seed=6)))
    document = generate(seed=6)
    document["nodes"]["model"]["inputs"].update(source="tiny-single.safetensors", config="tiny-sd")
    from_file = image_of(run(document))
    assert torch.allclose(from_file, from_folder, atol=1e-5)


def test_single_file_offline_without_config(run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = failure(run(generate(source="tiny-single.safetensors")))
    assert message.startswith("checkpoint ")
    assert message.endswith("Offline, diffusers needs the matching configs: set 'config' to a local diffusers folder "
                            "of the same architecture, or load a diffusers folder instead")


def test_pickled_checkpoint_rejected(run, models_dir):
    pickled = models_dir / "diffusion" / "old.ckpt"
    pickled.write_bytes(b"not loaded")
    try:
        message = failure(run(generate(source="old.ckpt")))
    finally:
        pickled.unlink()
    assert message.startswith("old.ckpt is a pickled checkpoint, which can run code when loaded")


def test_catalog_lists_models_folder(registry, manager):
    catalog = registry.catalog(manager)
    source = next(spec for spec in catalog["LoadDiffusionModel"]["inputs"] if spec["name"] == "source")
    assert source["choices"] == ["embedded", "tiny-pix2pix", "tiny-sd", "tiny-sdxl", "tiny-single.safetensors"]
    lora = next(spec for spec in catalog["LoadLoRA"]["inputs"] if spec["name"] == "lora")
    assert lora["choices"] == ["tiny_lora.safetensors"]


# Bad input --------------------------------------------------------------------


def test_width_not_multiple_of_8(run):
    message = failure(run(generate(width=36)))
    assert message == "input 'width' is 36, which is not a multiple of 8; use 32 or 40"


def test_steps_zero_literal_is_invalid(run):
    result = run(generate(steps=0))
    assert result.status == "invalid"
    problem = result.problems[0]
    assert (problem.node, problem.input, problem.code) == ("sample", "steps", "out_of_range")


def test_steps_zero_from_link(run):
    document = generate(extra={"steps": {"type": "Int", "inputs": {"value": 0}}})
    document["nodes"]["sample"]["inputs"]["steps"] = link("steps", "value")
    assert failure(run(document)) == "input 'steps' is 0; use 1 to 1000 denoising steps"


def test_strength_out_of_range(run, tmp_path):
    result = run(edit_workflow("ImageToImage", tmp_path, strength=1.5))
    assert result.status == "invalid"
    assert (result.problems[0].input, result.problems[0].code) == ("strength", "out_of_range")

    document = edit_workflow("ImageToImage", tmp_path)
    document["nodes"]["strength"] = {"type": "Float", "inputs": {"value": -0.25}}
    document["nodes"]["sample"]["inputs"]["strength"] = link("strength", "value")
    assert failure(run(document)) == "input 'strength' is -0.25; use a value from 0 to 1"


def test_strength_too_small_for_steps(run, tmp_path):
    message = failure(run(edit_workflow("ImageToImage", tmp_path, strength=0.1)))
    assert message == ("input 'strength' is 0.1, which with 4 steps leaves no denoising step; "
                       "use a strength of at least 0.25 or more steps")


def test_mask_size_mismatch(run, tmp_path):
    document = edit_workflow("Inpaint", tmp_path)
    document["nodes"]["mask"] = {"type": "MaskFromRect", "inputs": {"x": 0, "y": 0, "rect_width": 8, "rect_height": 8,
                                                                    "width": 16, "height": 24}}
    assert failure(run(document)) == (
        "input 'mask' is 16x24 pixels but input 'image' is 32x32; "
        "make the mask at the image's size (MaskFromRect takes the size from its image input)"
    )


def test_huge_image_file_rejected(run, tmp_path):
    from test_images import _png_header_only

    (tmp_path / "input").mkdir(exist_ok=True)
    _png_header_only(tmp_path / "input" / "huge.png", 20000, 20000)
    document = workflow({"load": {"type": "LoadImage", "inputs": {"image": "huge.png"}},
                         "show": {"type": "PreviewImage", "inputs": {"image": link("load", "image")}}})
    result = run(document)
    assert "has more pixels than the limit of 67,108,864" in failure(result)
    assert result.error["node"] == "load"


def test_truncated_png_rejected(run, tmp_path):
    name = save_input_image(tmp_path, "cut.png", size=64)
    path = tmp_path / "input" / name
    path.write_bytes(path.read_bytes()[:300])
    document = workflow({"load": {"type": "LoadImage", "inputs": {"image": name}},
                         "show": {"type": "PreviewImage", "inputs": {"image": link("load", "image")}}})
    message = failure(run(document))
    assert message.startswith(f"{path} is damaged or truncated and cannot be decoded")


# Saving -----------------------------------------------------------------------


def test_saved_png_carries_workflow(run, registry, tmp_path):
    document = generate(seed=9, extra={
        "save": {"type": "SaveImage", "inputs": {"image": link("sample", "image"), "filename_prefix": "tiny/cat"}}})
    document["params"] = {"seed": ["sample", "seed"]}
    result = run(document, params={"seed": 11})
    saved = result.outputs["save"]["images"]
    assert [entry["filename"] for entry in saved] == ["tiny/cat_00001.png"]
    assert saved[0]["kind"] == "output"

    metadata = read_png_metadata(saved[0]["path"])
    assert metadata.params == {"seed": 11}
    assert metadata.workflow["nodes"]["sample"]["inputs"]["seed"] == 11
    assert validate(metadata.workflow, registry) == []
    assert metadata.parameters.splitlines()[0] == "a red ball on the grass"
    assert "Steps: 2, Sampler: DDIMScheduler, CFG scale: 5.0, Seed: 11, Size: 32x32, Model: tiny-sd" in metadata.parameters

    again = run(document, params={"seed": 11})
    assert [entry["filename"] for entry in again.outputs["save"]["images"]] == ["tiny/cat_00002.png"]


def test_preview_writes_temp_file(run, tmp_path):
    result = run(generate())
    entry = result.outputs["preview"]["images"][0]
    assert entry["kind"] == "temp"
    assert (tmp_path / "temp" / entry["filename"]).is_file()


# The embedded model -------------------------------------------------------------


class FakeEmbeddedPipeline:
    """Follows the embedded model's contract: native resolution, encode_prompt, __call__ returning [B, C, H, W]."""

    native_resolution = 16

    def __init__(self):
        self.calls = []

    def encode_prompt(self, prompt, negative_prompt=None):
        embeds = torch.full((len(prompt), 4, 8), float(len(prompt[0])))
        negative = torch.zeros_like(embeds) if negative_prompt is None else torch.ones_like(embeds)
        return embeds, negative

    def __call__(self, prompt_embeds=None, negative_prompt_embeds=None, height=None, width=None, num_inference_steps=20,
                 guidance_scale=3.0, generator=None, image=None, strength=1.0, mask_image=None,
                 callback_on_step_end=None, output_type="pt"):
        self.calls.append({"image": None if image is None else tuple(image.shape),
                           "mask": None if mask_image is None else tuple(mask_image.shape), "strength": strength})
        size = self.native_resolution
        images = torch.rand(prompt_embeds.shape[0], 3, size, size, generator=generator)
        for step in range(num_inference_steps):
            if callback_on_step_end is not None:
                callback_on_step_end(self, step, 1000 - step, {"latents": images})
        return types.SimpleNamespace(images=images)


@pytest.fixture
def fake_embedded(monkeypatch):
    pipe = FakeEmbeddedPipeline()
    module = types.ModuleType("nodegraph.embedded")
    module.load_embedded_pipeline = lambda device="cpu", dtype=None: pipe
    monkeypatch.setitem(sys.modules, "nodegraph.embedded", module)
    return pipe


def test_embedded_upscales_to_request(run, fake_embedded, events):
    image = image_of(run(generate(source="embedded", width=64, height=48, steps=3)))
    assert image.shape == (1, 48, 64, 3)
    steps = [event["step"] for event in events.of("node.progress") if event["node"] == "sample"]
    assert steps == [1, 2, 3]


def test_embedded_img2img_at_native_size(run, fake_embedded, tmp_path):
    document = edit_workflow("Inpaint", tmp_path)
    document["nodes"]["model"]["inputs"]["source"] = "embedded"
    image = image_of(run(document))
    assert image.shape == (1, SIZE, SIZE, 3)
    assert fake_embedded.calls[-1] == {"image": (1, 3, 16, 16), "mask": (1, 1, 16, 16), "strength": 1.0}


def test_embedded_missing_module(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "nodegraph.embedded", None)
    message = failure(run(generate(source="embedded")))
    assert message.startswith("the embedded image model is not installed (the module nodegraph.embedded is missing)")


def test_budget_unloads_least_recent(registry, models_dir, tmp_path):
    manager = ModelManager(models_dir=models_dir, budget_bytes=1)  # room for one model at a time
    executor = Executor(registry, models=manager, output_dir=tmp_path / "output")
    image_of(executor.run(generate(seed=1)))
    document = generate(seed=1)
    document["nodes"]["model"]["inputs"]["source"] = "tiny-pix2pix"
    document["nodes"]["sample"]["type"] = "TextToImage"
    executor.run(document)  # the pix2pix pipeline has no text-to-image mapping; loading it is what counts
    assert [entry["key"].split("|")[0].rsplit("/", 1)[-1] for entry in manager.loaded()] == ["tiny-pix2pix"]
    result = executor.run(generate(seed=2))
    image_of(result)
    assert result.nodes["model"].status == "cached"
    assert manager.load_count == 3


def test_shipped_edit_workflow_runs(run, registry, fake_embedded):
    import json

    from nodegraph.resources import workflows_dir

    document = json.loads((workflows_dir() / "generate-and-edit.json").read_text(encoding="utf-8"))
    document["nodes"]["generate"]["inputs"].update(steps=2, width=32, height=32)
    document["nodes"]["edit"]["inputs"]["steps"] = 2
    assert validate(document, registry) == []
    result = run(document, params={"target": "a cat among flowers"})
    compare = result.values["compare"]["image"]
    assert result.status == "succeeded"
    assert compare.shape == (1, 16 + 32, 32 + 2 + 32, 3)  # label strip above; a 2-pixel gap between
    assert [entry["filename"] for entry in result.outputs["save"]["images"]] == ["generate-and-edit_00001.png"]


def test_lora_not_safetensors(run, models_dir):
    broken = models_dir / "lora" / "broken.safetensors"
    broken.write_bytes(b"\x00" * 16)
    document = lora_workflow()
    document["nodes"]["lora"]["inputs"]["lora"] = "broken.safetensors"
    try:
        message = failure(run(document))
    finally:
        broken.unlink()
    assert message.startswith("input 'lora' is 'broken.safetensors', which is not a readable .safetensors file")


def test_saved_batch_records_each_seed(run):
    document = generate(seed=20, batch=2, extra={
        "save": {"type": "SaveImage", "inputs": {"image": link("sample", "image"), "filename_prefix": "batch"}}})
    saved = run(document).outputs["save"]["images"]
    seeds = [read_png_metadata(entry["path"]).parameters.split("Seed: ")[1].split(",")[0] for entry in saved]
    assert seeds == ["20", "21"]
