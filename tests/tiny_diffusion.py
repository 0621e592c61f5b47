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
        kind: "sd" (StableDiffusionPipeline), "sdxl" (StableDiffusionXLPipeline) or "pix2pix"
            (StableDiffusionInstructPix2PixPipeline, whose UNet takes 8 input channels:
            latents and the encoded source image).
    """
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    if kind == "sdxl":
        pipe = _build_sdxl(folder, seed)
        pipe.save_pretrained(folder, safe_serialization=True)
        return pipe
    in_channels = 8 if kind == "pix2pix" else 4
    components = build_components(folder, unet_in_channels=in_channels, scale=scale, seed=seed)
    if kind == "pix2pix":
        components.pop("image_encoder")
        pipe = StableDiffusionInstructPix2PixPipeline(**components, requires_safety_checker=False)
    else:
        pipe = StableDiffusionPipeline(**components, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return pipe


def _build_sdxl(folder: Path, seed: int):
    """Build a tiny SDXL pipeline: two text encoders, a UNet with the time-and-text added embedding."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    components = build_components(folder, seed=seed)
    torch.manual_seed(seed)
    # The UNet attends to both encoders' hidden states side by side (32 + 32), and its added
    # embedding takes six time ids of 8 values each plus the second encoder's pooled 32 values.
    components["unet"] = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=2 * TEXT_HIDDEN, norm_num_groups=32,
    )
    second_config = CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=TEXT_HIDDEN, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=2, vocab_size=VOCAB_SIZE,
        max_position_embeddings=77, projection_dim=TEXT_HIDDEN,
    )
    components["text_encoder_2"] = CLIPTextModelWithProjection(second_config)
    components["tokenizer_2"] = components["tokenizer"]
    for name in ("safety_checker", "feature_extractor", "image_encoder"):
        components.pop(name)
    return StableDiffusionXLPipeline(**components, force_zeros_for_empty_prompt=False)


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


# Single-file checkpoints in the original Stable Diffusion (LDM) layout ---------------

_RESNET_TO_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
                  "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION_TO_LDM = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def write_ldm_checkpoint(pipe, path: Path) -> Path:
    """Save a tiny SD pipeline as one .safetensors file with the key names of original SD checkpoints.

    This is the layout that A1111 and Civitai checkpoints use and that diffusers'
    `from_single_file` converts; it is written here by renaming each diffusers key.
    """
    from safetensors.torch import save_file

    checkpoint = {}
    for key, tensor in pipe.unet.state_dict().items():
        checkpoint["model.diffusion_model." + _unet_key_to_ldm(key, pipe.unet.config)] = tensor
    for key, tensor in pipe.vae.state_dict().items():
        ldm_key = _vae_key_to_ldm(key, len(pipe.vae.config.up_block_types))
        if ".mid.attn_1." in ldm_key and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]  # original checkpoints hold these as 1x1 convolutions
        checkpoint["first_stage_model." + ldm_key] = tensor
    for key, tensor in pipe.text_encoder.state_dict().items():
        # transformers 5.6+ flattened CLIPTextModel; original checkpoints keep the text_model level.
        checkpoint["cond_stage_model.transformer." + (key if key.startswith("text_model.") else "text_model." + key)] = tensor
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: tensor.contiguous() for key, tensor in checkpoint.items()}, str(path))
    return path


def _unet_key_to_ldm(key: str, config) -> str:
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    module, _, parameter = key.rpartition(".")
    if module in fixed:
        return f"{fixed[module]}.{parameter}"
    per_block = config.layers_per_block + 1
    parts = key.split(".")

    if parts[0] == "down_blocks":
        block = int(parts[1])
        if parts[2] == "downsamplers":
            return f"input_blocks.{1 + block * per_block + config.layers_per_block}.0.op.{parts[-1]}"
        index = 1 + block * per_block + int(parts[3])
        return _resnet_or_attention(f"input_blocks.{index}", parts[2], parts[4:])

    if parts[0] == "mid_block":
        if parts[1] == "attentions":
            return "middle_block.1." + ".".join(parts[3:])
        return _resnet_or_attention(f"middle_block.{0 if parts[2] == '0' else 2}", "resnets_in_place", parts[3:])

    if parts[0] == "up_blocks":
        block = int(parts[1])
        if parts[2] == "upsamplers":
            has_attention = "CrossAttn" in config.up_block_types[block]
            return f"output_blocks.{block * per_block + config.layers_per_block}.{2 if has_attention else 1}.conv.{parts[-1]}"
        index = block * per_block + int(parts[3])
        return _resnet_or_attention(f"output_blocks.{index}", parts[2], parts[4:])
    raise KeyError(f"no LDM name for UNet key {key}")


def _resnet_or_attention(prefix: str, kind: str, rest: list[str]) -> str:
    if kind == "attentions":
        return f"{prefix}.1." + ".".join(rest)
    module = ".".join(rest[:-1])
    renamed = f"{_RESNET_TO_LDM.get(module, module)}.{rest[-1]}"
    return f"{prefix}.{renamed}" if kind == "resnets_in_place" else f"{prefix}.0.{renamed}"


def _vae_key_to_ldm(key: str, up_blocks: int) -> str:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in fixed:
        return fixed[key]
    parts = key.split(".")
    side = parts[0]  # encoder or decoder
    if parts[1] in ("down_blocks", "up_blocks"):
        block = int(parts[2])
        ldm_block = block if parts[1] == "down_blocks" else up_blocks - 1 - block
        word = "down" if parts[1] == "down_blocks" else "up"
        if parts[3] in ("downsamplers", "upsamplers"):
            return f"{side}.{word}.{ldm_block}.{'downsample' if word == 'down' else 'upsample'}.conv.{parts[-1]}"
        module = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
        return f"{side}.{word}.{ldm_block}.block.{parts[4]}.{module}"
    if parts[1] == "mid_block" and parts[2] == "resnets":
        module = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
        return f"{side}.mid.block_{int(parts[3]) + 1}.{module}"
    if parts[1] == "mid_block" and parts[2] == "attentions":
        module = ".".join(parts[4:-1])
        return f"{side}.mid.attn_1.{_VAE_ATTENTION_TO_LDM[module]}.{parts[-1]}"
    raise KeyError(f"no LDM name for VAE key {key}")
