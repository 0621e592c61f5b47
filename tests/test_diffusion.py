"""Tests for nodegraph.diffusion: sources, schedulers, LoRA copies, prompt encoding and the step callback."""

from __future__ import annotations

import pytest
import torch

from nodegraph.diffusion import (
    Conditioning,
    DiffusionModel,
    LoraSpec,
    SamplingRequest,
    apply_loras,
    encode_prompt,
    latent_preview,
    load_pipeline,
    make_scheduler,
    resolve_device,
    resolve_dtype,
    resolve_source,
    sample,
    seeded_generators,
    step_callback,
)
from nodegraph.errors import Interrupted, ModelUnavailable, NodeError
from nodegraph.models import ModelManager
from tiny_diffusion import build_lora, build_pipeline


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A saved tiny SD pipeline and a LoRA for it: (models folder, pipeline folder, LoRA file)."""
    root = tmp_path_factory.mktemp("models")
    folder = root / "diffusion" / "tiny-sd"
    pipe = build_pipeline(folder)
    lora = build_lora(root / "lora", pipe)
    return root, folder, lora


@pytest.fixture(scope="module")
def loaded(tiny):
    _, folder, _ = tiny
    model = DiffusionModel(str(folder), "folder")
    return model, load_pipeline(model)


class FakeContext:
    """The part of NodeContext the sampling adapter uses."""

    def __init__(self, models=None, stop_at=None):
        self.models = models
        self.stop_at = stop_at
        self.progress_calls = []
        self.warnings = []

    def progress(self, step, total, preview=None):
        self.progress_calls.append((step, total, preview))
        if self.stop_at is not None and step >= self.stop_at:
            raise Interrupted("stop")

    def check_interrupted(self):
        pass

    def warn(self, message):
        self.warnings.append(message)


# Sources and options ------------------------------------------------------------


def test_source_embedded():
    assert resolve_source("embedded", None) == ("embedded", "embedded")


def test_source_from_models_folder(tiny):
    root, folder, _ = tiny
    assert resolve_source("tiny-sd", ModelManager(models_dir=root)) == ("folder", str(folder.resolve()))


def test_source_hub_id():
    assert resolve_source("stabilityai/sd-turbo", None) == ("hub", "stabilityai/sd-turbo")


def test_source_folder_without_index(tmp_path):
    with pytest.raises(ModelUnavailable, match="has no model_index.json"):
        resolve_source(str(tmp_path), None)


def test_source_pickled_file(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"x")
    with pytest.raises(ModelUnavailable, match="only .safetensors weights are loaded"):
        resolve_source(str(path), None)


def test_source_missing_file():
    with pytest.raises(ModelUnavailable, match="'absent.safetensors' was not found"):
        resolve_source("absent.safetensors", None)


def test_source_neither_path_nor_id(tiny):
    with pytest.raises(ModelUnavailable) as raised:
        resolve_source("not a model", ModelManager(models_dir=tiny[0]))
    assert str(raised.value) == ("diffusion model 'not a model' is neither a file, a folder nor a Hugging Face id "
                                 "(owner/name); use one of: embedded, tiny-sd, or give a path")


def test_device_auto_on_cpu_machine():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_device("auto") in ("cpu", "mps")
    with pytest.raises(NodeError, match="torch finds no CUDA device here"):
        resolve_device("cuda")
    with pytest.raises(NodeError, match="input 'device' is 'tpu'"):
        resolve_device("tpu")


def test_dtype_auto():
    assert resolve_dtype("auto", "cuda") == "float16"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"


def test_model_keys():
    model = DiffusionModel("/m/sd", "folder", scheduler="euler")
    assert model.key == model.base_key == "diffusion:folder:/m/sd|cpu|float32"
    assert DiffusionModel("/m/sd", "folder", scheduler="ddim").key == model.key
    with_lora = model.with_lora(LoraSpec("/l/ink.safetensors", 0.5))
    assert with_lora.base_key == model.base_key
    assert with_lora.key == "diffusion:folder:/m/sd|cpu|float32|lora=/l/ink.safetensors@0.5"
    assert with_lora.summary()["loras"] == [{"path": "/l/ink.safetensors", "weight": 0.5}]


# Schedulers -------------------------------------------------------------------


@pytest.mark.parametrize("name, class_name", [
    ("default", "DDIMScheduler"),
    ("euler", "EulerDiscreteScheduler"),
    ("euler_ancestral", "EulerAncestralDiscreteScheduler"),
    ("dpmpp_2m", "DPMSolverMultistepScheduler"),
    ("dpmpp_2m_karras", "DPMSolverMultistepScheduler"),
    ("ddim", "DDIMScheduler"),
    ("lcm", "LCMScheduler"),
])
def test_scheduler_names(loaded, name, class_name):
    _, pipe = loaded
    scheduler = make_scheduler(name, pipe.scheduler)
    assert type(scheduler).__name__ == class_name
    assert scheduler is not pipe.scheduler
    assert scheduler.config.beta_schedule == "scaled_linear"
    if name.startswith("dpmpp"):
        assert scheduler.config.algorithm_type == "dpmsolver++"
        assert scheduler.config.use_karras_sigmas == (name == "dpmpp_2m_karras")


def test_scheduler_flow_matching_rejects_others():
    from diffusers import FlowMatchEulerDiscreteScheduler

    with pytest.raises(NodeError, match="scheduler 'euler' does not fit this flow-matching model"):
        make_scheduler("euler", FlowMatchEulerDiscreteScheduler())


def test_scheduler_unknown(loaded):
    with pytest.raises(NodeError, match="input 'scheduler' is 'heun'"):
        make_scheduler("heun", loaded[1].scheduler)


# Prompt encoding and LoRA ---------------------------------------------------------


def test_encode_prompt_shapes(loaded):
    model, pipe = loaded
    conditioning = encode_prompt(model, pipe, "a red ball", "")
    assert set(conditioning.tensors) == {"prompt_embeds", "negative_prompt_embeds"}
    assert conditioning.tensors["prompt_embeds"].shape == (1, 77, 32)
    assert conditioning.model_key == model.key
    with_negative = encode_prompt(model, pipe, "a red ball", "blurry")
    assert torch.equal(with_negative.tensors["prompt_embeds"], conditioning.tensors["prompt_embeds"])
    assert not torch.equal(with_negative.tensors["negative_prompt_embeds"], conditioning.tensors["negative_prompt_embeds"])


def test_lora_copy_leaves_base(loaded, tiny):
    model, base = loaded
    before = {name: tensor.clone() for name, tensor in base.unet.state_dict().items()}
    with_lora = model.with_lora(LoraSpec(str(tiny[2]), 1.0))
    copy = apply_loras(base, with_lora)
    assert copy.unet is not base.unet
    assert copy.vae is base.vae
    assert any("lora" in name for name in copy.unet.state_dict())
    after = base.unet.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[name], before[name]) for name in before)


def test_lora_that_does_not_fit(loaded, tmp_path):
    from safetensors.torch import save_file

    model, base = loaded
    path = tmp_path / "other.safetensors"
    save_file({"unet.down_blocks.9.attentions.0.proj_in.lora_A.weight": torch.zeros(4, 999)}, str(path))
    with pytest.raises(NodeError, match="LoRA other.safetensors does not fit model 'tiny-sd'"):
        apply_loras(base, model.with_lora(LoraSpec(str(path), 1.0)))


# Sampling adapter ---------------------------------------------------------------


def test_generators_follow_seed():
    first = [generator.initial_seed() for generator in seeded_generators(2**64 - 1, 2)]
    assert first == [2**64 - 1, 0]


def test_latent_preview():
    preview = latent_preview(torch.randn(2, 4, 16, 8))
    assert preview.size == (64, 128)
    assert preview.mode == "RGB"
    assert latent_preview(torch.randn(1, 64, 16)) is None


def test_step_callback_previews_every_fourth_step():
    ctx = FakeContext()
    callback = step_callback(ctx, steps=6)
    for step in range(6):
        assert callback(None, step, 999, {"latents": torch.randn(1, 4, 8, 8)}) == {}
    assert [(step, total) for step, total, _ in ctx.progress_calls] == [(i, 6) for i in range(1, 7)]
    assert [step for step, _, preview in ctx.progress_calls if preview is not None] == [4, 6]


def test_sample_stops_when_interrupted(tiny):
    root, folder, _ = tiny
    manager = ModelManager(models_dir=root)
    model = DiffusionModel(str(folder), "folder")
    conditioning = encode_prompt(model, model.pipeline(manager), "a cat", "")
    ctx = FakeContext(models=manager, stop_at=2)
    with pytest.raises(Interrupted):
        sample(ctx, model, SamplingRequest("text2img", 5, 5.0, 1, conditioning, width=16, height=16))
    assert [step for step, _, _ in ctx.progress_calls] == [1, 2]


def test_sample_rejects_other_models_conditioning(tiny):
    root, folder, _ = tiny
    model = DiffusionModel(str(folder), "folder")
    foreign = Conditioning("diffusion:folder:/elsewhere|cpu|float32", "diffusion:folder:/elsewhere|cpu|float32",
                           "a cat", "", {"prompt_embeds": torch.zeros(1, 77, 32)})
    request = SamplingRequest("text2img", 2, 5.0, 1, foreign, width=16, height=16)
    with pytest.raises(NodeError, match="input 'conditioning' was encoded by another model"):
        sample(FakeContext(models=ModelManager(models_dir=root)), model, request)
