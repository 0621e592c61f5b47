"""Image file and image tensor nodes: load, save, preview, compare, resize, rectangular masks.

Images on ports are float32 [B, H, W, 3] in 0..1 and masks float32 [B, H, W] (1 = change);
`nodegraph.images` converts them. torch and Pillow are imported inside `run`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nodegraph.errors import NodeError
from nodegraph.node import Input, Node, NodeResult, Output
from nodegraph.types import BOOLEAN, IMAGE, INT, MASK, STRING

MAX_SIDE = 8192
RESIZE_METHODS = ("bicubic", "bilinear", "nearest", "area")
# File name characters kept in a filename prefix; others become '_'.
_UNSAFE_NAME = re.compile(r"[^\w.\-]+")


class LoadImage(Node):
    type_id = "LoadImage"
    display_name = "Load image"
    category = "image"
    description = (
        "Load an image file from the input folder (the server's, or the CLI's --input-dir). "
        "The mask output is 1 where the file is transparent, for Inpaint."
    )
    inputs = (
        Input("image", STRING, default="", widget="upload",
              description="The file's path inside the input folder, e.g. 'photo.png' or 'shots/cat.jpg'."),
    )
    outputs = (Output("image", IMAGE), Output("mask", MASK))

    def fingerprint(self, ctx, literals: dict[str, Any]) -> str | None:
        # The file can change between runs under the same name, within one tick of the file
        # system's modification time: key on a hash of its content.
        import hashlib

        try:
            path = _input_path(ctx, literals.get("image", ""))
            hasher = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    hasher.update(block)
        except (NodeError, OSError):
            return "missing"
        return hasher.hexdigest()

    def run(self, ctx, image: str) -> dict[str, Any]:
        from nodegraph.images import load_image

        loaded = load_image(_input_path(ctx, image))
        return {"image": loaded.image, "mask": loaded.mask}


def _input_path(ctx, name: str) -> Path:
    if not name.strip():
        raise NodeError("input 'image' is empty; give the name of an image file in the input folder")
    folder = Path(ctx.input_dir).resolve()
    path = (folder / name).resolve()
    if path != folder and folder not in path.parents:
        raise NodeError(f"input 'image' is {name!r}, which is outside the input folder {folder}; "
                        "copy the file into the input folder")
    if not path.is_file():
        raise NodeError(f"input 'image' is {name!r}, but {path} was not found; put the file in the input folder {folder}")
    return path


class SaveImage(Node):
    type_id = "SaveImage"
    display_name = "Save image"
    category = "image"
    description = (
        "Save images as PNG files in the output folder, with the workflow and the run's params embedded "
        "(and an A1111-style 'parameters' text), so the file can be loaded again as a workflow."
    )
    output_node = True
    inputs = (
        Input("image", IMAGE, description="The images to save."),
        Input("filename_prefix", STRING, default="nodegraph",
              description="Start of the file names; may include a subfolder, e.g. 'cats/run'."),
    )
    outputs = ()

    def fingerprint(self, ctx, literals: dict[str, Any]) -> str | None:
        return None  # writes a new file on every run

    def run(self, ctx, image: Any, filename_prefix: str = "nodegraph") -> NodeResult:
        from nodegraph.images import generation_of, tensor_to_pil
        from nodegraph.pngmeta import build_pnginfo

        generation = generation_of(image)
        saved = []
        for index, picture in enumerate(tensor_to_pil(image)):
            if generation is not None and len(generation.get("seeds", ())) > index:
                generation = {**generation, "seed": generation["seeds"][index]}
            pnginfo = build_pnginfo(ctx.workflow, ctx.params, generation)
            path = _next_path(Path(ctx.output_dir), filename_prefix)
            picture.save(path, format="PNG", pnginfo=pnginfo, compress_level=4)
            saved.append(_display_entry("output", Path(ctx.output_dir), path))
        ctx.log.info("saved %d image(s) to %s", len(saved), Path(ctx.output_dir))
        return NodeResult(display={"images": saved})


class PreviewImage(Node):
    type_id = "PreviewImage"
    display_name = "Preview image"
    category = "image"
    description = "Show images without keeping them: they are written to the temporary folder as PNG files."
    output_node = True
    inputs = (Input("image", IMAGE, description="The images to show."),)
    outputs = ()

    def fingerprint(self, ctx, literals: dict[str, Any]) -> str | None:
        return None  # the temporary folder may have been emptied since the last run

    def run(self, ctx, image: Any) -> NodeResult:
        from nodegraph.images import tensor_to_pil

        previews = []
        for picture in tensor_to_pil(image):
            path = _next_path(Path(ctx.temp_dir), f"preview_{ctx.run_id}")
            picture.save(path, format="PNG", compress_level=1)
            previews.append(_display_entry("temp", Path(ctx.temp_dir), path))
        return NodeResult(display={"images": previews})


def _next_path(folder: Path, prefix: str) -> Path:
    """Return the first free `<prefix>_<n>.png` in `folder`, keeping any subfolder of the prefix inside it."""
    folder = folder.resolve()
    parts = [part for part in re.split(r"[\\/]+", prefix.strip()) if part not in ("", ".", "..")]
    parts = [_UNSAFE_NAME.sub("_", part) for part in parts] or ["nodegraph"]
    target_dir = folder.joinpath(*parts[:-1])
    target_dir.mkdir(parents=True, exist_ok=True)
    stem = parts[-1]
    pattern = re.compile(rf"^{re.escape(stem)}_(\d+)\.png$")
    numbers = [int(match.group(1)) for name in os.listdir(target_dir) if (match := pattern.match(name))]
    counter = max(numbers, default=0) + 1
    while True:
        path = target_dir / f"{stem}_{counter:05d}.png"
        try:
            # Create the file exclusively so two runs saving at once never share a name.
            with open(path, "xb"):
                pass
            return path
        except FileExistsError:
            counter += 1


def _display_entry(kind: str, folder: Path, path: Path) -> dict[str, str]:
    return {"kind": kind, "filename": path.relative_to(folder.resolve()).as_posix(), "path": str(path)}


class ImageCompare(Node):
    type_id = "ImageCompare"
    display_name = "Compare images"
    category = "image"
    description = "Put two images side by side, with optional labels above them, e.g. before and after an edit."
    inputs = (
        Input("first", IMAGE, description="The image on the left."),
        Input("second", IMAGE, description="The image on the right; scaled to the first one's height."),
        Input("first_label", STRING, required=False, default="", description="Text above the left image."),
        Input("second_label", STRING, required=False, default="", description="Text above the right image."),
    )
    outputs = (Output("image", IMAGE),)

    def run(self, ctx, first: Any, second: Any, first_label: str = "", second_label: str = "") -> dict[str, Any]:
        import torch

        from nodegraph.images import check_image, resize_images

        check_image(first, "first")
        check_image(second, "second")
        if first.shape[0] != second.shape[0] and 1 not in (first.shape[0], second.shape[0]):
            raise NodeError(f"inputs 'first' and 'second' have batches of {first.shape[0]} and {second.shape[0]}; "
                            "give batches of one size, or one image on either side")
        height = first.shape[1]
        if second.shape[1] != height:
            width = max(1, round(second.shape[2] * height / second.shape[1]))
            second = resize_images(second, width, height)
        batch = max(first.shape[0], second.shape[0])
        first = first[..., :3].expand(batch, -1, -1, -1)
        second = second[..., :3].expand(batch, -1, -1, -1)
        gap = torch.ones(batch, height, max(2, height // 64), 3)
        combined = torch.cat([first, gap, second], dim=2)
        if first_label or second_label:
            combined = _label_strip(combined, first.shape[2] + gap.shape[2], first_label, second_label)
        return {"image": combined.contiguous()}


def _label_strip(images: Any, second_left: int, first_label: str, second_label: str) -> Any:
    """Add a white strip above the images with the two labels written in black."""
    import torch
    from PIL import Image, ImageDraw, ImageFont

    from nodegraph.images import pil_to_tensor

    width = images.shape[2]
    strip_height = max(16, images.shape[1] // 12)
    strip = Image.new("RGB", (width, strip_height), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=max(10, strip_height * 3 // 4))
    draw.text((4, strip_height // 2), first_label, fill="black", font=font, anchor="lm")
    draw.text((second_left + 4, strip_height // 2), second_label, fill="black", font=font, anchor="lm")
    strip_tensor = pil_to_tensor(strip).expand(images.shape[0], -1, -1, -1)
    return torch.cat([strip_tensor, images], dim=1)


class ResizeImage(Node):
    type_id = "ResizeImage"
    display_name = "Resize image"
    category = "image"
    description = (
        "Resize images to a width and height. With 'keep_aspect', the image is scaled to fit inside that size "
        "and the result's sides are rounded down to multiples of 8, as diffusion models need."
    )
    inputs = (
        Input("image", IMAGE, description="The images to resize."),
        Input("width", INT, default=512, min=1, max=MAX_SIDE, description="Target width in pixels."),
        Input("height", INT, default=512, min=1, max=MAX_SIDE, description="Target height in pixels."),
        Input("method", STRING, default="bicubic", choices=RESIZE_METHODS, description="The resampling filter."),
        Input("keep_aspect", BOOLEAN, required=False, default=False,
              description="Fit inside width x height, keeping the aspect ratio."),
    )
    outputs = (Output("image", IMAGE),)

    def run(self, ctx, image: Any, width: int, height: int, method: str, keep_aspect: bool = False) -> dict[str, Any]:
        from nodegraph.images import check_image, copy_generation, resize_images

        check_image(image)
        for name, value in (("width", width), ("height", height)):
            if not 1 <= value <= MAX_SIDE:
                raise NodeError(f"input {name!r} is {value}; use 1 to {MAX_SIDE} pixels")
        if method not in RESIZE_METHODS:
            raise NodeError(f"input 'method' is {method!r}; use one of {', '.join(RESIZE_METHODS)}")
        if keep_aspect:
            scale = min(width / image.shape[2], height / image.shape[1])
            width = max(8, int(image.shape[2] * scale) // 8 * 8)
            height = max(8, int(image.shape[1] * scale) // 8 * 8)
        return {"image": copy_generation(image, resize_images(image, width, height, method))}


class MaskFromRect(Node):
    type_id = "MaskFromRect"
    display_name = "Mask from rectangle"
    category = "image"
    description = (
        "Make a mask that is 1 inside a rectangle and 0 outside, for Inpaint. Connect an image to take its "
        "size; otherwise width and height set it."
    )
    inputs = (
        Input("x", INT, default=0, min=0, max=MAX_SIDE, description="Left edge of the rectangle, in pixels."),
        Input("y", INT, default=0, min=0, max=MAX_SIDE, description="Top edge of the rectangle, in pixels."),
        Input("rect_width", INT, default=256, min=1, max=MAX_SIDE, description="Rectangle width in pixels."),
        Input("rect_height", INT, default=256, min=1, max=MAX_SIDE, description="Rectangle height in pixels."),
        Input("width", INT, default=512, min=1, max=MAX_SIDE, description="Mask width, when no image is connected."),
        Input("height", INT, default=512, min=1, max=MAX_SIDE, description="Mask height, when no image is connected."),
        Input("image", IMAGE, required=False, description="An image whose size the mask takes."),
        Input("invert", BOOLEAN, required=False, default=False, description="Mark the outside of the rectangle instead."),
        Input("feather", INT, required=False, default=0, min=0, max=512,
              description="Soften the edge over this many pixels inside the rectangle."),
    )
    outputs = (Output("mask", MASK),)

    def run(self, ctx, x: int, y: int, rect_width: int, rect_height: int, width: int, height: int,
            image: Any = None, invert: bool = False, feather: int = 0) -> dict[str, Any]:
        import torch

        if image is not None:
            from nodegraph.images import check_image

            check_image(image)
            height, width = image.shape[1], image.shape[2]
        if x >= width or y >= height:
            raise NodeError(f"the rectangle starts at ({x}, {y}), outside the {width}x{height} mask; "
                            "move it inside, x below the width and y below the height")
        right, bottom = min(width, x + rect_width), min(height, y + rect_height)
        mask = torch.zeros(1, height, width, dtype=torch.float32)
        mask[:, y:bottom, x:right] = 1.0
        if feather > 0:
            mask = _feather(mask, x, y, right, bottom, feather)
        if invert:
            mask = 1.0 - mask
        return {"mask": mask}


def _feather(mask: Any, left: int, top: int, right: int, bottom: int, feather: int) -> Any:
    """Ramp the mask from 0 at the rectangle's edge to 1 at `feather` pixels inside it."""
    import torch

    height, width = mask.shape[1], mask.shape[2]
    columns = torch.arange(width, dtype=torch.float32)
    rows = torch.arange(height, dtype=torch.float32)
    # Distance, in pixels, from each pixel to the nearest rectangle edge (counting the edge pixel as 1).
    horizontal = torch.minimum(columns - left + 1, right - columns).clamp(min=0)
    vertical = torch.minimum(rows - top + 1, bottom - rows).clamp(min=0)
    distance = torch.minimum(vertical[:, None], horizontal[None, :])
    return (distance / feather).clamp(0, 1).unsqueeze(0) * (mask > 0)


NODE_TYPES = (LoadImage, SaveImage, PreviewImage, ImageCompare, ResizeImage, MaskFromRect)
