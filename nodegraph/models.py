"""The model manager: loads each model once, shares it, and unloads past a memory budget.

Models are keyed by source plus options. A loader node asks the manager with a key
and a function that loads the model; every later request with the same key gets the
same object until it is unloaded. Least-recently-used models are unloaded when the
loaded total passes the budget. The cache of node outputs holds handles, not models.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)

# Subfolders of the models folder, by kind of model.
MODEL_KINDS = {
    "llm": "llm",
    "diffusion": "diffusion",
    "lora": "lora",
}
WEIGHT_SUFFIXES = (".safetensors", ".gguf")


def default_cache_dir() -> Path:
    """Return the folder for downloaded and converted embedded models.

    `NODEGRAPH_CACHE_DIR` overrides it; otherwise `$XDG_CACHE_HOME/nodegraph` or `~/.cache/nodegraph`.
    """
    explicit = os.environ.get("NODEGRAPH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nodegraph"


def default_budget_bytes() -> int:
    """Return half the machine's physical memory, the default budget for loaded models."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 1024 ** 3


def estimate_model_bytes(model: Any) -> int:
    """Estimate a model's memory from its parameters and buffers (torch modules and pipelines)."""
    modules = []
    components = getattr(model, "components", None)
    if isinstance(components, dict):
        modules.extend(components.values())
    else:
        modules.append(model)
    total = 0
    for module in modules:
        for attribute in ("parameters", "buffers"):
            tensors = getattr(module, attribute, None)
            if callable(tensors):
                try:
                    total += sum(tensor.element_size() * tensor.nelement() for tensor in tensors())
                except TypeError:
                    pass
    return total


@dataclass
class LoadedModel:
    key: str
    model: Any
    size: int
    loaded_at: float
    seconds: float
    on_unload: Callable[[Any], None] | None = None
    pinned: int = 0


@dataclass
class ModelManager:
    """Loads models once per key and unloads least-recently-used ones past the budget.

    Attributes:
        models_dir: the folder scanned for local models (subfolders by kind, see MODEL_KINDS).
        cache_dir: the folder for fetched and converted embedded models.
        budget_bytes: the loaded total above which least-recently-used models are unloaded.
    """

    models_dir: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    budget_bytes: int = field(default_factory=default_budget_bytes)

    def __post_init__(self) -> None:
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.load_count = 0

    def load(self, key: str, loader: Callable[[], Any], on_unload: Callable[[Any], None] | None = None) -> Any:
        """Return the model for `key`, calling `loader` only when it is not loaded yet.

        Concurrent requests for one key wait for a single load.
        """
        with self._lock:
            entry = self._loaded.get(key)
            if entry is not None:
                self._loaded.move_to_end(key)
                return entry.model
            key_lock = self._key_locks.setdefault(key, threading.Lock())

        with key_lock:
            with self._lock:
                entry = self._loaded.get(key)
                if entry is not None:
                    return entry.model
            started = time.perf_counter()
            model = loader()
            seconds = time.perf_counter() - started
            size = estimate_model_bytes(model)
            logger.info("loaded model %s in %.2f s (%.1f MB)", key, seconds, size / 1e6)
            with self._lock:
                self.load_count += 1
                self._loaded[key] = LoadedModel(key, model, size, time.time(), seconds, on_unload)
                self._enforce_budget(keep=key)
            return model

    def is_loaded(self, key: str) -> bool:
        return key in self._loaded

    def unload(self, key: str) -> bool:
        """Drop the manager's reference to a model; return whether it was loaded."""
        with self._lock:
            entry = self._loaded.pop(key, None)
        if entry is None:
            return False
        self._release(entry)
        return True

    def unload_all(self) -> list[str]:
        with self._lock:
            entries = list(self._loaded.values())
            self._loaded.clear()
        for entry in entries:
            self._release(entry)
        return [entry.key for entry in entries]

    def loaded(self) -> list[dict[str, Any]]:
        """Describe the loaded models, least recently used first."""
        with self._lock:
            return [
                {"key": entry.key, "bytes": entry.size, "load_seconds": round(entry.seconds, 3), "loaded_at": entry.loaded_at}
                for entry in self._loaded.values()
            ]

    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(entry.size for entry in self._loaded.values())

    def _enforce_budget(self, keep: str) -> None:
        while self.loaded_bytes() > self.budget_bytes and len(self._loaded) > 1:
            oldest = next(iter(self._loaded))
            if oldest == keep:
                break
            entry = self._loaded.pop(oldest)
            logger.info("unloading model %s to stay within the %.1f GB budget", oldest, self.budget_bytes / 1e9)
            self._release(entry)

    def _release(self, entry: LoadedModel) -> None:
        if entry.on_unload is not None:
            try:
                entry.on_unload(entry.model)
            except Exception:
                logger.exception("unloading model %s failed", entry.key)
        logger.info("unloaded model %s", entry.key)
        entry.model = None
        gc.collect()

    def scan(self, kind: str) -> list[str]:
        """List the models of one kind in the models folder, as paths relative to its subfolder.

        A model is a `.safetensors` or `.gguf` file, or a folder with `model_index.json`
        (a diffusers pipeline) or `config.json` (a transformers model).
        """
        if self.models_dir is None:
            return []
        folder = Path(self.models_dir) / MODEL_KINDS.get(kind, kind)
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in WEIGHT_SUFFIXES and not _inside_model_folder(path, folder):
                found.append(path.relative_to(folder).as_posix())
            elif path.is_dir() and ((path / "model_index.json").is_file() or (path / "config.json").is_file()):
                if not _inside_model_folder(path, folder):
                    found.append(path.relative_to(folder).as_posix())
        return found

    def resolve(self, kind: str, name: str) -> Path | None:
        """Return the path of a model named relative to its kind's subfolder, or None."""
        if self.models_dir is None:
            return None
        folder = (Path(self.models_dir) / MODEL_KINDS.get(kind, kind)).resolve()
        path = (folder / name).resolve()
        if folder not in path.parents or not path.exists():
            return None
        return path

    def inventory(self) -> dict[str, list[str]]:
        """Return what the models folder holds, by kind."""
        return {kind: self.scan(kind) for kind in MODEL_KINDS}


def _inside_model_folder(path: Path, root: Path) -> bool:
    # Files inside a diffusers or transformers folder belong to that model, not listed on their own.
    for parent in path.parents:
        if parent == root:
            return False
        if (parent / "model_index.json").is_file() or (parent / "config.json").is_file():
            return True
    return False
