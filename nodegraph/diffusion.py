"""Diffusion models on diffusers: loading, LoRA, prompt encoding and the sampling adapter.

A `DiffusionModel` is the handle that crosses `DIFFUSION_MODEL` ports: a small record of
where the weights come from and how to run them. The pipeline itself lives in the
model manager under the handle's key, so the output cache stores handles, a second run
in the same process loads nothing, and the manager's budget can unload a pipeline
that a cached handle will load again on its next use.

Sources: `embedded` (the project's own small model, `nodegraph.embedded`), a local
diffusers folder (`model_index.json`), a single `.safetensors` checkpoint, or a Hugging
Face id. Only safetensors weights are loaded, because pickled checkpoints can run code.

torch and diffusers are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from nodegraph.errors import ModelUnavailable, NodeError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from nodegraph.context import NodeContext
    from nodegraph.models import ModelManager

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
SCHEDULERS = ("default", "euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "lcm")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
PICKLED_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")

# A progress event carries a preview image every this many steps (and on the last step).
PREVIEW_EVERY = 4

# Hugging Face repository ids: "owner/name" with letters, digits, '-', '_' and '.'.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# Components that LoRA weights change; LoadLoRA copies these and shares the rest with the base.
_LORA_TARGETS = ("unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3")


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA applied to a model: its safetensors file and its weight."""

    path: str
    weight: float


@dataclass(frozen=True)
class DiffusionModel:
    """A handle on a diffusion pipeline held by the model manager.

    Attributes:
        source: "embedded", the path of a diffusers folder or a `.safetensors` file, or a hub id.
        kind: "embedded", "folder", "single_file" or "hub".
        device: the resolved torch device ("cpu", "cuda", "mps").
        dtype: the resolved torch dtype name ("float32", "float16", "bfloat16").
        scheduler: a name from SCHEDULERS; applied per sampling call, so it is not part of `key`.
        config: for a single file, a diffusers folder or hub id with matching configs ("" to infer).
        loras: LoRAs applied on a copy of the base pipeline, in order.
    """

    source: str
    kind: str
    device: str = "cpu"
    dtype: str = "float32"
    scheduler: str = "default"
    config: str = ""
    loras: tuple[LoraSpec, ...] = ()

    # The output cache counts a handle as this many bytes; the pipeline is the manager's.
    cache_bytes = 512

    @property
    def base_key(self) -> str:
        """Return the model manager key of the pipeline without LoRAs."""
        key = f"diffusion:{self.kind}:{self.source}|{self.device}|{self.dtype}"
        return f"{key}|config={self.config}" if self.config else key

    @property
    def key(self) -> str:
        """Return the model manager key of the pipeline with this handle's LoRAs."""
        if not self.loras:
            return self.base_key
        applied = ",".join(f"{lora.path}@{lora.weight:g}" for lora in self.loras)
        return f"{self.base_key}|lora={applied}"

    @property
    def name(self) -> str:
        """Return a short name for messages and PNG metadata: a hub id, or a file or folder name."""
        if self.kind in (EMBEDDED, "hub"):
            return self.source
        return Path(self.source).name

    def with_lora(self, lora: LoraSpec) -> "DiffusionModel":
        return replace(self, loras=(*self.loras, lora))

    def summary(self) -> dict[str, Any]:
        """Describe the handle for events, without touching the pipeline."""
        described: dict[str, Any] = {"kind": "DiffusionModel", "source": self.source, "device": self.device,
                                     "dtype": self.dtype, "scheduler": self.scheduler}
        if self.loras:
            described["loras"] = [{"path": lora.path, "weight": lora.weight} for lora in self.loras]
        return described

    def pipeline(self, models: "ModelManager") -> Any:
        """Return the pipeline from the model manager, loading it on first use."""
        if not self.loras:
            return models.load(self.base_key, lambda: load_pipeline(self))
        return models.load(self.key, lambda: apply_loras(models.load(self.base_key, lambda: load_pipeline(self)), self))


