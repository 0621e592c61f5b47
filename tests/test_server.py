"""The server's routes through aiohttp's test client: runs, events, files, uploads, workflows, security, limits."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import WSServerHandshakeError

import server_nodes
from conftest import CASES, REPO, link, workflow
from nodegraph.cli import main as cli_main
from nodegraph.security import ConfigError, Limits, check_bind
from nodegraph.server import ServerConfig, create_app

BAD_CASES = sorted((CASES / "bad").glob("*.json"))
pytestmark = pytest.mark.asyncio

TERMINAL = ("succeeded", "failed", "interrupted", "invalid")


@pytest.fixture
def server_registry(registry):
    registry.register_module(server_nodes, "tests")
    return registry


@pytest.fixture
def make_client(aiohttp_client, server_registry, tmp_path):
    async def make(**settings):
        config = ServerConfig(data_dir=tmp_path / "data", **settings)
        return await aiohttp_client(create_app(config, registry=server_registry))

    return make


@pytest_asyncio.fixture
async def client(make_client):
    return await make_client()


def text_workflow(text: str = "hello") -> dict:
    return workflow({"t": {"type": "Text", "inputs": {"text": text}},
                     "show": {"type": "ShowText", "inputs": {"text": link("t", "text")}}},
                    params={"text": ["t", "text"]})


def slow_workflow(steps: int = 2000, step_seconds: float = 0.005) -> dict:
    return workflow({"sleep": {"type": "TestSleep", "inputs": {"text": "done", "steps": steps, "step_seconds": step_seconds}},
                     "show": {"type": "ShowText", "inputs": {"text": link("sleep", "text")}}})


def image_workflow(value: int = 200) -> dict:
    return workflow({"save": {"type": "TestSaveImage", "inputs": {"value": value}}})


async def submit(client, document: dict, **fields) -> str:
    response = await client.post("/api/runs", json={"workflow": document, **fields})
    assert response.status == 202, await response.text()
    return (await response.json())["id"]


async def wait_for(client, run_id: str, statuses=TERMINAL, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/runs/{run_id}")
        record = await response.json()
        if record["status"] in statuses:
            return record
        assert time.monotonic() < deadline, f"run {run_id} still {record['status']}"
        await asyncio.sleep(0.02)


async def wait_running_node(client, run_id: str, node: str) -> None:
    deadline = time.monotonic() + 20
    while (await (await client.get(f"/api/runs/{run_id}")).json())["nodes"][node]["status"] != "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


def cli_errors(path: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert cli_main(["validate", str(path), "--json"]) == 2
    return json.loads(capsys.readouterr().out)["errors"]


# Catalog and documents -------------------------------------------------------------


async def test_index_serves_editor(client):
    response = await client.get("/")
    assert response.status == 200
    assert await response.text() == (REPO / "web" / "index.html").read_text(encoding="utf-8")


async def test_nodes_catalog(client):
    catalog = await (await client.get("/api/nodes")).json()
    assert catalog["Text"]["outputs"] == [{"name": "text", "type": "STRING", "description": ""}]
    assert catalog["TestSleep"]["category"] == "test"


async def test_schema_and_models(client):
    schema = await (await client.get("/api/schema")).json()
    assert schema["type"] == "object"
    models = await (await client.get("/api/models")).json()
    assert models["models"] == {"llm": [], "diffusion": [], "lora": []}
    assert models["loaded"] == []


async def test_system_reports_without_torch(client):
    system = await (await client.get("/api/system")).json()
    assert system["version"]
    assert system["queue"] == {"running": None, "queued": 0, "max_queued": 1000}
    assert system["memory"]["rss_bytes"] > 0


async def test_models_unload_all(client):
    response = await client.post("/api/models/unload")
    assert response.status == 200
    assert await response.json() == {"unloaded": []}
    missing = await client.post("/api/models/unload", json={"key": "nope"})
    assert missing.status == 404


async def test_openapi_lists_every_route(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    routes = set()
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path.startswith("/api/") and path != "/api/{tail}":
            routes.add(path.replace("{path:.+}", "{path}"))
    assert routes <= set(document["paths"]), routes - set(document["paths"])
    assert set(document["paths"]) <= routes | {"/api/files/{kind}/{path}"}


async def test_openapi_references_resolve(client):
    document = await (await client.get("/api/openapi.json")).json()
    references = []
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "$ref" in item:
                references.append(item["$ref"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    assert references
    for reference in references:
        target = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), reference


# Validation and bad workflows -------------------------------------------------------


async def test_validate_good_workflow(client):
    response = await client.post("/api/validate", json={"workflow": text_workflow(), "params": {"text": "hi"}})
    assert response.status == 200
    assert await response.json() == {"errors": []}


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda path: path.stem)
async def test_bad_case_gives_cli_errors(client, case, capsys):
    expected = cli_errors(case, capsys)
    raw = case.read_bytes()
    responses = [await client.post("/api/runs", data=raw, headers={"Content-Type": "application/json"})]
    try:
        wrapped = json.dumps({"workflow": json.loads(raw)})
    except (ValueError, RecursionError):
        wrapped = None
    if wrapped is not None:
        responses.append(await client.post("/api/runs", data=wrapped, headers={"Content-Type": "application/json"}))
    for response in responses:
        assert response.status == 400
        assert (await response.json())["errors"] == expected
    validated = await client.post("/api/validate", data=raw)
    assert validated.status == 200
    assert (await validated.json())["errors"] == expected
    listing = await (await client.get("/api/runs")).json()
    assert listing["total"] == 0


async def test_invalid_params_rejected(client):
    response = await client.post("/api/runs", json={"workflow": text_workflow(), "params": {"nope": 1}})
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert [error["code"] for error in errors] == ["unknown_param"]


async def test_malformed_request_fields(client):
    response = await client.post("/api/runs", json={"workflow": text_workflow(), "params": [1]})
    assert response.status == 400
    assert (await response.json())["errors"][0]["message"] == "params must be an object of param name to value, got an array"
    response = await client.post("/api/runs", json={"workflow": text_workflow(), "targets": "show"})
    assert (await response.json())["errors"][0]["message"] == "targets must be a list of node ids, got a string"
    response = await client.post("/api/runs", json=[1, 2])
    assert response.status == 400
    assert (await response.json())["errors"][0]["message"] == 'the document is an array; a workflow is a JSON object with "nodes"'
    response = await client.post("/api/runs", json={"workflow": text_workflow(), "priority": 1})
    assert (await response.json())["errors"][0]["message"] == (
        "unknown request fields ['priority']; a run request has workflow, params and targets")
    response = await client.post("/api/runs", data=b"\xff\xfe{")
    assert (await response.json())["errors"][0]["code"] == "not_utf8"


async def test_body_over_limit_gives_413(make_client):
    client = await make_client(limits=Limits(max_body_bytes=1000))
    document = text_workflow("x" * 2000)
    response = await client.post("/api/runs", json={"workflow": document})
    assert response.status == 413
    assert (await response.json())["errors"][0]["code"] == "too_large"
    response = await client.post("/api/validate", json={"workflow": document})
    assert response.status == 413


async def test_too_many_nodes_rejected(make_client):
    client = await make_client(limits=Limits(max_workflow_nodes=3))
    nodes = {f"t{index}": {"type": "Text", "inputs": {"text": "a"}} for index in range(4)}
    response = await client.post("/api/runs", json={"workflow": workflow(nodes)})
    assert response.status == 400
    error = (await response.json())["errors"][0]
    assert error["code"] == "too_many_nodes"
    assert error["message"].startswith("the workflow has 4 nodes, over the server's limit of 3")


async def test_queue_full_gives_429(make_client):
    client = await make_client(limits=Limits(max_queued_runs=1))
    running = await submit(client, slow_workflow())
    await wait_for(client, running, ("running",))
    await submit(client, text_workflow())
    response = await client.post("/api/runs", json={"workflow": text_workflow()})
    assert response.status == 429
    assert (await response.json())["errors"][0]["code"] == "queue_full"
    assert (await response.json())["errors"][0]["message"] == "the queue is full (1 runs waiting); retry when some have finished"
    assert response.headers["Retry-After"] == "5"
    await client.delete(f"/api/runs/{running}")


# Runs ------------------------------------------------------------------------------


async def test_run_record_after_success(client):
    run_id = await submit(client, text_workflow(), params={"text": "a red ball"})
    record = await wait_for(client, run_id)
    assert record["status"] == "succeeded"
    assert record["outputs"] == {"show": {"text": ["a red ball"]}}
    assert record["params"] == {"text": "a red ball"}
    assert set(record["nodes"]) == {"t", "show"}
    assert record["nodes"]["show"]["status"] == "executed"
    assert record["started"] >= record["created"]
    assert record["finished"] >= record["started"]


async def test_second_run_reports_cached(client):
    first = await submit(client, text_workflow())
    await wait_for(client, first)
    second = await submit(client, text_workflow())
    record = await wait_for(client, second)
    assert {state["status"] for state in record["nodes"].values()} == {"cached"}


async def test_failed_run_records_error(client):
    document = workflow({"tpl": {"type": "TextTemplate", "inputs": {"template": "{zz}"}},
                         "show": {"type": "ShowText", "inputs": {"text": link("tpl", "text")}}})
    record = await wait_for(client, await submit(client, document))
    assert record["status"] == "failed"
    assert record["error"]["node"] == "tpl"
    assert record["error"]["error_type"] == "NodeError"
    assert record["nodes"]["tpl"]["status"] == "failed"
    # The server keeps going: the next run succeeds.
    assert (await wait_for(client, await submit(client, text_workflow())))["status"] == "succeeded"


async def test_runs_list_newest_first(client):
    ids = [await submit(client, text_workflow(f"n{index}")) for index in range(3)]
    for run_id in ids:
        await wait_for(client, run_id)
    listing = await (await client.get("/api/runs?limit=2")).json()
    assert [run["id"] for run in listing["runs"]] == [ids[2], ids[1]]
    assert listing["total"] == 3
    page = await (await client.get("/api/runs?limit=2&offset=2")).json()
    assert [run["id"] for run in page["runs"]] == [ids[0]]
    filtered = await (await client.get("/api/runs?status=failed")).json()
    assert filtered["runs"] == []


async def test_runs_list_rejects_bad_query(client):
    response = await client.get("/api/runs?status=done")
    assert response.status == 400
    assert "unknown status 'done'" in (await response.json())["errors"][0]["message"]
    response = await client.get("/api/runs?limit=abc")
    assert response.status == 400
    assert (await response.json())["errors"][0]["message"] == "limit must be an integer, got 'abc'"


async def test_unknown_run_gives_404(client):
    assert (await client.get("/api/runs/nope")).status == 404
    assert (await client.delete("/api/runs/nope")).status == 404


async def test_interrupt_one_run_leaves_others(client):
    slow = await submit(client, slow_workflow())
    queued = await submit(client, text_workflow("queued"))
    later = await submit(client, text_workflow("later"))
    await wait_running_node(client, slow, "sleep")

    removed = await client.delete(f"/api/runs/{queued}")
    assert removed.status == 200
    assert (await removed.json())["action"] == "removed"
    assert (await client.get(f"/api/runs/{queued}")).status == 404
    assert (await (await client.get(f"/api/runs/{slow}")).json())["status"] == "running"

    interrupted = await client.delete(f"/api/runs/{slow}")
    assert interrupted.status == 202
    assert (await interrupted.json())["action"] == "interrupting"
    record = await wait_for(client, slow)
    assert record["status"] == "interrupted"
    assert record["nodes"]["sleep"]["status"] == "skipped"
    assert (await wait_for(client, later))["status"] == "succeeded"


async def test_queued_position(client):
    slow = await submit(client, slow_workflow())
    await wait_for(client, slow, ("running",))
    first = await client.post("/api/runs", json={"workflow": text_workflow("a")})
    second = await client.post("/api/runs", json={"workflow": text_workflow("b")})
    assert (await first.json())["position"] == 0
    assert (await second.json())["position"] == 1
    record = await (await client.get(f"/api/runs/{(await second.json())['id']}")).json()
    assert record["status"] == "queued"
    assert record["nodes"]["show"]["status"] == "pending"
    await client.delete(f"/api/runs/{slow}")


async def test_delete_finished_run_removes_files(client):
    run_id = await submit(client, image_workflow())
    record = await wait_for(client, run_id)
    image = record["outputs"]["save"]["images"][0]
    path = Path(image["path"])
    assert path.is_file()
    response = await client.delete(f"/api/runs/{run_id}")
    assert await response.json() == {"id": run_id, "action": "deleted", "deleted_files": 1}
    assert not path.exists()
    assert (await client.get(f"/api/runs/{run_id}")).status == 404


async def test_run_workflow_kept(client):
    run_id = await submit(client, text_workflow(), params={"text": "stored"})
    await wait_for(client, run_id)
    stored = await (await client.get(f"/api/runs/{run_id}/workflow")).json()
    assert stored["nodes"]["t"]["inputs"]["text"] == "stored"


# Events ----------------------------------------------------------------------------


async def read_run_events(socket, run_id: str, timeout: float = 20.0) -> list[dict]:
    events = []
    while True:
        message = await socket.receive_json(timeout=timeout)
        if message.get("run") == run_id:
            events.append(message)
            if message["event"] in ("run.succeeded", "run.failed", "run.interrupted", "run.invalid"):
                return events


async def test_events_stream_a_run(client):
    socket = await client.ws_connect("/api/events")
    run_id = await submit(client, slow_workflow(steps=3, step_seconds=0.0))
    events = await read_run_events(socket, run_id)
    names = [event["event"] for event in events]
    assert names[0] == "run.queued"
    assert names[1] == "run.started"
    assert names[-1] == "run.succeeded"
    assert names.count("node.progress") == 4
    assert events[-1]["outputs"] == {"show": {"text": ["done"]}}
    await socket.close()


async def test_events_give_file_urls(client):
    socket = await client.ws_connect("/api/events")
    run_id = await submit(client, image_workflow(value=123))
    events = await read_run_events(socket, run_id)
    finished = [event for event in events if event["event"] == "node.finished"][0]
    url = finished["display"]["images"][0]["url"]
    assert url == f"/api/files/output/test-{run_id}.png"
    assert events[-1]["outputs"]["save"]["images"][0]["url"] == url
    response = await client.get(url)
    assert response.status == 200
    from PIL import Image

    assert Image.open(io.BytesIO(await response.read())).getpixel((0, 0)) == (123, 10, 20)
    await socket.close()


async def test_events_subscription_filters_runs(client):
    socket = await client.ws_connect("/api/events")
    await socket.send_json({"subscribe": ["nothing-yet"]})
    assert await socket.receive_json(timeout=5) == {"event": "subscribed", "runs": ["nothing-yet"]}
    first = await submit(client, text_workflow("first"))
    await wait_for(client, first)
    await socket.send_json({"subscribe": "*"})
    second = await submit(client, text_workflow("second"))
    seen = []
    while True:
        message = await socket.receive_json(timeout=10)
        seen.append(message)
        if message.get("run") == second and message["event"] == "run.succeeded":
            break
    assert all(message.get("run") != first for message in seen)
    await socket.send_str("not json")
    reply = await socket.receive_json(timeout=5)
    while reply["event"] == "queue.status":
        reply = await socket.receive_json(timeout=5)
    assert reply == {"event": "error", "message": "messages must be JSON objects"}
    await socket.close()


async def test_events_runs_query(client):
    slow = await submit(client, slow_workflow(steps=20, step_seconds=0.01))
    socket = await client.ws_connect(f"/api/events?runs={slow}")
    other = await submit(client, text_workflow())
    await wait_for(client, other)
    events = []
    while not events or events[-1].get("event") != "queue.status" or events[-1].get("running") is not None:
        events.append(await socket.receive_json(timeout=10))
    assert all(event.get("run") in (slow, None) for event in events)
    await socket.close()


# Files and uploads -----------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "../runs.sqlite3", "..%2Fruns.sqlite3", "%2E%2E/runs.sqlite3", "%2Fetc%2Fpasswd", "a%00b.png", "sub/../../x",
])
async def test_file_traversal_rejected(client, path):
    from yarl import URL

    response = await client.get(URL(f"/api/files/output/{path}", encoded=True))
    assert 400 <= response.status < 500
    assert "root:" not in await response.text()


async def test_file_absolute_path_rejected(client):
    from yarl import URL

    response = await client.get(URL("/api/files/output//etc/passwd", encoded=True))
    assert 400 <= response.status < 500


async def test_file_symlink_out_rejected(client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, tmp_path / "data" / "output" / "link.txt")
    response = await client.get("/api/files/output/link.txt")
    assert response.status == 400
    assert "secret" not in await response.text()


async def test_file_unknown_kind_and_missing(client):
    assert (await client.get("/api/files/models/x.png")).status == 404
    assert (await client.get("/api/files/output/none.png")).status == 404


def png_bytes(size=(4, 4)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


async def upload(client, data: bytes, filename: str = "cat.png"):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type="image/png")
    return await client.post("/api/uploads", data=form)


async def test_upload_then_fetch(client):
    response = await upload(client, png_bytes(), "my cat.png")
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "my_cat.png"
    fetched = await client.get(body["url"])
    assert await fetched.read() == png_bytes()
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    again = await upload(client, png_bytes(), "my cat.png")
    assert (await again.json())["name"] == "my_cat.png"
    other = await upload(client, png_bytes((5, 5)), "my cat.png")
    assert (await other.json())["name"] == "my_cat-1.png"


async def test_upload_rejects_non_image(client):
    response = await upload(client, b"<script>alert(1)</script>", "x.png")
    assert response.status == 400
    assert (await response.json())["errors"][0]["code"] == "not_an_image"


async def test_upload_over_limit_gives_413(make_client):
    client = await make_client(limits=Limits(max_upload_bytes=100))
    response = await upload(client, png_bytes((64, 64)) + b"\0" * 200_000)
    assert response.status == 413


async def test_upload_too_many_pixels(make_client):
    client = await make_client(limits=Limits(max_image_pixels=100))
    response = await upload(client, png_bytes((20, 20)))
    assert response.status == 413
    assert (await response.json())["errors"][0]["message"] == (
        "'cat.png' has more than 100 pixels, the server's limit; scale it down first")


# Workflows -------------------------------------------------------------------------


async def test_workflows_save_load_delete(client):
    document = text_workflow()
    document["nodes"]["t"]["ui"] = {"pos": [1, 2]}
    saved = await client.put("/api/workflows/my flow", json=document)
    assert saved.status == 201
    assert (await client.put("/api/workflows/my flow", json=document)).status == 200
    assert await (await client.get("/api/workflows/my flow")).json() == document
    listing = (await (await client.get("/api/workflows")).json())["workflows"]
    assert _entry(listing, "my flow")["source"] == "user"
    assert _entry(listing, "my flow")["read_only"] is False
    assert _entry(listing, "text-branching")["read_only"] is True
    deleted = await client.delete("/api/workflows/my flow")
    assert await deleted.json() == {"name": "my flow", "deleted": True}
    assert (await client.get("/api/workflows/my flow")).status == 404


def _entry(listing: list[dict], name: str) -> dict:
    return next(item for item in listing if item["name"] == name)


async def test_workflow_examples_read_only(client):
    example = await client.get("/api/workflows/text-branching")
    assert example.status == 200
    document = await example.json()
    assert (await client.put("/api/workflows/text-branching", json=document)).status == 409
    assert (await client.delete("/api/workflows/text-branching")).status == 409


async def test_workflow_bad_name_and_document(client):
    assert (await client.put("/api/workflows/..hidden", json=text_workflow())).status == 400
    assert (await client.get("/api/workflows/a%2Fb")).status in (400, 404)
    response = await client.put("/api/workflows/broken", data=b"{not json")
    assert response.status == 400
    assert (await response.json())["errors"][0]["code"] == "invalid_json"


# Security --------------------------------------------------------------------------


async def test_foreign_origin_rejected(client):
    for origin in ("http://evil.example", "null"):
        response = await client.post("/api/runs", json={"workflow": text_workflow()}, headers={"Origin": origin})
        assert response.status == 403
        assert (await response.json())["errors"][0]["code"] == "origin_rejected"
    same = f"http://{client.host}:{client.port}"
    response = await client.post("/api/validate", json={"workflow": text_workflow()}, headers={"Origin": same})
    assert response.status == 200


async def test_foreign_origin_websocket_rejected(client):
    for origin in ("http://evil.example", "null"):
        with pytest.raises(WSServerHandshakeError) as raised:
            await client.ws_connect("/api/events", headers={"Origin": origin})
        assert raised.value.status == 403


async def test_allowed_origin_accepted(make_client):
    client = await make_client(allowed_origins={"http://localhost:3000"}, token="t")
    headers = {"Origin": "http://localhost:3000", "Authorization": "Bearer t"}
    response = await client.post("/api/validate", json={"workflow": text_workflow()}, headers=headers)
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    preflight = await client.options("/api/runs", headers={"Origin": "http://localhost:3000",
                                                           "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    foreign = await client.get("/api/runs", headers={"Origin": "http://evil.example", "Authorization": "Bearer t"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


async def test_foreign_host_rejected(client):
    response = await client.get("/", headers={"Host": "evil.example:8189"})
    assert response.status == 403
    assert (await response.json())["errors"][0]["code"] == "host_rejected"
    assert (await client.get("/", headers={"Host": "localhost:8189"})).status == 200


async def test_token_required_when_set(make_client):
    client = await make_client(token="s3cret")
    response = await client.get("/api/runs")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/api/runs", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/api/runs", headers={"Authorization": "Bearer s3cret"})).status == 200
    assert (await client.get("/", )).status == 200
    with pytest.raises(WSServerHandshakeError):
        await client.ws_connect("/api/events")
    socket = await client.ws_connect("/api/events?token=s3cret")
    await socket.close()


async def test_bind_elsewhere_needs_token():
    with pytest.raises(ConfigError) as raised:
        check_bind("0.0.0.0", None)
    assert str(raised.value).startswith("refusing to listen on 0.0.0.0: any machine that can reach it")
    check_bind("0.0.0.0", "token")
    check_bind("127.0.0.1", None)
    check_bind("::1", None)


async def test_serve_refuses_without_token(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("NODEGRAPH_TOKEN", raising=False)
    assert cli_main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


async def test_internal_error_hides_traceback(client, monkeypatch):
    from nodegraph.routes import STATE

    def broken(*args, **kwargs):
        raise RuntimeError("database exploded")

    monkeypatch.setattr(client.app[STATE].store, "list", broken)
    response = await client.get("/api/runs")
    assert response.status == 500
    text = await response.text()
    assert "Traceback" not in text
    assert "exploded" not in text
    assert json.loads(text)["errors"][0]["code"] == "internal"


async def test_unknown_api_route_gives_json_404(client):
    response = await client.get("/api/nothing")
    assert response.status == 404
    assert (await response.json())["errors"][0]["code"] == "not_found"
    response = await client.post("/api/nothing", json={})
    assert response.status == 404
    assert (await response.json())["errors"][0]["message"] == "no route POST /api/nothing; GET /api/openapi.json lists the API"


async def test_keep_runs_prunes_oldest(make_client):
    client = await make_client(keep_runs=1)
    records = []
    for value in (1, 2, 3):
        records.append(await wait_for(client, await submit(client, image_workflow(value))))
    paths = [Path(record["outputs"]["save"]["images"][0]["path"]) for record in records]
    # Pruning follows the run's end in the worker thread; wait for it.
    deadline = time.monotonic() + 10
    while (listing := await (await client.get("/api/runs")).json())["total"] > 1:
        assert time.monotonic() < deadline, listing
        await asyncio.sleep(0.02)
    assert [run["id"] for run in listing["runs"]] == [records[2]["id"]]
    assert [path.exists() for path in paths] == [False, False, True]


async def test_data_dir_locked_by_one_server(client, server_registry, tmp_path):
    with pytest.raises(ConfigError) as raised:
        create_app(ServerConfig(data_dir=tmp_path / "data"), registry=server_registry)
    assert str(raised.value) == (f"another nodegraph server (process {os.getpid()}) uses the data folder {tmp_path / 'data'}; "
                                 "stop it or pass a different --data-dir")


async def test_queue_survives_internal_error(client, monkeypatch):
    from nodegraph.routes import STATE

    queue = client.app[STATE].queue
    original = queue.executor.run

    def broken(*args, **kwargs):
        raise RuntimeError("executor exploded")

    monkeypatch.setattr(queue.executor, "run", broken)
    socket = await client.ws_connect("/api/events")
    run_id = await submit(client, text_workflow())
    events = await read_run_events(socket, run_id)
    assert events[-1]["event"] == "run.failed"
    record = await wait_for(client, run_id)
    assert record["status"] == "failed"
    assert record["error"] == {"message": "internal error while running; see the server log"}
    monkeypatch.setattr(queue.executor, "run", original)
    assert (await wait_for(client, await submit(client, text_workflow("next"))))["status"] == "succeeded"
    await socket.close()


async def test_events_carry_preview_images(client):
    from PIL import Image

    socket = await client.ws_connect("/api/events")
    document = slow_workflow(steps=2, step_seconds=0.0)
    document["nodes"]["sleep"]["inputs"]["preview"] = True
    run_id = await submit(client, document)
    progress = [event for event in await read_run_events(socket, run_id) if event["event"] == "node.progress"]
    assert len(progress) == 3
    prefix = "data:image/jpeg;base64,"
    assert progress[0]["preview"].startswith(prefix)
    preview = Image.open(io.BytesIO(base64.b64decode(progress[0]["preview"][len(prefix):])))
    assert preview.size == (256, 128)
    await socket.close()


async def test_bad_cases_over_body_limit(make_client):
    client = await make_client(limits=Limits(max_body_bytes=100_000))
    for case in BAD_CASES:
        response = await client.post("/api/runs", data=case.read_bytes())
        expected = 413 if case.stat().st_size > 100_000 else 400
        assert response.status == expected, case.name
    response = await client.post("/api/runs", data=(CASES / "bad" / "deep-nesting.json").read_bytes())
    assert (await response.json())["errors"][0]["message"] == (
        "the request body is 400001 bytes, over the limit of 100000 bytes; send a smaller one or raise the server's limit")


async def test_delete_keeps_files_other_runs_show(client):
    document = image_workflow(value=9)
    document["nodes"]["save"]["inputs"]["cache"] = True
    first = await wait_for(client, await submit(client, document))
    second = await wait_for(client, await submit(client, document))
    assert second["nodes"]["save"]["status"] == "cached"
    path = Path(first["outputs"]["save"]["images"][0]["path"])
    assert second["outputs"]["save"]["images"][0]["path"] == str(path)

    kept = await client.delete(f"/api/runs/{first['id']}")
    assert (await kept.json())["deleted_files"] == 0
    assert path.is_file()
    gone = await client.delete(f"/api/runs/{second['id']}")
    assert (await gone.json())["deleted_files"] == 1
    assert not path.exists()

    # The cache no longer serves the deleted file: the node runs again and writes a new one.
    third = await wait_for(client, await submit(client, document))
    assert third["nodes"]["save"]["status"] == "executed"
    assert Path(third["outputs"]["save"]["images"][0]["path"]).is_file()


async def test_responses_match_openapi_schemas(client):
    import jsonschema

    document = await (await client.get("/api/openapi.json")).json()

    def check(instance, name: str) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        jsonschema.Draft202012Validator(schema).validate(instance)

    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    socket = await client.ws_connect("/api/events")
    run_id = await submit(client, image_workflow())
    events = await read_run_events(socket, run_id)
    for event in events:
        check(event, "Event")
    check(await (await client.get(f"/api/runs/{run_id}")).json(), "Run")
    for run in (await (await client.get("/api/runs")).json())["runs"]:
        check(run, "RunSummary")
    check(await (await client.get("/api/system")).json(), "System")
    check(await (await client.get("/api/runs/nope")).json(), "Errors")
    for entry in (await (await client.get("/api/workflows")).json())["workflows"]:
        check(entry, "WorkflowEntry")
    for node_type in (await (await client.get("/api/nodes")).json()).values():
        check(node_type, "NodeType")
    await socket.close()
