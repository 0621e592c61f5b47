"""nodegraph's embedded text-to-image model: a small diffusion model trained on procedural scenes.

`load_embedded_pipeline()` returns a diffusers pipeline that draws 32x32 scenes (a
background and one or two colored shapes) from English captions; see the README's model
section for the vocabulary, `python -m nodegraph.embedded.train` to train it and
`python -m nodegraph.embedded.evaluate` to measure it.
"""

from __future__ import annotations

from pathlib import Path

from .model import NATIVE_RESOLUTION, WEIGHTS_DIR


def load_embedded_pipeline(device="cpu", dtype=None, weights: str | Path | None = None):
    """Load the embedded pipeline.

    device, dtype: where the UNet runs (float32 on the CPU by default).
    weights: a model.safetensors file to use instead of the shipped one.
    Raises nodegraph.errors.ModelUnavailable when the weights are missing or corrupt.
    """
    from .pipeline import load_pipeline

    return load_pipeline(weights=weights, device=device, dtype=dtype)


__all__ = ["NATIVE_RESOLUTION", "WEIGHTS_DIR", "load_embedded_pipeline"]
