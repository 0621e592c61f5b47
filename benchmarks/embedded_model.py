"""Time the embedded image model at its default settings.

Loads the shipped pipeline (timed), then draws single images at the defaults the nodes
use (20 steps, guidance 3.0, 32x32) and prints the median time per image, plus the same
for image-to-image at strength 0.6. Prompt encoding is included in each timing.

Run: python benchmarks/embedded_model.py [--rounds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from nodegraph.embedded import load_embedded_pipeline

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pipe = load_embedded_pipeline(device="cpu", dtype=torch.float32)
    load_seconds = time.perf_counter() - started
    source = torch.rand(1, 3, 32, 32)

    def draw(seed: int, **kwargs) -> float:
        t0 = time.perf_counter()
        embeds, negative = pipe.encode_prompt(["a small yellow star in the night sky on the left"], None)
        pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, generator=torch.Generator().manual_seed(seed),
             **kwargs)
        return time.perf_counter() - t0

    draw(0)  # warm-up
    text = [draw(seed) for seed in range(args.rounds)]
    edit = [draw(seed, image=source, strength=0.6) for seed in range(args.rounds)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch threads {args.threads}")
    print(f"load pipeline (UNet + MiniLM): {load_seconds:.2f} s")
    print(f"text to image, 20 steps, guidance 3.0: median {statistics.median(text):.3f} s, max {max(text):.3f} s")
    print(f"image to image, strength 0.6:          median {statistics.median(edit):.3f} s, max {max(edit):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
