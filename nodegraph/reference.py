"""Generate the node reference (docs/nodes.md) from the catalog."""

from __future__ import annotations

from typing import Any


def node_reference(catalog: dict[str, dict[str, Any]]) -> str:
    """Return the Markdown reference of every node type, grouped by category."""
    lines = [
        "# Node reference",
        "",
        "Generated from the node catalog by `nodegraph nodes --markdown`; do not edit by hand.",
        "Port types are described in [workflow-format.md](workflow-format.md).",
        "",
    ]
    by_category: dict[str, list[dict[str, Any]]] = {}
    for entry in catalog.values():
        by_category.setdefault(entry["category"], []).append(entry)
    for category in sorted(by_category):
        lines += [f"## {category}", ""]
        for entry in sorted(by_category[category], key=lambda item: item["type"]):
            lines += _node_section(entry)
    return "\n".join(lines).rstrip() + "\n"


def _node_section(entry: dict[str, Any]) -> list[str]:
    flags = []
    if entry["output_node"]:
        flags.append("output node")
    if entry["routes"]:
        flags.append("router: activates some outputs")
    if not entry["deterministic"]:
        flags.append("not deterministic")
    if entry["maturity"] != "stable":
        flags.append(entry["maturity"])
    lines = [f"### {entry['type']}", ""]
    if entry["display_name"] != entry["type"]:
        lines.append(f"*{entry['display_name']}*" + (f" ({', '.join(flags)})" if flags else ""))
        lines.append("")
    elif flags:
        lines += [f"({', '.join(flags)})", ""]
    lines += [entry["description"] or "No description.", ""]
    if entry["inputs"]:
        lines += ["| input | type | required | default | limits | description |", "|---|---|---|---|---|---|"]
        for item in entry["inputs"]:
            limits = _limits(item)
            required = "yes" if item["required"] else "no"
            if item.get("lazy"):
                required += ", lazy"
            default = f"`{item['default']!r}`" if "default" in item else ""
            lines.append(f"| `{item['name']}` | {item['type']} | {required} | {default} | {limits} | {item.get('description', '')} |")
        lines.append("")
    if entry["outputs"]:
        lines += ["| output | type | description |", "|---|---|---|"]
        for item in entry["outputs"]:
            lines.append(f"| `{item['name']}` | {item['type']} | {item['description']} |")
        lines.append("")
    return lines


def _limits(item: dict[str, Any]) -> str:
    parts = []
    if "min" in item:
        parts.append(f"min {item['min']}")
    if "max" in item:
        parts.append(f"max {item['max']}")
    if "step" in item:
        parts.append(f"step {item['step']}")
    if "choices" in item:
        shown = ", ".join(f"`{choice}`" for choice in item["choices"][:12])
        parts.append(f"one of {shown}" + (" …" if len(item["choices"]) > 12 else ""))
    if item.get("multiline"):
        parts.append("multiline")
    if item.get("widget"):
        parts.append(f"widget: {item['widget']}")
    return "; ".join(parts)
