"""The `nodegraph` command line: run, validate, list nodes, print the schema.

Exit codes: 0 success, 1 a run failed, 2 the workflow or the command line is invalid,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any, Callable, TextIO

from nodegraph import __version__
from nodegraph import document as workflow_document
from nodegraph.errors import NodegraphError, Problem, WorkflowInvalid
from nodegraph.events import to_json
from nodegraph.resources import workflows_dir

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130

logger = logging.getLogger("nodegraph.cli")


class UsageError(NodegraphError):
    """Raised for a wrong command line; printed and exits 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nodegraph", description="Run and inspect nodegraph workflows.")
    parser.add_argument("--version", action="version", version=f"nodegraph {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more on stderr (-v info, -vv debug)")
    parser.add_argument("--nodes-dir", action="append", type=Path, default=[], metavar="DIR",
                        help="load node packs from the .py files in DIR (runs their code); repeatable")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="run a workflow")
    run.add_argument("workflow", help="a workflow .json file, or the name of a shipped example")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments",
                     help="set a param or node.input; the value is converted by the input's type; seed=random draws a seed")
    run.add_argument("--target", action="append", default=None, metavar="NODE", help="evaluate only this node (repeatable)")
    run.add_argument("--out", type=Path, default=Path("output"), metavar="DIR", help="folder for saved outputs (default: ./output)")
    run.add_argument("--input-dir", type=Path, default=Path("."), metavar="DIR", help="folder LoadImage reads from (default: .)")
    run.add_argument("--models-dir", type=Path, default=None, metavar="DIR", help="folder of local models")
    run.add_argument("--events", default=None, metavar="FILE|-", help="write events as JSON lines to FILE, or stdout with -")
    run.add_argument("--batch", type=Path, default=None, metavar="PARAMS.jsonl",
                     help="run once per line of a JSON-lines file of param values, in one process")
    run.add_argument("--server", default=None, metavar="URL",
                     help="submit the run to a nodegraph server (e.g. http://127.0.0.1:8189) instead of running it here")
    run.add_argument("--token", default=None, metavar="TOKEN",
                     help="the server's token, with --server (default: the NODEGRAPH_TOKEN environment variable)")
    run.set_defaults(handler=command_run)

    serve = commands.add_parser("serve", help="run the HTTP and WebSocket server with the editor")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; "
                                                           "any non-loopback address requires --token)")
    serve.add_argument("--port", type=int, default=8189, help="TCP port (default 8189)")
    serve.add_argument("--data-dir", type=Path, default=Path("nodegraph-data"), metavar="DIR",
                       help="folder for the run database and the input, output, temp and workflows folders "
                            "(default: ./nodegraph-data)")
    serve.add_argument("--models-dir", type=Path, default=None, metavar="DIR", help="folder of local models (default: DATA_DIR/models)")
    serve.add_argument("--token", default=None, metavar="TOKEN",
                       help="require 'Authorization: Bearer TOKEN' on every API request (default: the NODEGRAPH_TOKEN "
                            "environment variable, which keeps the token out of the process list)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="also accept state-changing requests from pages of this origin, e.g. http://localhost:3000; repeatable")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also accept this Host header name besides loopback names ('*' accepts any); repeatable")
    serve.add_argument("--keep-runs", type=int, default=None, metavar="N",
                       help="keep only the newest N finished runs, deleting older ones with their output files (default: keep all)")
    serve.add_argument("--max-queued", type=int, default=1000, metavar="N", help="maximum runs waiting in the queue (default 1000)")
    serve.add_argument("--max-nodes", type=int, default=20000, metavar="N", help="maximum nodes in a submitted workflow (default 20000)")
    serve.add_argument("--max-body-mb", type=float, default=17.0, metavar="MB", help="largest request body in MiB (default 17)")
    serve.add_argument("--max-upload-mb", type=float, default=32.0, metavar="MB", help="largest uploaded image in MiB (default 32)")
    serve.set_defaults(handler=command_serve)

    validate = commands.add_parser("validate", help="check a workflow without running it")
    validate.add_argument("workflow", help="a workflow .json file, or the name of a shipped example")
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")
    validate.set_defaults(handler=command_validate)

    nodes = commands.add_parser("nodes", help="list the node types")
    nodes.add_argument("--json", action="store_true", help="print the whole catalog as JSON")
    nodes.add_argument("--markdown", action="store_true", help="print the node reference as Markdown (docs/nodes.md)")
    nodes.set_defaults(handler=command_nodes)

    schema = commands.add_parser("schema", help="print the workflow JSON Schema")
    schema.set_defaults(handler=command_schema)

    importer = commands.add_parser("import-mermaid", help="convert a Mermaid flowchart into a workflow")
    importer.add_argument("chart", type=Path, help="a .mmd file with a graph/flowchart")
    importer.add_argument("-o", "--output", type=Path, default=None, metavar="WORKFLOW.json",
                          help="where to write the workflow (default: stdout)")
    importer.set_defaults(handler=command_import_mermaid)

    exporter = commands.add_parser("export-mermaid", help="write a workflow as a Mermaid flowchart")
    exporter.add_argument("workflow", help="a workflow .json file, or the name of a shipped example")
    exporter.add_argument("-o", "--output", type=Path, default=None, metavar="CHART.mmd", help="where to write (default: stdout)")
    exporter.set_defaults(handler=command_export_mermaid)

    demo = commands.add_parser("demo", help="run prompt-to-image on a vague and a detailed prompt and print what happened")
    demo.add_argument("--out", type=Path, default=Path("output"), metavar="DIR", help="folder for saved outputs (default: ./output)")
    demo.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                      help="run this prompt instead of the two built-in ones (repeatable)")
    demo.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments",
                      help="set a param of prompt-to-image, e.g. model=/path/to/sd-turbo or llm_base_url=...")
    demo.set_defaults(handler=command_demo)

    workflows = commands.add_parser("workflows", help="list the example workflows shipped with nodegraph")
    workflows.set_defaults(handler=command_workflows)

    models = commands.add_parser("models", help="fetch the embedded models into the model cache")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    models_commands.required = True
    pull = models_commands.add_parser("pull", help="fetch (and convert) an embedded model now instead of on first use")
    pull.add_argument("name", choices=sorted(PULLABLE_MODELS), help="the embedded model")
    pull.set_defaults(handler=command_models_pull)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_INVALID if exit_.code not in (0, None) else EXIT_OK
    configure_logging(args.verbose)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"nodegraph: error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except WorkflowInvalid as invalid:
        print_problems(invalid.problems)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("nodegraph: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `nodegraph nodes | head`), so print nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except NodegraphError as error:
        from nodegraph.mermaid import MermaidError

        print(f"nodegraph: error: {error}", file=sys.stderr)
        return EXIT_INVALID if isinstance(error, MermaidError) else EXIT_FAILED


class _NoTraceback(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record)


def configure_logging(verbosity: int) -> None:
    """Log warnings (more with -v) to stderr in one line each, and everything with tracebacks to a file."""
    from nodegraph.models import default_cache_dir

    if verbosity == 0:
        # transformers and diffusers print import notes and loading bars that mean nothing
        # to a user of the CLI; -v lets them through.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel([logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)])
    console.setFormatter(_NoTraceback("%(levelname)s %(name)s: %(message)s"))
    # Failed nodes and node warnings reach the user through run events, which the CLI
    # prints itself; tracebacks go to the log file only.
    console.addFilter(lambda record: verbosity > 0 or (record.exc_info is None and not record.name.startswith("nodegraph.node.")))
    root.addHandler(console)
    log_dir = default_cache_dir() / "logs"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_dir / "nodegraph.log", encoding="utf-8")
    except OSError:
        return
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)


