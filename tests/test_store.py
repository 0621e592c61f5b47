"""The SQLite run store: records, node states, listing, recovery after a stopped server."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import workflow
from nodegraph.store import RunRecord, RunStore, StoreError


def make_record(run_id: str, status: str = "queued", created: float = 1.0) -> RunRecord:
    document = workflow({"a": {"type": "Text", "inputs": {"text": "x"}}, "b": {"type": "ShowText", "inputs": {}}})
    return RunRecord(id=run_id, status=status, created=created, workflow=document, params={"text": "x"}, name="test")


@pytest.fixture
def store(tmp_path):
    opened = RunStore(tmp_path / "runs.sqlite3")
    yield opened
    opened.close()


def test_store_uses_wal(store):
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_and_get(store):
    store.add(make_record("r1"))
    record = store.get("r1")
    assert record.status == "queued"
    assert record.params == {"text": "x"}
    assert record.workflow["nodes"]["a"]["inputs"] == {"text": "x"}
    assert record.nodes == {"a": {"status": "pending", "seconds": None}, "b": {"status": "pending", "seconds": None}}
    assert store.get("missing") is None


def test_node_states_and_finish(store):
    store.add(make_record("r1"))
    store.mark_started("r1", when=5.0)
    store.set_node_state("r1", "a", "running")
    store.set_node_state("r1", "a", "executed", seconds=0.5)
    store.set_output("r1", "b", {"text": ["x"]})
    assert store.get("r1").status == "running"
    store.mark_finished("r1", "succeeded", outputs={"b": {"text": ["x"]}},
                        nodes={"b": {"status": "skipped", "reason": "not_needed"}}, when=6.0)
    record = store.get("r1")
    assert record.status == "succeeded"
    assert (record.started, record.finished) == (5.0, 6.0)
    assert record.nodes["a"] == {"status": "executed", "seconds": 0.5}
    assert record.nodes["b"] == {"status": "skipped", "seconds": None, "reason": "not_needed"}
    assert record.outputs == {"b": {"text": ["x"]}}


def test_outputs_recorded_one_by_one(store):
    store.add(make_record("r1"))
    store.set_output("r1", "b", {"text": ["one"]})
    store.set_output("r1", "c", {"text": ["two"]})
    assert store.get("r1").outputs == {"b": {"text": ["one"]}, "c": {"text": ["two"]}}


def test_list_newest_first(store):
    for index in range(5):
        store.add(make_record(f"r{index}", created=float(index)))
    store.mark_finished("r1", "failed", error={"message": "boom"})
    records, total = store.list(limit=2)
    assert [record.id for record in records] == ["r4", "r3"]
    assert total == 5
    records, total = store.list(limit=2, offset=4)
    assert [record.id for record in records] == ["r0"]
    records, total = store.list(["failed"])
    assert [(record.id, record.error) for record in records] == [("r1", {"message": "boom"})]
    assert total == 1


def test_queued_ids_in_submission_order(store):
    for run_id in ("b", "a", "c"):
        store.add(make_record(run_id))
    store.mark_started("a")
    assert store.queued_ids() == ["b", "c"]


def test_interrupt_unfinished(store):
    store.add(make_record("running"))
    store.add(make_record("waiting"))
    store.mark_started("running")
    store.set_node_state("running", "a", "executed", seconds=0.1)
    store.set_node_state("running", "b", "running")
    assert store.interrupt_unfinished("stopped") == ["running"]
    record = store.get("running")
    assert record.status == "interrupted"
    assert record.error == {"message": "stopped"}
    assert record.nodes["a"]["status"] == "executed"
    assert record.nodes["b"] == {"status": "skipped", "seconds": None, "reason": "server_stopped"}
    assert store.get("waiting").status == "queued"


def test_survives_reopen(tmp_path):
    first = RunStore(tmp_path / "runs.sqlite3")
    first.add(make_record("r1"))
    first.close()
    second = RunStore(tmp_path / "runs.sqlite3")
    assert second.get("r1").name == "test"
    second.close()


def test_delete_removes_node_states(store):
    store.add(make_record("r1"))
    assert store.delete("r1") is True
    assert store.delete("r1") is False
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM node_states").fetchone()[0] == 0


def test_file_referenced(store):
    store.add(make_record("r1"))
    store.set_output("r1", "save", {"images": [{"kind": "output", "filename": "a b.png", "path": "/x/a b.png"}]})
    assert store.file_referenced("output", "a b.png") is True
    assert store.file_referenced("temp", "a b.png") is False
    assert store.file_referenced("output", "a.png") is False


def test_finished_ids_beyond(store):
    for index in range(4):
        store.add(make_record(f"r{index}"))
        if index < 3:
            store.mark_finished(f"r{index}", "succeeded")
    assert store.finished_ids_beyond(1) == ["r1", "r0"]
    assert store.finished_ids_beyond(5) == []


def test_newer_schema_rejected(tmp_path):
    path = tmp_path / "runs.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError) as raised:
        RunStore(path)
    assert "schema version 99, newer than this nodegraph's 1" in str(raised.value)
