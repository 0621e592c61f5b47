"""The shipped embedded image model: it loads, draws what it is asked, edits, inpaints, and fails clearly."""

from __future__ import annotations

import numpy as np
import pytest

from nodegraph.embedded.model import MODEL_FILE, WEIGHTS_DIR
from nodegraph.errors import ModelUnavailable

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def pipe():
    from nodegraph.embedded import load_embedded_pipeline

    torch.set_num_threads(2)
    return load_embedded_pipeline(device="cpu", dtype=torch.float32)


def _generate(pipe, prompt: str, seed: int, **kwargs):
    embeds, negative = pipe.encode_prompt([prompt], None)
    out = pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, generator=torch.Generator().manual_seed(seed),
               **kwargs)
    return out.images


def _analyze(image):
    from nodegraph.embedded.analyze import analyze

    return analyze(image.permute(1, 2, 0).numpy())


def _rendered(scene):
    from nodegraph.embedded.scene import render

    return torch.from_numpy(render(scene)).permute(2, 0, 1).float().div(255).unsqueeze(0)


def test_missing_weights_clear_error(tmp_path):
    from nodegraph.embedded import load_embedded_pipeline

    missing = tmp_path / "model.safetensors"
    with pytest.raises(ModelUnavailable) as info:
        load_embedded_pipeline(weights=missing)
    assert str(info.value) == (
        f"The embedded image model weights are missing: {missing} does not exist. "
        "Reinstall nodegraph, or train them with: python -m nodegraph.embedded.train"
    )


def test_corrupt_weights_clear_error(tmp_path):
    from nodegraph.embedded import load_embedded_pipeline

    corrupt = tmp_path / "model.safetensors"
    corrupt.write_bytes((WEIGHTS_DIR / MODEL_FILE).read_bytes()[:5000])
    with pytest.raises(ModelUnavailable, match=r"weights in .*model\.safetensors are corrupt .*python -m nodegraph"):
        load_embedded_pipeline(weights=corrupt)


def test_mismatched_weights_clear_error(tmp_path):
    from safetensors.torch import save_file

    from nodegraph.embedded import load_embedded_pipeline

    other = tmp_path / "model.safetensors"
    save_file({"conv_in.weight": torch.zeros(8, 3, 3, 3)}, str(other))
    with pytest.raises(ModelUnavailable, match=r"do not fit the network"):
        load_embedded_pipeline(weights=other)


def test_pipeline_contract(pipe):
    from diffusers import DiffusionPipeline

    assert isinstance(pipe, DiffusionPipeline)
    assert pipe.native_resolution == 32
    embeds, negative = pipe.encode_prompt(["a red ball on the grass", "a blue star at night"], None)
    assert embeds.shape == negative.shape == (2, 33, 384)
    assert not torch.equal(embeds[0], embeds[1])
    assert torch.equal(negative[0], negative[1])
    seen = []

    def callback(p, step, timestep, kwargs):
        seen.append((step, int(timestep), tuple(kwargs["latents"].shape)))
        return kwargs

    images = pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, num_inference_steps=5,
                  generator=torch.Generator().manual_seed(0), callback_on_step_end=callback).images
    assert images.shape == (2, 3, 32, 32)
    assert images.dtype == torch.float32
    assert images.min() >= 0.0
    assert images.max() <= 1.0
    assert [s for s, _, _ in seen] == [0, 1, 2, 3, 4]
    assert all(shape == (2, 3, 32, 32) for _, _, shape in seen)


def test_same_seed_same_image(pipe):
    a = _generate(pipe, "a big pink box on the left on the sand", 5, num_inference_steps=8)
    b = _generate(pipe, "a big pink box on the left on the sand", 5, num_inference_steps=8)
    assert torch.equal(a, b)


# Prompts built from training words; the figures across many prompts are in docs/benchmarks.md.
CONTENT_CASES = [
    ("a large red ball in the center on green grass under a blue sky", "grass", "red"),
    ("a big yellow star at the top in the night sky", "night", "yellow"),
    ("a large blue box on the left on the sand", "sand", "blue"),
    ("a big green triangle in the middle on the snow", "snow", "green"),
]