@dataclass
class Conditioning:
    """Prompt embeddings from a model's own text encoder, passed to its pipeline as keyword arguments.

    Attributes:
        model_key: the manager key of the model whose text encoder made the embeddings.
        base_key: that model's key without LoRAs, to check that a sampler's model matches.
        prompt, negative: the texts encoded, kept for PNG metadata.
        tensors: pipeline keyword argument to tensor, each with batch size 1
            (prompt_embeds, negative_prompt_embeds, and pooled ones for SDXL, SD3 and Flux).
    """

    model_key: str
    base_key: str
    prompt: str
    negative: str
    tensors: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_bytes(self) -> int:
        return sum(tensor.element_size() * tensor.nelement() for tensor in self.tensors.values()) + 200

    def summary(self) -> dict[str, Any]:
        return {"kind": "Conditioning", "prompt": self.prompt[:200], "negative": self.negative[:200],
                "shapes": {name: list(tensor.shape) for name, tensor in self.tensors.items()}}


@dataclass
class SamplingRequest:
    """A sampling node's request to the pipeline.

    Attributes:
        task: "text2img", "img2img", "inpaint" or "instruct".
        conditioning: the prompt embeddings; None for "instruct", which takes `prompt` as text.
        image: float32 [B, H, W, 3] in 0..1 for img2img, inpaint and instruct.
        mask: float32 [B, H, W] in 0..1 for inpaint (1 marks the area to change).
    """

    task: str
    steps: int
    guidance: float
    seed: int
    conditioning: Conditioning | None = None
    prompt: str = ""
    negative: str = ""
    width: int | None = None
    height: int | None = None
    batch: int = 1
    image: Any = None
    mask: Any = None
    strength: float = 1.0
    image_guidance: float = 1.5


# 1. Sources and options ------------------------------------------------------


