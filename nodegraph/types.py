"""Port types and the rules for linking and for literal values.

Images cross ports as float32 tensors shaped [B, H, W, C] with values in 0..1,
masks as float32 [B, H, W] in 0..1 (1 marks the area to change).
"""

from __future__ import annotations

import math
from typing import Any

STRING = "STRING"
INT = "INT"
FLOAT = "FLOAT"
BOOLEAN = "BOOLEAN"
IMAGE = "IMAGE"
MASK = "MASK"
CONDITIONING = "CONDITIONING"
LLM = "LLM"
EMBEDDING = "EMBEDDING"
DIFFUSION_MODEL = "DIFFUSION_MODEL"
LATENT = "LATENT"
ANY = "*"

PORT_TYPES = (
    STRING, INT, FLOAT, BOOLEAN, IMAGE, MASK, CONDITIONING, LLM, EMBEDDING, DIFFUSION_MODEL, LATENT, ANY,
)

# Types that can be written as a literal in a workflow file; the others only arrive through links.
LITERAL_TYPES = frozenset({STRING, INT, FLOAT, BOOLEAN, ANY})


def compatible(output_type: str, input_type: str) -> bool:
    """Return whether an output of `output_type` may feed an input of `input_type`."""
    return output_type == input_type or output_type == ANY or input_type == ANY


def literal_matches(port_type: str, value: Any) -> bool:
    """Return whether a JSON literal is acceptable for an input of `port_type`."""
    if port_type == ANY:
        return True
    if port_type == STRING:
        return isinstance(value, str)
    if port_type == BOOLEAN:
        return isinstance(value, bool)
    if port_type == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if port_type == FLOAT:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return is_number and math.isfinite(value)
    return False


def parse_text_value(port_type: str, text: str) -> Any:
    """Convert a command-line or API parameter given as text to the input's type.

    Raises:
        ValueError: the text does not read as a value of that type.
    """
    if port_type == STRING:
        return text
    if port_type == INT:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if port_type == FLOAT:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    if port_type == BOOLEAN:
        word = text.strip().lower()
        if word in ("true", "1", "yes", "on"):
            return True
        if word in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not a boolean; use true or false")
    if port_type == ANY:
        return text
    raise ValueError(f"inputs of type {port_type} take a link, not a value")
