"""The wheel: it ships the node library, the editor and the examples inside the package, and works outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def without_pythonpath() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=600)
    (path,) = out.glob("nodegraph-*.whl")
    return path


def test_wheel_has_no_generic_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}

    assert top_level == {"nodegraph", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert "nodegraph/nodes/text.py" in names
    assert "nodegraph/nodes/control.py" in names
    assert "nodegraph/web/index.html" in names
    assert "nodegraph/workflows/text-branching.json" in names
    assert "nodegraph/workflow.schema.json" in names
    assert "nodegraph/embedded/weights/model.safetensors" in names
    assert "nodegraph/embedded/weights/training-state.safetensors" not in names


def test_installed_wheel_runs_outside_repo(wheel, tmp_path):
    # A scratch venv that can import this environment's dependencies but not the repository.
    scratch = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(scratch)
    purelib = Path(subprocess.run([str(scratch / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(scratch / "bin" / "python"), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300, env=without_pythonpath())
    # Written after the install, so pip does not mistake this environment's packages for the scratch one's.
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    env = without_pythonpath()
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    completed = subprocess.run([str(scratch / "bin" / "nodegraph"), "run", "text-branching", "--set", "score=0.2"],
                               capture_output=True, text=True, cwd=workdir, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "[prompt used] a red ball on green grass, under a blue sky, bright daylight, centered\n"

    location = subprocess.run([str(scratch / "bin" / "python"), "-c", "import nodegraph.nodes.text as m; print(m.__file__)"],
                              capture_output=True, text=True, cwd=workdir, env=env).stdout
    assert location.startswith(str(scratch))
