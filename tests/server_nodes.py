"""Node types for the server tests: a slow node that can be interrupted and a node that saves an image.

Also loadable as a node pack (`nodegraph --nodes-dir tests/ ...` would load it; the process
tests copy it into a folder of its own).
"""

from __future__ import annotations

import time
from typing import Any

from nodegraph.node import Input, Node, NodeResult, Output
from nodegraph.types import BOOLEAN, FLOAT, INT, STRING


class TestSleep(Node):
    type_id = "TestSleep"
    display_name = "Sleep (test)"
    category = "test"
    description = "Pass text on after `steps` steps of `step_seconds` each, reporting progress; stops when interrupted."
    deterministic = False
    inputs = (
        Input("text", STRING, default="", description="Passed on unchanged."),
        Input("steps", INT, default=10, min=0, max=100_000, description="How many steps."),
        Input("step_seconds", FLOAT, default=0.01, min=0.0, max=10.0, description="Seconds per step."),
        Input("preview", BOOLEAN, default=False, description="Send a small preview image with each step."),
    )
    outputs = (Output("text", STRING),)

    def fingerprint(self, ctx, literals: dict[str, Any]) -> str | None:
        return None  # never cached: every run sleeps

    def run(self, ctx, text: str, steps: int = 10, step_seconds: float = 0.01, preview: bool = False) -> dict[str, Any]:
        image = None
        if preview:
            from PIL import Image

            image = Image.new("RGB", (512, 256), (0, 200, 0))
        for step in range(steps):
            ctx.progress(step, steps, image)
            time.sleep(step_seconds)
        ctx.progress(steps, steps, image)
        return {"text": text}


class TestSaveImage(Node):
    type_id = "TestSaveImage"
    display_name = "Save a test image"
    category = "test"
    description = "Draw a small image whose color comes from `value`, save it as PNG in the output folder and show it."
    output_node = True
    inputs = (
        Input("value", INT, default=0, min=0, max=255, description="Red channel of the image."),
        Input("prefix", STRING, default="test", description="File name prefix."),
        Input("cache", BOOLEAN, default=False, description="Let the output cache serve this node."),
    )
    outputs = ()

    def fingerprint(self, ctx, literals: dict[str, Any]) -> str | None:
        return "" if literals.get("cache") else None  # by default a new file on every run

    def run(self, ctx, value: int = 0, prefix: str = "test", cache: bool = False) -> NodeResult:
        from PIL import Image

        folder = ctx.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{prefix}-{ctx.run_id}.png"
        Image.new("RGB", (8, 8), (value, 10, 20)).save(folder / name)
        return NodeResult(display={"images": [{"kind": "output", "filename": name, "path": str(folder / name)}]})


NODE_TYPES = (TestSleep, TestSaveImage)
