"""The Python client against the server app on aiohttp's test server."""

from __future__ import annotations

import io

import pytest
import pytest_asyncio

import server_nodes
from conftest import link, workflow
from nodegraph.client import AsyncClient, ServerError
from nodegraph.server import ServerConfig, create_app

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def api(aiohttp_client, registry, tmp_path):
    registry.register_module(server_nodes, "tests")
    test_client = await aiohttp_client(create_app(ServerConfig(data_dir=tmp_path / "data"), registry=registry))
    async with AsyncClient(str(test_client.make_url("/")).rstrip("/")) as client:
        yield client


def greeting() -> dict:
    return workflow({"t": {"type": "Text", "inputs": {"text": "hi"}},
                     "show": {"type": "ShowText", "inputs": {"text": link("t", "text")}}}, params={"text": ["t", "text"]})


async def test_client_run_streams_events(api):
    events = []
    record = await api.run(greeting(), params={"text": "hello"}, on_event=events.append)
    assert record["status"] == "succeeded"
    assert record["outputs"] == {"show": {"text": ["hello"]}}
    assert [event["event"] for event in events][0] == "run.queued"
    assert events[-1]["event"] == "run.succeeded"
    assert api.current_run == record["id"]


async def test_client_rejected_run_raises(api):
    with pytest.raises(ServerError) as raised:
        await api.submit(greeting(), params={"nope": "x"})
    assert raised.value.status == 400
    assert [problem.code for problem in raised.value.problems] == ["unknown_param"]


async def test_client_validate_and_lists(api):
    assert await api.validate(greeting()) == []
    assert "Text" in await api.nodes()
    assert (await api.system())["queue"]["queued"] == 0
    record = await api.run(greeting())
    listing = await api.list_runs(status="succeeded")
    assert [run["id"] for run in listing["runs"]] == [record["id"]]
    assert (await api.cancel(record["id"]))["action"] == "deleted"


async def test_client_upload_and_download(api, tmp_path):
    from PIL import Image

    source = tmp_path / "in.png"
    Image.new("RGB", (3, 3), (5, 6, 7)).save(source)
    name = await api.upload(source)
    assert name == "in.png"
    saved = await api.download(f"/api/files/input/{name}", tmp_path / "copy.png")
    assert saved.read_bytes() == source.read_bytes()
    record = await api.run(workflow({"save": {"type": "TestSaveImage", "inputs": {"value": 50}}}))
    paths = await api.download_outputs(record, tmp_path / "outputs")
    assert [path.name for path in paths] == [f"test-{record['id']}.png"]
    assert Image.open(io.BytesIO(paths[0].read_bytes())).getpixel((0, 0)) == (50, 10, 20)
