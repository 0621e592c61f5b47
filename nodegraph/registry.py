"""The node registry: built-in node types, entry-point packs and loose node files.

Node modules declare their types in a module-level `NODE_TYPES` tuple; nothing is
registered as a side effect of importing a module.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from nodegraph.errors import NodegraphError
from nodegraph.node import Node
from nodegraph.types import PORT_TYPES

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "nodegraph.nodes"
BUILTIN_PACKAGE = "nodegraph.nodes"


class RegistryError(NodegraphError):
    """Raised when a node pack cannot be loaded or declares a broken node type."""


def builtin_package() -> ModuleType:
    """Import the built-in node library as `nodegraph.nodes`.

    The wheel installs the repository's `nodes/` folder as `nodegraph/nodes`; in a source
    checkout run without installing, the folder is mounted under that name here.
    """
    if BUILTIN_PACKAGE in sys.modules:
        return sys.modules[BUILTIN_PACKAGE]
    try:
        return importlib.import_module(BUILTIN_PACKAGE)
    except ModuleNotFoundError as error:
        if error.name != BUILTIN_PACKAGE:
            raise
    folder = Path(__file__).resolve().parent.parent / "nodes"
    spec = importlib.util.spec_from_file_location(
        BUILTIN_PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise RegistryError(f"the built-in node library is missing: {folder} not found")
    package = importlib.util.module_from_spec(spec)
    sys.modules[BUILTIN_PACKAGE] = package
    spec.loader.exec_module(package)
    return package


class Registry:
    """Node types by type id."""

    def __init__(self) -> None:
        self._types: dict[str, type[Node]] = {}
        self._sources: dict[str, str] = {}

    def register(self, node_type: type[Node], source: str = "builtin") -> None:
        """Add a node type after checking its declaration.

        Raises:
            RegistryError: the declaration is incomplete or the type id is taken.
        """
        _check_declaration(node_type)
        type_id = node_type.type_id
        if type_id in self._types and self._types[type_id] is not node_type:
            raise RegistryError(
                f"node type {type_id!r} from {source} is already defined by {self._sources[type_id]}; "
                "rename one of them"
            )
        self._types[type_id] = node_type
        self._sources[type_id] = source

    def register_module(self, module: ModuleType, source: str) -> int:
        """Register every type in a module's `NODE_TYPES`; return how many."""
        declared = getattr(module, "NODE_TYPES", None)
        if declared is None:
            raise RegistryError(f"{source} has no NODE_TYPES tuple listing its node classes")
        for node_type in declared:
            self.register(node_type, source)
        return len(declared)

    def get(self, type_id: str) -> type[Node] | None:
        return self._types.get(type_id)

    def __contains__(self, type_id: str) -> bool:
        return type_id in self._types

    def __iter__(self):
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def suggest(self, type_id: str) -> list[str]:
        """Return up to three known type ids close to `type_id`."""
        by_lower = {name.lower(): name for name in self._types}
        close = difflib.get_close_matches(type_id.lower(), list(by_lower), n=3, cutoff=0.6)
        return [by_lower[name] for name in close]

    def source_of(self, type_id: str) -> str:
        return self._sources.get(type_id, "")

    def catalog(self, models: Any = None) -> dict[str, Any]:
        """Return the catalog: every node type as JSON, keyed by type id.

        Args:
            models: the model manager, used to list model files as loader choices.
        """
        return {
            type_id: describe(node_type, self._sources[type_id], models)
            for type_id, node_type in sorted(self._types.items())
        }


