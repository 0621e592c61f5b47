"""The server: aiohttp application factory and `serve`.

One process serves the editor (web/), the JSON API under /api/, the event WebSocket and
generated files. Start-up imports no model library: torch and friends load when the
first run needs them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aiohttp import web

from nodegraph.routes import STATE, ServerState, add_routes, error_response
from nodegraph.security import ConfigError, Limits, Security, check_bind, is_loopback

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8189  # 8188 is ComfyUI's, so both can run side by side

DATA_LOCK: web.AppKey[IO] = web.AppKey("nodegraph_data_lock", IO)


def lock_data_dir(data_dir: Path) -> IO:
    """Take an exclusive lock on the data folder, so two servers never run the same queue.

    The operating system releases the lock when the process ends, even when it is killed.

    Raises:
        ConfigError: another process holds the lock.
    """
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "server.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise ConfigError(f"another nodegraph server (process {owner}) uses the data folder {data_dir}; "
                          "stop it or pass a different --data-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@dataclass
class ServerConfig:
    """Settings of one server process.

    Attributes:
        data_dir: the folder of runs.sqlite3 and the input, output, temp and workflows folders.
        models_dir: the models folder; default <data_dir>/models.
        token: required as `Authorization: Bearer TOKEN` (or `?token=` on GET) on every /api/ request.
        allowed_origins: extra Origins, such as http://localhost:5173, allowed to change state.
        allowed_hosts: extra Host names accepted besides loopback names; "*" accepts any.
        keep_runs: keep only the newest N finished runs (older ones are deleted with their files); None keeps all.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("nodegraph-data")
    models_dir: Path | None = None
    token: str | None = None
    allowed_origins: set[str] = field(default_factory=set)
    allowed_hosts: set[str] = field(default_factory=set)
    limits: Limits = field(default_factory=Limits)
    keep_runs: int | None = None
    nodes_dirs: list[Path] = field(default_factory=list)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Turn HTTP exceptions into JSON errors and any other exception into a 500 without a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exception:
        if exception.status < 400:
            raise
        message = exception.text if exception.text and not exception.text.startswith(f"{exception.status}:") else exception.reason
        if exception.status == 404:
            message = f"no route {request.method} {request.path}; GET /api/openapi.json lists the API"
        elif exception.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        return error_response(exception.status, _code_for(exception.status), message)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("internal error while handling %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error; the server log has the details")