@pytest.mark.slow
@pytest.mark.parametrize("prompt,background,color", CONTENT_CASES)
def test_draws_requested_background_and_color(pipe, prompt, background, color):
    results = [_analyze(_generate(pipe, prompt, seed)[0]) for seed in range(4)]
    backgrounds = [r.background for r in results]
    colors = [r.main.color if r.main else None for r in results]
    assert backgrounds.count(background) >= 3, backgrounds
    assert colors.count(color) >= 3, colors


@pytest.mark.slow
def test_image_to_image_strength(pipe):
    from nodegraph.embedded.scene import Scene, SceneObject

    source = _rendered(Scene("sea", (SceneObject("ball", "red", "large", "center"),)))
    low = _generate(pipe, "a large red ball in the center over the sea", 1, image=source, strength=0.2)
    assert low.shape == (1, 3, 32, 32)
    assert (low - source).abs().mean() < 0.05
    found = _analyze(low[0])
    assert found.background == "sea"
    assert found.main is not None
    assert found.main.color == "red"
    full = _generate(pipe, "a large red ball in the center over the sea", 1, image=source, strength=1.0)
    assert (full - source).abs().mean() > (low - source).abs().mean()


@pytest.mark.slow
def test_inpaint_keeps_unmasked_pixels(pipe):
    from nodegraph.embedded.scene import Scene

    source = _rendered(Scene("grass", ()))
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1.0
    out = _generate(pipe, "a large purple box in the center on green grass under a blue sky", 2,
                    image=source, mask_image=mask, strength=1.0)
    assert out.shape == (1, 3, 32, 32)
    keep = mask.expand(1, 3, 32, 32) == 0
    assert torch.allclose(out[keep], source[keep], atol=1e-5)
    assert (out - source).abs()[~keep].mean() > 0.05


def test_bad_inputs_name_value(pipe):
    embeds, negative = pipe.encode_prompt(["a red ball"], None)
    with pytest.raises(ValueError, match=r"height=20 does not suit the embedded model"):
        pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, height=20)
    with pytest.raises(ValueError, match=r"strength=0 must be in \(0, 1\]"):
        pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, image=torch.zeros(1, 3, 32, 32), strength=0)
    with pytest.raises(ValueError, match=r"mask_image needs image"):
        pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, mask_image=torch.ones(1, 1, 32, 32))


def test_default_call_native_resolution(pipe):
    out = _generate(pipe, "a small cyan circle on the right by the sea", 3)
    assert out.shape == (1, 3, pipe.native_resolution, pipe.native_resolution)
    assert np.isfinite(out.numpy()).all()


@pytest.mark.slow
def test_diffusion_nodes_draw_and_edit(executor):
    from conftest import link, workflow

    from nodegraph.embedded.analyze import analyze

    scene = "in the center on green grass under a blue sky"
    nodes = {
        "model": {"type": "LoadDiffusionModel", "inputs": {"source": "embedded"}},
        "red": {"type": "EncodePrompt", "inputs": {"model": link("model", "model"), "prompt": f"a large red ball {scene}"}},
        "blue": {"type": "EncodePrompt", "inputs": {"model": link("model", "model"), "prompt": f"a large blue ball {scene}"}},
        "draw": {"type": "TextToImage", "inputs": {"model": link("model", "model"), "conditioning": link("red", "conditioning"),
                                                   "width": 64, "height": 64, "steps": 20, "guidance": 3.0, "seed": 3}},
        "edit": {"type": "ImageToImage", "inputs": {"model": link("model", "model"), "image": link("draw", "image"),
                                                    "conditioning": link("blue", "conditioning"), "steps": 20,
                                                    "guidance": 3.0, "seed": 4, "strength": 0.6}},
        "save": {"type": "SaveImage", "inputs": {"image": link("edit", "image")}},
    }
    result = executor.run(workflow(nodes))
    assert result.status == "succeeded", result.error or result.problems
    drawn = result.values["draw"]["image"]
    edited = result.values["edit"]["image"]
    assert tuple(drawn.shape) == (1, 64, 64, 3)
    before, after = analyze(drawn[0].numpy()), analyze(edited[0].numpy())
    assert before.background == "grass"
    assert before.main.color == "red"
    assert after.background == "grass"
    assert after.main.color == "blue"
