"""Node types for engine tests: they count their calls, fail on request or wait to be interrupted."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from nodegraph.errors import NodeError
from nodegraph.node import Input, Node, Output
from nodegraph.types import ANY, INT, STRING

CALLS: Counter[str] = Counter()


class Count(Node):
    """Pass text through and count the call under its `label`."""

    type_id = "TestCount"
    category = "test"
    description = "Pass text through; count calls by label."
    inputs = (Input("text", STRING, default=""), Input("label", STRING, default="count"))
    outputs = (Output("text", STRING),)

    def run(self, ctx, text: str, label: str) -> dict[str, Any]:
        CALLS[label] += 1
        return {"text": text}


class Fail(Node):
    """Raise on request: a NodeError (expected bad input) or a plain exception (a bug)."""

    type_id = "TestFail"
    category = "test"
    description = "Raise an error."
    inputs = (Input("text", STRING, default=""), Input("kind", STRING, default="bug", choices=("bug", "node_error")))
    outputs = (Output("text", STRING),)

    def run(self, ctx, text: str, kind: str) -> dict[str, Any]:
        if kind == "node_error":
            raise NodeError(f"input 'text' is {text!r}; give a longer text")
        raise ZeroDivisionError("division by zero")


class Wait(Node):
    """Signal that it started, then report progress until the run is interrupted."""

    type_id = "TestWait"
    category = "test"
    description = "Wait for interruption."
    inputs = (Input("text", STRING, default=""),)
    outputs = (Output("text", STRING),)
    started = threading.Event()

    def run(self, ctx, text: str) -> dict[str, Any]:
        Wait.started.set()
        for step in range(10_000):
            ctx.progress(step, 10_000)
            threading.Event().wait(0.005)
        return {"text": text}


class Sum(Node):
    """Add two integers (for type-mismatch and wiring tests)."""

    type_id = "TestSum"
    category = "test"
    description = "Add two integers."
    inputs = (Input("a", INT, default=0, min=-1000, max=1000), Input("b", INT, default=0))
    outputs = (Output("value", INT),)

    def run(self, ctx, a: int, b: int) -> dict[str, Any]:
        return {"value": a + b}


class Release(Node):
    """Register a release callback and record when it runs."""

    type_id = "TestRelease"
    category = "test"
    description = "Record when all consumers are done."
    inputs = (Input("text", STRING, default=""),)
    outputs = (Output("text", STRING),)
    released: list[str] = []

    def run(self, ctx, text: str) -> dict[str, Any]:
        ctx.release_after_consumers(lambda: Release.released.append(ctx.node_id))
        return {"text": text}


class Echo(Node):
    """Pass any value through (used to test bypass)."""

    type_id = "TestEcho"
    category = "test"
    description = "Pass any value through."
    inputs = (Input("value", ANY),)
    outputs = (Output("value", ANY),)

    def run(self, ctx, value: Any) -> dict[str, Any]:
        CALLS["echo"] += 1
        return {"value": value}


class Length(Node):
    """Count characters: its INT output has no INT input to pass through, so it cannot be bypassed."""

    type_id = "TestLength"
    category = "test"
    description = "Count the characters of a text."
    inputs = (Input("text", STRING, default=""),)
    outputs = (Output("length", INT),)

    def run(self, ctx, text: str) -> dict[str, Any]:
        return {"length": len(text)}


NODE_TYPES = (Count, Fail, Wait, Sum, Release, Echo, Length)
