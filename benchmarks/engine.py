"""Measure the executor's own overhead on linear chains of TextConcat nodes.

For chains of 100, 1,000 and 10,000 nodes it times whole `Executor.run` calls
(validation included): a cold run on a fresh executor, a fully cached re-run, and a
re-run after changing the middle node; it prints medians and the per-node overhead
in microseconds. TextConcat does almost no work, so the figures are the engine's own.

Run: python benchmarks/engine.py [--rounds 5] [--sizes 100 1000 10000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nodegraph.executor import Executor, prepare  # noqa: E402
from nodegraph.registry import default_registry  # noqa: E402


def chain(length: int) -> dict:
    nodes = {"n0": {"type": "Text", "inputs": {"text": "a"}}}
    for index in range(1, length):
        nodes[f"n{index}"] = {"type": "TextConcat",
                              "inputs": {"first": {"from": [f"n{index - 1}", "text"]}, "second": "b", "separator": ""}}
    nodes["show"] = {"type": "ShowText", "inputs": {"text": {"from": [f"n{length - 1}", "text"]}}}
    return {"format": "nodegraph/workflow", "version": 1, "nodes": nodes}


def measure(registry, length: int, rounds: int) -> dict[str, float]:
    """Time whole `Executor.run` calls, validation included, as a caller would make them."""
    cold, cached, changed, validation = [], [], [], []
    for _ in range(rounds):
        document = chain(length)
        started = time.perf_counter()
        _, problems = prepare(document, registry)
        validation.append(time.perf_counter() - started)
        assert not problems, problems

        executor = Executor(registry, output_dir="/tmp/nodegraph-bench")
        started = time.perf_counter()
        result = executor.run(document)
        cold.append(time.perf_counter() - started)
        assert result.status == "succeeded"

        started = time.perf_counter()
        result = executor.run(document)
        cached.append(time.perf_counter() - started)
        assert all(outcome.status == "cached" for outcome in result.nodes.values())

        document["nodes"][f"n{length // 2}"]["inputs"]["second"] = "c"
        started = time.perf_counter()
        result = executor.run(document)
        changed.append(time.perf_counter() - started)
        executed = sum(1 for outcome in result.nodes.values() if outcome.status == "executed")
        assert executed == length - length // 2 + 1, executed
    return {
        "validate_s": statistics.median(validation),
        "cold_s": statistics.median(cold),
        "cached_s": statistics.median(cached),
        "changed_s": statistics.median(changed),
        "executed_after_change": length - length // 2 + 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    args = parser.parse_args()

    registry = default_registry(entry_point_packs=False)
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}; "
          f"median of {args.rounds} rounds")
    print(f"{'nodes':>7} {'validate ms':>12} {'cold ms':>9} {'µs/node':>8} {'cached ms':>10} {'cached/cold':>12} "
          f"{'changed ms':>11} {'µs/executed':>12}")
    per_node = {}
    for size in args.sizes:
        figures = measure(registry, size, args.rounds)
        nodes = size + 1
        per_node[size] = figures["cold_s"] / nodes * 1e6
        print(f"{size:>7} {figures['validate_s'] * 1e3:>12.1f} {figures['cold_s'] * 1e3:>9.1f} {per_node[size]:>8.1f} "
              f"{figures['cached_s'] * 1e3:>10.2f} {figures['cached_s'] / figures['cold_s']:>11.1%} "
              f"{figures['changed_s'] * 1e3:>11.1f} {figures['changed_s'] / figures['executed_after_change'] * 1e6:>12.1f}")
    smallest, largest = min(per_node), max(per_node)
    print(f"growth of per-node overhead from {smallest} to {largest} nodes: {per_node[largest] / per_node[smallest]:.2f}x")


if __name__ == "__main__":
    main()
