"""The WebSocket hub: sends every run's events, or those of the runs a client subscribed to.

Events arrive from the queue's worker thread already serialized as JSON text, so a
preview image is encoded once, not once per client. A client that reads too slowly
loses `node.progress` events once PROGRESS_DROP_AT events wait for it, and is
disconnected once MAX_WAITING events wait.

Messages a client may send, as JSON text:
    {"subscribe": ["RUN_ID", ...]}   only these runs from now on (queue.status always comes)
    {"subscribe": "*"}               every run (the default)
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

logger = logging.getLogger(__name__)

# Events a client may have waiting before progress events are dropped, and before it is disconnected.
PROGRESS_DROP_AT = 1000
MAX_WAITING = 5000


class _Client:
    def __init__(self, socket: web.WebSocketResponse, runs: set[str] | None):
        self.socket = socket
        self.runs = runs  # None: every run
        self.waiting: asyncio.Queue[str | None] = asyncio.Queue()
        self.dropped = 0

    def wants(self, run_id: str | None) -> bool:
        return run_id is None or self.runs is None or run_id in self.runs


class EventHub:
    """Fans serialized events out to the connected WebSocket clients."""

    def __init__(self) -> None:
        self.clients: set[_Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish_threadsafe(self, run_id: str | None, text: str) -> None:
        """Queue an event for every interested client; callable from any thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.publish, run_id, text)
        except RuntimeError:  # the loop closed between the check and the call (shutdown)
            pass

    def publish(self, run_id: str | None, text: str) -> None:
        progress = '"event": "node.progress"' in text[:40]
        for client in list(self.clients):
            if not client.wants(run_id):
                continue
            size = client.waiting.qsize()
            if progress and size >= PROGRESS_DROP_AT:
                client.dropped += 1
                continue
            if size >= MAX_WAITING:
                logger.warning("disconnecting a WebSocket client that has %d events waiting", size)
                self.clients.discard(client)
                client.waiting.put_nowait(None)
                continue
            client.waiting.put_nowait(text)

    async def handle(self, request: web.Request, runs: set[str] | None) -> web.WebSocketResponse:
        """Serve one WebSocket connection until it closes."""
        socket = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await socket.prepare(request)
        client = _Client(socket, runs)
        self.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    await self._on_message(client, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(client)
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, Exception):
                pass
            if client.dropped:
                logger.info("a WebSocket client missed %d progress events while it was slow", client.dropped)
        return socket

    async def _send_loop(self, client: _Client) -> None:
        while True:
            text = await client.waiting.get()
            if text is None:
                await client.socket.close(code=1013, message=b"too many events waiting; reconnect and read the run records")
                return
            await client.socket.send_str(text)

    async def _on_message(self, client: _Client, data: str) -> None:
        try:
            message: Any = json.loads(data)
        except ValueError:
            await client.socket.send_str(json.dumps({"event": "error", "message": "messages must be JSON objects"}))
            return
        subscribe = message.get("subscribe") if isinstance(message, dict) else None
        if subscribe == "*":
            client.runs = None
        elif isinstance(subscribe, list) and all(isinstance(item, str) for item in subscribe):
            client.runs = set(subscribe)
        else:
            await client.socket.send_str(json.dumps({
                "event": "error", "message": 'unknown message; send {"subscribe": ["RUN_ID", ...]} or {"subscribe": "*"}'}))
            return
        await client.socket.send_str(json.dumps({"event": "subscribed", "runs": "*" if client.runs is None else sorted(client.runs)}))

    async def close_all(self) -> None:
        for client in list(self.clients):
            await client.socket.close(code=1001, message=b"server shutting down")
