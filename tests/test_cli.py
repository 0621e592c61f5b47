"""The command line: exit codes, the JSON-lines event stream, params, batches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

PACKS = REPO / "tests" / "packs"
EXAMPLE = REPO / "workflows" / "text-branching.json"


def nodegraph(*args: str, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nodegraph", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=cwd, **kwargs)


def write(path, document) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_run_example_shows_branch_taken(tmp_path):
    completed = nodegraph("run", str(EXAMPLE), "--events", "-", "--out", str(tmp_path))

    assert completed.returncode == 0, completed.stderr
    events = events_of(completed.stdout)
    assert events[0]["event"] == "run.started"
    assert events[-1]["event"] == "run.succeeded"
    finished = {event["node"]: event for event in events if event["event"] == "node.finished"}
    skipped = {event["node"]: event for event in events if event["event"] == "node.skipped"}
    assert finished["gate"]["outputs"] == {"high": "a red ball on green grass"}
    assert skipped["improve"]["reason"] == "inactive_branch"
    assert finished["show"]["display"] == {"text": ["a red ball on green grass"]}
    for event in events:
        assert {"event", "run", "time"} <= set(event)


def test_run_low_branch_with_set(tmp_path):
    completed = nodegraph("run", str(EXAMPLE), "--set", "score=0.3", "--set", "prompt=a blue box", "--out", str(tmp_path))

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "[prompt used] a blue box, under a blue sky, bright daylight, centered\n"
    assert "succeeded: 7 executed" in completed.stderr


def test_set_node_input_directly(tmp_path):
    completed = nodegraph("run", str(EXAMPLE), "--set", "gate.threshold=0.9", "--out", str(tmp_path))
    assert completed.returncode == 0
    assert "under a blue sky" in completed.stdout


def test_string_param_taken_as_is(tmp_path):
    completed = nodegraph("run", str(EXAMPLE), "--set", "prompt=0.5", "--out", str(tmp_path))
    assert completed.stdout == "[prompt used] 0.5\n"


@pytest.mark.parametrize("args, message", [
    (["--set", "score=high"], "param 'score' (score.value, FLOAT): 'high' is not a number"),
    (["--set", "nope=1"], "unknown param 'nope'; this workflow's params are: prompt, score, threshold (or use node.input)"),
    (["--set", "novalue"], "--set expects NAME=VALUE, got 'novalue'"),
    (["--set", "threshold=2"], "input 'threshold' of QualityBranch is 2.0, above the maximum 1.0"),
    (["--target", "ghost"], "target node 'ghost' is not in the workflow"),
])
def test_bad_command_line_exits_2(tmp_path, args, message):
    completed = nodegraph("run", str(EXAMPLE), *args, "--out", str(tmp_path))
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_unknown_option_exits_2():
    assert nodegraph("run", str(EXAMPLE), "--frobnicate").returncode == 2


def test_missing_file_exits_2(tmp_path):
    completed = nodegraph("run", str(tmp_path / "missing.json"))
    assert completed.returncode == 2
    assert "not found" in completed.stderr


def test_shipped_workflow_by_name_from_other_folder(tmp_path):
    completed = nodegraph("run", "text-branching", "--out", str(tmp_path), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "[prompt used] a red ball on green grass\n"


def test_failing_node_exits_1_with_message(tmp_path):
    document = {"format": "nodegraph/workflow", "version": 1, "nodes": {
        "f": {"type": "TestFail", "inputs": {"text": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": {"from": ["f", "text"]}}},
    }}
    completed = nodegraph("--nodes-dir", str(PACKS), "run", write(tmp_path / "wf.json", document), "--events", "-")

    assert completed.returncode == 1
    assert "node f (TestFail) failed: division by zero" in completed.stderr
    assert "Traceback" not in completed.stderr
    failed = [event for event in events_of(completed.stdout) if event["event"] == "node.failed"]
    assert failed[0]["message"] == "division by zero"
    assert failed[0]["error_type"] == "ZeroDivisionError"
    assert events_of(completed.stdout)[-1]["event"] == "run.failed"


def test_invalid_workflow_emits_run_invalid_event(tmp_path):
    document = {"format": "nodegraph/workflow", "version": 1, "nodes": {"show": {"type": "ShowText", "inputs": {}}}}
    completed = nodegraph("run", write(tmp_path / "wf.json", document), "--events", "-")
    assert completed.returncode == 2
    (event,) = events_of(completed.stdout)
    assert event["event"] == "run.invalid"
    assert event["errors"][0]["code"] == "missing_input"


def test_events_to_file(tmp_path):
    events_file = tmp_path / "events.jsonl"
    completed = nodegraph("run", str(EXAMPLE), "--events", str(events_file), "--out", str(tmp_path))
    assert completed.returncode == 0
    assert events_of(events_file.read_text())[-1]["event"] == "run.succeeded"


def test_seed_random_draws_and_prints(tmp_path):
    document = {"format": "nodegraph/workflow", "version": 1, "nodes": {
        "seed": {"type": "Seed", "inputs": {"value": 1}},
        "show": {"type": "ShowText", "inputs": {"text": {"from": ["seed", "value"]}}},
    }, "params": {"seed": ["seed", "value"]}}
    path = write(tmp_path / "wf.json", document)
    first = nodegraph("run", path, "--set", "seed=random")
    second = nodegraph("run", path, "--set", "seed=random")

    assert first.returncode == 0, first.stderr
    drawn = [line for line in first.stderr.splitlines() if line.startswith("seed = ")]
    assert len(drawn) == 1
    value = drawn[0].split()[2]
    assert first.stdout == f"[show] {value}\n"
    assert first.stdout != second.stdout


def test_batch_runs_each_line_and_summarizes(tmp_path):
    batch = tmp_path / "params.jsonl"
    batch.write_text('{"score": 0.9}\n{"score": 0.1, "prompt": "a star"}\n{"colour": "red"}\nnot json\n', encoding="utf-8")
    completed = nodegraph("run", str(EXAMPLE), "--batch", str(batch), "--out", str(tmp_path))

    assert completed.returncode == 1
    assert "[prompt used] a red ball on green grass" in completed.stdout
    assert "[prompt used] a star, under a blue sky, bright daylight, centered" in completed.stdout
    assert "unknown param 'colour'" in completed.stderr
    assert "batch line 4: not valid JSON" in completed.stderr
    assert "batch: 2 of 4 runs succeeded; line 3 invalid, line 4 invalid" in completed.stderr


def test_batch_all_good_exits_0(tmp_path):
    batch = tmp_path / "params.jsonl"
    batch.write_text('{"score": 0.9}\n{"score": 0.9}\n', encoding="utf-8")
    completed = nodegraph("run", str(EXAMPLE), "--batch", str(batch), "--events", "-")

    assert completed.returncode == 0
    statuses = [[event["event"] for event in events_of(completed.stdout) if event.get("node") == "gate"]]
    assert statuses == [["node.started", "node.finished", "node.cached"]]


def test_interrupt_exits_130(tmp_path):
    document = {"format": "nodegraph/workflow", "version": 1, "nodes": {
        "w": {"type": "TestWait", "inputs": {"text": "x"}},
        "show": {"type": "ShowText", "inputs": {"text": {"from": ["w", "text"]}}},
    }}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "nodegraph", "--nodes-dir", str(PACKS), "run",
                                write(tmp_path / "wf.json", document), "--events", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stdout:
        if '"node.progress"' in line:
            break
    process.send_signal(signal.SIGINT)
    # Read through the same text wrapper: communicate() would skip what it has buffered.
    stdout = process.stdout.read()
    stderr = process.stderr.read()
    process.wait(timeout=60)

    assert process.returncode == 130
    assert '"run.interrupted"' in stdout
    assert "Traceback" not in stderr


def test_validate_valid_workflow():
    completed = nodegraph("validate", str(EXAMPLE))
    assert completed.returncode == 0
    assert completed.stdout == f"{EXAMPLE}: valid (7 nodes)\n"


def test_nodes_lists_catalog():
    completed = nodegraph("nodes", "--json")
    catalog = json.loads(completed.stdout)
    assert {"Text", "Int", "Float", "Boolean", "Seed", "TextConcat", "TextTemplate", "ShowText",
            "QualityBranch", "Merge", "Switch"} <= set(catalog)
    branch = catalog["QualityBranch"]
    assert [item["name"] for item in branch["outputs"]] == ["high", "low"]
    assert branch["inputs"][2] == {"name": "threshold", "type": "FLOAT", "required": True, "default": 0.6, "min": 0.0,
                                   "max": 1.0, "step": 0.01, "widget": "slider",
                                   "description": "Scores at or above this take the high branch.", "literal": True}
    text = nodegraph("nodes").stdout
    assert "TextConcat(first: STRING, second: STRING, separator: STRING?) -> text: STRING" in text


def test_schema_prints_json_schema():
    schema = json.loads(nodegraph("schema").stdout)
    assert schema["properties"]["format"] == {"const": "nodegraph/workflow"}


def test_help_does_not_import_torch():
    code = "import sys; from nodegraph.cli import main; import contextlib, io\n" \
           "with contextlib.redirect_stdout(io.StringIO()):\n    main(['nodes'])\n" \
           "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert completed.stdout.strip().splitlines()[-1] == "[]", completed.stderr
