"""The embedded model's diffusers pipeline: text-to-image, image-to-image and inpainting.

The class is built on first use (diffusers is imported inside a function, like every
heavy import in nodegraph). Images go in and come out as float tensors [B, C, H, W] in
0..1; masks as [B, 1, H, W] with 1 where the image is repainted.
"""

from __future__ import annotations

from functools import lru_cache

from .model import NATIVE_RESOLUTION, SAMPLER_CONFIG

@lru_cache(maxsize=1)
def pipeline_class():
    import torch
    import torch.nn.functional as F
    from diffusers import DiffusionPipeline
    from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
    from diffusers.utils.torch_utils import randn_tensor

    from .model import encode_texts, predict_noise

    class EmbeddedImagePipeline(DiffusionPipeline):
        """nodegraph's own small text-to-image model (32x32 pixel-space UNet, MiniLM prompts)."""

        model_cpu_offload_seq = "text_encoder->unet"

        def __init__(self, unet, scheduler, text_encoder, tokenizer):
            super().__init__()
            self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)
            self._empty_embeds = None

        @property
        def native_resolution(self) -> int:
            return NATIVE_RESOLUTION

        def _encode(self, texts: list[str]):
            embeds = encode_texts(self.text_encoder, self.tokenizer, list(texts))
            return embeds.to(device=self.unet.device, dtype=self.unet.dtype)

        def empty_embeds(self, batch: int):
            if self._empty_embeds is None:
                self._empty_embeds = self._encode([""])
            return self._empty_embeds.to(device=self.unet.device, dtype=self.unet.dtype).expand(batch, -1, -1)

        def encode_prompt(self, prompt, negative_prompt=None):
            """Encode prompts as (prompt_embeds, negative_prompt_embeds), each [B, 33, 384].

            Without negative prompts the negative embeddings are those of the empty prompt.
            """
            if isinstance(prompt, str):
                prompt = [prompt]
            prompt = list(prompt)
            embeds = self._encode(prompt)
            if negative_prompt is None:
                negative = self.empty_embeds(len(prompt)).clone()
            else:
                if isinstance(negative_prompt, str):
                    negative_prompt = [negative_prompt] * len(prompt)
                negative_prompt = list(negative_prompt)
                if len(negative_prompt) != len(prompt):
                    raise ValueError(
                        f"negative_prompt has {len(negative_prompt)} entries but prompt has {len(prompt)}; "
                        "give one negative prompt per prompt, or none"
                    )
                negative = self._encode(negative_prompt)
            return embeds, negative

        def _size(self, value, name):
            if value is None:
                return NATIVE_RESOLUTION
            value = int(value)
            if value <= 0 or value % 16:
                raise ValueError(
                    f"{name}={value} does not suit the embedded model: use a positive multiple of 16 "
                    f"(it draws best at its native {NATIVE_RESOLUTION})"
                )
            return value

        @torch.no_grad()
        def __call__(
            self,
            prompt_embeds=None,
            negative_prompt_embeds=None,
            height=None,
            width=None,
            num_inference_steps: int = 20,
            guidance_scale: float = 3.0,
            generator=None,
            image=None,
            strength: float = 1.0,
            mask_image=None,
            callback_on_step_end=None,
            output_type: str = "pt",
            prompt=None,
            negative_prompt=None,
            return_dict: bool = True,
        ):
            if prompt_embeds is None:
                if prompt is None:
                    raise ValueError("give prompt_embeds (from encode_prompt) or prompt")
                prompt_embeds, negative_prompt_embeds = self.encode_prompt(prompt, negative_prompt)
            device, dtype = self.unet.device, self.unet.dtype
            prompt_embeds = prompt_embeds.to(device=device, dtype=dtype)
            batch = prompt_embeds.shape[0]
            if negative_prompt_embeds is None:
                negative_prompt_embeds = self.empty_embeds(batch)
            negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=dtype)
            if negative_prompt_embeds.shape[0] == 1 and batch > 1:
                negative_prompt_embeds = negative_prompt_embeds.expand(batch, -1, -1)
            height, width = self._size(height, "height"), self._size(width, "width")
            if num_inference_steps < 1:
                raise ValueError(f"num_inference_steps={num_inference_steps} must be at least 1")
            if not 0.0 < strength <= 1.0:
                raise ValueError(f"strength={strength} must be in (0, 1]")

            def prepare(tensor, channels, name):
                if tensor.ndim == 3:
                    tensor = tensor.unsqueeze(0)
                if tensor.ndim != 4 or tensor.shape[1] != channels:
                    raise ValueError(f"{name} must be a tensor [B, {channels}, H, W], got {tuple(tensor.shape)}")
                tensor = tensor.to(device=device, dtype=dtype)
                if tuple(tensor.shape[-2:]) != (height, width):
                    tensor = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
                if tensor.shape[0] == 1 and batch > 1:
                    tensor = tensor.expand(batch, -1, -1, -1)
                if tensor.shape[0] != batch:
                    raise ValueError(f"{name} has {tensor.shape[0]} images for {batch} prompts")
                return tensor

            source = None
            if image is not None:
                if image.ndim == 4 and image.shape[1] == 1:
                    image = image.expand(-1, 3, -1, -1)
                source = prepare(image, 3, "image").clamp(0, 1) * 2.0 - 1.0
            mask = None
            if mask_image is not None:
                if source is None:
                    raise ValueError("mask_image needs image: inpainting repaints part of a source image")
                mask = prepare(mask_image, 1, "mask_image").clamp(0, 1)

            scheduler = self.scheduler
            scheduler.set_timesteps(num_inference_steps, device=device)
            timesteps = scheduler.timesteps
            start = 0
            if source is not None and strength < 1.0:
                start = min(num_inference_steps - max(1, round(num_inference_steps * strength)), num_inference_steps - 1)
                timesteps = timesteps[start:]
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(start)

            self._num_timesteps = len(timesteps)  # read by progress callbacks: fewer than requested for image-to-image
            shape = (batch, 3, height, width)
            noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
            if source is not None and strength < 1.0:
                sample = scheduler.add_noise(source, noise, timesteps[:1].repeat(batch))
            else:
                sample = noise * scheduler.init_noise_sigma
            alphas = scheduler.alphas_cumprod.to(device=device, dtype=dtype)

            use_guidance = guidance_scale > 1.0
            cond = torch.cat([negative_prompt_embeds, prompt_embeds]) if use_guidance else prompt_embeds
            for i, t in enumerate(self.progress_bar(timesteps)):
                model_in = torch.cat([sample, sample]) if use_guidance else sample
                model_in = scheduler.scale_model_input(model_in, t)
                eps = predict_noise(self.unet, model_in, t.expand(model_in.shape[0]), cond)
                if use_guidance:
                    eps_uncond, eps_cond = eps.chunk(2)
                    eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
                sample = scheduler.step(eps, t, sample).prev_sample
                if mask is not None:
                    # Keep the unmasked part on the source, noised to the level the sample is now at.
                    if i + 1 < len(timesteps):
                        a = alphas[int(timesteps[i + 1])]
                        known = a.sqrt() * source + (1 - a).sqrt() * noise
                    else:
                        known = source
                    sample = mask * sample + (1 - mask) * known
                if callback_on_step_end is not None:
                    result = callback_on_step_end(self, i, t, {"latents": sample})
                    if result and result.get("latents") is not None:
                        sample = result["latents"]
            images = ((sample.float() + 1.0) / 2.0).clamp(0, 1)
            if output_type == "pil":
                images = self.numpy_to_pil(images.permute(0, 2, 3, 1).cpu().numpy())
            elif output_type == "np":
                images = images.permute(0, 2, 3, 1).cpu().numpy()
            elif output_type != "pt":
                raise ValueError(f"output_type={output_type!r} is not one of 'pt', 'np', 'pil'")
            if not return_dict:
                return (images,)
            return ImagePipelineOutput(images=images)

    return EmbeddedImagePipeline

def make_scheduler():
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(**SAMPLER_CONFIG)

def load_pipeline(weights=None, device="cpu", dtype=None):
    """Load the embedded pipeline with the shipped weights (or the model.safetensors file given)."""
    import torch

    from .model import load_text_encoder, load_unet_weights

    dtype = dtype or torch.float32
    unet = load_unet_weights(weights, device=device, dtype=dtype)
    encoder, tokenizer = load_text_encoder(device=device)
    pipe = pipeline_class()(unet=unet, scheduler=make_scheduler(), text_encoder=encoder, tokenizer=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    return pipe

