"""Exception hierarchy shared by the engine, the CLI and the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class NodegraphError(Exception):
    """Base class for every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is, a stable code and an actionable sentence.

    `node` and `input` are None for problems with the document as a whole.
    """

    code: str
    message: str
    node: str | None = None
    input: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = ""
        if self.node is not None:
            where = f"{self.node}.{self.input}: " if self.input else f"{self.node}: "
        return f"{where}{self.message} [{self.code}]"


class WorkflowInvalid(NodegraphError):
    """Raised when a workflow document cannot be loaded or fails validation."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class NodeFailed(NodegraphError):
    """Raised inside the executor when a node's code raises.

    Attributes:
        node: the node id.
        node_type: the node's type id.
        error_type: the class name of the original exception.
    """

    def __init__(self, node: str, node_type: str, error: BaseException):
        self.node = node
        self.node_type = node_type
        self.error_type = type(error).__name__
        self.error_message = str(error) or self.error_type
        super().__init__(f"node {node!r} ({node_type}) failed: {self.error_message}")


class NodeError(NodegraphError):
    """Raised by node code for bad input it detected itself.

    Its message names the input and the value and states what to do. The executor
    reports it without a traceback.
    """


class Interrupted(NodegraphError):
    """Raised when a run is interrupted; checked between nodes and between sampler steps."""


class ModelUnavailable(NodegraphError):
    """Raised when a model cannot be found or loaded; the message explains how to supply it."""
