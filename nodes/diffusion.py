"""Image generation and editing nodes on diffusers: loading, LoRA, prompts, sampling.

`nodegraph.diffusion` does the work. These declarations check the inputs and describe
each node. torch and diffusers are imported inside `run` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodegraph.diffusion import (
    DEVICES,
    DTYPES,
    EMBEDDED,
    SCHEDULERS,
    Conditioning,
    DiffusionModel,
    LoraSpec,
    SamplingRequest,
    choices_of_loras,
    choices_of_models,
)
from nodegraph.errors import ModelUnavailable, NodeError
from nodegraph.node import Input, Node, Output
from nodegraph.types import CONDITIONING, DIFFUSION_MODEL, FLOAT, IMAGE, INT, MASK, STRING

# Seeds are unsigned 64-bit integers, the range torch.Generator.manual_seed accepts.
SEED_MAX = 2**64 - 1
MAX_SIDE = 8192


def _model_input() -> Input:
    return Input("model", DIFFUSION_MODEL, description="The diffusion model, from LoadDiffusionModel or LoadLoRA.")


def _steps_input(default: int = 20) -> Input:
    return Input("steps", INT, default=default, min=1, max=1000, description="Denoising steps; more is slower and usually cleaner.")


def _guidance_input(default: float = 7.0) -> Input:
    return Input("guidance", FLOAT, default=default, min=0.0, max=100.0, step=0.1,
                 description="Guidance scale: how strongly the image follows the prompt (1 turns guidance off).")


def _seed_input() -> Input:
    return Input("seed", INT, default=0, min=0, max=SEED_MAX, widget="seed",
                 description="The seed of the initial noise; the same seed, model, device and dtype give the same image.")


def _strength_input(default: float) -> Input:
    return Input("strength", FLOAT, default=default, min=0.0, max=1.0, step=0.01, widget="slider",
                 description="How much of the image is redrawn: 0 keeps it, 1 replaces it.")


class LoadDiffusionModel(Node):
    type_id = "LoadDiffusionModel"
    display_name = "Load diffusion model"
    category = "image/diffusion"
    description = (
        "Load a text-to-image model: the embedded model, a diffusers folder, a single .safetensors checkpoint "
        "or a Hugging Face id (SD 1.x/2.x, SDXL, Turbo, SD3 and Flux as diffusers supports them). "
        "Only safetensors weights are loaded. A model loads once per process and is shared."
    )
    inputs = (
        Input("source", STRING, default=EMBEDDED, choices=choices_of_models, open_choices=True,
              description="'embedded', a model in the models folder's diffusion/ subfolder, a path or a hub id."),
        Input("scheduler", STRING, default="default", choices=SCHEDULERS,
              description="The sampler's noise schedule; 'default' keeps the model's own."),
        Input("device", STRING, default="auto", choices=DEVICES,
              description="Where the model runs; 'auto' takes CUDA, then Apple MPS, then the CPU."),
        Input("dtype", STRING, default="auto", choices=DTYPES,
              description="Weight precision; 'auto' is float16 on CUDA and float32 elsewhere."),
        Input("config", STRING, required=False, default="",
              description="For a single checkpoint offline: a local diffusers folder of the same architecture to take configs from."),
    )
    outputs = (Output("model", DIFFUSION_MODEL),)

    def run(self, ctx, source: str, scheduler: str, device: str, dtype: str, config: str = "") -> dict[str, Any]:
        from nodegraph.diffusion import resolve_device, resolve_dtype, resolve_source

        if scheduler not in SCHEDULERS:
            raise NodeError(f"input 'scheduler' is {scheduler!r}; use one of {', '.join(SCHEDULERS)}")
        kind, resolved = resolve_source(source, ctx.models)
        if config and kind != "single_file":
            ctx.warn(f"input 'config' is used only for a single .safetensors checkpoint; ignored for {source!r}")
            config = ""
        if config:
            config_path = ctx.models.resolve("diffusion", config) or Path(config).expanduser()
            config = str(config_path.resolve()) if config_path.exists() else config
        device = resolve_device(device)
        model = DiffusionModel(resolved, kind, device, resolve_dtype(dtype, device), scheduler, config)
        model.pipeline(ctx.models)
        return {"model": model}


class LoadLoRA(Node):
    type_id = "LoadLoRA"
    display_name = "Load LoRA"
    category = "image/diffusion"
    description = (
        "Apply a LoRA (.safetensors) to a model. The result is a copy: the model it comes from, and every other "
        "node using it, stay unchanged. Chain several to combine them."
    )
    inputs = (
        _model_input(),
        Input("lora", STRING, default="", choices=choices_of_loras, open_choices=True,
              description="A .safetensors LoRA in the models folder's lora/ subfolder, or its path."),
        Input("weight", FLOAT, default=1.0, min=-10.0, max=10.0, step=0.05,
              description="How strongly the LoRA applies; 0 turns it off, negative values invert it."),
    )
    outputs = (Output("model", DIFFUSION_MODEL),)

    def run(self, ctx, model: DiffusionModel, lora: str, weight: float) -> dict[str, Any]:
        path = _lora_path(ctx, lora)
        _check_safetensors(path)
        # The copy with the LoRAs is built when a node first uses the model, so a chain of
        # LoadLoRA nodes makes one copy with all of them, not one per link.
        return {"model": model.with_lora(LoraSpec(str(path), float(weight)))}


def _lora_path(ctx, lora: str) -> Path:
    if not lora.strip():
        raise NodeError("input 'lora' is empty; choose a .safetensors file from the models folder's lora/ subfolder")
    path = ctx.models.resolve("lora", lora)
    if path is None:
        candidate = Path(lora).expanduser()
        path = candidate.resolve() if candidate.is_file() else None
    if path is None:
        raise ModelUnavailable(
            f"LoRA {lora!r} was not found in the models folder's lora/ subfolder or as a path; put the file there "
            "or give its full path"
        )
    if path.suffix.lower() != ".safetensors":
        raise NodeError(f"input 'lora' is {path.name!r}; only .safetensors LoRA files are loaded (pickled files can run code)")
    return path


def _check_safetensors(path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            empty = not list(handle.keys())
    except (SafetensorError, OSError) as error:
        raise NodeError(f"input 'lora' is {path.name!r}, which is not a readable .safetensors file ({error})") from error
    if empty:
        raise NodeError(f"input 'lora' is {path.name!r}, which contains no tensors")


class EncodePrompt(Node):
    type_id = "EncodePrompt"
    display_name = "Encode prompt"
    category = "image/diffusion"
    description = (
        "Turn a prompt and an optional negative prompt into conditioning with the model's own text encoder. "
        "The result is cached, so changing the seed or steps downstream does not encode again."
    )
    inputs = (
        _model_input(),
        Input("prompt", STRING, default="", multiline=True, description="What the image shows."),
        Input("negative", STRING, required=False, default="", multiline=True,
              description="What the image should not show."),
    )
    outputs = (Output("conditioning", CONDITIONING),)

    def run(self, ctx, model: DiffusionModel, prompt: str, negative: str = "") -> dict[str, Any]:
        from nodegraph.diffusion import encode_prompt

        pipe = model.pipeline(ctx.models)
        return {"conditioning": encode_prompt(model, pipe, prompt, negative)}


class TextToImage(Node):
    type_id = "TextToImage"
    display_name = "Text to image"
    category = "image/diffusion"
    description = "Generate images from conditioning. Reports each denoising step with a rough preview."
    inputs = (
        _model_input(),
        Input("conditioning", CONDITIONING, description="The prompt, from EncodePrompt with the same model."),
        Input("width", INT, default=512, min=8, max=MAX_SIDE, step=8, description="Image width in pixels, a multiple of 8."),
        Input("height", INT, default=512, min=8, max=MAX_SIDE, step=8, description="Image height in pixels, a multiple of 8."),
        _steps_input(),
        _guidance_input(),
        _seed_input(),
        Input("batch", INT, default=1, min=1, max=64, description="How many images; image i uses seed + i."),
    )
    outputs = (Output("image", IMAGE),)

    def run(self, ctx, model: DiffusionModel, conditioning: Conditioning, width: int, height: int, steps: int,
            guidance: float, seed: int, batch: int) -> dict[str, Any]:
        _check_side("width", width)
        _check_side("height", height)
        _check_steps(steps)
        _check_seed(seed)
        if not 1 <= batch <= 64:
            raise NodeError(f"input 'batch' is {batch}; use 1 to 64")
        request = SamplingRequest("text2img", steps, guidance, seed, conditioning, width=width, height=height, batch=batch)
        return {"image": _sample(ctx, model, request)}


class ImageToImage(Node):
    type_id = "ImageToImage"
    display_name = "Image to image"
    category = "image/diffusion"
    description = (
        "Redraw an image toward the conditioning: strength sets how much changes. With strength s and n steps, "
        "about s x n denoising steps run."
    )
    inputs = (
        _model_input(),
        Input("image", IMAGE, description="The image to change."),
        Input("conditioning", CONDITIONING, description="The target description, from EncodePrompt with the same model."),
        _strength_input(0.6),
        _steps_input(),
        _guidance_input(),
        _seed_input(),
    )
    outputs = (Output("image", IMAGE),)

    def run(self, ctx, model: DiffusionModel, image: Any, conditioning: Conditioning, strength: float, steps: int,
            guidance: float, seed: int) -> dict[str, Any]:
        _check_image_for_model(image)
        _check_steps(steps)
        _check_strength(strength, steps)
        _check_seed(seed)
        request = SamplingRequest("img2img", steps, guidance, seed, conditioning, image=image, strength=strength)
        return {"image": _sample(ctx, model, request)}


class Inpaint(Node):
    type_id = "Inpaint"
    display_name = "Inpaint"
    category = "image/diffusion"
    description = (
        "Redraw the masked area of an image toward the conditioning and keep the rest. "
        "Masks come from MaskFromRect or from LoadImage's alpha channel (transparent = redraw)."
    )
    inputs = (
        _model_input(),
        Input("image", IMAGE, description="The image to change."),
        Input("mask", MASK, description="1 (white) where the image is redrawn, 0 where it is kept; the image's size."),
        Input("conditioning", CONDITIONING, description="What the masked area shows, from EncodePrompt with the same model."),
        _strength_input(1.0),
        _steps_input(),
        _guidance_input(),
        _seed_input(),
    )
    outputs = (Output("image", IMAGE),)

    def run(self, ctx, model: DiffusionModel, image: Any, mask: Any, conditioning: Conditioning, strength: float,
            steps: int, guidance: float, seed: int) -> dict[str, Any]:
        _check_image_for_model(image)
        mask = _check_mask_fits(mask, image)
        _check_steps(steps)
        _check_strength(strength, steps)
        _check_seed(seed)
        request = SamplingRequest("inpaint", steps, guidance, seed, conditioning, image=image, mask=mask, strength=strength)
        return {"image": _sample(ctx, model, request)}


class InstructEdit(Node):
    type_id = "InstructEdit"
    display_name = "Instruction edit"
    category = "image/diffusion"
    description = (
        "Edit an image by an instruction such as 'make it a cat among flowers', with an instruct-pix2pix model. "
        "Image guidance sets how closely the result keeps the input image."
    )
    inputs = (
        _model_input(),
        Input("image", IMAGE, description="The image to edit."),
        Input("instruction", STRING, default="", multiline=True, description="What to change, as an instruction."),
        Input("image_guidance", FLOAT, default=1.5, min=0.0, max=20.0, step=0.05,
              description="How closely the result keeps the input image (1 turns image guidance off)."),
        _steps_input(),
        _guidance_input(7.5),
        _seed_input(),
        Input("negative", STRING, required=False, default="", multiline=True,
              description="What the result should not show."),
    )
    outputs = (Output("image", IMAGE),)

    def run(self, ctx, model: DiffusionModel, image: Any, instruction: str, image_guidance: float, steps: int,
            guidance: float, seed: int, negative: str = "") -> dict[str, Any]:
        _check_image_for_model(image)
        _check_steps(steps)
        _check_seed(seed)
        if not instruction.strip():
            raise NodeError("input 'instruction' is empty; say what to change, e.g. 'turn the puppy into a cat'")
        request = SamplingRequest("instruct", steps, guidance, seed, prompt=instruction, negative=negative, image=image,
                                  image_guidance=image_guidance)
        return {"image": _sample(ctx, model, request)}


class StyleTransfer(Node):
    type_id = "StyleTransfer"
    display_name = "Style transfer"
    category = "image/diffusion"
    description = (
        "Redraw an image in a style described in words (e.g. 'watercolor painting, soft washes'): "
        "image to image with the style as the prompt. Low strength keeps the content."
    )
    inputs = (
        _model_input(),
        Input("image", IMAGE, description="The image to restyle."),
        Input("style", STRING, default="", multiline=True, description="The style, in words."),
        _strength_input(0.5),
        _steps_input(),
        _guidance_input(),
        _seed_input(),
        Input("negative", STRING, required=False, default="", multiline=True,
              description="What the result should not show."),
    )
    outputs = (Output("image", IMAGE),)

    # NOTE: the style is text only. An IP-Adapter path (style from a reference image) needs
    # IP-Adapter weights, which nodegraph has no loader for and cannot fetch offline.

    def run(self, ctx, model: DiffusionModel, image: Any, style: str, strength: float, steps: int, guidance: float,
            seed: int, negative: str = "") -> dict[str, Any]:
        from nodegraph.diffusion import encode_prompt

        _check_image_for_model(image)
        _check_steps(steps)
        _check_strength(strength, steps)
        _check_seed(seed)
        if not style.strip():
            raise NodeError("input 'style' is empty; describe the style, e.g. 'oil painting, thick brush strokes'")
        conditioning = encode_prompt(model, model.pipeline(ctx.models), style, negative)
        request = SamplingRequest("img2img", steps, guidance, seed, conditioning, image=image, strength=strength)
        return {"image": _sample(ctx, model, request)}


# Checks and the shared sampling step ------------------------------------------


def _sample(ctx, model: DiffusionModel, request: SamplingRequest) -> Any:
    from nodegraph.diffusion import sample
    from nodegraph.images import attach_generation

    conditioning = request.conditioning
    if conditioning is not None and conditioning.model_key != model.key:
        ctx.warn("input 'conditioning' was encoded with a different set of LoRAs than this node's model; "
                 "connect EncodePrompt to the same model if the LoRAs change the text encoder")
    images = sample(ctx, model, request)
    info: dict[str, Any] = {
        "prompt": conditioning.prompt if conditioning is not None else request.prompt,
        "negative": conditioning.negative if conditioning is not None else request.negative,
        "steps": request.steps,
        "sampler": _scheduler_name(ctx, model),
        "guidance": request.guidance,
        "seed": request.seed,
        "width": images.shape[2],
        "height": images.shape[1],
        "model": model.name,
    }
    if request.task in ("img2img", "inpaint"):
        info["strength"] = request.strength
    if request.task == "instruct":
        info["image_guidance"] = request.image_guidance
    if model.loras:
        info["loras"] = [Path(lora.path).stem for lora in model.loras]
    if model.kind != EMBEDDED:
        # Image i of a batch is drawn with seed + i (nodegraph.diffusion.seeded_generators).
        info["seeds"] = [(request.seed + index) % 2**64 for index in range(images.shape[0])]
    return attach_generation(images, info)


def _scheduler_name(ctx, model: DiffusionModel) -> str:
    if model.scheduler != "default" or model.kind == EMBEDDED:
        return model.scheduler
    return type(model.pipeline(ctx.models).scheduler).__name__


def _check_side(name: str, value: int) -> None:
    if value < 8 or value > MAX_SIDE:
        raise NodeError(f"input {name!r} is {value}; use 8 to {MAX_SIDE} pixels")
    if value % 8:
        lower, upper = value - value % 8, value - value % 8 + 8
        raise NodeError(f"input {name!r} is {value}, which is not a multiple of 8; use {max(lower, 8)} or {upper}")


def _check_steps(steps: int) -> None:
    if steps < 1 or steps > 1000:
        raise NodeError(f"input 'steps' is {steps}; use 1 to 1000 denoising steps")


def _check_seed(seed: int) -> None:
    if seed < 0 or seed > SEED_MAX:
        raise NodeError(f"input 'seed' is {seed}; use 0 to {SEED_MAX}")


def _check_strength(strength: float, steps: int) -> None:
    if not 0.0 <= strength <= 1.0:
        raise NodeError(f"input 'strength' is {strength}; use a value from 0 to 1")
    if int(steps * strength) < 1:
        needed = 1.0 / steps
        raise NodeError(
            f"input 'strength' is {strength}, which with {steps} steps leaves no denoising step; "
            f"use a strength of at least {needed:.3g} or more steps"
        )


def _check_image_for_model(image: Any) -> None:
    from nodegraph.images import check_image

    check_image(image)
    height, width = image.shape[-3], image.shape[-2]
    if width % 8 or height % 8:
        raise NodeError(
            f"input 'image' is {width}x{height} pixels; diffusion models need sides that are multiples of 8, "
            f"resize it with ResizeImage to {width - width % 8 or 8}x{height - height % 8 or 8}"
        )


def _check_mask_fits(mask: Any, image: Any) -> Any:
    from nodegraph.images import check_mask

    check_mask(mask)
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if tuple(mask.shape[1:]) != tuple(image.shape[1:3]):
        raise NodeError(
            f"input 'mask' is {mask.shape[2]}x{mask.shape[1]} pixels but input 'image' is {image.shape[2]}x{image.shape[1]}; "
            "make the mask at the image's size (MaskFromRect takes the size from its image input)"
        )
    if mask.shape[0] not in (1, image.shape[0]):
        raise NodeError(f"input 'mask' has a batch of {mask.shape[0]} but input 'image' has {image.shape[0]}; use one mask or one per image")
    return mask


NODE_TYPES = (LoadDiffusionModel, LoadLoRA, EncodePrompt, TextToImage, ImageToImage, Inpaint, InstructEdit, StyleTransfer)
