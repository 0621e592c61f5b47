"""HTTP handlers of the server's JSON API, file routes and the editor's static files.

Every error response has the shape of a validation error list,
`{"errors": [{"node", "input", "code", "message"}]}`, so a client reads all of them one way.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from nodegraph import __version__
from nodegraph import document as workflow_document
from nodegraph.errors import Problem, WorkflowInvalid
from nodegraph.models import ModelManager
from nodegraph.queue import FILE_KINDS, QueueFull, RunQueue, file_url
from nodegraph.registry import Registry
from nodegraph.resources import web_dir, workflows_dir
from nodegraph.security import Limits, PathRejected, Security, resolve_inside
from nodegraph.store import RUN_STATUSES, RunStore
from nodegraph.ws import EventHub

logger = logging.getLogger(__name__)

# A saved workflow's name: letters, digits, space, dot, dash, underscore, brackets; no slash, no leading dot.
WORKFLOW_NAME = re.compile(r"^[^\W_][\w .()\-]{0,99}$")
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
MAX_RUNS_PAGE = 500


@dataclass
class ServerState:
    """Everything the handlers share, stored on the application."""

    registry: Registry
    models: ModelManager
    store: RunStore
    queue: RunQueue
    hub: EventHub
    security: Security
    limits: Limits
    folders: dict[str, Path]
    workflows_dir: Path
    started: float


STATE: web.AppKey[ServerState] = web.AppKey("nodegraph_state", ServerState)


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    """Return a JSON error response with one problem that has no node or input."""
    return web.json_response({"errors": [Problem(code, message).to_json()]}, status=status, headers=headers or None)


def problems_response(status: int, problems: list[Problem]) -> web.Response:
    return web.json_response({"errors": [problem.to_json() for problem in problems]}, status=status)


class BodyTooLarge(Exception):
    def __init__(self, limit: int, size: int | None = None):
        self.limit = limit
        self.size = size


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read the request body, stopping as soon as it passes `limit` bytes.

    Raises:
        BodyTooLarge: Content-Length or the bytes received pass the limit.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit, request.content_length)
    data = bytearray()
    async for chunk in request.content.iter_chunked(256 * 1024):
        data += chunk
        if len(data) > limit:
            raise BodyTooLarge(limit)
    return bytes(data)


def too_large_response(error: BodyTooLarge, what: str = "request body") -> web.Response:
    size = f"{error.size} bytes" if error.size is not None else "larger"
    return error_response(413, "too_large", f"the {what} is {size}, over the limit of {error.limit} bytes; "
                                            "send a smaller one or raise the server's limit")


# Submissions ---------------------------------------------------------------------


@dataclass
class Submission:
    document: dict | None
    params: dict[str, Any]
    targets: list[str] | None
    problems: list[Problem]


def parse_submission(body: bytes, registry: Registry, limits: Limits) -> Submission:
    """Parse and validate `{"workflow", "params", "targets"}` (or a bare workflow document).

    The problems are the ones `nodegraph validate` and `nodegraph run` print for the same
    document, because both go through nodegraph.document and nodegraph.executor.prepare.
    """
    try:
        envelope = _parse_json(body)
    except WorkflowInvalid as invalid:
        return Submission(None, {}, None, invalid.problems)

    # 1. Split the envelope.
    if isinstance(envelope, dict) and "workflow" in envelope:
        document, params, targets = envelope["workflow"], envelope.get("params"), envelope.get("targets")
        unknown = sorted(set(envelope) - {"workflow", "params", "targets"})
        if unknown:
            return _request_problem(f"unknown request fields {unknown}; a run request has workflow, params and targets")
    else:
        # Without "workflow" the body is the workflow document itself, checked as the CLI checks a file.
        document, params, targets = envelope, None, None
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return _request_problem(f"params must be an object of param name to value, got {_kind(params)}")
    if targets is not None and not (isinstance(targets, list) and all(isinstance(item, str) for item in targets)):
        return _request_problem(f"targets must be a list of node ids, got {_kind(targets)}")

    # 2. The node limit, before any per-node work.
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if isinstance(nodes, dict) and len(nodes) > limits.max_workflow_nodes:
        return Submission(None, {}, None, [Problem(
            "too_many_nodes", f"the workflow has {len(nodes)} nodes, over the server's limit of {limits.max_workflow_nodes}; "
                              "split it or raise the limit (--max-nodes)")])

    # 3. The same checks as the CLI.
    from nodegraph.executor import prepare

    prepared, problems = prepare(document, registry, params, targets=targets)
    return Submission(prepared, params, targets, problems)


def _parse_json(body: bytes) -> Any:
    # Errors read as they do for a workflow file, so a raw bad document gets the CLI's message.
    try:
        text = body.decode("utf-8-sig")
        return json.loads(text)
    except (ValueError, RecursionError):
        # Raises WorkflowInvalid with the not-UTF-8, empty, too-deep or line-and-column problem.
        workflow_document.load_bytes(body)
        raise


def _request_problem(message: str) -> Submission:
    return Submission(None, {}, None, [Problem("invalid_request", message)])


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), "null" if value is None else type(value).__name__)


async def post_validate(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await read_body(request, state.limits.max_body_bytes)
    except BodyTooLarge as error:
        return too_large_response(error)
    submission = await asyncio.to_thread(parse_submission, body, state.registry, state.limits)
    return web.json_response({"errors": [problem.to_json() for problem in submission.problems]})


async def post_run(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await read_body(request, state.limits.max_body_bytes)
    except BodyTooLarge as error:
        return too_large_response(error)
    submission = await asyncio.to_thread(parse_submission, body, state.registry, state.limits)
    if submission.problems:
        return problems_response(400, submission.problems)
    try:
        record, position = await asyncio.to_thread(state.queue.submit, submission.document, submission.params, submission.targets)
    except QueueFull as error:
        return error_response(429, "queue_full", str(error), **{"Retry-After": "5"})
    return web.json_response({"id": record.id, "status": record.status, "position": position}, status=202,
                             headers={"Location": f"/api/runs/{record.id}"})


# Runs ----------------------------------------------------------------------------


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between {low} and {high}, got {value}")
    return value


async def get_runs(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = _int_query(request, "limit", 50, 1, MAX_RUNS_PAGE)
    offset = _int_query(request, "offset", 0, 0, 2**62)
    statuses = [item for item in request.query.get("status", "").split(",") if item]
    unknown = [item for item in statuses if item not in RUN_STATUSES]
    if unknown:
        return error_response(400, "invalid_query", f"unknown status {unknown[0]!r}; use one of {', '.join(RUN_STATUSES)}")
    records, total = await asyncio.to_thread(state.store.list, statuses, limit, offset)
    runs = []
    for record in records:
        summary = record.summary()
        if record.status == "queued":
            summary["position"] = state.queue.position(record.id)
        runs.append(summary)
    snapshot = state.queue.snapshot()
    return web.json_response({"runs": runs, "total": total, "limit": limit, "offset": offset,
                              "queue": {"running": snapshot["running"], "queued": len(snapshot["queued"])}})


async def get_run(request: web.Request) -> web.Response:
    state = request.app[STATE]
    record = await asyncio.to_thread(state.store.get, request.match_info["run_id"])
    if record is None:
        return _no_run(request.match_info["run_id"])
    body = {
        "id": record.id, "status": record.status, "name": record.name, "created": record.created,
        "started": record.started, "finished": record.finished, "nodes": record.nodes, "outputs": record.outputs,
        "error": record.error, "errors": record.problems, "params": record.params, "targets": record.targets,
    }
    if record.status == "queued":
        body["position"] = state.queue.position(record.id)
    return web.json_response(body)


async def get_run_workflow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    record = await asyncio.to_thread(state.store.get, request.match_info["run_id"], False)
    if record is None:
        return _no_run(request.match_info["run_id"])
    return web.json_response(record.workflow)


async def delete_run(request: web.Request) -> web.Response:
    state = request.app[STATE]
    run_id = request.match_info["run_id"]
    result = await asyncio.to_thread(state.queue.cancel, run_id)
    if result is None:
        return _no_run(run_id)
    if result.action == "not_owned":
        return error_response(409, "not_owned", f"run {run_id} is {state.store.status_of(run_id)} in another server "
                                                "process that shares this data folder; delete it there")
    status = 202 if result.action == "interrupting" else 200
    return web.json_response({"id": run_id, **asdict(result)}, status=status)


def _no_run(run_id: str) -> web.Response:
    return error_response(404, "not_found", f"no run with id {run_id!r}; GET /api/runs lists the runs")


# Files ---------------------------------------------------------------------------

FILE_HEADERS = {
    # Served files are data, never pages: no script runs even if someone uploads an HTML or SVG file.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


async def get_file(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    kind, relative = request.match_info["kind"], request.match_info["path"]
    if kind not in FILE_KINDS:
        return error_response(404, "not_found", f"unknown file kind {kind!r}; use one of {', '.join(FILE_KINDS)}")
    try:
        path = resolve_inside(state.folders[kind], relative)
    except PathRejected as error:
        return error_response(400, "invalid_path", f"{error}: {relative!r}")
    if not path.is_file():
        return error_response(404, "not_found", f"no {kind} file {relative!r}")
    return web.FileResponse(path, headers=FILE_HEADERS)


async def post_upload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limit = state.limits.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        return too_large_response(BodyTooLarge(limit, request.content_length), "upload")
    if not request.content_type.startswith("multipart/"):
        return error_response(400, "invalid_request", "send the image as multipart/form-data with a file field named 'image'")
    reader = await request.multipart()
    part = None
    async for candidate in reader:
        if getattr(candidate, "filename", None):
            part = candidate
            break
    if part is None:
        return error_response(400, "invalid_request", "the form has no file; send the image in a file field named 'image'")
    data = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        data += chunk
        if len(data) > limit:
            return too_large_response(BodyTooLarge(limit), "upload")
    try:
        name = await asyncio.to_thread(save_upload, bytes(data), part.filename, state.folders["input"], state.limits)
    except UploadRejected as rejected:
        return error_response(rejected.status, rejected.code, rejected.message)
    logger.info("saved upload %s (%d bytes)", name, len(data))
    return web.json_response({"name": name, "kind": "input", "url": file_url("input", name)})


class UploadRejected(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def save_upload(data: bytes, filename: str, folder: Path, limits: Limits) -> str:
    """Check that `data` is an image within the pixel limit and save it in the input folder; return its name.

    An upload with the name and bytes of an existing file reuses it; a different file of the
    same name gets a numbered name.
    """
    from PIL import Image, UnidentifiedImageError

    # 1. Check it is an image no larger than the pixel limit, before decoding any pixels.
    too_many_pixels = UploadRejected(413, "too_many_pixels", f"{filename!r} has more than {limits.max_image_pixels} pixels, "
                                                             "the server's limit; scale it down first")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > limits.max_image_pixels:
                raise too_many_pixels
            image_format = image.format
            image.verify()
    except UploadRejected:
        raise
    except Image.DecompressionBombError:
        # `nodegraph serve` lowers Pillow's own limit to the server's pixel limit (server.limit_image_pixels).
        raise too_many_pixels from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UploadRejected(400, "not_an_image", f"{filename!r} is not an image Pillow can read ({error}); "
                                                  "upload a PNG, JPEG or WebP file") from error

    # 2. A safe name with the suffix of the real format.
    stem = re.sub(r"[^\w.\-]+", "_", Path(unquote(filename).replace("\\", "/")).stem).strip("._") or "upload"
    suffix = IMAGE_SUFFIXES.get(image_format or "", ".img")
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(10_000):
        name = f"{stem[:80]}{'' if number == 0 else f'-{number}'}{suffix}"
        path = folder / name
        try:
            with open(path, "xb") as file:
                file.write(data)
            return name
        except FileExistsError:
            if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
                return name
    raise UploadRejected(409, "name_taken", f"too many uploads named {stem!r}; rename the file")


# Workflows -----------------------------------------------------------------------


def _workflow_entry(path: Path, source: str) -> dict[str, Any]:
    title = description = ""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict):
            title, description = str(document.get("name", "")), str(document.get("description", ""))
    except (OSError, ValueError):
        pass
    return {"name": path.stem, "title": title, "description": description, "source": source,
            "read_only": source == "example", "modified": path.stat().st_mtime}


def _example_path(name: str) -> Path | None:
    path = workflows_dir() / f"{name}.json"
    return path if path.is_file() else None


def _check_workflow_name(name: str) -> web.Response | None:
    if WORKFLOW_NAME.match(name) and not name.endswith("."):
        return None
    return error_response(400, "invalid_name", f"invalid workflow name {name!r}: use up to 100 letters, digits, spaces, "
                                               "dots, dashes, underscores or brackets, starting with a letter or digit")


async def get_workflows(request: web.Request) -> web.Response:
    state = request.app[STATE]
    entries = []
    if state.workflows_dir.is_dir():
        entries.extend(_workflow_entry(path, "user") for path in sorted(state.workflows_dir.glob("*.json")))
    entries.extend(_workflow_entry(path, "example") for path in sorted(workflows_dir().glob("*.json")))
    return web.json_response({"workflows": entries})


async def get_workflow(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    name = request.match_info["name"]
    rejected = _check_workflow_name(name)
    if rejected is not None:
        return rejected
    for path in (state.workflows_dir / f"{name}.json", _example_path(name)):
        if path is not None and path.is_file():
            return web.Response(body=path.read_bytes(), content_type="application/json", charset="utf-8")
    return error_response(404, "not_found", f"no workflow named {name!r}; GET /api/workflows lists them")


async def put_workflow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name = request.match_info["name"]
    rejected = _check_workflow_name(name)
    if rejected is not None:
        return rejected
    if _example_path(name) is not None:
        return error_response(409, "read_only", f"{name!r} is a shipped example and read-only; save it under another name")
    try:
        body = await read_body(request, state.limits.max_body_bytes)
    except BodyTooLarge as error:
        return too_large_response(error)
    try:
        # Only the document's shape is checked: a work in progress with graph errors may be saved.
        document = await asyncio.to_thread(workflow_document.load_bytes, body)
    except WorkflowInvalid as invalid:
        return problems_response(400, invalid.problems)
    state.workflows_dir.mkdir(parents=True, exist_ok=True)
    path = state.workflows_dir / f"{name}.json"
    created = not path.exists()
    await asyncio.to_thread(workflow_document.save_path, document, path)
    logger.info("saved workflow %s", name)
    return web.json_response({"name": name, "created": created}, status=201 if created else 200)


async def delete_workflow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name = request.match_info["name"]
    rejected = _check_workflow_name(name)
    if rejected is not None:
        return rejected
    path = state.workflows_dir / f"{name}.json"
    if path.is_file():
        path.unlink()
        logger.info("deleted workflow %s", name)
        return web.json_response({"name": name, "deleted": True})
    if _example_path(name) is not None:
        return error_response(409, "read_only", f"{name!r} is a shipped example and cannot be deleted")
    return error_response(404, "not_found", f"no workflow named {name!r}")


# Catalog, models, system ---------------------------------------------------------


async def get_nodes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    catalog = await asyncio.to_thread(state.registry.catalog, state.models)
    return web.json_response(catalog)


async def get_schema(request: web.Request) -> web.Response:
    return web.json_response(workflow_document.schema())


async def get_models(request: web.Request) -> web.Response:
    models = request.app[STATE].models
    inventory = await asyncio.to_thread(models.inventory)
    return web.json_response({"models_dir": None if models.models_dir is None else str(models.models_dir),
                              "models": inventory, "loaded": models.loaded()})


async def post_models_unload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await read_body(request, 64 * 1024)
    except BodyTooLarge as error:
        return too_large_response(error)
    key = None
    if body.strip():
        try:
            payload = json.loads(body)
        except ValueError:
            return error_response(400, "invalid_json", 'the body must be empty (unload every model) or {"key": MODEL_KEY}')
        key = payload.get("key") if isinstance(payload, dict) else None
        if not isinstance(key, str):
            return error_response(400, "invalid_request", 'the body must be empty (unload every model) or {"key": MODEL_KEY}')
    models = state.models
    if key is None:
        unloaded = await asyncio.to_thread(models.unload_all)
    elif await asyncio.to_thread(models.unload, key):
        unloaded = [key]
    else:
        return error_response(404, "not_found", f"no loaded model {key!r}; GET /api/system lists the loaded models")
    return web.json_response({"unloaded": unloaded})


async def get_system(request: web.Request) -> web.Response:
    state = request.app[STATE]
    models = state.models
    snapshot = state.queue.snapshot()
    return web.json_response({
        "version": __version__,
        "python": sys.version.split()[0],
        "device": _device(),
        "memory": {"rss_bytes": resident_bytes(), "total_bytes": _total_memory(),
                   "models_bytes": models.loaded_bytes(), "models_budget_bytes": models.budget_bytes},
        "models": models.loaded(),
        "queue": {"running": snapshot["running"], "queued": len(snapshot["queued"]), "max_queued": state.limits.max_queued_runs},
        "uptime_seconds": round(time.time() - state.started, 3),
    })


def _device() -> dict[str, Any]:
    # Importing torch takes seconds; report the device only once a run has loaded torch.
    torch = sys.modules.get("torch")
    if torch is None:
        return {"type": None, "note": "torch is not loaded yet; the device is chosen when the first model loads"}
    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "torch": torch.__version__}
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return {"type": "mps", "torch": torch.__version__}
    return {"type": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads()}


def resident_bytes() -> int | None:
    """Return the process's resident memory in bytes (Linux), or None where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