def _code_for(status: int) -> str:
    return {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(status, "http_error")


@web.middleware
async def security_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Check Host on every request, the token on /api/, and Origin on state changes and WebSocket upgrades.

    Pages of an allowed origin (--allow-origin) also get CORS headers, so a browser lets them read the responses.
    """
    security = request.app[STATE].security
    origin = request.headers.get("Origin")
    cors = origin is not None and origin.rstrip("/") in security.allowed_origins
    if cors and request.method == "OPTIONS":
        # A CORS preflight carries no token; the real request that follows is checked in full.
        response: web.StreamResponse = web.Response(status=204, headers=PREFLIGHT_HEADERS)
    else:
        response = await _check_request(request, handler, security)
    if cors and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


async def _check_request(request: web.Request, handler, security: Security) -> web.StreamResponse:
    host = request.headers.get("Host")
    if not security.host_allowed(host):
        return error_response(403, "host_rejected", f"the Host header {host!r} is not a name of this server; "
                                                    "start the server with --allow-host NAME to accept it")
    if request.path.startswith("/api/"):
        query_token = request.query.get("token") if request.method == "GET" else None
        if not security.check_token(request.headers.get("Authorization"), query_token):
            return error_response(401, "unauthorized", "missing or wrong token; send 'Authorization: Bearer TOKEN' "
                                                       "(or ?token=TOKEN on GET and WebSocket requests)",
                                  **{"WWW-Authenticate": "Bearer"})
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.method not in ("GET", "HEAD", "OPTIONS") or upgrade:
        origin = request.headers.get("Origin")
        if not security.origin_allowed(origin, host, request.scheme):
            return error_response(403, "origin_rejected", f"requests from the page origin {origin!r} are not allowed; "
                                                          "start the server with --allow-origin ORIGIN to accept it")
    return await handler(request)


def create_app(config: ServerConfig, registry=None) -> web.Application:
    """Build the application: store, queue, executor and routes. The queue's worker starts with the app."""
    from nodegraph.models import ModelManager
    from nodegraph.queue import RunQueue
    from nodegraph.registry import default_registry
    from nodegraph.store import RunStore
    from nodegraph.ws import EventHub

    data_dir = Path(config.data_dir)
    folders = {kind: data_dir / kind for kind in ("input", "output", "temp")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    lock = lock_data_dir(data_dir)
    if registry is None:
        registry = default_registry(config.nodes_dirs)
    models = ModelManager(models_dir=config.models_dir or data_dir / "models")

    def make_executor():
        from nodegraph.executor import Executor

        return Executor(registry, models=models, output_dir=folders["output"], input_dir=folders["input"],
                        temp_dir=folders["temp"])

    store = RunStore(data_dir / "runs.sqlite3")
    hub = EventHub()
    queue = RunQueue(store, make_executor, max_queued=config.limits.max_queued_runs, keep_runs=config.keep_runs,
                     folders=folders, publish=hub.publish_threadsafe)

    allowed_hosts = set(config.allowed_hosts)
    if not is_loopback(config.host) and config.host not in ("0.0.0.0", "::", ""):
        allowed_hosts.add(config.host.lower().strip("[]"))
    security = Security(token=config.token, allowed_origins={origin.rstrip("/") for origin in config.allowed_origins},
                        allowed_hosts=allowed_hosts)

    # client_max_size bounds what aiohttp itself buffers; the handlers check their own, smaller limits first.
    app = web.Application(middlewares=[error_middleware, security_middleware],
                          client_max_size=max(config.limits.max_body_bytes, config.limits.max_upload_bytes) + 1024 * 1024)
    app[STATE] = ServerState(registry=registry, models=models, store=store, queue=queue, hub=hub, security=security,
                             limits=config.limits, folders=folders, workflows_dir=data_dir / "workflows",
                             started=time.time())
    app[DATA_LOCK] = lock
    add_routes(app)
    app.on_startup.append(_start)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    state = app[STATE]
    state.hub.bind(asyncio.get_running_loop())
    state.queue.start()
    # Import the executor (and networkx) in the background, so neither the first page nor the first run waits for it.
    threading.Thread(target=_warm_up, args=(state,), name="nodegraph-warm-up", daemon=True).start()


def _warm_up(state: ServerState) -> None:
    state.queue.executor


def limit_image_pixels(max_pixels: int) -> None:
    """Make Pillow reject images over `max_pixels` in this process, so image nodes in the server obey the limit.

    Pillow raises DecompressionBombError above twice MAX_IMAGE_PIXELS and only warns above it.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels // 2


async def _close_sockets(app: web.Application) -> None:
    await app[STATE].hub.close_all()


async def _stop(app: web.Application) -> None:
    state = app[STATE]
    await asyncio.to_thread(state.queue.stop)
    state.store.close()
    app[DATA_LOCK].close()
    logger.info("server stopped")


def serve(config: ServerConfig) -> None:
    """Run the server until interrupted.

    Raises:
        ConfigError: the configuration is unsafe (a non-loopback address without a token).
    """
    check_bind(config.host, config.token)
    if not is_loopback(config.host) and not config.allowed_hosts:
        also = "" if config.host in ("0.0.0.0", "::", "") else f" or {config.host}"
        logger.warning("listening on %s, but only requests whose Host header is a loopback name%s are accepted; "
                       "pass --allow-host NAME for each name clients use", config.host, also)
    app = create_app(config)
    limit_image_pixels(config.limits.max_image_pixels)
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    ready = f"nodegraph serving http://{shown_host}:{config.port}/ (data folder: {Path(config.data_dir).resolve()})"
    web.run_app(app, host=config.host, port=config.port, print=lambda _: print(ready, flush=True), access_log=None,
                handle_signals=True)
