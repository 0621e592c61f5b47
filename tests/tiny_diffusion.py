"""Tiny diffusers pipelines with random weights and a tokenizer written on the spot, for tests and benchmarks.

Nothing is downloaded: the CLIP tokenizer gets a character-level vocabulary and merges
file made here, and every model is built from a small config with a fixed seed.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

# Sizes of the tiny models; `scale` in build_components multiplies the UNet's channels.
TEXT_HIDDEN = 32
VOCAB_SIZE = 1000


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """Write a character-level CLIP vocabulary and merges file; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>", "!"]
    for char in string.ascii_lowercase + string.digits + ",.'-":
        tokens.extend([char, char + "</w>"])
    # A few merges so common words become single tokens.
    merges = ["t h", "th e</w>", "a n", "an d</w>", "o n</w>", "i n</w>"]
    for merge in merges:
        tokens.append(merge.replace(" ", ""))
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    vocab_path = folder / "vocab.json"
    merges_path = folder / "merges.txt"
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_path, merges_path


def build_components(folder: Path, *, unet_in_channels: int = 4, scale: int = 1, seed: int = 0) -> dict:
    """Build the components of a tiny Stable Diffusion pipeline with random weights."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32 * scale, 64 * scale),
        layers_per_block=1,
        sample_size=16,
        in_channels=unet_in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=32,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=TEXT_HIDDEN, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=2, vocab_size=VOCAB_SIZE,
        max_position_embeddings=77,
    ))
    vocab, merges = write_tokenizer_files(folder.parent / f"{folder.name}-tokenizer-source")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler,
            "safety_checker": None, "feature_extractor": None, "image_encoder": None}


def build_pipeline(folder: Path, kind: str = "sd", scale: int = 1, seed: int = 0):
    """Build a tiny pipeline, save it to `folder` as safetensors and return it.

    Args:
        kind: "sd" (StableDiffusionPipeline) or "pix2pix" (StableDiffusionInstructPix2PixPipeline,
            whose UNet takes 8 input channels: latents and the encoded source image).
    """
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    in_channels = 8 if kind == "pix2pix" else 4
    components = build_components(folder, unet_in_channels=in_channels, scale=scale, seed=seed)
    if kind == "pix2pix":
        components.pop("image_encoder")
        pipe = StableDiffusionInstructPix2PixPipeline(**components, requires_safety_checker=False)
    else:
        pipe = StableDiffusionPipeline(**components, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return pipe


def build_lora(folder: Path, pipe, seed: int = 1, rank: int = 4) -> Path:
    """Save a LoRA with random (non-zero) weights for the pipeline's UNet; return the file."""
    import copy

    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = copy.deepcopy(pipe.unet)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)  # peft starts B at zero, which would change nothing
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers, safe_serialization=True,
                                              weight_name="tiny_lora.safetensors")
    return folder / "tiny_lora.safetensors"
