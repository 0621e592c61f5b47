"""The README's first command, run as written from a scratch clone, and the main job on the embedded models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def readme_command(heading: str) -> str:
    """Return the shell command in the first ```sh block after a line of the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(re.escape(heading) + r"\s*```sh\n(.+?)\n```", text, re.DOTALL)
    assert match, f"the README has no sh block after {heading!r}"
    return match.group(1).strip()


def test_readme_commands_are_one_line_each():
    assert readme_command("Run the main job:").startswith("python3 -m venv .venv && ")
    assert readme_command("Run the whole test suite:") == "bash tests/run.sh"
    assert (REPO / ".ci" / "run").read_text(encoding="utf-8").count("bash tests/run.sh") == 1


def test_readme_main_job_from_scratch_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)

    # Reuse this environment's packages so the install step only adds nodegraph itself:
    # a venv made beforehand imports them through a .pth file, and the README's own
    # `python3 -m venv .venv` keeps what is there.
    subprocess.run([sys.executable, "-m", "venv", str(clone / ".venv")], check=True, timeout=300)
    purelib = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "reuse-test-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(["bash", "-c", readme_command("Run the main job:")], cwd=clone, env=env,
                               capture_output=True, text=True, timeout=1800)

    assert completed.returncode == 0, completed.stdout + completed.stderr[-4000:]
    out = completed.stdout
    assert out.count("quality score: ") == 2
    assert "prompt: a ball\n" in out
    assert "  branch: low" in out
    assert "  branch: high, so the prompt goes straight to the image model" in out
    images = re.findall(r"  image: (\S+)", out)
    assert len(images) == 2
    for image in images:
        assert Path(image).is_file()
        assert Path(image).parent == clone / "output"
    assert "Traceback" not in completed.stderr
