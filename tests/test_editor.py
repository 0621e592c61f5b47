"""The browser editor, driven in headless Chromium through Playwright with the real mouse and keyboard.

A real `nodegraph` server process serves the editor on 127.0.0.1; the tests read the editor's state
through its `window.nodegraphEditor` hook and never call its internals to fake a gesture.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TEST_NODES = Path(__file__).resolve().parent / "editor_nodes"
SHIPPED = sorted((REPO / "workflows").glob("*.json"))

LAUNCHER = (
    "import sys; from pathlib import Path; from nodegraph.server import ServerConfig, serve; "
    "serve(ServerConfig(port=int(sys.argv[1]), data_dir=Path(sys.argv[2]), nodes_dirs=[Path(sys.argv[3])], "
    "token=sys.argv[4] if len(sys.argv) > 4 else None))"
)


# ---- server and browser --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A `nodegraph` server process on 127.0.0.1, with the test node pack loaded (and a token, when given)."""

    def __init__(self, data_dir: Path, port: int | None = None, token: str | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
        command = [sys.executable, "-c", LAUNCHER, str(self.port), str(self.data_dir), str(TEST_NODES)]
        self.process = subprocess.Popen(command + ([self.token] if self.token else []),
                                        env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {log.name}")
            try:
                self.get_json("/api/nodes")
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within 30 s")

    def stop(self, hard: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.process.wait(timeout=15)

    def request(self, path: str, body: dict | None = None) -> bytes:
        """GET (or POST `body` as JSON) with the token, as a script would."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data, headers=headers),
                                    timeout=5) as response:
            return response.read()

    def get_json(self, path: str):
        return json.loads(self.request(path))

    def wait_for_run(self, run_id: str) -> dict:
        deadline = time.monotonic() + 120
        while (record := self.get_json(f"/api/runs/{run_id}"))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"run {run_id} is still {record['status']}"
            time.sleep(0.1)
        return record


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = Server(tmp_path_factory.mktemp("editor") / "data").start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Chromium at /usr/bin/chromium (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every browser a fresh temporary profile, removed when it closes.
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class EditorPage:
    """One editor tab: the Playwright page plus helpers that read the test hook."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url
        self.problems: list[str] = []
        page.on("console", lambda message: message.type in ("error", "warning") and self.problems.append(
            f"console {message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def open(self) -> "EditorPage":
        self.page.goto(self.url)
        self.page.wait_for_function("window.nodegraphEditor && window.nodegraphEditor.ready")
        return self

    def hook(self, expression: str, *args):
        return self.page.evaluate(f"(args) => window.nodegraphEditor.{expression}", list(args))

    def graph(self) -> dict:
        return self.hook("graph()")

    def load(self, document: dict) -> None:
        self.page.evaluate("(doc) => window.nodegraphEditor.load(doc)", document)
        self.settle()

    def settle(self) -> None:
        # Two animation frames: the one that draws pending changes, and one after it.
        self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def slot(self, node: str, kind: str, name: str) -> tuple[float, float]:
        point = self.hook("slot(args[0], args[1], args[2])", node, kind, name)
        assert point, f"no {kind} slot {name!r} on node {node!r}"
        return point["x"], point["y"]

    def title(self, node: str, dx: float = 60) -> tuple[float, float]:
        point = self.hook("nodePoint(args[0], args[1])", node, dx)
        return point["x"], point["y"]

    def widget(self, node: str, name: str) -> dict:
        rect = self.hook("widget(args[0], args[1])", node, name)
        assert rect, f"no widget {name!r} on node {node!r}"
        return rect

    def drag(self, start, end, steps: int = 8, button: str = "left") -> None:
        mouse = self.page.mouse
        mouse.move(*start)
        mouse.down(button=button)
        mouse.move(*end, steps=steps)
        mouse.up(button=button)
        self.settle()

    def click_menu(self, *path: str) -> None:
        """Open a menubar menu and click through the item ids of its submenus."""
        self.page.click(f".menubar [data-menu='{path[0]}']")
        for item in path[1:]:
            entry = self.page.locator(f".menu-item[data-menu-id='{item}']").last
            entry.hover()
            if item == path[-1]:
                entry.click()

    def links(self) -> set[tuple[str, str, str, str]]:
        return links_of(self.graph())


def shift_click(editor: EditorPage, point) -> None:
    editor.page.keyboard.down("Shift")
    editor.page.mouse.click(*point)
    editor.page.keyboard.up("Shift")


def links_of(document: dict) -> set[tuple[str, str, str, str]]:
    found = set()
    for node_id, node in document["nodes"].items():
        for name, value in node.get("inputs", {}).items():
            if isinstance(value, dict) and "from" in value:
                found.add((value["from"][0], value["from"][1], node_id, name))
    return found


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 850}, locale="en-US")
    yield context
    context.close()


@pytest.fixture
def editor(context, server):
    editor = EditorPage(context.new_page(), server.url + "/").open()
    yield editor
    assert editor.problems == [], "the page logged errors"


def document(nodes: dict, **extra) -> dict:
    return {"format": "nodegraph/workflow", "version": 1, "nodes": nodes, **extra}


TEXT_AND_SHOW = document({
    "words": {"type": "Text", "inputs": {"text": "hello"}, "ui": {"pos": [0, 0]}},
    "number": {"type": "Float", "inputs": {"value": 0.5}, "ui": {"pos": [0, 200]}},
    "join": {"type": "TextConcat", "inputs": {"first": "a", "second": "b", "separator": " "}, "ui": {"pos": [400, 0]}},
    "show": {"type": "ShowText", "inputs": {}, "ui": {"pos": [400, 300]}},
})


# ---- adding nodes and links -----------------------------------------------------------------------


def test_add_node_by_search(editor):
    editor.page.mouse.dblclick(700, 400)
    editor.page.keyboard.type("concat")
    assert editor.page.locator(".search-item").first.get_attribute("data-type") == "TextConcat"
    editor.page.keyboard.press("Enter")
    editor.settle()

    nodes = editor.graph()["nodes"]
    assert [node["type"] for node in nodes.values()] == ["TextConcat"]
    assert nodes["textconcat"]["inputs"] == {"first": "", "second": "", "separator": " "}


def test_search_matches_category_and_description(editor):
    editor.page.mouse.dblclick(700, 400)
    editor.page.keyboard.type("first input that is not skipped")
    assert editor.page.locator(".search-item").first.get_attribute("data-type") == "Merge"
    editor.page.keyboard.press("Escape")
    assert editor.graph()["nodes"] == {}


def test_connect_two_nodes_by_dragging(editor):
    editor.load(TEXT_AND_SHOW)
    editor.drag(editor.slot("words", "output", "text"), editor.slot("show", "input", "text"))
    assert editor.links() == {("words", "text", "show", "text")}


def test_incompatible_link_rejected_with_hint(editor):
    editor.load(TEXT_AND_SHOW)
    editor.drag(editor.slot("number", "output", "value"), editor.slot("join", "input", "first"))

    assert editor.links() == set()
    message = "Cannot link FLOAT to STRING: input first takes STRING."
    assert editor.hook("hint()") == message
    assert editor.page.locator(".notice", has_text=message).is_visible()


def test_new_link_replaces_the_old_one(editor):
    editor.load(TEXT_AND_SHOW)
    editor.drag(editor.slot("words", "output", "text"), editor.slot("show", "input", "text"))
    editor.drag(editor.slot("join", "output", "text"), editor.slot("show", "input", "text"))
    assert editor.links() == {("join", "text", "show", "text")}


def test_reroute_by_dragging_a_links_end(editor):
    editor.load(TEXT_AND_SHOW)
    editor.drag(editor.slot("words", "output", "text"), editor.slot("join", "input", "first"))
    editor.drag(editor.slot("join", "input", "first"), editor.slot("show", "input", "text"))
    graph = editor.graph()
    assert links_of(graph) == {("words", "text", "show", "text")}
    assert graph["nodes"]["join"]["inputs"]["first"] == ""  # the widget's default is back


def test_link_dropped_on_empty_canvas(editor):
    editor.load(TEXT_AND_SHOW)
    start = editor.slot("number", "output", "value")
    editor.drag(start, (start[0] + 250, start[1] + 250))
    offered = set(editor.page.locator(".search-item").evaluate_all("items => items.map((item) => item.dataset.type)"))
    assert "ShowText" in offered
    assert "TextConcat" not in offered
    editor.page.keyboard.type("show text")
    editor.page.keyboard.press("Enter")
    editor.settle()
    assert ("number", "value", "showtext", "text") in editor.links()


# ---- widgets -------------------------------------------------------------------------------------


def test_edited_widgets_saved_in_json(editor, server):
    editor.load(document({
        "words": {"type": "Text", "inputs": {"text": "hello"}, "ui": {"pos": [0, 0]}},
        "count": {"type": "Int", "inputs": {"value": 3}, "ui": {"pos": [0, 250]}},
        "flag": {"type": "Boolean", "inputs": {"value": False}, "ui": {"pos": [300, 250]}},
        "gate": {"type": "QualityBranch", "inputs": {"threshold": 0.6}, "ui": {"pos": [300, 0]}},
    }))

    # Multi-line text: a text area over the widget.
    rect = editor.widget("words", "text")
    editor.page.mouse.click(rect["x"] + 20, rect["y"] + 10)
    editor.page.keyboard.press("Control+A")
    editor.page.keyboard.type("a lighthouse at dusk")
    editor.page.keyboard.press("Control+Enter")

    # Number: the right arrow steps up; dragging right adds one step per few pixels; a click types.
    rect = editor.widget("count", "value")
    editor.page.mouse.click(rect["x"] + rect["w"] - 5, rect["y"] + rect["h"] / 2)
    assert editor.graph()["nodes"]["count"]["inputs"]["value"] == 4
    middle = (rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.drag(middle, (middle[0] + 60, middle[1]), steps=10)
    dragged = editor.graph()["nodes"]["count"]["inputs"]["value"]
    assert dragged > 4
    editor.page.mouse.click(*middle)
    editor.page.keyboard.press("Control+A")
    editor.page.keyboard.type("42")
    editor.page.keyboard.press("Enter")

    # Toggle and slider.
    rect = editor.widget("flag", "value")
    editor.page.mouse.click(rect["x"] + rect["w"] - 15, rect["y"] + rect["h"] / 2)
    rect = editor.widget("gate", "threshold")
    editor.page.mouse.click(rect["x"] + rect["w"] * 0.25, rect["y"] + rect["h"] / 2)

    # Save as, through the File menu and the name dialog.
    editor.click_menu("file", "save-as")
    editor.page.fill(".dialog-input", "edited")
    editor.page.keyboard.press("Enter")
    editor.page.wait_for_selector(".notice:has-text('Saved as')")

    saved = server.get_json("/api/workflows/edited")
    assert saved["nodes"]["words"]["inputs"]["text"] == "a lighthouse at dusk"
    assert saved["nodes"]["count"]["inputs"]["value"] == 42
    assert saved["nodes"]["flag"]["inputs"]["value"] is True
    assert saved["nodes"]["gate"]["inputs"]["threshold"] == pytest.approx(0.25, abs=0.02)
    assert saved == editor.graph() | {"name": "edited"}
    assert editor.hook("name()") == "edited"

    # Ctrl+S saves under the same name; File > New empties the canvas; Ctrl+O opens the saved one again.
    rect = editor.widget("count", "value")
    editor.page.mouse.click(rect["x"] + rect["w"] - 5, rect["y"] + rect["h"] / 2)
    editor.page.keyboard.press("Control+S")
    editor.page.wait_for_function("window.nodegraphEditor.notices().filter((text) => text.startsWith('Saved')).length === 2")
    assert server.get_json("/api/workflows/edited")["nodes"]["count"]["inputs"]["value"] == 43
    editor.page.keyboard.press("Control+Z")
    editor.click_menu("file", "new")
    assert editor.graph()["nodes"] == {}
    editor.page.keyboard.press("Control+O")
    editor.page.click(".dialog [data-workflow='edited']")
    editor.page.wait_for_function("Object.keys(window.nodegraphEditor.graph().nodes).length === 4")


def test_number_widget_rejects_text(editor):
    editor.load(document({"score": {"type": "Float", "inputs": {"value": 0.5}, "ui": {"pos": [0, 0]}}}))
    rect = editor.widget("score", "value")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.page.keyboard.press("Control+A")
    editor.page.keyboard.type("lots")
    editor.page.keyboard.press("Enter")
    assert editor.hook("hint()") == "“lots” is not a number; input value keeps its value."
    assert editor.graph()["nodes"]["score"]["inputs"]["value"] == 0.5


def test_combo_widget_picks_a_choice(editor):
    editor.load(document({"count": {"type": "SlowCount", "inputs": {"steps": 2, "seconds": 0.0, "verb": "counted"},
                                    "ui": {"pos": [0, 0]}}}))
    rect = editor.widget("count", "verb")
    middle = (rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.page.mouse.click(*middle)
    assert editor.page.locator(".menu .menu-label").all_text_contents() == ["counted", "tallied", "numbered"]
    editor.page.locator(".menu .menu-item", has_text="numbered").click()
    assert editor.graph()["nodes"]["count"]["inputs"]["verb"] == "numbered"

    # The arrows step through the choices, wrapping around.
    editor.page.mouse.click(rect["x"] + rect["w"] - 5, middle[1])
    assert editor.graph()["nodes"]["count"]["inputs"]["verb"] == "counted"
    editor.page.mouse.click(rect["x"] + 5, middle[1])
    assert editor.graph()["nodes"]["count"]["inputs"]["verb"] == "numbered"
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.state('count')?.text?.[0] === 'numbered to 2'")


def test_seed_randomized_before_queue(editor):
    editor.load(document({"seed": {"type": "Seed", "inputs": {"value": 7}, "ui": {"pos": [0, 0], "randomize": ["value"]}},
                          "show": {"type": "ShowText", "inputs": {"text": {"from": ["seed", "value"]}},
                                   "ui": {"pos": [300, 0]}}}))
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.state('show')?.status === 'finished'")
    seed = editor.graph()["nodes"]["seed"]["inputs"]["value"]
    assert seed != 7
    assert editor.hook("state('show')")["text"] == [str(seed)]

    # Turning randomize off keeps the value for the next run.
    rect = editor.widget("seed", "value")
    editor.page.mouse.click(rect["x"] + rect["w"] - 15, rect["y"] + rect["h"] * 0.75)
    assert "randomize" not in editor.graph()["nodes"]["seed"]["ui"]


def test_upload_widget_preview_and_output(editor, tmp_path):
    from PIL import Image

    picture = tmp_path / "red.png"
    Image.new("RGB", (32, 24), (200, 30, 30)).save(picture)
    editor.load(document({"view": {"type": "ShowUpload", "inputs": {}, "ui": {"pos": [0, 0]}}}))
    rect = editor.widget("view", "image")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] * 0.75)
    # The button opens the file input's chooser; set the file the way the chooser would.
    editor.page.set_input_files("input[type=file]", str(picture))
    editor.page.wait_for_function("window.nodegraphEditor.graph().nodes.view.inputs.image === 'red.png'")
    editor.page.wait_for_function("window.nodegraphEditor.images().includes('/api/files/input/red.png')")

    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.state('view')?.status === 'finished'")
    images = editor.hook("state('view')")["images"]
    assert [image["filename"] for image in images] == ["red.png"]
    loaded = editor.page.evaluate("(url) => fetch(url).then((r) => r.status)", images[0]["url"])
    assert loaded == 200


# ---- editing -------------------------------------------------------------------------------------


def test_undo_and_redo_every_edit(editor):
    editor.load(TEXT_AND_SHOW)
    original = editor.graph()
    editor.drag(editor.slot("words", "output", "text"), editor.slot("show", "input", "text"))
    linked = editor.graph()
    editor.drag(editor.title("join"), (900, 600))
    moved = editor.graph()
    assert moved["nodes"]["join"]["ui"]["pos"] != linked["nodes"]["join"]["ui"]["pos"]
    editor.page.keyboard.press("Delete")
    assert "join" not in editor.graph()["nodes"]

    keyboard = editor.page.keyboard
    keyboard.press("Control+Z")
    assert editor.graph() == moved
    keyboard.press("Control+Z")
    assert editor.graph() == linked
    keyboard.press("Control+Z")
    assert editor.graph() == original
    keyboard.press("Control+Shift+Z")
    assert editor.graph() == linked
    keyboard.press("Control+Y")
    assert editor.graph() == moved


def test_copy_paste_and_duplicate(editor, context):
    editor.load(TEXT_AND_SHOW)
    editor.drag(editor.slot("words", "output", "text"), editor.slot("join", "input", "first"))
    editor.page.mouse.click(*editor.title("words"))
    shift_click(editor, editor.title("join"))
    assert sorted(editor.hook("selection()")) == ["join", "words"]
    editor.page.keyboard.press("Control+C")
    editor.page.mouse.move(200, 700)
    editor.page.keyboard.press("Control+V")
    editor.settle()

    graph = editor.graph()
    assert sorted(graph["nodes"]) == ["join", "join_2", "number", "show", "words", "words_2"]
    assert ("words_2", "text", "join_2", "first") in links_of(graph)
    assert sorted(editor.hook("selection()")) == ["join_2", "words_2"]

    editor.page.keyboard.press("Control+D")
    assert len(editor.graph()["nodes"]) == 8

    # Across tabs: another editor page of the same browser pastes what this one copied.
    other = EditorPage(context.new_page(), editor.url).open()
    other.page.mouse.move(500, 400)
    other.page.keyboard.press("Control+V")
    other.settle()
    assert sorted(node["type"] for node in other.graph()["nodes"].values()) == ["Text", "TextConcat"]
    assert other.problems == []


def test_box_select_bypass_mute_and_collapse(editor):
    editor.load(TEXT_AND_SHOW)
    words, join = editor.title("words", 10), editor.title("join", 10)
    editor.page.keyboard.down("Control")
    editor.drag((words[0] - 30, words[1] - 30), (join[0] + 300, join[1] + 60))
    editor.page.keyboard.up("Control")
    assert sorted(editor.hook("selection()")) == ["join", "words"]

    editor.page.keyboard.press("Control+B")
    assert {node: editor.graph()["nodes"][node].get("mode") for node in ("words", "join")} == {"words": "bypass", "join": "bypass"}
    editor.page.keyboard.press("Control+M")
    assert editor.graph()["nodes"]["join"]["mode"] == "mute"
    editor.page.keyboard.press("Control+M")
    assert "mode" not in editor.graph()["nodes"]["join"]

    editor.page.mouse.click(*editor.title("show", 13))  # the collapse dot left of the title
    assert editor.graph()["nodes"]["show"]["ui"]["collapsed"] is True


def test_rename_a_node_and_group_nodes(editor):
    editor.load(TEXT_AND_SHOW)
    editor.page.mouse.dblclick(*editor.title("words"))
    editor.page.keyboard.press("Control+A")
    editor.page.keyboard.type("subject")
    editor.page.keyboard.press("Enter")
    assert editor.graph()["nodes"]["words"]["title"] == "subject"

    editor.page.mouse.click(*editor.title("words"))
    shift_click(editor, editor.title("number"))
    editor.page.keyboard.press("Control+G")
    groups = editor.graph()["groups"]
    assert len(groups) == 1
    assert groups[0]["title"] == "Group"

    # Dragging the group's title bar moves the group and the nodes inside it.
    x, y, _, _ = groups[0]["bounding"]
    before = {node: editor.graph()["nodes"][node]["ui"]["pos"] for node in ("words", "number", "join")}
    start = editor.hook("toPage(args[0], args[1])", x + 40, y + 10)
    editor.drag((start["x"], start["y"]), (start["x"] + 100, start["y"] + 50))
    after = editor.graph()["nodes"]
    k = editor.hook("view()")["k"]
    for node in ("words", "number"):
        assert after[node]["ui"]["pos"] == [round(before[node][0] + 100 / k), round(before[node][1] + 50 / k)]
    assert after["join"]["ui"]["pos"] == before["join"]

    # Dragging the group's bottom-right corner resizes it.
    x, y, w, h = editor.graph()["groups"][0]["bounding"]
    corner = editor.hook("toPage(args[0], args[1])", x + w - 3, y + h - 3)
    editor.drag((corner["x"], corner["y"]), (corner["x"] + 60, corner["y"] + 30))
    resized = editor.graph()["groups"][0]["bounding"]
    assert resized[:2] == [x, y]
    assert resized[2:] == [round(w + 60 / k), round(h + 30 / k)]


def test_pan_zoom_and_fit(editor):
    editor.load(TEXT_AND_SHOW)
    view = editor.hook("view()")
    editor.drag((1300, 800), (1200, 750))
    panned = editor.hook("view()")
    assert (panned["x"] - view["x"], panned["y"] - view["y"]) == pytest.approx((-100, -50))

    # Zoom keeps the world point under the pointer where it is.
    before = editor.slot("words", "output", "text")
    editor.page.mouse.move(*before)
    editor.page.mouse.wheel(0, -300)
    editor.settle()
    assert editor.hook("view()")["k"] > panned["k"]
    assert editor.slot("words", "output", "text") == pytest.approx(before, abs=0.5)

    editor.page.keyboard.press(".")
    assert editor.hook("view()") == pytest.approx(view)

    # Middle button drag pans too.
    editor.drag((700, 400), (650, 380), button="middle")
    assert editor.hook("view()")["x"] == pytest.approx(view["x"] - 50)


def test_pinch_zooms_with_two_fingers(editor, context):
    editor.load(TEXT_AND_SHOW)
    before = editor.hook("view()")
    cdp = context.new_cdp_session(editor.page)
    touch = lambda kind, points: cdp.send("Input.dispatchTouchEvent", {  # noqa: E731
        "type": kind, "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]})
    touch("touchStart", [(600, 400), (700, 400)])
    for spread in range(1, 6):
        touch("touchMove", [(600 - 10 * spread, 400), (700 + 10 * spread, 400)])
    touch("touchEnd", [])
    editor.settle()
    after = editor.hook("view()")
    assert after["k"] == pytest.approx(before["k"] * 2, rel=0.05)
    assert editor.hook("selection()") == []


# ---- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_open_shipped_workflow_from_menu(editor, path):
    shipped = json.loads(path.read_text(encoding="utf-8"))
    editor.click_menu("file", "examples", f"example-{path.stem}")
    editor.page.wait_for_function("(count) => Object.keys(window.nodegraphEditor.graph().nodes).length === count",
                                  arg=len(shipped["nodes"]))
    loaded = editor.graph()
    assert len(loaded["nodes"]) == len(shipped["nodes"])
    assert links_of(loaded) == links_of(shipped)
    assert loaded == shipped


def png_with_text(chunks: dict[str, str], chunk: str = "tEXt") -> bytes:
    """Build a PNG with text chunks of one kind: compressed iTXt (as SaveImage writes them), zTXt or tEXt."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for keyword, text in chunks.items():
        if chunk == "iTXt":
            info.add_itxt(keyword, text, zip=True)
        else:
            info.add_text(keyword, text, zip=chunk == "zTXt")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 200)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def drop_file(editor: EditorPage, name: str, data: bytes, mime: str) -> None:
    """Drop a file on the canvas the way the OS does: a drop event whose DataTransfer holds the file."""
    editor.page.evaluate(
        """([name, bytes, mime]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
            const area = document.getElementById('canvas-area');
            for (const type of ['dragenter', 'dragover', 'drop']) {
              area.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        [name, list(data), mime],
    )
    editor.settle()


@pytest.mark.parametrize("chunk", ["iTXt", "zTXt", "tEXt"])
def test_drop_png_with_workflow_chunk(editor, chunk):
    # The chunks SaveImage writes (`nodegraph:workflow`, `nodegraph:params`), in each kind of PNG text chunk;
    # test_drop_png_saved_by_save_image drops a PNG from a real run.
    shipped = json.loads((REPO / "workflows" / "text-branching.json").read_text(encoding="utf-8"))
    chunks = {"nodegraph:workflow": json.dumps(shipped), "nodegraph:params": json.dumps({"score": "0.3"})}
    drop_file(editor, "made.png", png_with_text(chunks, chunk), "image/png")
    editor.page.wait_for_function("Object.keys(window.nodegraphEditor.graph().nodes).length > 0")

    # The run's param values are written into the inputs they target, converted by the input's type.
    expected = json.loads(json.dumps(shipped))
    expected["nodes"]["score"]["inputs"]["value"] = 0.3
    assert editor.graph() == expected


IMAGE_ROUND_TRIP = document({
    "load": {"type": "LoadImage", "inputs": {"image": "dot.png"}, "ui": {"pos": [0, 0]}},
    "save": {"type": "SaveImage", "inputs": {"image": {"from": ["load", "image"]}, "filename_prefix": "roundtrip"},
             "ui": {"pos": [380, 0]}},
}, params={"prefix": ["save", "filename_prefix"]})


def write_png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), (200, 60, 30)).save(path)
    return path


def test_drop_png_saved_by_save_image(editor, server):
    # A real run of LoadImage -> SaveImage on the server, with a param value that differs from the document.
    write_png(server.data_dir / "input" / "dot.png")
    run = json.loads(server.request("/api/runs", {"workflow": IMAGE_ROUND_TRIP, "params": {"prefix": "dropped"}}))
    record = server.wait_for_run(run["id"])
    assert record["status"] == "succeeded", record
    image = record["outputs"]["save"]["images"][0]
    assert image["filename"].startswith("dropped")

    drop_file(editor, image["filename"], server.request(image["url"]), "image/png")
    editor.page.wait_for_function("Object.keys(window.nodegraphEditor.graph().nodes).length === 2")
    expected = json.loads(json.dumps(IMAGE_ROUND_TRIP))
    expected["nodes"]["save"]["inputs"]["filename_prefix"] = "dropped"
    assert editor.graph() == expected


def test_drop_json_and_png_without_workflow(editor):
    drop_file(editor, "flow.json", json.dumps(TEXT_AND_SHOW).encode(), "application/json")
    assert editor.graph()["nodes"].keys() == TEXT_AND_SHOW["nodes"].keys()
    drop_file(editor, "notes.txt", b"not a workflow", "text/plain")
    assert editor.hook("notices()")[-1] == (
        "Could not open notes.txt: it is neither JSON nor a PNG; open a workflow .json file or a PNG saved by SaveImage")
    drop_file(editor, "plain.png", png_with_text({"Comment": "hello"}), "image/png")
    assert editor.hook("notices()")[-1] == (
        "Could not open plain.png: the image holds no workflow (only PNGs saved by SaveImage do)")
    assert editor.graph()["nodes"].keys() == TEXT_AND_SHOW["nodes"].keys()


def test_saved_document_loads_in_the_cli(editor, tmp_path):
    shipped = json.loads(SHIPPED[0].read_text(encoding="utf-8"))
    editor.load(shipped)
    with editor.page.expect_download() as download:
        editor.click_menu("file", "download")
    path = tmp_path / "downloaded.json"
    download.value.save_as(path)
    assert json.loads(path.read_text(encoding="utf-8")) == shipped
    result = subprocess.run([sys.executable, "-m", "nodegraph", "validate", str(path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_mermaid_from_file_menu(editor, context, server, tmp_path):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    shipped = json.loads((REPO / "workflows" / "text-branching.json").read_text(encoding="utf-8"))
    editor.load(shipped)
    editor.click_menu("file", "export-mermaid")
    area = editor.page.locator(".dialog .mermaid-text")
    area.wait_for()
    assert editor.page.locator(".dialog h2").text_content() == "Mermaid flowchart"

    # The text is what `nodegraph export-mermaid` prints for the same workflow.
    path = tmp_path / "open.json"
    path.write_text(json.dumps(editor.graph()), encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "nodegraph", "export-mermaid", str(path)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path, check=True)
    text = area.input_value()
    assert text == cli.stdout
    assert '    gate{"good enough? · QualityBranch"}' in text.splitlines()

    editor.page.click(".dialog .mermaid-copy")
    editor.page.wait_for_selector(".notice:has-text('Copied the flowchart.')")
    assert editor.page.evaluate("() => navigator.clipboard.readText()") == text

    with editor.page.expect_download() as download:
        editor.page.click(".dialog .mermaid-download")
    assert download.value.suggested_filename == "text-branching.mmd"
    saved = tmp_path / "chart.mmd"
    download.value.save_as(saved)
    assert saved.read_text(encoding="utf-8") == text
    editor.page.keyboard.press("Escape")
    assert editor.page.locator(".dialog").count() == 0


# ---- running -------------------------------------------------------------------------------------


def test_queue_shows_node_states_and_text(editor):
    shipped = json.loads((REPO / "workflows" / "text-branching.json").read_text(encoding="utf-8"))
    editor.load(shipped)
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.state('show')?.status === 'finished'")
    states = {node: (editor.hook("state(args[0])", node) or {}).get("status") for node in shipped["nodes"]}
    assert states == {"prompt": "finished", "score": "finished", "gate": "finished", "detail": "skipped",
                      "improve": "skipped", "merge": "finished", "show": "finished"}
    assert editor.hook("state('show')")["text"] == ["a red ball on green grass"]
    editor.page.wait_for_function("window.nodegraphEditor.status() === 'succeeded'")

    # Hovering a skipped node's title says why it was skipped; hovering a slot describes it.
    editor.page.mouse.move(*editor.title("improve"))
    assert editor.page.locator("#tooltip").text_content() == "skipped: its input comes from a branch that was not taken"
    editor.page.mouse.move(*editor.slot("gate", "input", "threshold"))
    assert editor.page.locator("#tooltip").text_content() == (
        "threshold (FLOAT) — Scores at or above this take the high branch.")

    # The same workflow again: everything comes from the cache.
    editor.page.click("#queue-button")
    editor.page.wait_for_function("window.nodegraphEditor.state('show')?.status === 'cached'")
    editor.page.wait_for_function("window.nodegraphEditor.status() === 'succeeded'")

    # Reopening the run from the history brings back its workflow and its results.
    run_id = editor.hook("run()")
    editor.load(TEXT_AND_SHOW)
    editor.click_menu("run", "runs")
    editor.page.locator(f".run[data-run='{run_id}'] button", has_text="Open").click()
    editor.page.wait_for_function("window.nodegraphEditor.state('show')?.text?.[0] === 'a red ball on green grass'")
    assert editor.graph() == shipped


def test_validation_error_marks_node_input(editor):
    editor.load(document({
        "words": {"type": "Text", "inputs": {"text": "hi"}, "ui": {"pos": [0, 0]}},
        "gate": {"type": "QualityBranch", "inputs": {"prompt": {"from": ["words", "text"]}, "threshold": 0.5},
                 "ui": {"pos": [300, 0]}},
        "show": {"type": "ShowText", "inputs": {"text": {"from": ["gate", "high"]}}, "ui": {"pos": [600, 0]}},
    }))
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.errors('gate').length > 0")
    errors = editor.hook("errors('gate')")
    assert [(error["input"], error["code"]) for error in errors] == [("score", "missing_input")]
    assert editor.hook("errors('words')") == []
    assert editor.hook("errors('show')") == []
    assert editor.hook("status()") == "Problems found: 1; see the marked nodes"

    # Typing the missing value clears the mark on that input, and the run goes through.
    rect = editor.widget("gate", "score")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.page.keyboard.type("0.9")
    editor.page.keyboard.press("Enter")
    assert editor.hook("errors('gate')") == []
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.state('show')?.text?.[0] === 'hi'")


def test_failing_node_shows_its_message(editor):
    editor.load(document({
        "fill": {"type": "TextTemplate", "inputs": {"template": "{e}"}, "ui": {"pos": [0, 0]}},
        "show": {"type": "ShowText", "inputs": {"text": {"from": ["fill", "text"]}}, "ui": {"pos": [300, 0]}},
    }))
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.status() === 'failed'")
    assert editor.hook("state('fill')")["status"] == "failed"
    assert [error["message"] for error in editor.hook("errors('fill')")] == [
        "NodeError: input 'template' has the field {e}; only {a}, {b}, {c} and {d} exist (write {{ and }} for literal braces)"]


def test_unknown_node_type_is_kept_and_marked(editor):
    workflow = document({
        "mystery": {"type": "NoSuchNode", "inputs": {"x": 1}, "ui": {"pos": [0, 0]}},
        "show": {"type": "ShowText", "inputs": {"text": {"from": ["mystery", "out"]}}, "ui": {"pos": [300, 0]}},
    })
    editor.load(workflow)
    assert editor.hook("nodeTitle('mystery')") == "unknown type NoSuchNode"
    assert editor.slot("mystery", "output", "out")
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.errors('mystery').length > 0")
    assert [error["code"] for error in editor.hook("errors('mystery')")] == ["unknown_type"]
    assert editor.graph() == workflow


def test_interrupt_run_and_reopen_from_history(editor, server):
    editor.load(document({"count": {"type": "SlowCount", "inputs": {"steps": 200, "seconds": 0.05},
                                    "ui": {"pos": [0, 0]}}}))
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("(window.nodegraphEditor.state('count')?.step || 0) >= 2")
    assert editor.hook("state('count')")["status"] == "running"
    # The progress preview is drawn on the node.
    editor.page.wait_for_function("window.nodegraphEditor.images().some((url) => url.startsWith('data:image/jpeg'))")
    assert editor.page.locator("#queue-count").text_content() == "Queue: 1"
    editor.page.keyboard.press("Control+Alt+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.status() === 'interrupted'")
    assert editor.hook("state('count')")["status"] == "skipped"

    # Interrupting again does nothing: the finished run stays in the history.
    editor.page.keyboard.press("Control+Alt+Enter")
    editor.page.wait_for_function("window.nodegraphEditor.notices().at(-1) === 'No run of yours is queued or running.'")
    run_id = editor.hook("run()")
    assert server.get_json(f"/api/runs/{run_id}")["status"] == "interrupted"

    # The history panel lists the run; opening it brings its workflow back.
    editor.load(TEXT_AND_SHOW)
    editor.click_menu("run", "runs")
    row = editor.page.locator(".run[data-status='interrupted']").first
    row.wait_for()
    row.locator("button", has_text="Open").click()
    editor.page.wait_for_function("Object.keys(window.nodegraphEditor.graph().nodes).join() === 'count'")


def test_reconnects_after_server_restart(context, tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        editor = EditorPage(context.new_page(), server.url + "/").open()
        editor.page.wait_for_selector("#connection[data-state='ok']")
        server.stop(hard=True)
        editor.page.wait_for_selector(".notice:has-text('Lost the connection to the server; reconnecting…')")
        assert editor.page.locator("#connection").text_content() == "● disconnected"
        server.start()
        editor.page.wait_for_selector(".notice:has-text('Connected to the server again.')", timeout=20000)
        assert editor.page.locator("#connection").text_content() == "● connected"
        # While the server was away Chromium logs the refused WebSocket connections; nothing else is allowed.
        others = [problem for problem in editor.problems if "WebSocket connection" not in problem]
        assert others == []
    finally:
        server.stop()


def test_token_from_page_address(context, tmp_path):
    server = Server(tmp_path / "data", token="s3cret").start()
    try:
        editor = EditorPage(context.new_page(), server.url + "/?token=s3cret").open()
        empty = json.loads(json.dumps(IMAGE_ROUND_TRIP))
        empty["nodes"]["load"]["inputs"]["image"] = ""
        editor.load(empty)

        # The upload goes through with the header; the preview is an /api/files URL that loads only with the token.
        picture = write_png(tmp_path / "dot.png")
        rect = editor.widget("load", "image")
        editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] * 0.75)
        editor.page.set_input_files("input[type=file]", str(picture))
        editor.page.wait_for_function("window.nodegraphEditor.graph().nodes.load.inputs.image === 'dot.png'")
        editor.page.wait_for_function("window.nodegraphEditor.images().includes('/api/files/input/dot.png?token=s3cret')")

        # Queueing validates and posts with the header; node states arrive only over the WebSocket.
        editor.page.keyboard.press("Control+Enter")
        editor.page.wait_for_function("window.nodegraphEditor.status() === 'succeeded'", timeout=60000)
        assert editor.hook("state('save')")["status"] == "finished"
        editor.page.wait_for_function(
            "window.nodegraphEditor.images().some((url) => /^\\/api\\/files\\/output\\/.+\\?token=s3cret$/.test(url))")

        # Saving works, and the token is in nothing the editor writes.
        editor.click_menu("file", "save-as")
        editor.page.fill(".dialog-input", "with token")
        editor.page.keyboard.press("Enter")
        editor.page.wait_for_selector(".notice:has-text('Saved as')")
        saved = server.request("/api/workflows/with token".replace(" ", "%20")).decode()
        with editor.page.expect_download() as download:
            editor.click_menu("file", "download")
        downloaded = Path(download.value.path()).read_text(encoding="utf-8")
        assert json.loads(downloaded) == IMAGE_ROUND_TRIP
        assert json.loads(saved) == IMAGE_ROUND_TRIP | {"name": "with token"}
        assert "s3cret" not in saved + downloaded
        assert editor.page.evaluate("() => JSON.stringify({ ...localStorage })").find("s3cret") == -1
        assert editor.problems == []

        # Without the token, or with a wrong one, the page says what to do.
        for address, message in [
            ("/", "The server requires a token. Open the editor with the token in the address: "
                  f"{server.url}/?token=TOKEN"),
            ("/?token=wrong", "The server refused the token in the page address. Check it and reload the page."),
        ]:
            refused = EditorPage(context.new_page(), server.url + address)
            refused.page.goto(refused.url)
            refused.page.wait_for_selector("#startup-error:not([hidden])")
            assert refused.page.locator("#startup-error").text_content() == message
            # Chromium logs the refused request, and the editor logs why it could not start; nothing else.
            others = [problem for problem in refused.problems
                      if "status of 401" not in problem and message not in problem]
            assert others == []
    finally:
        server.stop()


# ---- help and languages --------------------------------------------------------------------------


def test_help_overlay_lists_the_shortcuts(editor):
    editor.page.keyboard.press("?")
    dialog = editor.page.locator(".dialog")
    assert dialog.locator("h2").text_content() == "Keyboard shortcuts"
    keys = dialog.locator("td.keys").all_text_contents()
    assert {"Ctrl+Enter", "Ctrl+Alt+Enter", "Ctrl+B", "Ctrl+M", "Ctrl+G", "."} <= set(keys)
    editor.page.keyboard.press("Escape")
    assert dialog.count() == 0


def test_switch_language_from_the_menu(editor):
    editor.load(TEXT_AND_SHOW)
    editor.click_menu("language", "lang-zh-CN")
    editor.page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    assert editor.page.locator(".menubar [data-menu='file']").text_content() == "文件"
    assert editor.hook("nodeTitle('join')") == "拼接文本"
    editor.page.reload()
    editor.page.wait_for_function("window.nodegraphEditor && window.nodegraphEditor.ready")
    assert editor.page.locator("#queue-button").text_content() == "加入队列"


def test_chinese_browser_gets_chinese(browser, server):
    context = browser.new_context(locale="zh-CN")
    try:
        editor = EditorPage(context.new_page(), server.url + "/").open()
        assert editor.page.locator(".menubar [data-menu='edit']").text_content() == "编辑"
        assert editor.problems == []
    finally:
        context.close()


def test_message_tables_match():
    import re

    tables = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in (REPO / "web" / "i18n").glob("*.json")}
    assert set(tables) == {"en", "zh-CN"}
    assert tables["en"].keys() == tables["zh-CN"].keys()
    for key, text in tables["en"].items():
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", tables["zh-CN"][key])), key