def describe(node_type: type[Node], source: str = "builtin", models: Any = None) -> dict[str, Any]:
    """Return one node type's declaration as JSON for the catalog."""
    inputs = []
    for spec in node_type.inputs:
        entry: dict[str, Any] = {"name": spec.name, "type": spec.type, "required": spec.required}
        if spec.lazy:
            entry["lazy"] = True
        if spec.has_default:
            entry["default"] = spec.default
        for key in ("min", "max", "step", "widget"):
            value = getattr(spec, key)
            if value is not None:
                entry[key] = value
        choices = spec.choice_list(models)
        if choices is not None:
            entry["choices"] = choices
        if spec.multiline:
            entry["multiline"] = True
        if spec.description:
            entry["description"] = spec.description
        entry["literal"] = spec.accepts_literal
        inputs.append(entry)
    outputs = [{"name": spec.name, "type": spec.type, "description": spec.description} for spec in node_type.outputs]
    return {
        "type": node_type.type_id,
        "display_name": node_type.display_name or node_type.type_id,
        "category": node_type.category,
        "description": node_type.description,
        "version": node_type.version,
        "inputs": inputs,
        "outputs": outputs,
        "output_node": node_type.output_node,
        "routes": node_type.routes,
        "deterministic": node_type.deterministic,
        "maturity": node_type.maturity,
        "translations": node_type.translations,
        "source": source,
    }


def _check_declaration(node_type: type[Node]) -> None:
    name = getattr(node_type, "__name__", repr(node_type))
    if not (isinstance(node_type, type) and issubclass(node_type, Node)):
        raise RegistryError(f"{name} is not a subclass of nodegraph.node.Node")
    if not node_type.type_id:
        raise RegistryError(f"node class {name} has no type_id")
    seen: set[str] = set()
    for spec in (*node_type.inputs, *node_type.outputs):
        if spec.type not in PORT_TYPES:
            raise RegistryError(f"node type {node_type.type_id!r}: port {spec.name!r} has unknown type {spec.type!r}")
    for spec in node_type.inputs:
        if spec.name in seen:
            raise RegistryError(f"node type {node_type.type_id!r} declares input {spec.name!r} twice")
        seen.add(spec.name)


def load_builtin(registry: Registry) -> None:
    """Register every node module of the built-in library."""
    package = builtin_package()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda item: item.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")
        if hasattr(module, "NODE_TYPES"):
            registry.register_module(module, "builtin")


def load_entry_points(registry: Registry) -> None:
    """Register node packs installed under the `nodegraph.nodes` entry-point group.

    Loading a pack runs its code; each pack loaded is logged.
    """
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as error:
            raise RegistryError(f"node pack {point.name!r} ({point.value}) failed to import: {error}") from error
        count = _register_loaded(registry, loaded, f"entry point {point.name}")
        logger.info("loaded node pack %s (%s): %d node types", point.name, point.value, count)


def load_directory(registry: Registry, folder: Path) -> None:
    """Import every `*.py` file and package in `folder` as a node pack.

    Raises:
        RegistryError: the folder is missing or a file fails to import.
    """
    if not folder.is_dir():
        raise RegistryError(f"node folder {folder} does not exist")
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py":
            location, search = path, None
        elif (path / "__init__.py").is_file():
            location, search = path / "__init__.py", [str(path)]
        else:
            continue
        module_name = f"nodegraph_pack_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, location, submodule_search_locations=search)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise RegistryError(f"node file {path} failed to import: {type(error).__name__}: {error}") from error
        count = registry.register_module(module, str(path))
        logger.info("loaded node pack %s: %d node types", path, count)


def _register_loaded(registry: Registry, loaded: Any, source: str) -> int:
    if isinstance(loaded, ModuleType):
        return registry.register_module(loaded, source)
    if callable(loaded) and not isinstance(loaded, type):
        loaded = loaded()
    if isinstance(loaded, type):
        loaded = [loaded]
    count = 0
    for node_type in loaded:
        registry.register(node_type, source)
        count += 1
    return count


def default_registry(nodes_dirs: Iterable[Path] = (), entry_point_packs: bool = True) -> Registry:
    """Build a registry with the built-in nodes, installed packs and loose node folders."""
    registry = Registry()
    load_builtin(registry)
    if entry_point_packs:
        load_entry_points(registry)
    for folder in nodes_dirs:
        load_directory(registry, Path(folder))
    return registry
