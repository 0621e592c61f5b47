"""Node types the browser tests load with `nodes_dirs`: a slow counter and an uploaded-image viewer."""

from __future__ import annotations

import time

from nodegraph.node import Input, Node, NodeResult, Output
from nodegraph.types import FLOAT, INT, STRING


class SlowCount(Node):
    type_id = "SlowCount"
    display_name = "Slow count"
    category = "testing"
    description = "Count to `steps`, sleeping between steps and reporting progress with a preview image."
    output_node = True
    inputs = (
        Input("steps", INT, default=5, min=1, max=1000, description="How many steps."),
        Input("seconds", FLOAT, default=0.2, min=0.0, max=10.0, step=0.05, description="Sleep per step."),
        Input("verb", STRING, default="counted", choices=("counted", "tallied", "numbered"),
              description="The word the result text starts with."),
    )
    outputs = (Output("text", STRING),)

    def run(self, ctx, steps: int = 5, seconds: float = 0.2, verb: str = "counted"):
        from PIL import Image

        for step in range(steps):
            shade = int(255 * step / steps)
            ctx.progress(step, steps, preview=Image.new("RGB", (16, 16), (shade, 80, 255 - shade)))
            time.sleep(seconds)
        ctx.progress(steps, steps)
        text = f"{verb} to {steps}"
        return NodeResult(outputs={"text": text}, display={"text": [text]})


class ShowUpload(Node):
    type_id = "ShowUpload"
    display_name = "Show uploaded image"
    category = "testing"
    description = "Display an image from the input folder, chosen with the upload widget."
    output_node = True
    inputs = (Input("image", STRING, widget="upload", description="A file in the input folder."),)

    def run(self, ctx, image: str):
        if not (ctx.input_dir / image).is_file():
            raise ValueError(f"no input file {image!r}")
        return NodeResult(display={"images": [{"kind": "input", "filename": image, "path": str(ctx.input_dir / image)}]})


NODE_TYPES = (SlowCount, ShowUpload)