def resolve_device(device: str) -> str:
    """Return the torch device for a device choice; "auto" picks cuda, then mps, then cpu.

    Raises:
        NodeError: the device is not one of DEVICES or is not available on this machine.
    """
    import torch

    if device not in DEVICES:
        raise NodeError(f"input 'device' is {device!r}; use one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        if cuda:
            return "cuda"
        return "mps" if mps else "cpu"
    if device == "cuda" and not cuda:
        raise NodeError("input 'device' is 'cuda' but torch finds no CUDA device here; use 'auto' or 'cpu'")
    if device == "mps" and not mps:
        raise NodeError("input 'device' is 'mps' but torch finds no Apple MPS device here; use 'auto' or 'cpu'")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """Return the dtype name for a dtype choice; "auto" is float16 on CUDA and float32 elsewhere."""
    if dtype not in DTYPES:
        raise NodeError(f"input 'dtype' is {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return "float16" if device == "cuda" else "float32"
    return dtype


def resolve_source(source: str, models: "ModelManager | None") -> tuple[str, str]:
    """Return (kind, source) for a LoadDiffusionModel source, paths made absolute.

    A name is looked up in the models folder's `diffusion` subfolder first, then as a path,
    then read as a Hugging Face id.

    Raises:
        ModelUnavailable: a path that does not exist, or weights that are not safetensors.
    """
    source = source.strip()
    if not source:
        raise ModelUnavailable("input 'source' is empty; choose 'embedded', a model from the models folder, a path or a hub id")
    if source == EMBEDDED:
        return EMBEDDED, EMBEDDED

    path = models.resolve("diffusion", source) if models is not None else None
    if path is None:
        candidate = Path(source).expanduser()
        path = candidate.resolve() if candidate.exists() else None
    if path is not None:
        return _local_kind(path), str(path)

    if source.lower().endswith(PICKLED_SUFFIXES + (".safetensors",)) or "\\" in source or source.startswith((".", "/", "~")):
        raise ModelUnavailable(
            f"diffusion model {source!r} was not found in the models folder or as a path; "
            "put the file or folder under the models folder's diffusion/ subfolder or give its full path"
        )
    if _HUB_ID.match(source):
        return "hub", source
    available = ", ".join(choices_of_models(models)[:20])
    raise ModelUnavailable(
        f"diffusion model {source!r} is neither a file, a folder nor a Hugging Face id (owner/name); "
        f"use one of: {available}, or give a path"
    )


def _local_kind(path: Path) -> str:
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelUnavailable(
                f"folder {path} is not a diffusers pipeline (it has no model_index.json); "
                "give a folder saved with save_pretrained or a single .safetensors checkpoint"
            )
        return "folder"
    if path.suffix.lower() in PICKLED_SUFFIXES:
        raise ModelUnavailable(
            f"{path.name} is a pickled checkpoint, which can run code when loaded; only .safetensors weights are loaded. "
            "Convert it to safetensors first"
        )
    if path.suffix.lower() != ".safetensors":
        raise ModelUnavailable(f"{path.name} is not a .safetensors checkpoint or a diffusers folder")
    return "single_file"


def choices_of_models(models: "ModelManager | None") -> list[str]:
    """List the diffusion model choices: the embedded model, then the models folder."""
    found = models.scan("diffusion") if models is not None else []
    return [EMBEDDED, *[name for name in found if not name.lower().endswith(".gguf")]]


def choices_of_loras(models: "ModelManager | None") -> list[str]:
    """List the LoRA files in the models folder's `lora` subfolder."""
    found = models.scan("lora") if models is not None else []
    return [name for name in found if name.lower().endswith(".safetensors")]


def torch_dtype(name: str) -> "torch.dtype":
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


# 2. Loading ------------------------------------------------------------------


def load_pipeline(model: DiffusionModel) -> Any:
    """Load the base pipeline of a handle (without LoRAs) onto its device and dtype.

    Raises:
        ModelUnavailable: the weights are missing, not safetensors, or cannot be fetched offline.
    """
    dtype = torch_dtype(model.dtype)
    if model.kind == EMBEDDED:
        pipe = _load_embedded(model.device, dtype)
    elif model.kind == "single_file":
        pipe = _load_single_file(model, dtype)
    else:
        pipe = _load_pretrained(model, dtype)
        if model.device != "cpu":  # from_pretrained loads onto the CPU
            pipe.to(model.device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_embedded(device: str, dtype: "torch.dtype") -> Any:
    try:
        from nodegraph.embedded import load_embedded_pipeline
    except ModuleNotFoundError as error:
        if error.name not in ("nodegraph.embedded", "nodegraph"):
            raise
        raise ModelUnavailable(
            "the embedded image model is not installed (the module nodegraph.embedded is missing); "
            "install a nodegraph build that includes it, or load a diffusers folder or .safetensors checkpoint"
        ) from error
    return load_embedded_pipeline(device=device, dtype=dtype)


def _load_pretrained(model: DiffusionModel, dtype: "torch.dtype") -> Any:
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    offline = _hub_offline()
    # Loading is reported by the manager's log; diffusers' own bar would only clutter stderr.
    bars_were_on = diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    try:
        return DiffusionPipeline.from_pretrained(
            model.source, dtype=dtype, use_safetensors=True, local_files_only=offline or model.kind == "folder",
        )
    except (OSError, ValueError, EnvironmentError) as error:
        raise ModelUnavailable(_load_failure(model, error, offline)) from error
    finally:
        if bars_were_on:
            diffusers_logging.enable_progress_bar()


def _load_single_file(model: DiffusionModel, dtype: "torch.dtype") -> Any:
    import diffusers

    offline = _hub_offline()
    pipeline_class = _single_file_class(model)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": offline}
    if model.config:
        kwargs["config"] = model.config
    try:
        pipe = pipeline_class.from_single_file(model.source, **kwargs)
    except (OSError, ValueError, KeyError, diffusers.loaders.single_file_utils.SingleFileComponentError) as error:
        raise ModelUnavailable(_load_failure(model, error, offline)) from error
    return pipe.to(model.device) if model.device != "cpu" else pipe


def _single_file_class(model: DiffusionModel) -> Any:
    """Pick the pipeline class for a single checkpoint: from its config folder, else from its weights' layout."""
    import json

    import diffusers

    config_index = Path(model.config) / "model_index.json" if model.config else None
    if config_index is not None and config_index.is_file():
        class_name = json.loads(config_index.read_text(encoding="utf-8")).get("_class_name", "")
        pipeline_class = getattr(diffusers, class_name, None)
        if pipeline_class is None or not hasattr(pipeline_class, "from_single_file"):
            raise ModelUnavailable(f"config folder {model.config} names pipeline {class_name!r}, which cannot load a single file")
        return pipeline_class

    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    checkpoint = load_single_file_checkpoint(model.source)
    model_type = infer_diffusers_model_type(checkpoint)
    del checkpoint
    if model_type.startswith("flux"):
        return diffusers.FluxPipeline
    if model_type.startswith("sd3"):
        return diffusers.StableDiffusion3Pipeline
    if model_type == "xl_inpaint":
        return diffusers.StableDiffusionXLInpaintPipeline
    if model_type.startswith(("xl_", "playground")):
        return diffusers.StableDiffusionXLPipeline
    if model_type == "inpainting" or model_type.endswith("inpainting"):
        return diffusers.StableDiffusionInpaintPipeline
    return diffusers.StableDiffusionPipeline


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _load_failure(model: DiffusionModel, error: BaseException, offline: bool) -> str:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if model.kind == "hub":
        reach = "the hub is offline here (HF_HUB_OFFLINE is set)" if offline else "it could not be downloaded"
        return (
            f"diffusion model {model.source!r} is not in the local Hugging Face cache and {reach} ({detail}). "
            "Download it where the hub is reachable, or give the path of a local diffusers folder or "
            ".safetensors checkpoint (for example under the models folder's diffusion/ subfolder)"
        )
    if model.kind == "single_file":
        return (
            f"checkpoint {model.source} could not be loaded as a single file ({detail}). "
            "Offline, diffusers needs the matching configs: set 'config' to a local diffusers folder of the same "
            "architecture, or load a diffusers folder instead"
        )
    if "safetensors" in str(error).lower():
        return f"{model.source} has no .safetensors weights ({detail}); only safetensors are loaded, convert the weights first"
    return f"diffusion model {model.source} could not be loaded ({detail})"


# 3. LoRA ---------------------------------------------------------------------


def apply_loras(base: Any, model: DiffusionModel) -> Any:
    """Return a copy of `base` with the handle's LoRAs loaded; `base` itself is not changed.

    The components LoRA changes (UNet or transformer, text encoders) are deep-copied; the
    VAE, tokenizers and the rest are shared with the base pipeline.

    NOTE: the model manager estimates a pipeline's size from all its components, so it
    counts the shared VAE of a copy a second time and may unload models a little early.

    Raises:
        NodeError: the pipeline takes no LoRA weights, or a file does not fit the model.
    """
    if not hasattr(base, "load_lora_weights"):
        raise NodeError(f"model {model.name!r} ({type(base).__name__}) does not take LoRA weights")
    copies = {name: copy.deepcopy(module) for name, module in base.components.items()
              if name in _LORA_TARGETS and module is not None}
    pipe = type(base).from_pipe(base, **copies) if hasattr(type(base), "from_pipe") else type(base)(**{**base.components, **copies})
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)

    names = []
    for index, lora in enumerate(model.loras):
        adapter = f"lora_{index}"
        try:
            pipe.load_lora_weights(lora.path, adapter_name=adapter)
        except (ValueError, KeyError, IndexError, TypeError, OSError, RuntimeError) as error:
            # diffusers reports a LoRA whose keys match no layer in several ways, IndexError among them.
            raise NodeError(f"LoRA {Path(lora.path).name} does not fit model {model.name!r}: {error}") from error
        names.append(adapter)
    pipe.set_adapters(names, adapter_weights=[lora.weight for lora in model.loras])
    return pipe


# 4. Prompt encoding ----------------------------------------------------------


def encode_prompt(model: DiffusionModel, pipe: Any, prompt: str, negative: str = "") -> Conditioning:
    """Encode a prompt and a negative prompt with the pipeline's own text encoders.

    Classifier-free guidance is always prepared (the negative embeddings exist even when
    `negative` is empty), so the same conditioning serves any guidance scale.

    Raises:
        NodeError: the pipeline has no prompt encoder that takes text (e.g. instruct-pix2pix).
    """
    import torch

    encode = getattr(pipe, "encode_prompt", None)
    if encode is None:
        raise NodeError(
            f"model {model.name!r} ({type(pipe).__name__}) has no prompt encoder for EncodePrompt; "
            "for an instruct-pix2pix model use InstructEdit, which takes the instruction as text"
        )

    with torch.no_grad():
        if model.kind == EMBEDDED:
            prompt_embeds, negative_embeds = encode([prompt], [negative] if negative else None)
            tensors = {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_embeds}
        else:
            tensors = _encode_with_diffusers(pipe, encode, prompt, negative)
    tensors = {name: tensor.detach() for name, tensor in tensors.items() if tensor is not None}
    return Conditioning(model.key, model.base_key, prompt, negative, tensors)


def _encode_with_diffusers(pipe: Any, encode: Callable, prompt: str, negative: str) -> dict[str, Any]:
    parameters = inspect.signature(encode).parameters
    kwargs: dict[str, Any] = {"prompt": [prompt], "num_images_per_prompt": 1}
    if "device" in parameters:
        kwargs["device"] = pipe._execution_device
    if "do_classifier_free_guidance" in parameters:
        kwargs["do_classifier_free_guidance"] = True
    if "negative_prompt" in parameters:
        kwargs["negative_prompt"] = [negative]
    for name, parameter in parameters.items():
        # SDXL, SD3 and Flux take optional texts for their second and third encoders
        # (prompt_2, prompt_3, negative_prompt_2...); None makes them reuse the first one.
        if re.fullmatch(r"(negative_)?prompt_\d", name):
            kwargs[name] = None
    encoded = encode(**kwargs)

    if len(encoded) == 2:  # Stable Diffusion 1.x and 2.x
        return {"prompt_embeds": encoded[0], "negative_prompt_embeds": encoded[1]}
    if len(encoded) == 4:  # SDXL and SD3 (SDXL is tested with a tiny pipeline; SD3 is not)
        names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
        return dict(zip(names, encoded))
    if len(encoded) == 3:  # Flux: (prompt_embeds, pooled_prompt_embeds, text_ids), no negative in the call
        # NOTE: this branch follows diffusers 0.42's FluxPipeline and has no test here (no tiny Flux fixture).
        tensors = {"prompt_embeds": encoded[0], "pooled_prompt_embeds": encoded[1]}
        if negative:
            negative_encoded = encode(**{**kwargs, "prompt": [negative]})
            tensors["negative_prompt_embeds"] = negative_encoded[0]
            tensors["negative_pooled_prompt_embeds"] = negative_encoded[1]
        return tensors
    raise NodeError(f"{type(pipe).__name__}.encode_prompt returned {len(encoded)} values, which EncodePrompt does not know")


# 5. Sampling -----------------------------------------------------------------


def make_scheduler(name: str, current: Any) -> Any:
    """Return a new scheduler of the named kind, configured from the pipeline's current one.

    A fresh scheduler per call keeps concurrent runs on one pipeline from sharing step state.

    Raises:
        NodeError: an unknown name, or a flow-matching model (SD3, Flux) given another scheduler.
    """
    import diffusers

    if name not in SCHEDULERS:
        raise NodeError(f"input 'scheduler' is {name!r}; use one of {', '.join(SCHEDULERS)}")
    if name == "default":
        return type(current).from_config(current.config)
    if "FlowMatch" in type(current).__name__:
        raise NodeError(
            f"scheduler {name!r} does not fit this flow-matching model ({type(current).__name__}); use 'default'"
        )
    classes = {
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "euler_ancestral": (diffusers.EulerAncestralDiscreteScheduler, {}),
        "dpmpp_2m": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "dpmpp_2m_karras": (diffusers.DPMSolverMultistepScheduler,
                            {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
        "ddim": (diffusers.DDIMScheduler, {}),
        "lcm": (diffusers.LCMScheduler, {}),
    }
    scheduler_class, options = classes[name]
    return scheduler_class.from_config(current.config, **options)


def task_pipeline(base: Any, task: str, scheduler: str) -> Any:
    """Return a pipeline for `task` that shares the base pipeline's modules, with a fresh scheduler.

    Raises:
        NodeError: the model family has no pipeline for the task in diffusers.
    """
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    fresh = make_scheduler(scheduler, base.scheduler)
    name = type(base).__name__
    if task == "instruct":
        if "InstructPix2Pix" not in name:
            raise NodeError(
                f"InstructEdit needs an instruct-pix2pix model (for example timbrooks/instruct-pix2pix), "
                f"but the connected model is a {name}; use ImageToImage or Inpaint with this model"
            )
        return type(base).from_pipe(base, scheduler=fresh)

    auto = {"text2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image,
            "inpaint": AutoPipelineForInpainting}[task]
    try:
        return auto.from_pipe(base, scheduler=fresh)
    except (ValueError, KeyError) as error:
        raise NodeError(f"diffusers has no {task} pipeline for a {name} ({error})") from error


def sample(ctx: "NodeContext", model: DiffusionModel, request: SamplingRequest) -> "torch.Tensor":
    """Run one sampling request through the model and return images [B, H, W, 3] in 0..1.

    Reports `node.progress` after each denoising step (a preview every PREVIEW_EVERY steps)
    and stops between steps when the run is interrupted.

    Raises:
        NodeError: the conditioning belongs to another model, or diffusers rejects the inputs.
        Interrupted: the run was interrupted.
    """
    import torch

    _check_conditioning(model, request)
    ctx.check_interrupted()
    base = model.pipeline(ctx.models)
    if model.kind == EMBEDDED:
        return _sample_embedded(ctx, model, base, request)

    # 1. A pipeline for the task, sharing the loaded modules.
    pipe = task_pipeline(base, request.task, model.scheduler)
    pipe.set_progress_bar_config(disable=True)
    batch = request.image.shape[0] if request.image is not None else request.batch

    # 2. Arguments shared by every task.
    kwargs: dict[str, Any] = {
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance,
        "generator": seeded_generators(request.seed, batch),
        "output_type": "pt",
        "callback_on_step_end": step_callback(ctx, request.steps),
    }
    if request.conditioning is not None:
        dtype = torch_dtype(model.dtype)
        for name, tensor in request.conditioning.tensors.items():
            kwargs[name] = _repeat_batch(tensor, batch).to(model.device, dtype)

    # 3. Task inputs.
    if request.task == "text2img":
        kwargs.update(width=request.width, height=request.height)
    else:
        kwargs["image"] = _pipeline_image(request.image)
    if request.task in ("img2img", "inpaint"):
        kwargs["strength"] = request.strength
    if request.task == "inpaint":
        from nodegraph.images import to_pipeline_mask

        kwargs["mask_image"] = to_pipeline_mask(_repeat_batch(request.mask, batch))
        kwargs.update(width=request.image.shape[2], height=request.image.shape[1])
    if request.task == "instruct":
        kwargs.update(prompt=[request.prompt] * batch, negative_prompt=[request.negative] * batch,
                      image_guidance_scale=request.image_guidance)

    # 4. Denoising.
    accepted = inspect.signature(pipe.__call__).parameters
    unknown = [name for name in kwargs if name not in accepted]
    for name in unknown:
        logger.debug("%s takes no %r; left out", type(pipe).__name__, name)
        kwargs.pop(name)
    try:
        with torch.no_grad():
            output = pipe(**kwargs)
    except ValueError as error:
        raise NodeError(f"the {type(pipe).__name__} rejected the inputs: {error}") from error

    from nodegraph.images import from_pipeline_output

    return from_pipeline_output(output.images)


def _sample_embedded(ctx: "NodeContext", model: DiffusionModel, pipe: Any, request: SamplingRequest) -> "torch.Tensor":
    """Sample with the embedded model at its native resolution, then resize to the requested size."""
    import torch

    from nodegraph.images import from_pipeline_output, resize_images, resize_masks, to_pipeline_image, to_pipeline_mask

    if request.task == "instruct":
        raise NodeError("InstructEdit needs an instruct-pix2pix model; the embedded model is a text-to-image model, "
                        "use ImageToImage or Inpaint with it")
    if model.scheduler != "default":
        ctx.warn(f"the embedded model uses its own scheduler; scheduler {model.scheduler!r} is ignored")
    native = int(pipe.native_resolution)
    batch = request.image.shape[0] if request.image is not None else request.batch
    conditioning = request.conditioning
    kwargs: dict[str, Any] = {
        "prompt_embeds": _repeat_batch(conditioning.tensors["prompt_embeds"], batch),
        "negative_prompt_embeds": (_repeat_batch(conditioning.tensors["negative_prompt_embeds"], batch)
                                   if "negative_prompt_embeds" in conditioning.tensors else None),
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance,
        "generator": torch.Generator("cpu").manual_seed(request.seed % 2**64),
        "callback_on_step_end": step_callback(ctx, request.steps),
        "output_type": "pt",
    }
    if request.image is not None:
        width, height = request.image.shape[2], request.image.shape[1]
        kwargs["image"] = to_pipeline_image(resize_images(request.image, native, native), model.device)
        kwargs["strength"] = request.strength
    else:
        width, height = request.width, request.height
    if request.task == "inpaint":
        kwargs["mask_image"] = to_pipeline_mask(resize_masks(_repeat_batch(request.mask, batch), native, native),
                                                model.device)
    with torch.no_grad():
        output = pipe(**kwargs)
    images = from_pipeline_output(output.images)
    return resize_images(images, width, height)


def seeded_generators(seed: int, batch: int) -> list["torch.Generator"]:
    """Return one CPU generator per image, seeded seed, seed+1, ...

    Image i of a batch is the image a batch of one draws with seed+i. CPU generators make
    the initial noise the same on every device; results still differ between devices and
    dtypes because the arithmetic does.
    """
    import torch

    return [torch.Generator("cpu").manual_seed((seed + index) % 2**64) for index in range(batch)]


def step_callback(ctx: "NodeContext", steps: int) -> Callable[..., dict]:
    """Return a diffusers `callback_on_step_end` that reports progress and stops on interruption.

    `ctx.progress` raises `Interrupted` when the run has been asked to stop, which ends the
    denoising loop between two steps.
    """

    def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        total = getattr(pipe, "_num_timesteps", None) or steps
        done = step + 1
        preview = None
        if done % PREVIEW_EVERY == 0 or done == total:
            latents = callback_kwargs.get("latents") if isinstance(callback_kwargs, dict) else None
            preview = latent_preview(latents)
        ctx.progress(done, total, preview)
        return {}

    return on_step_end


def latent_preview(latents: Any, max_side: int = 128) -> "Image.Image | None":
    """Return a rough RGB picture of the first latent of a batch, or None for latents it cannot show.

    Takes the first three latent channels as red, green and blue, each stretched to 0..255.
    This is no decode: colors are approximate, shapes and composition are what show.
    """
    import numpy as np
    import torch
    from PIL import Image

    if not isinstance(latents, torch.Tensor) or latents.dim() != 4:
        return None  # packed latents (Flux) have no spatial layout to show
    sample = latents[0].detach().float().cpu()
    if sample.shape[0] < 3:
        sample = sample[:1].repeat(3, 1, 1)
    rgb = sample[:3]
    low = rgb.amin(dim=(1, 2), keepdim=True)
    high = rgb.amax(dim=(1, 2), keepdim=True)
    rgb = (rgb - low) / (high - low).clamp_min(1e-6)
    pixels = (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(pixels, mode="RGB")
    scale = max(1, max_side // max(image.size))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def _check_conditioning(model: DiffusionModel, request: SamplingRequest) -> None:
    conditioning = request.conditioning
    if conditioning is None:
        return
    if conditioning.base_key != model.base_key:
        raise NodeError(
            "input 'conditioning' was encoded by another model; connect EncodePrompt to the same model as this node "
            f"(conditioning from {conditioning.base_key.split('|')[0]}, model {model.base_key.split('|')[0]})"
        )


def _repeat_batch(tensor: Any, batch: int) -> Any:
    if tensor is None or tensor.shape[0] == batch:
        return tensor
    if tensor.shape[0] != 1:
        raise NodeError(f"a batch of {tensor.shape[0]} cannot be matched to a batch of {batch}; use batches of one size")
    return tensor.repeat(batch, *([1] * (tensor.dim() - 1)))


def _pipeline_image(images: Any) -> Any:
    from nodegraph.images import to_pipeline_image

    return to_pipeline_image(images)
