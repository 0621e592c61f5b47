"""The output cache: node outputs keyed by content, bounded by entry count and bytes."""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Default bounds. 20,000 entries fit a 10,000-node workflow twice over, and 1 GiB fits
# about 300 images of 512x512 as float32.
DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_MAX_BYTES = 1024 ** 3


@dataclass
class CacheEntry:
    outputs: dict[str, Any]
    display: dict[str, Any] | None
    size: int


def estimate_bytes(value: Any) -> int:
    """Estimate the memory a node output holds, without counting shared model objects."""
    if value is None or isinstance(value, (bool, int, float)):
        return 16
    if isinstance(value, str):
        return 50 + len(value)
    if isinstance(value, bytes):
        return 33 + len(value)
    if getattr(value, "cache_bytes", None) is not None:
        return int(value.cache_bytes)
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    element_size = getattr(value, "element_size", None)
    if callable(element_size) and hasattr(value, "nelement"):
        return element_size() * value.nelement()
    if isinstance(value, dict):
        return 64 + sum(estimate_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return 56 + sum(estimate_bytes(item) for item in value)
    return sys.getsizeof(value)


class OutputCache:
    """A least-recently-used cache of node outputs, safe to share between threads."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> CacheEntry | None:
        # Lock-free: dict reads are atomic, and an entry evicted between the read and the
        # move only raises KeyError, which leaves the hit valid.
        entry = self._entries.get(key)
        if entry is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:
                pass
        return entry

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def put(self, key: str, outputs: dict[str, Any], display: dict[str, Any] | None) -> None:
        """Store a node's outputs; an entry larger than the whole byte bound is not kept."""
        size = sum(estimate_bytes(value) for value in outputs.values()) + 200
        if size > self.max_bytes:
            logger.debug("not caching an entry of %d bytes (bound %d)", size, self.max_bytes)
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = CacheEntry(outputs, display, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self._bytes, "max_entries": self.max_entries, "max_bytes": self.max_bytes}
