"""Convert images between the port layout, PIL and diffusers, and open image files safely.

The port layout (see `nodegraph.types`): an image is a float32 tensor shaped
[B, H, W, C] with values in 0..1 and C = 3; a mask is a float32 tensor shaped
[B, H, W] in 0..1 where 1 marks the area to change. Diffusers pipelines take and
return [B, C, H, W]; `output_type="pt"` gives values in 0..1.

torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from nodegraph.errors import NodeError

if TYPE_CHECKING:
    import torch
    from PIL import Image

# Largest image, in pixels, that is decoded: 8192 x 8192. Pillow's own bomb check
# (Image.MAX_IMAGE_PIXELS) is a process-wide setting that only warns below twice its value.
MAX_IMAGE_PIXELS = 8192 * 8192

# Attribute name under which a sampling node attaches what made an image (prompt, seed...)
# to its output tensor, read back by SaveImage for the A1111-style `parameters` chunk.
GENERATION_ATTRIBUTE = "nodegraph_generation"


class ImageTooLarge(NodeError):
    """Raised when an image file has more pixels than the limit."""


class ImageUnreadable(NodeError):
    """Raised when an image file is missing, truncated or not an image."""


@dataclass
class LoadedImage:
    """An image file decoded to the port layout.

    Attributes:
        image: float32 [1, H, W, 3] in 0..1.
        mask: float32 [1, H, W]; 1 where the file's alpha channel is transparent, 0 elsewhere
            (all zeros when the file has no alpha channel).
        has_alpha: whether the file had an alpha channel.
    """

    image: "torch.Tensor"
    mask: "torch.Tensor"
    has_alpha: bool


def open_image(source: str | Path | bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> "Image.Image":
    """Open and fully decode an image file, checking its size before decoding.

    Args:
        source: a path or the file's bytes.
        max_pixels: the largest width x height accepted.

    Raises:
        ImageTooLarge: the header declares more than `max_pixels` pixels.
        ImageUnreadable: the file is missing, truncated or not an image Pillow reads.
    """
    from PIL import Image, UnidentifiedImageError

    name = "the image data" if isinstance(source, bytes) else str(source)
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image = Image.open(stream)
    except FileNotFoundError as error:
        raise ImageUnreadable(f"image file {name} was not found") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ImageUnreadable(f"{name} is not an image file Pillow can read ({error})") from error
    except Image.DecompressionBombError as error:
        # Pillow rejects files past twice its own limit before the header reaches us.
        raise ImageTooLarge(
            f"{name} has more pixels than the limit of {max_pixels:,} (Pillow: {error}); resize it before loading"
        ) from error

    # The header is read; the pixels are not decoded yet, so the check costs nothing.
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(
            f"{name} is {width}x{height} pixels ({width * height:,}), more than the limit of {max_pixels:,}; "
            "resize it before loading"
        )
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"{name} is too large to decode: {error}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageUnreadable(f"{name} is damaged or truncated and cannot be decoded ({error}); save it again") from error
    return image


def pil_to_tensor(images: "Image.Image | Sequence[Image.Image]") -> "torch.Tensor":
    """Convert PIL images of one size to an RGB image tensor [B, H, W, 3] in 0..1."""
    import numpy as np
    import torch

    if not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise ValueError("pil_to_tensor needs at least one image")
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise ValueError(f"images of one batch must have one size, got {sorted(sizes)}")
    arrays = [np.asarray(_to_rgb(image), dtype=np.float32) / 255.0 for image in images]
    return torch.from_numpy(np.stack(arrays))


def tensor_to_pil(images: "torch.Tensor") -> "list[Image.Image]":
    """Convert an image tensor [B, H, W, C] (or one image [H, W, C]) in 0..1 to 8-bit RGB PIL images."""
    import numpy as np
    from PIL import Image

    check_image(images)
    if images.dim() == 3:
        images = images.unsqueeze(0)
    pixels = (images.detach().float().clamp(0, 1) * 255.0).round().to("cpu").numpy().astype(np.uint8)
    return [Image.fromarray(item, mode="RGB") for item in pixels]


def mask_to_pil(masks: "torch.Tensor") -> "list[Image.Image]":
    """Convert a mask tensor [B, H, W] in 0..1 to 8-bit grayscale PIL images."""
    import numpy as np
    from PIL import Image

    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    pixels = (masks.detach().float().clamp(0, 1) * 255.0).round().to("cpu").numpy().astype(np.uint8)
    return [Image.fromarray(item, mode="L") for item in pixels]


def load_image(source: str | Path | bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Open an image file as an image tensor and a mask from its alpha channel.

    Transparent pixels become 1 in the mask, so a picture with an erased area can feed Inpaint.
    """
    import numpy as np
    import torch
    from PIL import ImageOps

    image = open_image(source, max_pixels)
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    tensor = pil_to_tensor(image)
    if has_alpha:
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        mask = 1.0 - torch.from_numpy(alpha).unsqueeze(0)
    else:
        mask = torch.zeros(tensor.shape[:3], dtype=torch.float32)
    return LoadedImage(tensor, mask, has_alpha)


