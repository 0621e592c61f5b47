"""A real `python -m nodegraph serve` process on 127.0.0.1: submit, stream, fetch, kill and restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CASES, REPO, link, workflow
from nodegraph.cli import main as cli_main
from nodegraph.client import Client, ServerError

BAD_CASES = sorted((CASES / "bad").glob("*.json"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A `nodegraph serve` child process on a free loopback port."""

    def __init__(self, tmp_path: Path, data_dir: Path, *extra: str):
        pack = tmp_path / "pack"
        pack.mkdir(exist_ok=True)
        shutil.copy(REPO / "tests" / "server_nodes.py", pack / "server_nodes.py")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
        env.pop("NODEGRAPH_TOKEN", None)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nodegraph", "--nodes-dir", str(pack), "serve", "--port", str(self.port),
             "--data-dir", str(data_dir), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited: {self.log_path.read_text()}"
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s: {self.log_path.read_text()}")

    def kill_hard(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_hard()
        self.log.close()


@pytest.fixture
def server(tmp_path):
    process = ServerProcess(tmp_path, tmp_path / "data")
    yield process
    process.stop()


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def image_workflow() -> dict:
    return workflow({
        "save": {"type": "TestSaveImage", "inputs": {"value": 77}},
        "t": {"type": "Text", "inputs": {"text": "hello"}},
        "show": {"type": "ShowText", "title": "greeting", "inputs": {"text": link("t", "text")}},
    }, params={"text": ["t", "text"]})


def slow_workflow(steps: int) -> dict:
    return workflow({"sleep": {"type": "TestSleep", "inputs": {"text": "slept", "steps": steps, "step_seconds": 0.01}},
                     "show": {"type": "ShowText", "inputs": {"text": link("sleep", "text")}}})


def test_submit_stream_and_fetch(server, tmp_path):
    events = []
    with Client(server.url) as client:
        record = client.run(image_workflow(), params={"text": "over http"}, on_event=events.append)
        assert record["status"] == "succeeded"
        assert record["outputs"]["show"] == {"text": ["over http"]}
        paths = client.download_outputs(record, tmp_path / "downloads")
        system = client.system()
    names = [event["event"] for event in events]
    assert names[0] == "run.queued"
    assert names[-1] == "run.succeeded"
    assert names.count("node.finished") == 3
    assert [path.name for path in paths] == [f"test-{record['id']}.png"]
    assert paths[0].read_bytes() == Path(record["outputs"]["save"]["images"][0]["path"]).read_bytes()
    # Serving pages, the catalog and small runs never needed torch.
    assert system["device"]["type"] is None


def test_cli_run_against_server(server, tmp_path, capsys):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(image_workflow()))
    out = tmp_path / "out"
    code = cli_main(["--nodes-dir", str(tmp_path / "pack"), "run", str(path), "--server", server.url, "--out", str(out),
                     "--set", "text=from the cli", "--events", str(tmp_path / "events.jsonl")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "[greeting] from the cli" in captured.out
    saved = list(out.glob("test-*.png"))
    assert len(saved) == 1
    assert f"[save] {saved[0]}" in captured.out
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "run.succeeded"


def test_cli_run_invalid_on_server(server, capsys):
    code = cli_main(["run", str(CASES / "bad" / "missing-param-target.json"), "--server", server.url])
    assert code == 2
    assert "param 'prompt' targets node 'q', which is not in the workflow" in capsys.readouterr().err


def test_bad_cases_over_http(server, capsys):
    for case in BAD_CASES:
        capsys.readouterr()
        assert cli_main(["validate", str(case), "--json"]) == 2
        expected = json.loads(capsys.readouterr().out)["errors"]
        status, body = post(server.url + "/api/runs", case.read_bytes())
        assert status == 400, case.name
        assert body["errors"] == expected, case.name


def test_limits_and_origin_over_http(server):
    status, body = post(server.url + "/api/runs", b"{" + b" " * (18 * 1024 * 1024) + b"}")
    assert status == 413
    assert body["errors"][0]["code"] == "too_large"
    for origin in ("null", "http://evil.example"):
        status, body = post(server.url + "/api/runs", json.dumps({"workflow": image_workflow()}).encode(), {"Origin": origin})
        assert status == 403
    request = urllib.request.Request(server.url + "/api/files/output/..%2F..%2Fetc%2Fpasswd")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400


def test_token_required_for_api(tmp_path):
    process = ServerProcess(tmp_path, tmp_path / "data", "--token", "abc123")
    try:
        with Client(process.url) as client, pytest.raises(ServerError) as raised:
            client.nodes()
        assert raised.value.status == 401
        with Client(process.url, token="abc123") as client:
            assert "Text" in client.nodes()
    finally:
        process.stop()


def test_non_loopback_without_token_refused(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NODEGRAPH_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "nodegraph", "serve", "--host", "0.0.0.0", "--port", str(free_port()),
                             "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_restart_after_kill_keeps_runs(tmp_path):
    data = tmp_path / "data"
    first = ServerProcess(tmp_path, data)
    try:
        with Client(first.url) as client:
            done = client.run(image_workflow())
            slow = client.submit(slow_workflow(steps=100_000))["id"]
            queued = [client.submit(image_workflow(), params={"text": f"queued {index}"})["id"] for index in range(3)]
            deadline = time.monotonic() + 20
            while client.get_run(slow)["nodes"]["sleep"]["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        first.kill_hard()
    finally:
        first.stop()

    second = ServerProcess(tmp_path, data)
    try:
        with Client(second.url) as client:
            interrupted = client.wait(slow)
            assert interrupted["status"] == "interrupted"
            assert interrupted["error"]["message"].startswith("the server stopped while this run was running")
            assert interrupted["nodes"]["sleep"] == {"status": "skipped", "reason": "server_stopped", "seconds": None}
            for index, run_id in enumerate(queued):
                record = client.wait(run_id, poll_seconds=0.05)
                assert record["status"] == "succeeded"
                assert record["outputs"]["show"] == {"text": [f"queued {index}"]}
            history = client.list_runs(limit=10)
            assert [run["id"] for run in history["runs"]] == [*reversed(queued), slow, done["id"]]
            assert client.get_run(done["id"])["status"] == "succeeded"
    finally:
        second.stop()


def test_cli_ctrl_c_interrupts_server_run(server, tmp_path):
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(slow_workflow(steps=100_000)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = subprocess.Popen([sys.executable, "-m", "nodegraph", "--nodes-dir", str(tmp_path / "pack"), "run", str(path),
                            "--server", server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        with Client(server.url) as client:
            deadline = time.monotonic() + 30
            while not (runs := client.list_runs(status="running")["runs"]):
                assert time.monotonic() < deadline, cli.stderr.read() if cli.poll() is not None else "no running run"
                time.sleep(0.05)
            cli.send_signal(signal.SIGINT)
            _, stderr = cli.communicate(timeout=30)
            assert cli.returncode == 130, stderr
            assert f"interrupting run {runs[0]['id']} on the server" in stderr
            assert client.get_run(runs[0]["id"])["status"] == "interrupted"
    finally:
        if cli.poll() is None:
            cli.kill()
