"""Locate the folders shipped with the package: the editor (`web/`) and the example workflows."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """Return the folder `name` ("web" or "workflows") from the installed wheel or a source checkout."""
    installed = _PACKAGE / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def workflows_dir() -> Path:
    return shipped_dir("workflows")


def web_dir() -> Path:
    return shipped_dir("web")
