"""The run store: runs, their workflow, params, status, node states, outputs and errors in SQLite.

The database lives in the server's data folder and is opened in WAL mode, so readers
(HTTP handlers) never wait for the writer (the queue's worker thread). Every change is
committed as it happens: a killed server loses at most the change being written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# Run statuses, as the events and the API spell them.
QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED, INVALID = "queued", "running", "succeeded", "failed", "interrupted", "invalid"
RUN_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED, INVALID)
FINISHED_STATUSES = (SUCCEEDED, FAILED, INTERRUPTED, INVALID)

# Node statuses in a run record: `executed` is the executor's word for a node that ran.
NODE_STATUSES = ("pending", "running", "executed", "cached", "skipped", "failed")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    workflow TEXT NOT NULL,
    params TEXT NOT NULL,
    targets TEXT,
    outputs TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    problems TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, seq);
CREATE TABLE IF NOT EXISTS node_states (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    seconds REAL,
    PRIMARY KEY (run_id, node_id)
);
"""


class StoreError(Exception):
    """Raised when the database cannot be opened or has a schema this version does not read."""


@dataclass
class RunRecord:
    """One run as stored: what was submitted and how it went."""

    id: str
    status: str
    created: float
    workflow: dict
    params: dict[str, Any] = field(default_factory=dict)
    targets: list[str] | None = None
    name: str = ""
    started: float | None = None
    finished: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    problems: list[dict] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return the record without workflow, node states and outputs, for run lists."""
        return {"id": self.id, "status": self.status, "name": self.name, "created": self.created,
                "started": self.started, "finished": self.finished, "error": self.error}


class RunStore:
    """SQLite-backed storage of runs; safe to call from several threads.

    One connection is shared behind a lock: SQLite serializes writers anyway, and the
    statements here are short.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a killed process; only a power loss may drop the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._check_schema()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open the run database {self.path}: {error}; move it aside to start with an empty history") from error
        self._lock = threading.RLock()

    def _check_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"it has schema version {version}, newer than this nodegraph's {SCHEMA_VERSION}")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Writing ---------------------------------------------------------------

    def add(self, record: RunRecord) -> None:
        """Insert a new run and one `pending` state for each node of its workflow."""
        nodes = record.workflow.get("nodes", {}) if isinstance(record.workflow, dict) else {}
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO runs (id, status, name, created, started, finished, workflow, params, targets, outputs, error, problems)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.status, record.name, record.created, record.started, record.finished,
                 _dump(record.workflow), _dump(record.params), _dump(record.targets), _dump(record.outputs),
                 _dump(record.error), _dump(record.problems)),
            )
            self._db.executemany("INSERT INTO node_states (run_id, node_id, status) VALUES (?, ?, 'pending')",
                                 [(record.id, node_id) for node_id in nodes])

    def mark_started(self, run_id: str, when: float | None = None) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET status = ?, started = ? WHERE id = ?", (RUNNING, when or time.time(), run_id))

    def mark_finished(self, run_id: str, status: str, *, outputs: dict | None = None, error: dict | None = None,
                      problems: list[dict] | None = None, nodes: dict[str, dict[str, Any]] | None = None,
                      when: float | None = None) -> None:
        """Record a run's end: status, outputs, error and the final state of every node, in one transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE runs SET status = ?, finished = ?, outputs = ?, error = ?, problems = ? WHERE id = ?",
                (status, when or time.time(), _dump(outputs or {}), _dump(error), _dump(problems or []), run_id),
            )
            if nodes:
                self._db.executemany(
                    "INSERT OR REPLACE INTO node_states (run_id, node_id, status, reason, seconds) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, node_id, state["status"], state.get("reason"), state.get("seconds"))
                     for node_id, state in nodes.items()],
                )

    def set_node_state(self, run_id: str, node_id: str, status: str, reason: str | None = None,
                       seconds: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO node_states (run_id, node_id, status, reason, seconds) VALUES (?, ?, ?, ?, ?)",
                (run_id, node_id, status, reason, seconds),
            )

    def set_output(self, run_id: str, node_id: str, display: Any) -> None:
        """Record one output node's display as soon as it is known, so a killed run keeps what it produced."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT outputs FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return
            outputs = json.loads(row[0])
            outputs[node_id] = display
            self._db.execute("UPDATE runs SET outputs = ? WHERE id = ?", (_dump(outputs), run_id))

    def delete(self, run_id: str) -> bool:
        """Delete a run and its node states; return whether it existed."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            return cursor.rowcount > 0

    def interrupt_unfinished(self, message: str) -> list[str]:
        """Mark every run left `running` by a stopped server as interrupted; return their ids.

        Their nodes still pending or running become skipped with the reason `server_stopped`.
        """
        with self._lock, self._db:
            self._db.execute("BEGIN")
            ids = [row[0] for row in self._db.execute("SELECT id FROM runs WHERE status = ?", (RUNNING,))]
            now = time.time()
            for run_id in ids:
                self._db.execute("UPDATE runs SET status = ?, finished = ?, error = ? WHERE id = ?",
                                 (INTERRUPTED, now, _dump({"message": message}), run_id))
                self._db.execute("UPDATE node_states SET status = 'skipped', reason = 'server_stopped'"
                                 " WHERE run_id = ? AND status IN ('pending', 'running')", (run_id,))
            return ids

    # Reading ---------------------------------------------------------------

    def get(self, run_id: str, with_nodes: bool = True) -> RunRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            record = _record(row)
            if with_nodes:
                for node_id, status, reason, seconds in self._db.execute(
                        "SELECT node_id, status, reason, seconds FROM node_states WHERE run_id = ?", (run_id,)):
                    state: dict[str, Any] = {"status": status, "seconds": seconds}
                    if reason is not None:
                        state["reason"] = reason
                    record.nodes[node_id] = state
            return record

    def status_of(self, run_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def list(self, statuses: Iterable[str] | None = None, limit: int = 50, offset: int = 0) -> tuple[list[RunRecord], int]:
        """Return runs newest first (without workflow and node states) and the total that match."""
        where, arguments = "", []
        statuses = list(statuses or [])
        if statuses:
            where = f"WHERE status IN ({', '.join('?' * len(statuses))})"
            arguments = statuses
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM runs {where}", arguments).fetchone()[0]
            rows = self._db.execute(
                f"SELECT id, status, name, created, started, finished, error FROM runs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                [*arguments, limit, offset],
            ).fetchall()
        records = [RunRecord(id=row[0], status=row[1], name=row[2], created=row[3], started=row[4], finished=row[5],
                             error=_load(row[6]), workflow={}) for row in rows]
        return records, total

    def file_referenced(self, kind: str, filename: str) -> bool:
        """Return whether any stored run's outputs show this file (cache hits share files between runs)."""
        with self._lock:
            for (outputs,) in self._db.execute("SELECT outputs FROM runs WHERE instr(outputs, ?) > 0",
                                               (json.dumps(filename, ensure_ascii=False),)):
                if _shows_file(json.loads(outputs), kind, filename):
                    return True
        return False

    def queued_ids(self) -> list[str]:
        """Return the ids of queued runs, oldest first (the order they run in)."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT id FROM runs WHERE status = ? ORDER BY seq", (QUEUED,))]

    def finished_ids_beyond(self, keep: int) -> list[str]:
        """Return the ids of finished runs older than the newest `keep` finished ones."""
        statuses = ", ".join(f"'{status}'" for status in FINISHED_STATUSES)
        with self._lock:
            return [row[0] for row in self._db.execute(
                f"SELECT id FROM runs WHERE status IN ({statuses}) ORDER BY seq DESC LIMIT -1 OFFSET ?", (keep,))]


_COLUMNS = "id, status, name, created, started, finished, workflow, params, targets, outputs, error, problems"


def _record(row: tuple) -> RunRecord:
    return RunRecord(
        id=row[0], status=row[1], name=row[2], created=row[3], started=row[4], finished=row[5],
        workflow=json.loads(row[6]), params=json.loads(row[7]), targets=_load(row[8]),
        outputs=json.loads(row[9]), error=_load(row[10]), problems=json.loads(row[11]),
    )


def _shows_file(outputs: dict, kind: str, filename: str) -> bool:
    for display in outputs.values():
        for image in (display.get("images", []) if isinstance(display, dict) else []):
            if isinstance(image, dict) and image.get("kind") == kind and image.get("filename") == filename:
                return True
    return False


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
