"""Benchmark the server: start-up time, idle memory, run throughput over HTTP, event fan-out to WebSockets.

Starts a real `python -m nodegraph serve` on a free 127.0.0.1 port with a temporary data folder.

    PYTHONPATH=. python benchmarks/server.py [--runs 200] [--clients 20] [--sockets 50]

Prints a Markdown table; the figures in docs/benchmarks.md come from it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time a process has used, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(folder: Path) -> tuple[subprocess.Popen, str, float, float]:
    """Start a server; return the process, its URL, the seconds until GET / returned 200 and the CPU seconds used by then."""
    pack = folder / "pack"
    pack.mkdir(exist_ok=True)
    shutil.copy(REPO / "tests" / "server_nodes.py", pack / "server_nodes.py")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "nodegraph", "--nodes-dir", str(pack), "serve", "--port", str(port),
                                "--data-dir", str(folder / f"data-{port}")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=1) as response:
                if response.status == 200:
                    return process, url, time.perf_counter() - started, cpu_seconds(process.pid)
        except (urllib.error.URLError, OSError):
            if process.poll() is not None:
                raise SystemExit("the server exited during start-up")
            time.sleep(0.005)


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(20)


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def small_workflow() -> dict:
    return {"format": "nodegraph/workflow", "version": 1, "name": "bench",
            "nodes": {"t": {"type": "Text", "inputs": {"text": "x"}},
                      "join": {"type": "TextConcat", "inputs": {"first": {"from": ["t", "text"]}, "second": "y"}},
                      "show": {"type": "ShowText", "inputs": {"text": {"from": ["join", "text"]}}}},
            "params": {"text": ["t", "text"]}}


class RunWaiter:
    """Follows every run's terminal event on one WebSocket, so clients can await their runs."""

    def __init__(self) -> None:
        self.done: dict[str, asyncio.Event] = {}

    def event_for(self, run_id: str) -> asyncio.Event:
        return self.done.setdefault(run_id, asyncio.Event())

    async def listen(self, socket) -> None:
        async for message in socket:
            event = json.loads(message.data)
            if event["event"] in ("run.succeeded", "run.failed", "run.interrupted", "run.invalid"):
                self.event_for(event["run"]).set()


async def throughput(url: str, runs: int, clients: int) -> float:
    """Return runs per second when `clients` clients each submit and await runs one after another."""
    async with aiohttp.ClientSession() as session:
        socket = await session.ws_connect(url + "/api/events")
        waiter = RunWaiter()
        listener = asyncio.create_task(waiter.listen(socket))
        counter = iter(range(runs))

        async def client() -> None:
            for index in counter:
                body = {"workflow": small_workflow(), "params": {"text": f"run {index} {time.time()}"}}
                async with session.post(url + "/api/runs", json=body) as response:
                    assert response.status == 202, await response.text()
                    run_id = (await response.json())["id"]
                await waiter.event_for(run_id).wait()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
        listener.cancel()
        await socket.close()
        return runs / seconds


async def fan_out(url: str, sockets: int, steps: int) -> dict[str, float]:
    """Connect `sockets` WebSocket clients, run one workflow with `steps` progress events, measure delivery."""
    workflow = {"format": "nodegraph/workflow", "version": 1,
                "nodes": {"sleep": {"type": "TestSleep", "inputs": {"text": "x", "steps": steps, "step_seconds": 0.0}},
                          "show": {"type": "ShowText", "inputs": {"text": {"from": ["sleep", "text"]}}}}}
    async with aiohttp.ClientSession() as session:
        connections = [await session.ws_connect(url + "/api/events") for _ in range(sockets)]
        latencies: list[float] = []
        counts: list[int] = []

        async def read(connection) -> None:
            count = 0
            async for message in connection:
                event = json.loads(message.data)
                if event.get("run") is None:
                    continue
                latencies.append(time.time() - event["time"])
                count += 1
                if event["event"] == "run.succeeded":
                    break
            counts.append(count)

        readers = [asyncio.create_task(read(connection)) for connection in connections]
        started = time.perf_counter()
        async with session.post(url + "/api/runs", json={"workflow": workflow}) as response:
            assert response.status == 202
        await asyncio.gather(*readers)
        seconds = time.perf_counter() - started
        for connection in connections:
            await connection.close()
    latencies.sort()
    return {"events_per_client": statistics.median(counts), "min_events": min(counts), "seconds": seconds,
            "deliveries_per_second": sum(counts) / seconds, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000, "max_ms": latencies[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per throughput measurement")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--sockets", type=int, default=50, help="WebSocket clients for the fan-out measurement")
    parser.add_argument("--steps", type=int, default=200, help="progress events in the fan-out run")
    parser.add_argument("--starts", type=int, default=5, help="server starts for the start-up time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        startups, startup_cpu = [], []
        for _ in range(args.starts):
            process, url, seconds, cpu = start_server(folder)
            startups.append(seconds)
            startup_cpu.append(cpu)
            stop_server(process)

        process, url, _, _ = start_server(folder)
        try:
            time.sleep(1.0)
            idle_mb = resident_mb(process.pid)
            with urllib.request.urlopen(url + "/api/system") as response:
                device = json.loads(response.read())["device"]["type"]
            single = asyncio.run(throughput(url, args.runs, 1))
            many = asyncio.run(throughput(url, args.runs, args.clients))
            fan = asyncio.run(fan_out(url, args.sockets, args.steps))
            after_mb = resident_mb(process.pid)
        finally:
            stop_server(process)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}; "
          f"load average at the end {load}")
    print()
    print("| measurement | result |")
    print("| --- | --- |")
    print(f"| start-up to first `GET /` (median of {args.starts}) | {statistics.median(startups):.2f} s "
          f"(min {min(startups):.2f}, max {max(startups):.2f}) |")
    print(f"| CPU time of the server process until that answer (median) | {statistics.median(startup_cpu):.2f} s |")
    print(f"| torch loaded after start-up | {'no' if device is None else 'yes'} |")
    print(f"| resident memory, idle after start-up | {idle_mb:.0f} MB |")
    print(f"| small runs over HTTP, 1 client (submit, await the end, repeat) | {single:.0f} runs/s ({args.runs} runs) |")
    print(f"| small runs over HTTP, {args.clients} concurrent clients | {many:.0f} runs/s ({args.runs} runs) |")
    print(f"| events to {args.sockets} WebSocket clients, one run of {args.steps} progress steps | "
          f"{fan['events_per_client']:.0f} events each (min {fan['min_events']}), "
          f"{fan['deliveries_per_second']:.0f} deliveries/s, latency p50 {fan['p50_ms']:.1f} ms, "
          f"p99 {fan['p99_ms']:.1f} ms, max {fan['max_ms']:.1f} ms |")
    print(f"| resident memory after the runs | {after_mb:.0f} MB |")


if __name__ == "__main__":
    main()
