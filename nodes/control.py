"""Control-flow nodes: routing by quality, merging branches, switching lazily."""

from __future__ import annotations

from typing import Any, Iterable

from nodegraph.node import SKIPPED, Input, Node, Output
from nodegraph.types import ANY, BOOLEAN, FLOAT, STRING


class QualityBranch(Node):
    type_id = "QualityBranch"
    display_name = "Quality branch"
    category = "control"
    description = (
        "Route a prompt by its quality score: `high` carries the prompt when score >= threshold, "
        "otherwise `low` does. Nodes fed only by the inactive output are skipped."
    )
    translations = {"zh-CN": {"display_name": "质量分支",
                              "description": "按质量分数分流提示词：分数 ≥ 阈值时走 high，否则走 low；只接在未激活输出上的节点会被跳过。"}}
    routes = True
    inputs = (
        Input("prompt", STRING, description="The prompt to route."),
        Input("score", FLOAT, description="Its quality score, 0..1."),
        Input("threshold", FLOAT, default=0.6, min=0.0, max=1.0, step=0.01, widget="slider",
              description="Scores at or above this take the high branch."),
    )
    outputs = (
        Output("high", STRING, "The prompt, when score >= threshold."),
        Output("low", STRING, "The prompt, when score < threshold."),
    )

    def run(self, ctx, prompt: str, score: float, threshold: float = 0.6) -> dict[str, Any]:
        if score >= threshold:
            return {"high": prompt}
        return {"low": prompt}


class Merge(Node):
    type_id = "Merge"
    display_name = "Merge"
    category = "control"
    description = "Pass on the first input that is not skipped; inputs after it are not computed."
    translations = {"zh-CN": {"display_name": "合并", "description": "输出第一个未被跳过的输入；其后的输入不会被计算。"}}
    inputs = (
        Input("first", ANY, required=False, lazy=True, description="Used when its branch is active."),
        Input("second", ANY, required=False, lazy=True, description="Used when `first` is skipped."),
    )
    outputs = (Output("value", ANY),)
    routes = True  # with both inputs skipped, the output is inactive

    def needed_inputs(self, ctx, values: dict[str, Any]) -> Iterable[str]:
        if "first" not in values:
            return ["first"]
        if values["first"] is SKIPPED and "second" not in values:
            return ["second"]
        return []

    def run(self, ctx, first: Any = SKIPPED, second: Any = SKIPPED) -> dict[str, Any]:
        if first is not SKIPPED:
            return {"value": first}
        if second is not SKIPPED:
            return {"value": second}
        return {}


class Switch(Node):
    type_id = "Switch"
    display_name = "Switch"
    category = "control"
    description = "Pass on `on_true` or `on_false` by `select`; only the selected input is computed."
    translations = {"zh-CN": {"display_name": "开关", "description": "按 select 输出 on_true 或 on_false；只计算被选中的输入。"}}
    routes = True  # a skipped selected input leaves the output inactive
    inputs = (
        Input("select", BOOLEAN, default=True, description="Which input to pass on."),
        Input("on_true", ANY, lazy=True, description="Passed on when select is true."),
        Input("on_false", ANY, lazy=True, description="Passed on when select is false."),
    )
    outputs = (Output("value", ANY),)

    def needed_inputs(self, ctx, values: dict[str, Any]) -> Iterable[str]:
        return ["on_true" if values["select"] else "on_false"]

    def run(self, ctx, select: bool, on_true: Any = SKIPPED, on_false: Any = SKIPPED) -> dict[str, Any]:
        chosen = on_true if select else on_false
        return {} if chosen is SKIPPED else {"value": chosen}


NODE_TYPES = (QualityBranch, Merge, Switch)
