"""The workflow document: load, check against the JSON Schema, migrate, save.

A workflow is kept as the JSON object it was read from, so fields the engine does not
use (`ui`, `groups`, `extra`, and anything a newer editor adds) survive a round trip.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from nodegraph.errors import Problem, WorkflowInvalid

FORMAT = "nodegraph/workflow"
CURRENT_VERSION = 1

# Largest workflow document accepted, in bytes. A 10,000-node workflow with positions
# is about 1.5 MB; the limit leaves room for long prompts without letting a request
# body or a stray file exhaust memory.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

# Deepest nesting of arrays and objects accepted. A workflow needs about 6 levels;
# literal values of `*` inputs may add a few.
MAX_NESTING = 64

# Migrations from version N to N + 1, applied in order on load. Each takes the
# document of version N and returns one of version N + 1.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def load_path(path: str | Path) -> dict:
    """Read and check a workflow file.

    Raises:
        WorkflowInvalid: the file is unreadable, too large, not UTF-8, not JSON, or not a workflow.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise WorkflowInvalid([_too_large(size)])
        data = path.read_bytes()
    except IsADirectoryError:
        raise WorkflowInvalid([Problem("unreadable", f"{path} is a folder; give the path of a workflow .json file")])
    except FileNotFoundError:
        raise WorkflowInvalid([Problem("unreadable", f"workflow file {path} not found")])
    except OSError as error:
        raise WorkflowInvalid([Problem("unreadable", f"cannot read workflow file {path}: {error.strerror or error}")])
    return load_bytes(data)


def load_bytes(data: bytes) -> dict:
    """Parse, check and migrate a workflow document given as bytes."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise WorkflowInvalid([_too_large(len(data))])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise WorkflowInvalid([
            Problem("not_utf8", f"the document is not UTF-8 text (invalid byte at offset {error.start}); save it as UTF-8 JSON")
        ])
    return load_text(text)


def load_text(text: str) -> dict:
    """Parse, check and migrate a workflow document given as text."""
    if not text.strip():
        raise WorkflowInvalid([Problem("invalid_json", "the document is empty; a workflow is a JSON object")])
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise WorkflowInvalid([
            Problem("invalid_json", f"the document is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})")
        ])
    except RecursionError:
        raise WorkflowInvalid([Problem("too_deep", f"the document is invalid: nested deeper than {MAX_NESTING} levels")])
    return check(document)


def check(document: Any) -> dict:
    """Check a parsed document's shape and version, and migrate it to the current version.

    Returns the migrated document (a new object when a migration ran).

    Raises:
        WorkflowInvalid: with every shape problem found.
    """
    if not isinstance(document, dict):
        kind = type(document).__name__ if document is not None else "null"
        kind = {"list": "an array", "str": "a string", "int": "a number", "float": "a number", "bool": "a boolean"}.get(kind, kind)
        raise WorkflowInvalid([Problem("schema", f"the document is {kind}; a workflow is a JSON object with \"nodes\"")])
    version = document.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > CURRENT_VERSION:
        raise WorkflowInvalid([
            Problem(
                "unsupported_version",
                f"the document has version {version}, but this nodegraph reads versions up to {CURRENT_VERSION}; "
                "upgrade nodegraph to open it",
            )
        ])

    # The depth check comes before jsonschema, which recurses once per level.
    shape_ok = conforms(document)
    too_deep = _free_form_too_deep(document) if shape_ok else _depth_exceeds(document, MAX_NESTING)
    if too_deep:
        raise WorkflowInvalid([Problem("too_deep", f"the document is invalid: nested deeper than {MAX_NESTING} levels")])
    if not shape_ok:
        problems = schema_problems(document)
        if problems:
            raise WorkflowInvalid(problems)
    return migrate(document)


def _free_form_too_deep(document: dict) -> bool:
    """Check the depth of the parts a conforming document leaves free: literals, `ui`, `extra`, `groups`.

    Walking only these keeps the check cheap, because most input values are scalars.
    """
    for key in ("extra", "groups"):
        if key in document and _depth_exceeds(document[key], MAX_NESTING - 1):
            return True
    for node in document["nodes"].values():
        if "ui" in node and _depth_exceeds(node["ui"], MAX_NESTING - 3):
            return True
        for value in node.get("inputs", {}).values():
            if type(value) in (list, dict) and _depth_exceeds(value, MAX_NESTING - 4):
                return True
    return False


def migrate(document: dict) -> dict:
    """Apply the migrations from the document's version to the current one."""
    version = document["version"]
    if version == CURRENT_VERSION:
        return document
    document = copy.deepcopy(document)
    while version < CURRENT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise WorkflowInvalid([Problem("unsupported_version", f"no migration from workflow version {version}")])
        document = step(document)
        version += 1
        document["version"] = version
    return document


