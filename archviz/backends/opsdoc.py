"""The ops reference, generated from the registry so it cannot drift."""
from __future__ import annotations

from archviz.ops import registry
from archviz.ops.base import ATTR_TYPES
from archviz.ops.describe import Role


def _default(a) -> str:
    if a.required:
        return "required"
    if isinstance(a.default, bool):
        return "true" if a.default else "false"
    if a.default is None:
        return "null"
    return repr(a.default) if isinstance(a.default, str) else str(a.default)


def _ops(name=None):
    return [registry[name]] if name else [registry[k] for k in sorted(registry) if registry[k].role is not Role.INPUT]


def ops_table(name=None):
    from rich.markup import escape
    from rich.table import Table
    tables = []
    if name is None:
        t = Table(title="archviz ops (archviz ops NAME for one op's attributes)", header_style="bold cyan")
        t.add_column("op", style="magenta")
        t.add_column("family")
        t.add_column("inputs")
        t.add_column("attributes")
        t.add_column("doc")
        for op in _ops():
            arity = str(op.min_inputs) if op.min_inputs == op.max_inputs else \
                f"{op.min_inputs}+" if op.max_inputs is None else f"{op.min_inputs}-{op.max_inputs}"
            t.add_row(op.name, op.family, arity, escape(", ".join(op.attrs)), escape(op.doc.split(". ")[0]))
        return [t]
    op = registry[name]
    t = Table(title=escape(f"{op.name} — {op.doc}"), header_style="bold cyan", title_justify="left")
    for c in ("attribute", "type", "default", "doc"):
        t.add_column(c)
    for k, a in op.attrs.items():
        typ = ATTR_TYPES.get(a.type, a.type) + (f" ∈ {{{', '.join(a.choices)}}}" if a.choices else "")
        t.add_row(k, escape(typ), escape(_default(a)), escape(a.doc))
    tables.append(t)
    return tables


def ops_markdown(name=None) -> str:
    lines = ["# archviz ops", "", "Generated from the op registry (`archviz ops --format markdown`).", ""]
    for op in _ops(name):
        lines += [f"## `{op.name}` ({op.family})", "", op.doc, ""]
        ports = ", ".join(op.outputs)
        lines += [f"Inputs: {op.min_inputs}{'+' if op.max_inputs is None else '' if op.max_inputs == op.min_inputs else '-' + str(op.max_inputs)}; outputs: {ports}.", ""]
        if op.attrs:
            lines += ["| attribute | type | default | doc |", "|---|---|---|---|"]
            for k, a in op.attrs.items():
                typ = ATTR_TYPES.get(a.type, a.type) + (f" ∈ {{{', '.join(a.choices)}}}" if a.choices else "")
                lines.append(f"| `{k}` | {typ} | {_default(a)} | {a.doc} |")
            lines.append("")
    return "\n".join(lines)
