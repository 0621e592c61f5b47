"""The run queue: runs submitted to the server, executed one at a time by a worker thread.

Every state change is written to the run store before the matching event is published,
so a client that reads a run after seeing its event finds the state the event announced.
A run that was running when the server stopped is marked interrupted on the next start,
not re-queued. If the run itself took the process down (out of memory, a crashing native
library), re-queueing would take it down again on every restart, and a re-run repeats
its side effects. Queued runs are kept and run in their original order.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from nodegraph.events import to_json
from nodegraph.store import FAILED, INVALID, QUEUED, RUNNING, RunRecord, RunStore

if TYPE_CHECKING:
    from nodegraph.executor import Executor

logger = logging.getLogger(__name__)

# Publishes one serialized event: (run id or None, JSON text). Called from any thread.
Publisher = Callable[[str | None, str], None]

SERVER_STOPPED = "the server stopped while this run was running; submit it again to re-run it"
FILE_KINDS = ("input", "output", "temp")


class QueueFull(Exception):
    """Raised when a run is submitted while max_queued runs wait in the queue."""


@dataclass
class CancelResult:
    """The outcome of DELETE on a run: removed (was queued), interrupting (was running) or deleted (was finished)."""

    action: str
    deleted_files: int = 0


def file_url(kind: str, filename: str) -> str:
    return f"/api/files/{kind}/{quote(filename)}"


def with_file_urls(display: Any) -> Any:
    """Return an output node's display with a `url` on each image that lives in a served folder."""
    if not isinstance(display, dict) or not isinstance(display.get("images"), list):
        return display
    images = []
    for image in display["images"]:
        if isinstance(image, dict) and image.get("kind") in FILE_KINDS and isinstance(image.get("filename"), str):
            image = {**image, "url": file_url(image["kind"], image["filename"])}
        images.append(image)
    return {**display, "images": images}


