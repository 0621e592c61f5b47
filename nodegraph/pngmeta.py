"""PNG text chunks: the workflow and params a PNG was made with, and an A1111-style summary.

Chunks written by SaveImage:

- `nodegraph:workflow`: the workflow document as JSON (compressed iTXt, UTF-8);
- `nodegraph:params`: the param values of the run as JSON;
- `parameters`: the text other tools (AUTOMATIC1111, Civitai, many viewers) read:
  the prompt, then `Negative prompt: ...`, then one line of `Key: value` pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodegraph.images import MAX_IMAGE_PIXELS, ImageUnreadable, open_image

if TYPE_CHECKING:
    from PIL.PngImagePlugin import PngInfo

WORKFLOW_KEY = "nodegraph:workflow"
PARAMS_KEY = "nodegraph:params"
PARAMETERS_KEY = "parameters"

# Pillow skips, when reading, a text chunk whose decompressed size passes
# PngImagePlugin.MAX_TEXT_CHUNK (1 MiB in Pillow 13.0). Reading raises the limit to this.
_READ_TEXT_LIMIT = 64 * 1024 * 1024

# Names of the A1111 `parameters` fields, in the order that format writes them.
_A1111_FIELDS = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("guidance", "CFG scale"),
    ("image_guidance", "Image CFG scale"),
    ("seed", "Seed"),
    ("size", "Size"),
    ("model", "Model"),
    ("strength", "Denoising strength"),
    ("loras", "Lora hashes"),
)


@dataclass
class PngMetadata:
    """The text chunks of a PNG, parsed; a field is None when its chunk is missing."""

    workflow: dict | None
    params: dict | None
    parameters: str | None
    text: dict[str, str]


def build_pnginfo(workflow: dict | None = None, params: dict | None = None,
                  generation: dict[str, Any] | None = None) -> "PngInfo":
    """Build the text chunks for a PNG.

    Args:
        workflow: the workflow document that made the image.
        params: the param values of the run.
        generation: what made the image (see `a1111_parameters`); no `parameters` chunk when None.
    """
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if workflow:
        info.add_itxt(WORKFLOW_KEY, json.dumps(workflow, ensure_ascii=False, separators=(",", ":")), zip=True)
    if params is not None:
        info.add_itxt(PARAMS_KEY, json.dumps(params, ensure_ascii=False, default=str), zip=True)
    if generation:
        info.add_itxt(PARAMETERS_KEY, a1111_parameters(generation))
    return info


def a1111_parameters(generation: dict[str, Any]) -> str:
    """Format generation settings as the A1111 `parameters` text.

    Args:
        generation: any of prompt, negative, steps, sampler, guidance, image_guidance,
            seed, width and height, model, strength, loras (a list of names).
    """
    lines = [_one_line(generation.get("prompt", ""))]
    negative = generation.get("negative")
    if negative:
        lines.append(f"Negative prompt: {_one_line(negative)}")

    values = dict(generation)
    if "width" in values and "height" in values:
        values["size"] = f"{values['width']}x{values['height']}"
    if values.get("loras"):
        values["loras"] = '"' + ", ".join(str(name) for name in values["loras"]) + '"'
    pairs = [f"{label}: {_one_line(str(values[key]))}" for key, label in _A1111_FIELDS if values.get(key) not in (None, "")]
    pairs.append("Version: nodegraph")
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def read_png_metadata(source: str | Path | bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> PngMetadata:
    """Read the nodegraph and A1111 text chunks back from a PNG.

    Raises:
        ImageUnreadable: the file is not a readable image, or a nodegraph chunk is not valid JSON.
        ImageTooLarge: the image has more pixels than `max_pixels`.
    """
    from PIL import PngImagePlugin

    previous = PngImagePlugin.MAX_TEXT_CHUNK
    # NOTE: the limit is a Pillow module setting, so a thread reading another PNG at the
    # same moment gets the raised value too. It only allows larger text, never less.
    PngImagePlugin.MAX_TEXT_CHUNK = max(previous, _READ_TEXT_LIMIT)
    try:
        image = open_image(source, max_pixels)
    finally:
        PngImagePlugin.MAX_TEXT_CHUNK = previous
    text = {str(key): value for key, value in getattr(image, "text", {}).items() if isinstance(value, str)}
    name = "the image data" if isinstance(source, bytes) else str(source)
    return PngMetadata(
        workflow=_json_chunk(text, WORKFLOW_KEY, name),
        params=_json_chunk(text, PARAMS_KEY, name),
        parameters=text.get(PARAMETERS_KEY),
        text=text,
    )


def _json_chunk(text: dict[str, str], key: str, name: str) -> Any:
    raw = text.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImageUnreadable(f"the {key!r} text chunk of {name} is not valid JSON ({error})") from error


def _one_line(text: str) -> str:
    # The A1111 format is line-based: the prompt is the first line(s) and the settings the last.
    return " ".join(str(text).split())
