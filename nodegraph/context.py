"""The context object a node's `run` receives: its only way to reach services."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from nodegraph.errors import Interrupted

if TYPE_CHECKING:
    from nodegraph.models import ModelManager


@dataclass
class RunServices:
    """Services shared by every node of one run: folders, the model manager, the event sink."""

    run_id: str
    models: "ModelManager"
    output_dir: Path
    input_dir: Path
    temp_dir: Path
    interrupt: threading.Event
    emit: Callable[[dict], None]
    workflow: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    # Callbacks a node registers to run once every consumer of its outputs has finished.
    release_callbacks: dict[str, list[Callable[[], None]]] = field(default_factory=dict)


class NodeContext:
    """Services for one node while it runs.

    Attributes:
        run_id: the id of the run.
        node_id: the id of the node in the workflow.
        node_type: the node's type id.
        models: the shared model manager.
        output_dir, input_dir, temp_dir: folders for saved outputs, loadable inputs and previews.
        workflow: the workflow document being run (for metadata such as PNG text chunks).
        params: the param values the run was given.
        log: a logger that adds the run and node ids.
    """

    def __init__(self, services: RunServices, node_id: str, node_type: str, emit_event: Callable[..., None]):
        self._services = services
        self._emit_event = emit_event
        self.run_id = services.run_id
        self.node_id = node_id
        self.node_type = node_type
        self.models = services.models
        self.output_dir = services.output_dir
        self.input_dir = services.input_dir
        self.temp_dir = services.temp_dir
        self.workflow = services.workflow
        self.params = services.params
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"nodegraph.node.{node_type}"), {"run": services.run_id, "node": node_id}
        )

    def progress(self, step: int, total: int, preview: Any = None) -> None:
        """Report progress and check for interruption.

        Args:
            step: steps done so far, 0..total.
            total: the number of steps.
            preview: an optional small PIL image of the work in progress.
        """
        self.check_interrupted()
        self._emit_event("node.progress", step=step, total=total, preview=preview)

    def check_interrupted(self) -> None:
        """Raise `Interrupted` when the run has been asked to stop."""
        if self._services.interrupt.is_set():
            raise Interrupted(f"run {self.run_id} was interrupted")

    @property
    def interrupted(self) -> bool:
        return self._services.interrupt.is_set()

    def warn(self, message: str) -> None:
        """Send a `node.warning` event and log the warning."""
        self.log.warning("%s", message)
        self._emit_event("node.warning", message=message)

    def release_after_consumers(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every consumer of this node's outputs in this run has ended.

        Used by loaders to free memory early; it is also called when the run ends.
        """
        self._services.release_callbacks.setdefault(self.node_id, []).append(callback)