async def get_openapi(request: web.Request) -> web.Response:
    from importlib import resources

    text = resources.files("nodegraph").joinpath("openapi.json").read_text("utf-8")
    return web.Response(text=text, content_type="application/json")


async def get_events(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    runs = request.query.get("runs")
    selected = {item for item in runs.split(",") if item} if runs else None
    return await state.hub.handle(request, selected)


async def api_not_found(request: web.Request) -> web.Response:
    return error_response(404, "not_found", f"no route {request.method} {request.path}; GET /api/openapi.json lists the API")


# The editor ----------------------------------------------------------------------


async def get_static(request: web.Request) -> web.StreamResponse:
    relative = request.match_info.get("path") or "index.html"
    try:
        path = resolve_inside(web_dir(), relative)
    except PathRejected as error:
        return error_response(400, "invalid_path", str(error))
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return error_response(404, "not_found", f"no file /{relative}")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/api/nodes", get_nodes)
    router.add_get("/api/schema", get_schema)
    router.add_get("/api/models", get_models)
    router.add_post("/api/models/unload", post_models_unload)
    router.add_get("/api/system", get_system)
    router.add_get("/api/openapi.json", get_openapi)
    router.add_post("/api/validate", post_validate)
    router.add_post("/api/runs", post_run)
    router.add_get("/api/runs", get_runs)
    router.add_get("/api/runs/{run_id}", get_run)
    router.add_get("/api/runs/{run_id}/workflow", get_run_workflow)
    router.add_delete("/api/runs/{run_id}", delete_run)
    router.add_get("/api/files/{kind}/{path:.+}", get_file)
    router.add_post("/api/uploads", post_upload)
    router.add_get("/api/workflows", get_workflows)
    router.add_get("/api/workflows/{name}", get_workflow)
    router.add_put("/api/workflows/{name}", put_workflow)
    router.add_delete("/api/workflows/{name}", delete_workflow)
    router.add_get("/api/events", get_events)
    router.add_route("*", "/api/{tail:.*}", api_not_found)
    router.add_get("/", get_static)
    router.add_get("/{path:.+}", get_static)
