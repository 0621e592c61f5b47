"""The node API: one declaration per node type.

A node type is a subclass of `Node` with class attributes that declare it and a `run`
method that does the work. The declaration is the single source of truth for
validation, the catalog served to the editor, `nodegraph nodes` and the docs::

    class TextConcat(Node):
        type_id = "TextConcat"
        display_name = "Concatenate text"
        category = "text"
        description = "Join two texts with a separator."
        inputs = (
            Input("first", STRING, description="Text that comes first."),
            Input("second", STRING, description="Text that comes second."),
            Input("separator", STRING, required=False, default=" "),
        )
        outputs = (Output("text", STRING),)

        def run(self, ctx, first, second, separator=" "):
            return {"text": first + separator + second}

`run` receives the node context and the input values as keyword arguments, and
returns a dict from output name to value (or a `NodeResult` when the node also has
something to display). A router (`routes = True`) returns only the outputs it
activates; consumers of the others are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Sequence

from nodegraph.types import LITERAL_TYPES

if TYPE_CHECKING:
    from nodegraph.context import NodeContext


class _Skipped:
    """The value a lazy input has when its source was skipped."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIPPED"

    def __bool__(self) -> bool:
        return False


SKIPPED = _Skipped()

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Input:
    """A typed input with its widget spec.

    Attributes:
        name: the input's name, unique within its node type.
        type: a port type from `nodegraph.types`.
        required: a required input must be given a value or a link.
        lazy: the node requests the input at run time (see `Node.needed_inputs`), and
            nothing feeding an input it never asks for is computed.
        default: the value used when an optional input is not given, and the widget's start value.
        min, max, step: limits for INT and FLOAT values.
        choices: allowed values, or a callable that takes the model manager (or None) and
            returns them; called when the catalog is built, e.g. to list the models folder.
        multiline: a STRING input edited in a text area.
        widget: a widget hint for the editor: "slider", "seed", "upload" or None.
        description: one sentence shown in the editor and the docs.
    """

    name: str
    type: str
    required: bool = True
    lazy: bool = False
    default: Any = _NO_DEFAULT
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: Sequence[Any] | Callable[[Any], Sequence[Any]] | None = None
    multiline: bool = False
    widget: str | None = None
    description: str = ""
    # Choices outside the list are still accepted (e.g. a model path that is not in the models folder).
    open_choices: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def accepts_literal(self) -> bool:
        return self.type in LITERAL_TYPES

    def choice_list(self, models: Any = None) -> list[Any] | None:
        """Return the current choices, calling a dynamic choices provider with the model manager."""
        if self.choices is None:
            return None
        if callable(self.choices):
            return list(self.choices(models))
        return list(self.choices)


@dataclass(frozen=True)
class Output:
    """A typed output."""

    name: str
    type: str
    description: str = ""


@dataclass
class NodeResult:
    """The return value of `run` for a node that displays something besides its outputs.

    Attributes:
        outputs: output name to value; a router leaves out the outputs it does not activate.
        display: what an output node shows, e.g. {"text": [...]} or {"images": [...]}.
    """

    outputs: dict[str, Any] = field(default_factory=dict)
    display: dict[str, Any] | None = None


class Node:
    """Base class of every node type. Subclasses set the class attributes and `run`."""

    type_id: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    category: ClassVar[str] = "misc"
    description: ClassVar[str] = ""
    version: ClassVar[int] = 1
    inputs: ClassVar[tuple[Input, ...]] = ()
    outputs: ClassVar[tuple[Output, ...]] = ()
    output_node: ClassVar[bool] = False
    routes: ClassVar[bool] = False
    # False for nodes whose result changes between runs with the same inputs. Such a
    # node must override `fingerprint` to return what its cache key depends on.
    deterministic: ClassVar[bool] = True
    # Maturity: "stable", "beta" or "deprecated".
    maturity: ClassVar[str] = "stable"
    # Optional translations of the title and description, keyed by language tag, e.g.
    # {"zh-CN": {"display_name": "...", "description": "..."}}.
    translations: ClassVar[dict[str, dict[str, str]]] = {}

    def needed_inputs(self, ctx: "NodeContext", values: dict[str, Any]) -> Iterable[str]:
        """Return the lazy inputs still needed, given the values evaluated so far.

        `values` holds every non-lazy input and the lazy inputs evaluated so far; a lazy
        input whose source was skipped holds `SKIPPED`. The executor evaluates what this
        returns and asks again, until it returns nothing new. The default asks for every
        lazy input that is connected.
        """
        return [spec.name for spec in self.inputs if spec.lazy and spec.name not in values]

    def fingerprint(self, ctx: "NodeContext", literals: dict[str, Any]) -> str | None:
        """Return extra text for the cache key, e.g. a file's size and mtime.

        Called before the node runs, with its literal inputs. Return None for a node
        that must never be served from the cache.
        """
        return ""

    def run(self, ctx: "NodeContext", **inputs: Any) -> dict[str, Any] | NodeResult:
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    @classmethod
    def input_spec(cls, name: str) -> Input | None:
        for spec in cls.inputs:
            if spec.name == name:
                return spec
        return None

    @classmethod
    def output_spec(cls, name: str) -> Output | None:
        for spec in cls.outputs:
            if spec.name == name:
                return spec
        return None