def print_problems(problems: list[Problem], stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    print(f"the workflow is invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''}):", file=stream)
    for problem in problems:
        print(f"  {problem}", file=stream)


def resolve_workflow_path(name: str) -> Path:
    """Return the path of a workflow file, falling back to a shipped example of that name."""
    path = Path(name)
    if path.exists():
        return path
    shipped = workflows_dir() / (name if name.endswith(".json") else f"{name}.json")
    if "/" not in name and shipped.is_file():
        return shipped
    return path


def load_workflow(name: str) -> dict:
    return workflow_document.load_path(resolve_workflow_path(name))


def make_registry(args: argparse.Namespace):
    from nodegraph.registry import default_registry

    return default_registry(args.nodes_dir)


def command_validate(args: argparse.Namespace) -> int:
    registry = make_registry(args)
    try:
        document = load_workflow(args.workflow)
        from nodegraph.validation import validate

        problems = validate(document, registry)
    except WorkflowInvalid as invalid:
        problems = invalid.problems
    if args.json:
        print(json.dumps({"errors": [problem.to_json() for problem in problems]}, ensure_ascii=False, indent=2))
    elif problems:
        print_problems(problems)
    else:
        print(f"{args.workflow}: valid ({len(document['nodes'])} nodes)")
    return EXIT_INVALID if problems else EXIT_OK


def command_nodes(args: argparse.Namespace) -> int:
    registry = make_registry(args)
    catalog = registry.catalog()
    if args.json:
        print(json.dumps(catalog, ensure_ascii=False, indent=2))
        return EXIT_OK
    if args.markdown:
        from nodegraph.reference import node_reference

        print(node_reference(catalog), end="")
        return EXIT_OK
    by_category: dict[str, list[dict]] = {}
    for entry in catalog.values():
        by_category.setdefault(entry["category"], []).append(entry)
    for category in sorted(by_category):
        print(f"{category}:")
        for entry in by_category[category]:
            inputs = ", ".join(f"{item['name']}: {item['type']}" + ("" if item["required"] else "?") for item in entry["inputs"])
            outputs = ", ".join(f"{item['name']}: {item['type']}" for item in entry["outputs"]) or "-"
            print(f"  {entry['type']}({inputs}) -> {outputs}")
            if entry["description"]:
                print(f"      {entry['description']}")
    return EXIT_OK


def command_schema(args: argparse.Namespace) -> int:
    print(json.dumps(workflow_document.schema(), indent=2))
    return EXIT_OK


def command_import_mermaid(args: argparse.Namespace) -> int:
    from nodegraph.mermaid import import_chart
    from nodegraph.validation import validate

    try:
        text = args.chart.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read chart {args.chart}: {error}") from error
    registry = make_registry(args)
    document, notes = import_chart(text, registry)
    for note in notes:
        print(f"inferred: {note}", file=sys.stderr)
    if args.output is None:
        print(workflow_document.dumps(document), end="")
    else:
        workflow_document.save_path(document, args.output)
        print(f"wrote {args.output} ({len(document['nodes'])} nodes)", file=sys.stderr)
    problems = validate(document, registry)
    if problems:
        print_problems(problems)
        return EXIT_INVALID
    return EXIT_OK


def command_export_mermaid(args: argparse.Namespace) -> int:
    from nodegraph.mermaid import export_chart

    chart = export_chart(load_workflow(args.workflow), make_registry(args))
    if args.output is None:
        print(chart, end="")
    else:
        args.output.write_text(chart, encoding="utf-8")
    return EXIT_OK


def command_demo(args: argparse.Namespace) -> int:
    from nodegraph.demo import DEMO_PROMPTS, run_demo

    prompts = tuple(args.prompt) if args.prompt else DEMO_PROMPTS
    return run_demo(args.out, prompts, parse_assignments(args.assignments))


def command_workflows(args: argparse.Namespace) -> int:
    for path in sorted(workflows_dir().glob("*.json")):
        try:
            document = workflow_document.load_path(path)
            print(f"{path.stem:24} {document.get('name', '')}: {document.get('description', '')}")
        except WorkflowInvalid:
            print(f"{path.stem:24} (invalid)")
    return EXIT_OK


def _pull_smollm2(cache_dir: Path, say: Callable[[str], None]) -> Path:
    from nodegraph.llm import ensure_smollm2

    return ensure_smollm2(cache_dir, allow_fetch=True, on_progress=say)


# Embedded models `nodegraph models pull NAME` can fetch, by name.
PULLABLE_MODELS: dict[str, Callable[[Path, Callable[[str], None]], Path]] = {"smollm2": _pull_smollm2}


def command_models_pull(args: argparse.Namespace) -> int:
    from nodegraph.models import default_cache_dir

    cache_dir = default_cache_dir()
    path = PULLABLE_MODELS[args.name](cache_dir, lambda message: print(message, file=sys.stderr))
    print(f"{args.name}: ready at {path}")
    return EXIT_OK


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--set expects NAME=VALUE, got {assignment!r}")
        values[name.strip()] = value
    return values


def draw_random_seeds(document: dict, registry, values: dict[str, str], stream: TextIO) -> None:
    """Replace each `random` value aimed at a seed input with a drawn seed, and print it."""
    from nodegraph.validation import resolve_param_target

    for name, value in values.items():
        if value.strip().lower() != "random":
            continue
        target = resolve_param_target(document, name)
        if target is None:
            continue
        node = document["nodes"].get(target[0])
        node_type = registry.get(node["type"]) if node else None
        spec = node_type.input_spec(target[1]) if node_type else None
        if spec is not None and spec.type == "INT" and (spec.widget == "seed" or "seed" in spec.name):
            upper = int(spec.max) if spec.max is not None else 2**32 - 1
            values[name] = str(secrets.randbelow(min(upper, 2**32 - 1) + 1))
            print(f"{name} = {values[name]} (random)", file=stream)


def command_serve(args: argparse.Namespace) -> int:
    import os

    from nodegraph.security import ConfigError, Limits
    from nodegraph.server import ServerConfig, serve
    from nodegraph.store import StoreError

    if args.keep_runs is not None and args.keep_runs < 0:
        raise UsageError(f"--keep-runs must be 0 or more, got {args.keep_runs}")
    limits = Limits(max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                    max_workflow_nodes=args.max_nodes, max_queued_runs=args.max_queued)
    config = ServerConfig(host=args.host, port=args.port, data_dir=args.data_dir, models_dir=args.models_dir,
                          token=args.token or os.environ.get("NODEGRAPH_TOKEN") or None,
                          allowed_origins=set(args.allow_origin), allowed_hosts={name.lower() for name in args.allow_host},
                          limits=limits, keep_runs=args.keep_runs, nodes_dirs=list(args.nodes_dir))
    try:
        serve(config)
    except (ConfigError, StoreError) as error:
        raise UsageError(str(error)) from error
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from error
    return EXIT_OK


def load_run_request(args: argparse.Namespace):
    """Load the registry, the workflow and the --set values, drawing any `random` seeds."""
    registry = make_registry(args)
    document = load_workflow(args.workflow)
    values = parse_assignments(args.assignments)
    draw_random_seeds(document, registry, values, sys.stderr)
    return registry, document, values


def command_run(args: argparse.Namespace) -> int:
    if args.server:
        return command_run_remote(args)
    from nodegraph.executor import Executor, prepare
    from nodegraph.models import ModelManager

    registry, document, values = load_run_request(args)
    events_stream, close_events = open_events(args.events)
    summary_stream = sys.stderr if args.events == "-" else sys.stdout
    executor = Executor(registry, models=ModelManager(models_dir=args.models_dir), output_dir=args.out, input_dir=args.input_dir)
    try:
        if args.batch is not None:
            return run_batch(executor, document, values, args, events_stream, summary_stream)
        prepared, problems = prepare(document, registry, values, params_as_text=True, targets=args.target)
        if problems:
            if events_stream is not None:
                events_stream.write(to_json({"event": "run.invalid", "run": None, "errors": [p.to_json() for p in problems]}) + "\n")
            print_problems(problems)
            return EXIT_INVALID
        result = run_with_interrupt(executor, prepared, values, args.target, events_stream)
        print_result(result, prepared, summary_stream)
        return {"succeeded": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(result.status, EXIT_FAILED)
    finally:
        close_events()


def command_run_remote(args: argparse.Namespace) -> int:
    """Run a workflow on a server: submit it, stream its events, download its images to --out."""
    import os

    import aiohttp

    from nodegraph.client import Client, ServerError

    if args.batch is not None:
        raise UsageError("--batch runs in this process; it cannot be combined with --server")
    registry, document, values = load_run_request(args)
    events_stream, close_events = open_events(args.events)
    summary_stream = sys.stderr if args.events == "-" else sys.stdout
    client = Client(args.server, token=args.token or os.environ.get("NODEGRAPH_TOKEN") or None)
    progress = _progress_bar(len(document.get("nodes", {})))

    def on_event(event: dict) -> None:
        if events_stream is not None:
            events_stream.write(json.dumps(event, ensure_ascii=False) + "\n")
            events_stream.flush()
        _report_event(event, progress)

    try:
        try:
            record = client.run(document, params=values, targets=args.target, on_event=on_event)
        except KeyboardInterrupt:
            if client.current_run is None:
                raise
            print(f"\ninterrupting run {client.current_run} on the server", file=sys.stderr)
            client.cancel(client.current_run)
            record = client.wait(client.current_run)
        if progress is not None:
            progress.close()
        if record["status"] == "invalid":
            print_problems([Problem(**problem) for problem in record["errors"]])
            return EXIT_INVALID
        paths = client.download_outputs(record, args.out)
        print_remote_result(record, document, paths, summary_stream)
        return {"succeeded": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(record["status"], EXIT_FAILED)
    except ServerError as error:
        if error.status == 400:
            print_problems(error.problems)
            return EXIT_INVALID
        raise UsageError(f"the server rejected the run: {'; '.join(p.message for p in error.problems)}") from error
    except (aiohttp.ClientError, OSError) as error:
        raise UsageError(f"cannot reach the server at {args.server}: {error}") from error
    finally:
        client.close()
        close_events()


def _report_event(event: dict, progress) -> None:
    name = event["event"]
    if progress is not None and name in ("node.finished", "node.cached", "node.skipped", "node.failed"):
        progress.update(1)
        progress.set_postfix_str(f"{event['node']} {name[5:]}", refresh=False)
    if name == "node.failed":
        print(f"\nnode {event['node']} ({event['type']}) failed: {event['message']}", file=sys.stderr)
    elif name == "node.warning":
        print(f"warning: node {event['node']} ({event['type']}): {event['message']}", file=sys.stderr)


def print_remote_result(record: dict, document: dict, paths: list[Path], stream: TextIO) -> None:
    """Print a server run's text outputs and downloaded files, then a one-line summary on stderr."""
    downloaded = iter(paths)
    for node_id, display in record["outputs"].items():
        title = document["nodes"].get(node_id, {}).get("title") or node_id
        for text in display.get("text", []):
            print(f"[{title}] {text}", file=stream)
        for image in display.get("images", []):
            local = next(downloaded, None) if "url" in image else None
            print(f"[{title}] {local if local is not None else image.get('path', image)}", file=stream)
    counts: dict[str, int] = {}
    for state in record["nodes"].values():
        counts[state["status"]] = counts.get(state["status"], 0) + 1
    described = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    print(f"run {record['id']} {record['status']}: {described}", file=sys.stderr)
    error = record.get("error")
    if error and "node" in error:
        print(f"node {error['node']} ({error['type']}) failed: {error['message']}", file=sys.stderr)
    elif error:
        print(f"run {record['id']}: {error.get('message')}", file=sys.stderr)


def open_events(target: str | None) -> tuple[TextIO | None, Callable[[], None]]:
    if target is None:
        return None, lambda: None
    if target == "-":
        return sys.stdout, sys.stdout.flush
    try:
        stream = open(target, "w", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write events to {target}: {error.strerror}") from error
    return stream, stream.close


def run_with_interrupt(executor, document: dict, params: dict, targets: list[str] | None, events_stream: TextIO | None,
                       run_id: str | None = None):
    """Run in a worker thread so Ctrl+C can interrupt the run between nodes and sampler steps."""
    interrupt = threading.Event()
    progress = _progress_bar(len(document["nodes"]))
    lock = threading.Lock()

    def on_event(event: dict) -> None:
        with lock:
            if events_stream is not None:
                events_stream.write(to_json(event) + "\n")
                events_stream.flush()
            if progress is not None and event["event"] in ("node.finished", "node.cached", "node.skipped", "node.failed"):
                progress.update(1)
                progress.set_postfix_str(f"{event['node']} {event['event'][5:]}", refresh=False)
            if event["event"] == "node.failed":
                print(f"\nnode {event['node']} ({event['type']}) failed: {event['message']}", file=sys.stderr)
            elif event["event"] == "node.warning":
                print(f"warning: node {event['node']} ({event['type']}): {event['message']}", file=sys.stderr)

    result_box: dict[str, Any] = {}

    def work() -> None:
        try:
            result_box["result"] = executor.run(document, params=params, targets=targets, on_event=on_event,
                                                interrupt=interrupt, validated=True, run_id=run_id)
        except BaseException as error:  # re-raised in the main thread below
            result_box["error"] = error
        finally:
            done.set()

    # An Event rather than Thread.join: a join interrupted by Ctrl+C can return early on CPython.
    done = threading.Event()
    worker = threading.Thread(target=work, name="nodegraph-run", daemon=True)
    try:
        # Started inside the try, so a Ctrl+C that lands just after the start still interrupts the run.
        worker.start()
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        interrupt.set()
        if worker.ident is None:  # interrupted before the run started
            raise
        print("\ninterrupting: the run stops after the current node or sampler step", file=sys.stderr)
        while not done.wait(0.1):
            pass
    finally:
        if progress is not None:
            progress.close()
    if "error" in result_box:
        raise result_box["error"]
    return result_box["result"]


def _progress_bar(total: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="node", file=sys.stderr, leave=False)


def print_result(result, document: dict, stream: TextIO) -> None:
    """Print each output node's text and files, then a one-line summary on stderr."""
    for node_id, display in result.outputs.items():
        title = document["nodes"][node_id].get("title") or node_id
        for text in display.get("text", []):
            print(f"[{title}] {text}", file=stream)
        for image in display.get("images", []):
            print(f"[{title}] {image.get('path', image)}", file=stream)
    counts: dict[str, int] = {}
    for outcome in result.nodes.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    described = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    # A failed node was already reported when its node.failed event arrived.
    print(f"run {result.run_id} {result.status}: {described}", file=sys.stderr)


def run_batch(executor, document: dict, base_values: dict[str, str], args, events_stream, summary_stream) -> int:
    from nodegraph.executor import prepare

    try:
        lines = args.batch.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read batch file {args.batch}: {error}") from error
    registry = executor.registry
    outcomes: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"batch line {number}: not valid JSON ({error.msg} at column {error.colno})", file=sys.stderr)
            outcomes.append((number, "invalid"))
            continue
        if not isinstance(values, dict):
            print(f"batch line {number}: expected a JSON object of param values", file=sys.stderr)
            outcomes.append((number, "invalid"))
            continue
        prepared, problems = prepare(document, registry, base_values, params_as_text=True, targets=args.target)
        if not problems:
            prepared, problems = prepare(prepared, registry, values, targets=args.target)
        if problems:
            print(f"batch line {number}:", file=sys.stderr)
            print_problems(problems)
            outcomes.append((number, "invalid"))
            continue
        print(f"batch line {number}: {json.dumps(values, ensure_ascii=False)}", file=summary_stream)
        result = run_with_interrupt(executor, prepared, {**base_values, **values}, args.target, events_stream)
        print_result(result, prepared, summary_stream)
        outcomes.append((number, result.status))
        if result.status == "interrupted":
            break
    succeeded = sum(1 for _, status in outcomes if status == "succeeded")
    failed = [f"line {number} {status}" for number, status in outcomes if status != "succeeded"]
    print(f"batch: {succeeded} of {len(outcomes)} runs succeeded" + (f"; {', '.join(failed)}" if failed else ""), file=sys.stderr)
    if any(status == "interrupted" for _, status in outcomes):
        return EXIT_INTERRUPTED
    return EXIT_OK if not failed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
