"""Every bad workflow in the shared cases is rejected by `validate` and `run` with exit 2 and a useful message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import CASES, REPO

BAD = CASES / "bad"

# file -> texts the message must contain
EXPECTED = {
    "cycle.json": ["cycle", "a → b → a"],
    "unknown-type.json": ["'Txet'", "did you mean 'Text'"],
    "missing-source.json": ["'gone'", "show.text"],
    "type-mismatch.json": ["STRING", "INT", "join.first", "n.value"],
    "wrong-literal.json": ['"512px"', "'value'", "integer (INT)", "n.value"],
    "truncated.json": ["not valid JSON", "(line 1, column"],
    "future-version.json": ["version 99", "versions up to 1"],
    "missing-param-target.json": ["param 'prompt'", "'q'"],
    "deep-nesting.json": ["invalid", "nested deeper"],
}


def nodegraph(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nodegraph", *args], capture_output=True, text=True, env=env, timeout=120)


def test_every_case_is_listed():
    assert sorted(path.name for path in BAD.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_case_rejected(tmp_path, name, command):
    extra = ["--out", str(tmp_path)] if command == "run" else []
    completed = nodegraph(command, str(BAD / name), *extra)

    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    for text in EXPECTED[name]:
        assert text in completed.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_case_problems_as_json(name):
    import json

    completed = nodegraph("validate", "--json", str(BAD / name))
    assert completed.returncode == 2
    errors = json.loads(completed.stdout)["errors"]
    assert errors
    for error in errors:
        assert set(error) == {"node", "input", "code", "message"}


def test_case_copy_matches_shared_cases():
    import filecmp

    shared = REPO.parent / "shared" / "cases"
    if not shared.is_dir():
        pytest.skip("no shared cases beside the repository; the tests use the copy in tests/cases")
    comparison = filecmp.dircmp(shared, REPO / "tests" / "cases")
    assert comparison.left_only == []
    assert comparison.right_only == []
    assert comparison.diff_files == []
    assert filecmp.dircmp(shared / "bad", REPO / "tests" / "cases" / "bad").diff_files == []
