"""The WebSocket hub's fan-out rules: run filters, dropping progress for slow clients, disconnecting them."""

from __future__ import annotations

import json

import pytest

from nodegraph.ws import MAX_WAITING, PROGRESS_DROP_AT, EventHub, _Client

pytestmark = pytest.mark.asyncio


def event_text(name: str, run: str | None = "r1") -> str:
    return json.dumps({"event": name, "run": run, "time": 0.0})


async def test_hub_filters_by_run():
    hub = EventHub()
    everything, only_r2 = _Client(None, None), _Client(None, {"r2"})
    hub.clients.update({everything, only_r2})
    hub.publish("r1", event_text("run.started"))
    hub.publish("r2", event_text("run.started", "r2"))
    hub.publish(None, event_text("queue.status", None))
    assert everything.waiting.qsize() == 3
    assert only_r2.waiting.qsize() == 2


async def test_hub_drops_progress_for_slow_client():
    hub = EventHub()
    client = _Client(None, None)
    hub.clients.add(client)
    for _ in range(PROGRESS_DROP_AT + 10):
        hub.publish("r1", event_text("node.progress"))
    assert client.waiting.qsize() == PROGRESS_DROP_AT
    assert client.dropped == 10
    hub.publish("r1", event_text("run.succeeded"))
    assert client.waiting.qsize() == PROGRESS_DROP_AT + 1


async def test_hub_disconnects_stuck_client():
    hub = EventHub()
    client = _Client(None, None)
    hub.clients.add(client)
    for _ in range(MAX_WAITING + 1):
        hub.publish("r1", event_text("node.finished"))
    assert client not in hub.clients
    waiting = [client.waiting.get_nowait() for _ in range(client.waiting.qsize())]
    assert len(waiting) == MAX_WAITING + 1
    assert waiting[-1] is None  # the sender closes the socket when it reaches this
    assert waiting.count(None) == 1