@lru_cache(maxsize=1)
def schema() -> dict:
    """Return the workflow JSON Schema shipped in the package."""
    return json.loads(resources.files("nodegraph").joinpath("workflow.schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def schema_problems(document: dict) -> list[Problem]:
    """Return the document's JSON Schema violations, each naming the node and input where it sits."""
    problems = []
    for error in sorted(_validator().iter_errors(document), key=lambda item: list(map(str, item.absolute_path))):
        path = list(error.absolute_path)
        node = input_name = None
        if len(path) >= 2 and path[0] == "nodes":
            node = str(path[1])
            if len(path) >= 4 and path[2] == "inputs":
                input_name = str(path[3])
        where = "/".join(str(part) for part in path) or "the document"
        problems.append(Problem("schema", f"{where}: {_schema_message(error)}", node, input_name))
    return problems


_NODE_FIELDS = frozenset({"type", "title", "mode", "inputs", "ui"})
_MODES = frozenset({"active", "bypass", "mute"})


def conforms(document: dict) -> bool:
    """Return True when the document certainly satisfies the workflow JSON Schema.

    A fast check of the common case: jsonschema takes about 0.7 ms per node, which would
    dominate the run of a large workflow. When this returns False, `schema_problems`
    runs the real schema to say what is wrong; a property test keeps the two in step.
    """
    if document.get("format") != FORMAT:
        return False
    version = document.get("version")
    if type(version) is not int or version < 1:
        return False
    for key in ("name", "description"):
        if key in document and type(document[key]) is not str:
            return False
    if "extra" in document and type(document["extra"]) is not dict:
        return False
    if "groups" in document and not _groups_conform(document["groups"]):
        return False
    params = document.get("params", {})
    if type(params) is not dict or not all(_is_target(target) for target in params.values()):
        return False
    nodes = document.get("nodes")
    if type(nodes) is not dict:
        return False
    for node_id, node in nodes.items():
        if not 1 <= len(node_id) <= 200 or type(node) is not dict or not _NODE_FIELDS.issuperset(node):
            return False
        node_type = node.get("type")
        if type(node_type) is not str or not node_type:
            return False
        if "title" in node and type(node["title"]) is not str:
            return False
        if "mode" in node and (type(node["mode"]) is not str or node["mode"] not in _MODES):
            return False
        if "ui" in node and type(node["ui"]) is not dict:
            return False
        inputs = node.get("inputs", {})
        if type(inputs) is not dict:
            return False
        for value in inputs.values():
            if type(value) is dict and "from" in value and (len(value) != 1 or not _is_target(value["from"])):
                return False
    return True


def _is_target(value: Any) -> bool:
    return type(value) is list and len(value) == 2 and type(value[0]) is str and type(value[1]) is str


def _groups_conform(groups: Any) -> bool:
    if type(groups) is not list:
        return False
    for group in groups:
        if type(group) is not dict:
            return False
        if "title" in group and type(group["title"]) is not str:
            return False
        if "color" in group and type(group["color"]) is not str:
            return False
        if "bounding" in group:
            bounding = group["bounding"]
            if type(bounding) is not list or len(bounding) != 4:
                return False
            if not all(type(item) in (int, float) for item in bounding):
                return False
    return True


def _schema_message(error) -> str:
    if error.validator == "additionalProperties" and error.validator_value is False:
        return error.message.replace("Additional properties are not allowed", "unknown field")
    if error.validator == "const" and error.absolute_path and list(error.absolute_path) == ["format"]:
        return f'format must be "{FORMAT}", found {error.instance!r}'
    if error.validator == "anyOf":
        return 'a link must be {"from": [node_id, output_name]} with no other fields'
    return error.message


def _depth_exceeds(value: Any, limit: int) -> bool:
    # Iterative, so a deeply nested document cannot exhaust the interpreter stack.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _too_large(size: int) -> Problem:
    return Problem(
        "too_large",
        f"the document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES} bytes; split the workflow or shorten its literals",
    )


def dumps(document: dict) -> str:
    """Serialize a workflow document, keeping key order and non-ASCII text as it is."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def save_path(document: dict, path: str | Path) -> None:
    """Write a workflow document to a file atomically."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(dumps(document), encoding="utf-8")
    temporary.replace(path)


def new_document(name: str = "", description: str = "") -> dict:
    """Return an empty workflow document of the current version."""
    return {"format": FORMAT, "version": CURRENT_VERSION, "name": name, "description": description, "nodes": {}, "params": {}}
