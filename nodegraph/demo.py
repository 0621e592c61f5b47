"""The main job: run a shipped example workflow on two inputs and print what happened."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from nodegraph import document as workflow_document
from nodegraph.resources import workflows_dir

# Two runs of the text-branching example: a low score takes the branch that adds detail,
# a high score passes the prompt through.
TEXT_DEMO = (
    {"prompt": "a red ball", "score": "0.3"},
    {"prompt": "a red ball on green grass under a blue sky, bright daylight, centered", "score": "0.8"},
)


def run_demo(output_dir: Path, stream: TextIO = sys.stdout) -> int:
    """Run the demo workflow for each input and print the branch taken; return an exit code."""
    from nodegraph.executor import Executor
    from nodegraph.registry import default_registry

    registry = default_registry()
    document = workflow_document.load_path(workflows_dir() / "text-branching.json")
    executor = Executor(registry, output_dir=output_dir)
    status = 0
    for params in TEXT_DEMO:
        result = executor.run(document, params=params, params_as_text=True)
        gate = result.values.get("gate", {})
        branch = "none"
        if "high" in gate:
            branch = "high"
        elif "low" in gate:
            branch = "low"
        print(f"prompt: {params['prompt']}", file=stream)
        print(f"  score {params['score']} -> {branch} branch", file=stream)
        if result.status != "succeeded":
            print(f"  run {result.status}: {result.error or [str(problem) for problem in result.problems]}", file=stream)
            status = 1
            continue
        print(f"  prompt used: {result.outputs['show']['text'][0]}", file=stream)
    return status
