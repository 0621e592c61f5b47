"""Text and value nodes: literals, concatenation, templates and showing text."""

from __future__ import annotations

import string
from typing import Any

from nodegraph.errors import NodeError
from nodegraph.node import Input, Node, NodeResult, Output
from nodegraph.types import ANY, BOOLEAN, FLOAT, INT, STRING

# Seeds are unsigned 64-bit integers, the range torch.Generator.manual_seed accepts.
SEED_MAX = 2**64 - 1


def _zh(name: str, description: str) -> dict[str, dict[str, str]]:
    return {"zh-CN": {"display_name": name, "description": description}}


class Text(Node):
    type_id = "Text"
    display_name = "Text"
    category = "text"
    description = "A piece of text typed in the workflow, such as a prompt."
    translations = _zh("文本", "在工作流中输入的一段文本，例如提示词。")
    inputs = (Input("text", STRING, default="", multiline=True, description="The text."),)
    outputs = (Output("text", STRING),)

    def run(self, ctx, text: str) -> dict[str, Any]:
        return {"text": text}


class Int(Node):
    type_id = "Int"
    display_name = "Integer"
    category = "values"
    description = "An integer value."
    translations = _zh("整数", "一个整数值。")
    inputs = (Input("value", INT, default=0, description="The integer."),)
    outputs = (Output("value", INT),)

    def run(self, ctx, value: int) -> dict[str, Any]:
        return {"value": value}


class Float(Node):
    type_id = "Float"
    display_name = "Number"
    category = "values"
    description = "A floating-point number."
    translations = _zh("数值", "一个浮点数。")
    inputs = (Input("value", FLOAT, default=0.0, step=0.01, description="The number."),)
    outputs = (Output("value", FLOAT),)

    def run(self, ctx, value: float) -> dict[str, Any]:
        return {"value": float(value)}


class Boolean(Node):
    type_id = "Boolean"
    display_name = "Boolean"
    category = "values"
    description = "True or false."
    translations = _zh("布尔值", "真或假。")
    inputs = (Input("value", BOOLEAN, default=False, description="The value."),)
    outputs = (Output("value", BOOLEAN),)

    def run(self, ctx, value: bool) -> dict[str, Any]:
        return {"value": value}


class Seed(Node):
    """A seed. Randomizing is done by the caller before the run, so the cache stays exact."""

    type_id = "Seed"
    display_name = "Seed"
    category = "values"
    description = (
        "A random seed. The editor can draw a new value before each run (randomize), "
        "and `nodegraph run --set seed=random` does the same; the value used is recorded with the run."
    )
    translations = _zh("随机种子", "随机种子。编辑器可在每次运行前抽取新值（随机化），所用的值会随运行记录。")
    inputs = (Input("value", INT, default=0, min=0, max=SEED_MAX, widget="seed", description="The seed."),)
    outputs = (Output("value", INT),)

    def run(self, ctx, value: int) -> dict[str, Any]:
        return {"value": value}


class TextConcat(Node):
    type_id = "TextConcat"
    display_name = "Concatenate text"
    category = "text"
    description = "Join two texts, with a separator between them."
    translations = _zh("拼接文本", "用分隔符连接两段文本。")
    inputs = (
        Input("first", STRING, default="", multiline=True, description="The text that comes first."),
        Input("second", STRING, default="", multiline=True, description="The text that comes second."),
        Input("separator", STRING, required=False, default=" ", description="Put between the two texts."),
    )
    outputs = (Output("text", STRING),)

    def run(self, ctx, first: str, second: str, separator: str = " ") -> dict[str, Any]:
        return {"text": f"{first}{separator}{second}"}


class TextTemplate(Node):
    type_id = "TextTemplate"
    display_name = "Text template"
    category = "text"
    description = "Fill the fields {a}, {b}, {c} and {d} of a template with the connected values; write {{ and }} for literal braces."
    translations = _zh("文本模板", "用连接的值填充模板中的 {a}、{b}、{c}、{d}；字面花括号写作 {{ 和 }}。")
    inputs = (
        Input("template", STRING, default="{a}", multiline=True, description="Text with {a}…{d} fields."),
        Input("a", ANY, required=False, description="The value for {a}."),
        Input("b", ANY, required=False, description="The value for {b}."),
        Input("c", ANY, required=False, description="The value for {c}."),
        Input("d", ANY, required=False, description="The value for {d}."),
    )
    outputs = (Output("text", STRING),)

    def run(self, ctx, template: str, **fields: Any) -> dict[str, Any]:
        values = {name: _as_text(fields[name]) if name in fields else "" for name in "abcd"}
        try:
            for _, field, spec, conversion in string.Formatter().parse(template):
                if field is not None and field not in values:
                    raise NodeError(f"input 'template' has the field {{{field}}}; only {{a}}, {{b}}, {{c}} and {{d}} exist "
                                    "(write {{ and }} for literal braces)")
            return {"text": template.format(**values)}
        except ValueError as error:
            raise NodeError(f"input 'template' is not a valid template: {error}; write {{{{ and }}}} for literal braces") from error


class ShowText(Node):
    type_id = "ShowText"
    display_name = "Show text"
    category = "text"
    description = "Show a value as text; its text appears in the run's outputs."
    translations = _zh("显示文本", "以文本形式显示一个值，它会出现在运行的输出中。")
    output_node = True
    inputs = (Input("text", ANY, description="The value to show; anything that is not text is converted."),)
    outputs = ()

    def run(self, ctx, text: Any) -> NodeResult:
        return NodeResult(display={"text": [_as_text(text)]})


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    as_text = getattr(value, "as_text", None)
    if callable(as_text):
        return as_text()
    return str(value)


NODE_TYPES = (Text, Int, Float, Boolean, Seed, TextConcat, TextTemplate, ShowText)
