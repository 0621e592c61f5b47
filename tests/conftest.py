"""Shared fixtures: a registry with the built-in nodes and test nodes, an executor on temporary folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from nodegraph.registry import builtin_package  # noqa: E402

builtin_package()

REPO = Path(__file__).resolve().parent.parent
# The project's shared test inputs sit beside the repository in CI; a plain clone uses the
# copy in tests/cases, which `diff -r ../shared/cases tests/cases` keeps honest.
_SHARED_CASES = REPO.parent / "shared" / "cases"
CASES = _SHARED_CASES if _SHARED_CASES.is_dir() else REPO / "tests" / "cases"


@pytest.fixture(autouse=True)
def _isolated_cache_dir(tmp_path_factory, monkeypatch):
    # Keep logs and model caches of tests out of the user's home, unless the caller has
    # set NODEGRAPH_CACHE_DIR to share a cache of fetched models.
    if "NODEGRAPH_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("NODEGRAPH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nodegraph-cache"))


PACKS = Path(__file__).resolve().parent / "packs"


@pytest.fixture
def registry():
    from nodegraph.registry import default_registry

    return default_registry(nodes_dirs=[PACKS], entry_point_packs=False)


@pytest.fixture
def calls(registry):
    """The call counter of the test node pack, reset for each test."""
    import sys

    counter = sys.modules["nodegraph_pack_counting"].CALLS
    counter.clear()
    return counter


@pytest.fixture
def executor(registry, tmp_path):
    from nodegraph.executor import Executor

    return Executor(registry, output_dir=tmp_path / "output", input_dir=tmp_path / "input", temp_dir=tmp_path / "temp")


class EventLog(list):
    """Events collected from a run, with helpers to find them."""

    def __call__(self, event: dict[str, Any]) -> None:
        self.append(event)

    def names(self, node: str) -> list[str]:
        return [event["event"] for event in self if event.get("node") == node]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self if event["event"] == name]


@pytest.fixture
def events():
    return EventLog()


def workflow(nodes: dict, **extra: Any) -> dict:
    """Build a workflow document from a nodes mapping."""
    return {"format": "nodegraph/workflow", "version": 1, "name": "test", "nodes": nodes, **extra}


def link(node: str, output: str) -> dict:
    return {"from": [node, output]}
