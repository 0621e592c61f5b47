"""The main job: run the prompt-to-image workflow on two prompts and print what happened."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from nodegraph import document as workflow_document
from nodegraph.resources import workflows_dir

# A short vague prompt, which the judge sends to the LLM rewrite, and a detailed one that
# goes straight to the image model. Both stay inside the embedded image model's vocabulary.
DEMO_PROMPTS = (
    "a ball",
    "a red ball on green grass under a blue sky, bright daylight, centered",
)


def run_demo(output_dir: Path, prompts: tuple[str, ...] = DEMO_PROMPTS, params: dict[str, Any] | None = None,
             stream: TextIO = sys.stdout) -> int:
    """Run prompt-to-image once per prompt and print score, reasons, branch, prompt used and image path.

    Returns:
        0 when every run succeeded, 1 otherwise.
    """
    from nodegraph.executor import Executor
    from nodegraph.models import ModelManager
    from nodegraph.registry import default_registry

    registry = default_registry()
    document = workflow_document.load_path(workflows_dir() / "prompt-to-image.json")
    executor = Executor(registry, models=ModelManager(), output_dir=output_dir)
    status = 0
    for prompt in prompts:
        warnings: list[str] = []

        def on_event(event: dict) -> None:
            if event["event"] == "node.warning":
                warnings.append(f"{event['node']}: {event['message']}")
                print(f"  … {event['node']}: {event['message']}", file=sys.stderr, flush=True)

        print(f"prompt: {prompt}", file=stream, flush=True)
        result = executor.run(document, params={**(params or {}), "prompt": prompt}, on_event=on_event)
        if result.status != "succeeded":
            status = 1
            print(f"  run {result.status}: {_failure(result)}", file=stream)
            continue
        _print_run(result, document, warnings, stream)
    return status


def _print_run(result, document: dict, warnings: list[str], stream: TextIO) -> None:
    score = float(result.values["quality"]["score"])
    threshold = document["nodes"]["gate"]["inputs"]["threshold"]
    branch = "high" if "high" in result.values["gate"] else "low"
    print(f"  quality score: {score:.2f} (threshold {threshold})", file=stream)
    for reason in result.values["quality"]["reasons"].splitlines():
        print(f"    - {reason}", file=stream)
    if branch == "high":
        print("  branch: high, so the prompt goes straight to the image model", file=stream)
    else:
        rewrite = result.values.get("rewrite", {})
        if rewrite.get("ok"):
            print("  branch: low, so the LLM rewrote the prompt", file=stream)
        else:
            print("  branch: low, but the LLM's rewrites failed their checks, so the prompt was kept", file=stream)
    print(f"  prompt used: {result.outputs['show_prompt']['text'][0]}", file=stream)
    for image in result.outputs.get("save", {}).get("images", []):
        print(f"  image: {image['path']}", file=stream)


def _failure(result) -> str:
    if result.error:
        return f"node {result.error['node']} ({result.error['type']}) failed: {result.error['message']}"
    return "; ".join(str(problem) for problem in result.problems)
