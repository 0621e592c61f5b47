"""Benchmark the browser editor in headless Chromium: open a 500-node workflow, then pan it.

Measures, in the page:
  - open: from the workflow's JSON text to the end of the first frame that draws it
    (JSON.parse, building the graph, fitting the view, layout and drawing);
  - pan: 240 animation frames, each moving the view by a few pixels as a drag does. It reports the
    editor's own drawing time per frame and the interval between requestAnimationFrame timestamps.
At "fit" zoom (all 500 nodes on screen, drawn without text), at 45 % (just above the zoom where text
and widgets are drawn: the most work per frame) and at 100 % (culling leaves most nodes out).

Usage: PYTHONPATH=. python benchmarks/editor.py [--nodes 500] [--screenshot docs/editor.png]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CHAIN = ("Text", "TextConcat", "TextConcat", "TextTemplate", "ShowText")


def generate(count: int) -> dict:
    """Build a workflow of `count` nodes: chains of five linked nodes laid out in a grid."""
    nodes: dict = {}
    chains = count // len(CHAIN)
    columns = 10
    for chain in range(chains):
        left = (chain % columns) * 1500
        top = (chain // columns) * 260
        previous = None
        for step, node_type in enumerate(CHAIN):
            node_id = f"c{chain}_{step}"
            inputs: dict = {}
            if node_type == "Text":
                inputs = {"text": f"prompt number {chain}"}
            elif node_type == "TextConcat":
                inputs = {"first": {"from": [previous, "text"]}, "second": f"detail {step}", "separator": ", "}
            elif node_type == "TextTemplate":
                inputs = {"template": "{a}!", "a": {"from": [previous, "text"]}}
            elif node_type == "ShowText":
                inputs = {"text": {"from": [previous, "text"]}}
            nodes[node_id] = {"type": node_type, "inputs": inputs, "ui": {"pos": [left + step * 290, top]}}
            previous = node_id
    return {"format": "nodegraph/workflow", "version": 1, "name": f"{count} nodes", "nodes": nodes}


OPEN_SCRIPT = """async (text) => {
  const started = performance.now();
  window.nodegraphEditor.load(JSON.parse(text));
  // The editor's draw was requested first, so it runs before this callback in the same frame.
  await new Promise((done) => requestAnimationFrame(done));
  return performance.now() - started;
}"""

PAN_SCRIPT = """async ([frames, dx, dy]) => {
  const hook = window.nodegraphEditor;
  const stamps = [];
  await new Promise((done) => {
    const step = (time) => {
      stamps.push(time);
      if (stamps.length > frames) return done();
      hook.panBy(stamps.length % 120 < 60 ? dx : -dx, dy * (stamps.length % 120 < 60 ? 1 : -1));
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  return { stamps, draws: hook.frames().drawTimes, drawn: hook.frames().drawn, k: hook.view().k };
}"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def pan(page, frames: int = 240) -> dict:
    result = page.evaluate(PAN_SCRIPT, [frames, 6, 2])
    intervals = [b - a for a, b in zip(result["stamps"], result["stamps"][1:])]
    draws = result["draws"][-frames:]
    return {
        "zoom": round(result["k"], 3),
        "nodes drawn": result["drawn"],
        "draw median ms": round(statistics.median(draws), 2),
        "draw p95 ms": round(percentile(draws, 0.95), 2),
        "interval median ms": round(statistics.median(intervals), 2),
        "intervals > 25 ms": sum(1 for value in intervals if value > 25),
        "frames": len(intervals),
    }


def zoom_to(page, target: float) -> None:
    """Zoom around the middle of the screen with the wheel, as a user would."""
    page.mouse.move(700, 400)
    for _ in range(10):
        k = page.evaluate("window.nodegraphEditor.view().k")
        if abs(k - target) < 0.01 * target:
            return
        # The editor scales by exp(-deltaY * 0.0015) per wheel event.
        page.mouse.wheel(0, math.log(k / target) / 0.0015)
        page.wait_for_timeout(50)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "nodegraph", "serve", "--port", str(port), "--data-dir", str(data_dir)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/nodes", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start within 30 s")


def screenshot(page, path: Path) -> None:
    """Open the seed example from the File menu, run it, and save a picture of the editor."""
    page.click(".menubar [data-menu='file']")
    page.hover(".menu-item[data-menu-id='examples']")
    page.locator(".menu-item[data-menu-id^='example-']").first.click()
    page.wait_for_function("Object.keys(window.nodegraphEditor.graph().nodes).length > 0")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("window.nodegraphEditor.status() === 'succeeded'")
    page.mouse.click(5, 780)  # deselect, so no node has the selection outline
    page.wait_for_timeout(200)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="how many times to open the workflow")
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the seed example here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    text = json.dumps(generate(args.nodes))
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_server(Path(folder) / "data")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 850})
                errors: list[str] = []
                page.on("console", lambda message: message.type == "error" and errors.append(message.text))
                page.goto(url + "/")
                page.wait_for_function("window.nodegraphEditor && window.nodegraphEditor.ready")

                opens = [page.evaluate(OPEN_SCRIPT, text) for _ in range(args.repeat)]
                results = {"pan at fit zoom": pan(page)}
                for target in (0.45, 1.0):
                    zoom_to(page, target)
                    results[f"pan at {target:.0%} zoom"] = pan(page)
                if args.screenshot:
                    screenshot(page, args.screenshot)
                version = browser.version
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
          f"Chromium {version} headless, viewport 1400x850")
    print(f"open {args.nodes} nodes (JSON text to first frame drawn), {args.repeat} runs: "
          f"median {statistics.median(opens):.1f} ms, max {max(opens):.1f} ms")
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))
    if errors:
        print("console errors:", *errors, sep="\n  ")


if __name__ == "__main__":
    main()
