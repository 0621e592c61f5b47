"""Run and node events: small, per node, never the state of the whole run.

Every event has `event`, `run` and `time` (seconds since the epoch); node events add
`node` and `type`. Run statuses use the same words as the events: queued, running,
succeeded, failed, interrupted, invalid.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

RUN_EVENTS = ("run.queued", "run.started", "run.succeeded", "run.failed", "run.interrupted", "run.invalid")
NODE_EVENTS = ("node.started", "node.progress", "node.cached", "node.skipped", "node.finished", "node.warning", "node.failed")

# Maximum length of a text value in an event; longer text is cut, with a note of its length.
MAX_EVENT_TEXT = 4000


def summarize(value: Any) -> Any:
    """Return a small JSON-friendly summary of a port value for events.

    Text and numbers are kept (text cut at MAX_EVENT_TEXT characters); tensors become
    their type and shape; objects with a `summary()` method use it.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if len(value) <= MAX_EVENT_TEXT:
            return value
        return value[:MAX_EVENT_TEXT] + f"… ({len(value)} characters)"
    summary = getattr(value, "summary", None)
    if callable(summary):
        return summary()
    shape = getattr(value, "shape", None)
    if shape is not None:
        return {"kind": type(value).__name__, "shape": list(shape), "dtype": str(getattr(value, "dtype", ""))}
    if isinstance(value, (list, tuple)):
        return [summarize(item) for item in value[:20]]
    if isinstance(value, dict):
        return {str(key): summarize(item) for key, item in list(value.items())[:20]}
    return {"kind": type(value).__name__}


def encode_preview(image: Any, max_side: int = 256) -> str:
    """Encode a PIL preview image as a base64 JPEG data URL."""
    image = image.convert("RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_json(event: dict) -> str:
    """Serialize an event as one line of JSON, encoding a preview image if there is one."""
    preview = event.get("preview")
    if preview is not None and not isinstance(preview, str):
        event = {**event, "preview": encode_preview(preview)}
    return json.dumps(event, ensure_ascii=False, default=str)