class RunQueue:
    """Queued runs in memory, backed by the store, and the worker thread that executes them."""

    def __init__(self, store: RunStore, make_executor: Callable[[], "Executor"], *, max_queued: int = 1000, keep_runs: int | None = None,
                 folders: dict[str, Path] | None = None, publish: Publisher | None = None):
        self.store = store
        self._make_executor = make_executor
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self.max_queued = max_queued
        self.keep_runs = keep_runs
        self.folders = folders or {}
        self.publish: Publisher = publish or (lambda run_id, text: None)
        self._pending: deque[str] = deque()
        self._running: str | None = None
        self._interrupts: dict[str, threading.Event] = {}
        self._condition = threading.Condition()
        self._stopping = False
        self._worker: threading.Thread | None = None

    @property
    def executor(self) -> "Executor":
        """The executor, made on first use: importing it pulls in networkx, which the first page does not need."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = self._make_executor()
            return self._executor

    # Lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Recover the stored queue (runs left running become interrupted), then start the worker."""
        for run_id in self.store.interrupt_unfinished(SERVER_STOPPED):
            logger.warning("run %s was running when the server stopped; marked interrupted", run_id)
        queued = self.store.queued_ids()
        with self._condition:
            self._pending.extend(queued)
        if queued:
            logger.info("resuming %d queued runs", len(queued))
        self._worker = threading.Thread(target=self._work, name="nodegraph-queue", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt the running run, stop the worker and wait for it; queued runs stay queued in the store."""
        with self._condition:
            self._stopping = True
            if self._running is not None:
                self._interrupts[self._running].set()
            self._condition.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)

    # Submitting and cancelling ---------------------------------------------

    def submit(self, document: dict, params: dict[str, Any], targets: list[str] | None) -> tuple[RunRecord, int]:
        """Store a validated run as queued and wake the worker; return the record and its position.

        Raises:
            QueueFull: max_queued runs are already waiting.
        """
        record = RunRecord(id=uuid.uuid4().hex[:16], status=QUEUED, created=time.time(), workflow=document,
                           params=params, targets=targets, name=str(document.get("name") or ""))
        with self._condition:
            if len(self._pending) >= self.max_queued:
                raise QueueFull(f"the queue is full ({self.max_queued} runs waiting); retry when some have finished")
            self.store.add(record)
            self._pending.append(record.id)
            self._interrupts[record.id] = threading.Event()
            position = len(self._pending) - 1
            # Published under the lock, so run.queued goes out before the worker can announce the start.
            self._send({"event": "run.queued", "run": record.id, "time": record.created, "position": position}, record.id)
            self._send_queue_status()
            self._condition.notify_all()
        logger.info("run %s queued at position %d (%d nodes)", record.id, position, len(document.get("nodes", {})))
        return record, position

    def position(self, run_id: str) -> int | None:
        """Return how many queued runs are ahead of this one, or None when it is not queued."""
        with self._condition:
            try:
                return self._pending.index(run_id)
            except ValueError:
                return None

    def snapshot(self) -> dict[str, Any]:
        with self._condition:
            return {"running": self._running, "queued": list(self._pending)}

    def cancel(self, run_id: str) -> CancelResult | None:
        """Remove a queued run, interrupt a running one, or delete a finished one with its output files.

        Returns None when no such run exists.
        """
        with self._condition:
            if run_id in self._pending:
                self._pending.remove(run_id)
                self._interrupts.pop(run_id, None)
                self.store.delete(run_id)
                logger.info("run %s removed from the queue", run_id)
                removed = True
            elif run_id == self._running:
                self._interrupts[run_id].set()
                logger.info("run %s: interruption requested", run_id)
                return CancelResult("interrupting")
            else:
                removed = False
        if removed:
            self._send_queue_status()
            return CancelResult("removed")
        record = self.store.get(run_id, with_nodes=False)
        if record is None:
            return None
        if record.status in (QUEUED, RUNNING):
            # A stored run that this queue does not hold: another process owns the database.
            return CancelResult("not_owned")
        deleted = self.delete_finished(record)
        return CancelResult("deleted", deleted)

    def delete_finished(self, record: RunRecord) -> int:
        """Delete a finished run from the store, with the output files no other run shows; return the files deleted."""
        self.store.delete(record.id)
        deleted = 0
        for display in record.outputs.values():
            for image in (display.get("images", []) if isinstance(display, dict) else []):
                path = self._own_file(image)
                if path is None or self.store.file_referenced(image["kind"], image["filename"]):
                    continue
                try:
                    path.unlink()
                    deleted += 1
                except FileNotFoundError:
                    pass
                except OSError as error:
                    logger.warning("run %s: cannot delete output file %s: %s", record.id, path, error)
        if deleted and self._executor is not None:
            # A cached output node's display may name a deleted file, and a cache hit would then report a
            # file that is gone. OutputCache cannot drop single entries, so the whole cache goes.
            self._executor.cache.clear()
            logger.info("output cache cleared because run %s's output files were deleted", record.id)
        logger.info("run %s deleted from the history with %d output files", record.id, deleted)
        return deleted

    def _own_file(self, image: Any) -> Path | None:
        # Only files inside the output and temp folders are deleted, never inputs or anything outside.
        if not isinstance(image, dict) or image.get("kind") not in ("output", "temp") or not isinstance(image.get("filename"), str):
            return None
        folder = self.folders.get(image["kind"])
        if folder is None:
            return None
        root = folder.resolve()
        path = (root / image["filename"]).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path

    # The worker ------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                run_id = self._pending.popleft()
                self._running = run_id
                interrupt = self._interrupts.setdefault(run_id, threading.Event())
            try:
                self._execute(run_id, interrupt)
            except Exception:  # the worker must survive any run
                logger.exception("run %s: the queue failed to run it", run_id)
                error = {"message": "internal error while running; see the server log"}
                self._finish(run_id, FAILED, error=error)
                self._send({"event": "run.failed", "run": run_id, "time": time.time(), "error": error, "outputs": {}}, run_id)
            finally:
                with self._condition:
                    self._running = None
                    self._interrupts.pop(run_id, None)
                self._send_queue_status()
                self._prune()

    def _execute(self, run_id: str, interrupt: threading.Event) -> None:
        record = self.store.get(run_id, with_nodes=False)
        if record is None:
            return
        self.store.mark_started(run_id)
        self._send_queue_status()

        from nodegraph.executor import prepare

        # Validate again: the node library may have changed since the run was queued (a restart).
        document, problems = prepare(record.workflow, self.executor.registry, None, targets=record.targets)
        if problems:
            errors = [problem.to_json() for problem in problems]
            self._finish(run_id, INVALID, problems=errors)
            self._send({"event": "run.invalid", "run": run_id, "time": time.time(), "errors": errors}, run_id)
            return
        self.executor.run(document, params=record.params, targets=record.targets, run_id=run_id,
                          on_event=self._on_event, interrupt=interrupt, validated=True)

    def _finish(self, run_id: str, status: str, **fields: Any) -> None:
        self.store.mark_finished(run_id, status, **fields)

    def _on_event(self, event: dict) -> None:
        # Called by the executor from the worker thread; a failure here must not fail the run.
        try:
            event = self._record(event)
            self._send(event, event.get("run"))
        except Exception:
            logger.exception("run %s: cannot record or publish event %s", event.get("run"), event.get("event"))

    def _record(self, event: dict) -> dict:
        """Write the state change an event announces; return the event with file URLs added."""
        name, run_id = event["event"], event["run"]
        if name in ("node.finished", "node.cached"):
            status = "executed" if name == "node.finished" else "cached"
            self.store.set_node_state(run_id, event["node"], status, seconds=event.get("seconds"))
            if "display" in event:
                event = {**event, "display": with_file_urls(event["display"])}
                self.store.set_output(run_id, event["node"], event["display"])
        elif name == "node.started":
            self.store.set_node_state(run_id, event["node"], "running")
        elif name == "node.skipped":
            self.store.set_node_state(run_id, event["node"], "skipped", reason=event.get("reason"))
        elif name == "node.failed":
            self.store.set_node_state(run_id, event["node"], "failed")
        elif name in ("run.succeeded", "run.failed", "run.interrupted"):
            outputs = {node_id: with_file_urls(display) for node_id, display in event.get("outputs", {}).items()}
            event = {**event, "outputs": outputs}
            self.store.mark_finished(run_id, name[4:], outputs=outputs, error=event.get("error"), when=event.get("time"))
        return event

    def _send(self, event: dict, run_id: str | None) -> None:
        try:
            self.publish(run_id, to_json(event))
        except Exception:
            logger.exception("cannot publish event %s of run %s", event.get("event"), run_id)

    def _send_queue_status(self) -> None:
        with self._condition:
            status = {"event": "queue.status", "run": None, "time": time.time(), "running": self._running,
                      "queued": len(self._pending)}
        self._send(status, None)

    def _prune(self) -> None:
        """Delete finished runs beyond the retention setting, oldest first, with their output files."""
        if self.keep_runs is None:
            return
        for run_id in self.store.finished_ids_beyond(self.keep_runs):
            record = self.store.get(run_id, with_nodes=False)
            if record is not None:
                logger.info("run %s pruned: the history keeps the newest %d finished runs", run_id, self.keep_runs)
                self.delete_finished(record)