def from_pipeline_output(images: Any) -> "torch.Tensor":
    """Convert what a diffusers pipeline returns to the port layout [B, H, W, 3] float32 in 0..1.

    Accepts a tensor [B, C, H, W] (`output_type="pt"`), a numpy array [B, H, W, C]
    (`output_type="np"`) or a list of PIL images (`output_type="pil"`).
    """
    import numpy as np
    import torch

    if isinstance(images, (list, tuple)) and images and not isinstance(images[0], (torch.Tensor, np.ndarray)):
        return pil_to_tensor(list(images))
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
        if images.dim() == 3:
            images = images.unsqueeze(0)
        images = images.permute(0, 3, 1, 2)
    if isinstance(images, (list, tuple)):
        images = torch.stack([torch.as_tensor(item) for item in images])
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return images.detach().to("cpu", torch.float32).clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def to_pipeline_image(images: "torch.Tensor", device: Any = "cpu", dtype: Any = None) -> "torch.Tensor":
    """Convert an image tensor [B, H, W, C] in 0..1 to the [B, 3, H, W] layout diffusers takes."""
    import torch

    check_image(images)
    images = images[..., :3].permute(0, 3, 1, 2).contiguous()
    return images.to(device=device, dtype=dtype or torch.float32)


def to_pipeline_mask(masks: "torch.Tensor", device: Any = "cpu", dtype: Any = None) -> "torch.Tensor":
    """Convert a mask tensor [B, H, W] in 0..1 to the [B, 1, H, W] layout diffusers takes."""
    import torch

    check_mask(masks)
    return masks.unsqueeze(1).to(device=device, dtype=dtype or torch.float32)


def resize_images(images: "torch.Tensor", width: int, height: int, method: str = "bicubic") -> "torch.Tensor":
    """Resize an image tensor [B, H, W, C] to width x height, keeping values in 0..1.

    Args:
        method: "nearest", "bilinear", "bicubic" or "area" (torch.nn.functional.interpolate modes).
    """
    import torch.nn.functional as F

    check_image(images)
    if images.shape[1] == height and images.shape[2] == width:
        return images
    channels_first = images.permute(0, 3, 1, 2)
    kwargs = {"align_corners": False} if method in ("bilinear", "bicubic") else {}
    if method in ("bilinear", "bicubic"):
        kwargs["antialias"] = True
    resized = F.interpolate(channels_first, size=(height, width), mode=method, **kwargs)
    return resized.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def resize_masks(masks: "torch.Tensor", width: int, height: int) -> "torch.Tensor":
    """Resize a mask tensor [B, H, W] to width x height with bilinear filtering."""
    import torch.nn.functional as F

    check_mask(masks)
    if masks.shape[1] == height and masks.shape[2] == width:
        return masks
    resized = F.interpolate(masks.unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False)
    return resized.squeeze(1).clamp(0, 1).contiguous()


def check_image(images: Any, name: str = "image") -> None:
    """Raise NodeError unless `images` is a float tensor [B, H, W, 3 or 4] (or one image [H, W, C])."""
    import torch

    if not isinstance(images, torch.Tensor):
        raise NodeError(f"input {name!r} must be an image tensor, got {type(images).__name__}")
    if images.dim() not in (3, 4) or images.shape[-1] not in (3, 4):
        raise NodeError(f"input {name!r} must be an image shaped [batch, height, width, 3], got {list(images.shape)}")
    if not images.is_floating_point():
        raise NodeError(f"input {name!r} must hold floats in 0..1, got {images.dtype}")


def check_mask(masks: Any, name: str = "mask") -> None:
    """Raise NodeError unless `masks` is a float tensor [B, H, W] (or one mask [H, W])."""
    import torch

    if not isinstance(masks, torch.Tensor):
        raise NodeError(f"input {name!r} must be a mask tensor, got {type(masks).__name__}")
    if masks.dim() not in (2, 3):
        raise NodeError(f"input {name!r} must be a mask shaped [batch, height, width], got {list(masks.shape)}")
    if not masks.is_floating_point():
        raise NodeError(f"input {name!r} must hold floats in 0..1, got {masks.dtype}")


def attach_generation(images: "torch.Tensor", info: dict[str, Any]) -> "torch.Tensor":
    """Record how an image tensor was made (prompt, seed, steps...) on the tensor itself.

    The record travels with the tensor object through links and the output cache; a
    node that computes a new tensor (e.g. ResizeImage) passes it on with `copy_generation`.
    """
    setattr(images, GENERATION_ATTRIBUTE, dict(info))
    return images


def generation_of(images: Any) -> dict[str, Any] | None:
    """Return what `attach_generation` recorded on a tensor, or None."""
    return getattr(images, GENERATION_ATTRIBUTE, None)


def copy_generation(source: Any, target: "torch.Tensor") -> "torch.Tensor":
    info = generation_of(source)
    if info is not None:
        attach_generation(target, info)
    return target


def _to_rgb(image: "Image.Image") -> "Image.Image":
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits before the RGB conversion, which would clip.
        import numpy as np

        pixels = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if pixels.max() > 255 else 255.0
        image = Image.fromarray((pixels / peak * 255.0).round().astype(np.uint8), mode="L")
    return image.convert("RGB")
