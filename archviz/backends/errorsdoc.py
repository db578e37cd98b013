"""The error-code reference, generated from archviz.codes so it cannot drift."""
from __future__ import annotations

from itertools import groupby

from archviz.codes import ALL, RANGES


def _codes(code=None) -> list:
    return [ALL[code]] if code else list(ALL.values())


def errors_table(code=None):
    from rich.markup import escape
    from rich.table import Table
    t = Table(title="archviz error codes (archviz errors CODE for one)", header_style="bold cyan")
    for c in ("code", "name", "class", "meaning"):
        t.add_column(c)
    for c in _codes(code):
        t.add_row(str(c), f"E.{c.name}", c.kind, escape(c.title))
    return t


def errors_markdown(code=None) -> str:
    lines = ["# archviz error codes", "",
             "Generated from `archviz/codes.py` (`archviz errors --format markdown`; `make docs`).", "",
             "Every error and warning archviz prints carries one of these codes, e.g. "
             "`error[E0301]: unknown node 'x'`, and so does the `warnings` list of the JSON summary. "
             "A code's value is stable: it never changes and is never reused for a new meaning. "
             "In archviz's source a code is referenced by its name (`code=E.UNKNOWN_NODE`).", ""]
    for section, codes in groupby(_codes(code), key=lambda c: c[1:3]):
        lines += [f"## {section}xx: {RANGES[section]}", "", "| code | name | class | meaning |", "|---|---|---|---|"]
        lines += [f"| {c} | `{c.name}` | {c.kind} | {c.title.replace('|', '&#124;')} |" for c in codes]
        lines.append("")
    return "\n".join(lines)
