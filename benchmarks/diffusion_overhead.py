"""Measure what a nodegraph workflow adds to a direct diffusers call.

The same tiny random Stable Diffusion pipeline (built here, nothing downloaded) runs
text-to-image at 64x64 with 20 steps and one seed, once called directly and once
through a workflow (LoadDiffusionModel -> EncodePrompt -> TextToImage -> PreviewImage),
alternating which goes first, for several rounds. The output cache is cleared before
each workflow run so every node executes; the model manager stays warm, as in a
long-running server. Also reported: the cold first workflow run (which loads the
model), a warm run, a fully cached run, and the process's peak memory.

Run from the repository root:

    PYTHONPATH=. python benchmarks/diffusion_overhead.py [--rounds 7] [--steps 20] [--size 64] [--threads 1]

The last line printed is the median ratio workflow / direct (target: at most 1.05).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating direct/workflow pairs")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per call")
    parser.add_argument("--size", type=int, default=64, help="image width and height in pixels")
    parser.add_argument("--scale", type=int, default=1, help="multiplies the tiny UNet's channels")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 keeps torch's default); 1 steadies timings on a busy machine")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import StableDiffusionPipeline

    from nodegraph.executor import Executor
    from nodegraph.models import ModelManager
    from nodegraph.registry import default_registry
    from tiny_diffusion import build_pipeline

    # 1. A tiny pipeline saved as a models folder; the direct side loads it the usual way.
    work = Path(tempfile.mkdtemp(prefix="nodegraph-bench-"))
    build_pipeline(work / "models" / "diffusion" / "tiny-sd", scale=args.scale)
    direct_pipe = StableDiffusionPipeline.from_pretrained(work / "models" / "diffusion" / "tiny-sd", use_safetensors=True)
    direct_pipe.set_progress_bar_config(disable=True)

    prompt, seed = "a red ball on the grass", 7
    document = {
        "format": "nodegraph/workflow", "version": 1, "name": "benchmark",
        "nodes": {
            "model": {"type": "LoadDiffusionModel", "inputs": {"source": "tiny-sd", "device": "cpu", "dtype": "float32"}},
            "cond": {"type": "EncodePrompt", "inputs": {"model": {"from": ["model", "model"]}, "prompt": prompt}},
            "sample": {"type": "TextToImage", "inputs": {
                "model": {"from": ["model", "model"]}, "conditioning": {"from": ["cond", "conditioning"]},
                "width": args.size, "height": args.size, "steps": args.steps, "guidance": 5.0, "seed": seed, "batch": 1}},
            "preview": {"type": "PreviewImage", "inputs": {"image": {"from": ["sample", "image"]}}},
        },
    }
    executor = Executor(default_registry(entry_point_packs=False), models=ModelManager(models_dir=work / "models"),
                        output_dir=work / "output", temp_dir=work / "temp")

    def run_direct():
        generator = torch.Generator("cpu").manual_seed(seed)
        output = direct_pipe(prompt=prompt, negative_prompt="", width=args.size, height=args.size,
                             num_inference_steps=args.steps, guidance_scale=5.0, generator=generator, output_type="pt")
        return output.images

    def run_workflow():
        result = executor.run(document)
        if result.status != "succeeded":
            raise SystemExit(f"workflow run {result.status}: {result.error or result.problems}")
        return result.values["sample"]["image"]

    def timed(function):
        started = time.perf_counter()
        value = function()
        return time.perf_counter() - started, value

    # 2. Cold, warm and cached workflow runs.
    cold, _ = timed(run_workflow)
    executor.cache.clear()
    warm, _ = timed(run_workflow)
    cached, _ = timed(run_workflow)
    print(f"workflow cold (loads the model): {cold:.3f} s; warm: {warm:.3f} s; fully cached: {cached * 1000:.1f} ms")

    # 3. Alternating rounds; the same seed must give the same image both ways.
    ratios, direct_times, workflow_times = [], [], []
    for index in range(args.rounds):
        executor.cache.clear()
        if index % 2 == 0:
            direct_seconds, direct_image = timed(run_direct)
            workflow_seconds, workflow_image = timed(run_workflow)
        else:
            workflow_seconds, workflow_image = timed(run_workflow)
            direct_seconds, direct_image = timed(run_direct)
        difference = (direct_image.permute(0, 2, 3, 1) - workflow_image).abs().max().item()
        ratios.append(workflow_seconds / direct_seconds)
        direct_times.append(direct_seconds)
        workflow_times.append(workflow_seconds)
        print(f"round {index + 1}: direct {direct_seconds:.3f} s, workflow {workflow_seconds:.3f} s, "
              f"ratio {ratios[-1]:.3f}, max pixel difference {difference:.2e}")

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model_mb = executor.models.loaded_bytes() / 1e6
    print(f"peak resident memory of the process: {peak_mb:.0f} MB (models held by the manager: {model_mb:.1f} MB, "
          f"plus the direct pipeline's copy)")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.size}x{args.size}, {args.steps} steps")
    # The fastest run of each side is the one least disturbed by other processes.
    print(f"fastest direct {min(direct_times):.3f} s, fastest workflow {min(workflow_times):.3f} s, "
          f"ratio of the fastest {min(workflow_times) / min(direct_times):.3f}")
    print(f"median ratio workflow/direct: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
