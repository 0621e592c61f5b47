"""A small client of the nodegraph server, for scripts and `nodegraph run --server`.

    with Client("http://127.0.0.1:8189") as client:
        record = client.run(workflow, params={"prompt": "a red ball"}, on_event=print)
        for path in client.download_outputs(record, "output"):
            print(path)

`AsyncClient` has the same methods as coroutines.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from nodegraph.errors import NodegraphError, Problem

logger = logging.getLogger(__name__)

TERMINAL_EVENTS = ("run.succeeded", "run.failed", "run.interrupted", "run.invalid")
TERMINAL_STATUSES = ("succeeded", "failed", "interrupted", "invalid")

EventHandler = Callable[[dict], None]


class ServerError(NodegraphError):
    """Raised for an error response; `problems` is the server's error list."""

    def __init__(self, status: int, problems: list[Problem]):
        self.status = status
        self.problems = problems
        super().__init__(f"server answered {status}: " + "; ".join(str(problem) for problem in problems))


class AsyncClient:
    """Talks to one server with an aiohttp session, created on first use.

    Args:
        base_url: the server, e.g. http://127.0.0.1:8189.
        token: sent as `Authorization: Bearer TOKEN` when given.
        timeout: seconds for one HTTP request (streaming a run has no overall limit).
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.current_run: str | None = None
        self._session = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _get_session(self):
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers(), timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON body.

        Raises:
            ServerError: the response status is 4xx or 5xx.
        """
        session = await self._get_session()
        async with session.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text()
            if response.status >= 400:
                raise ServerError(response.status, _problems(text, response.status))
            return json.loads(text) if text else None

    # The API, one method per route --------------------------------------------------

    async def nodes(self) -> dict[str, Any]:
        return await self.request("GET", "/api/nodes")

    async def system(self) -> dict[str, Any]:
        return await self.request("GET", "/api/system")

    async def validate(self, workflow: dict, params: dict | None = None, targets: list[str] | None = None) -> list[Problem]:
        body = await self.request("POST", "/api/validate", json=_run_request(workflow, params, targets))
        return [Problem(**problem) for problem in body["errors"]]

    async def submit(self, workflow: dict, params: dict | None = None, targets: list[str] | None = None) -> dict[str, Any]:
        """Queue a run; return {"id", "status", "position"}."""
        return await self.request("POST", "/api/runs", json=_run_request(workflow, params, targets))

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/runs/{run_id}")

    async def list_runs(self, status: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        query = {"limit": str(limit), "offset": str(offset)}
        if status:
            query["status"] = status
        return await self.request("GET", "/api/runs", params=query)

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Remove a queued run, interrupt a running one, or delete a finished one."""
        return await self.request("DELETE", f"/api/runs/{run_id}")

    async def upload(self, path: str | Path) -> str:
        """Upload an image to the server's input folder; return the name to give LoadImage."""
        import aiohttp

        path = Path(path)
        form = aiohttp.FormData()
        form.add_field("image", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
        return (await self.request("POST", "/api/uploads", data=form))["name"]

    async def download(self, url: str, destination: str | Path) -> Path:
        """Save the file at a server URL (such as an image's `url`) to `destination`."""
        session = await self._get_session()
        async with session.get(self.base_url + url) as response:
            if response.status >= 400:
                raise ServerError(response.status, _problems(await response.text(), response.status))
            data = await response.read()
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        return destination

    async def download_outputs(self, record: dict[str, Any], folder: str | Path) -> list[Path]:
        """Download every image a run's output nodes show into `folder`; return the local paths."""
        paths = []
        for display in record.get("outputs", {}).values():
            for image in (display.get("images", []) if isinstance(display, dict) else []):
                if not isinstance(image, dict) or "url" not in image:
                    continue
                name = Path(unquote(image["url"].rsplit("/", 1)[-1])).name
                paths.append(await self.download(image["url"], Path(folder) / name))
        return paths

    # Running and following a run ---------------------------------------------------

    async def run(self, workflow: dict, params: dict | None = None, targets: list[str] | None = None,
                  on_event: EventHandler | None = None) -> dict[str, Any]:
        """Submit a run, pass each of its events to `on_event` until it ends, and return its record.

        The event stream is opened before the run is submitted, so no event is missed. If the
        stream closes early, the run's record is polled until the run ends.

        Raises:
            ServerError: the run was rejected (400 with the validation problems, 429 queue full, ...).
        """
        session = await self._get_session()
        events_url = self.base_url + "/api/events"
        async with session.ws_connect(events_url, heartbeat=30.0) as socket:
            accepted = await self.submit(workflow, params, targets)
            run_id = self.current_run = accepted["id"]
            await socket.send_str(json.dumps({"subscribe": [run_id]}))
            ended = await _follow(socket, run_id, on_event)
        if not ended:
            logger.warning("the event stream closed before run %s ended; polling its record", run_id)
        return await self.wait(run_id)

    async def wait(self, run_id: str, poll_seconds: float = 0.5) -> dict[str, Any]:
        """Poll a run's record until it has ended; return the record."""
        while True:
            record = await self.get_run(run_id)
            if record["status"] in TERMINAL_STATUSES:
                return record
            await asyncio.sleep(poll_seconds)


async def _follow(socket, run_id: str, on_event: EventHandler | None) -> bool:
    """Pass the run's events to `on_event` until its terminal event; return False if the stream closed first."""
    import aiohttp

    async for message in socket:
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        event = json.loads(message.data)
        if event.get("run") != run_id:
            continue
        if on_event is not None:
            on_event(event)
        if event["event"] in TERMINAL_EVENTS:
            return True
    return False


def _run_request(workflow: dict, params: dict | None, targets: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"workflow": workflow, "params": params or {}}
    if targets is not None:
        body["targets"] = targets
    return body


def _problems(text: str, status: int) -> list[Problem]:
    try:
        errors = json.loads(text)["errors"]
        return [Problem(error["code"], error["message"], error.get("node"), error.get("input")) for error in errors]
    except (ValueError, KeyError, TypeError):
        return [Problem("http_error", f"HTTP {status}: {text[:200]}")]


class Client:
    """The blocking form of AsyncClient, for scripts; runs its own event loop.

    Not thread-safe: use one Client per thread.
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0):
        self._loop = asyncio.new_event_loop()
        self._client = AsyncClient(base_url, token, timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.close())
            self._loop.close()

    @property
    def current_run(self) -> str | None:
        """The id of the run `run` submitted last (set as soon as the server accepts it)."""
        return self._client.current_run

    def _call(self, coroutine):
        return self._loop.run_until_complete(coroutine)

    def nodes(self) -> dict[str, Any]:
        return self._call(self._client.nodes())

    def system(self) -> dict[str, Any]:
        return self._call(self._client.system())

    def validate(self, workflow: dict, params: dict | None = None, targets: list[str] | None = None) -> list[Problem]:
        return self._call(self._client.validate(workflow, params, targets))

    def submit(self, workflow: dict, params: dict | None = None, targets: list[str] | None = None) -> dict[str, Any]:
        return self._call(self._client.submit(workflow, params, targets))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._call(self._client.get_run(run_id))

    def list_runs(self, status: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call(self._client.list_runs(status, limit, offset))

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self._call(self._client.cancel(run_id))

    def upload(self, path: str | Path) -> str:
        return self._call(self._client.upload(path))

    def download(self, url: str, destination: str | Path) -> Path:
        return self._call(self._client.download(url, destination))

    def download_outputs(self, record: dict[str, Any], folder: str | Path) -> list[Path]:
        return self._call(self._client.download_outputs(record, folder))

    def run(self, workflow: dict, params: dict | None = None, targets: list[str] | None = None,
            on_event: EventHandler | None = None) -> dict[str, Any]:
        return self._call(self._client.run(workflow, params, targets, on_event))

    def wait(self, run_id: str, poll_seconds: float = 0.5) -> dict[str, Any]:
        return self._call(self._client.wait(run_id, poll_seconds))
