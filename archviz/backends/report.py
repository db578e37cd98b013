"""Reports of an analysed model: rich table, JSON, CSV, Markdown.

Backends only read the analysed graph; they never recompute a shape or a count.
`--depth D` collapses every layer whose id has more than D dot-separated parts into its
ancestor of D parts (``layer1.0.conv1`` → ``layer1`` at depth 1), summing the counts
and keeping the output shape of the group's last layer.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from archviz.backends.sharing import params_cell as _params_cell, shared
from archviz.errors import ArchvizError
from archviz.ir import meta as M
from archviz.ir.once import by_id
from archviz.ops.base import fmt_shape

FORMATS = ("table", "json", "csv", "markdown")


@dataclass
class Row:
    id: str
    op: str
    inputs: list
    output_shape: tuple
    params: int
    macs: int
    elementwise: int
    repeat: int | None = None      # a collapsed repeat: `op` is what is repeated
    shared: dict = field(default_factory=dict)     # tensor -> 'owner.tensor' (a group's: 'layer.tensor')
    nodes: list = field(default_factory=list, repr=False)    # the IR nodes of the row

    @property
    def params_cell(self) -> str:
        """The params as a table shows them: `0 ↔ wte` when the row shares weights held outside it."""
        return _params_cell(self.params, self.nodes)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def label(self) -> str:
        """The op column as shown: `basic ×2` for a collapsed repeat."""
        return self.op if self.repeat is None else f"{self.op} ×{self.repeat}"

    def to_json(self) -> dict:
        d = {"id": self.id, "op": self.op, "inputs": self.inputs, "output_shape": list(self.output_shape),
             "params": self.params, "macs": self.macs, "flops": self.flops}
        if self.repeat is not None:
            d["repeat"] = self.repeat
        if self.shared:
            d["shared"] = self.shared
        return d


def rows(model, depth: int | None = None) -> list[Row]:
    """Per-layer rows; with `depth`, layers are grouped by the first `depth` parts of their
    ids and a group's inputs are the tensors it reads from outside, named at that depth."""
    out: list[Row] = []
    index: dict[str, Row] = {}
    g = model.graph

    def cut(nid: str) -> str:
        return nid if depth is None else ".".join(nid.split(".")[:max(depth, 1)])

    for l in model.layers:
        key = cut(l.id)
        r = index.get(key)
        if r is None:
            label, rep = (l.op, None) if key == l.id else _group_label(g, key)
            r = Row(key, label, [], l.output_shape, 0, 0, 0, rep)
            out.append(r)
            index[key] = r
        for ref in l.inputs:
            src = cut(ref)
            if src != key and src not in r.inputs:
                r.inputs.append(src)
        r.output_shape = l.output_shape
        r.nodes.append(l.node)
        if l.node.meta.get(M.TIES):         # (what it shares: most layers share nothing)
            r.shared.update({(p if key == l.id else f"{l.id[len(key) + 1:]}.{p}"): v
                             for p, v in shared(l.node).items()})
        r.params += l.params.total
        r.macs += l.macs
        r.elementwise += l.elementwise
    return out


def _group_label(g, key: str) -> tuple[str, int | None]:
    """(what the group is: a block name, an op or 'group'; its repeat count or None)."""
    if key in g.repeats:
        first = f"{key}.0"
        inner = g.calls.get(first) or (g.nodes[first].op if first in g.nodes else "")
        return inner, g.repeats[key]
    if key in g.calls:
        return g.calls[key], None
    return "group", None


def render_summary(model, fmt: str = "table", depth: int | None = None, indent: int | None = None) -> str:
    if fmt == "json":
        return render_json(model, depth, indent)
    if fmt == "csv":
        return render_csv(model, depth)
    if fmt == "markdown":
        return render_markdown(model, depth)
    if fmt in ("table", "text"):
        return render_table_text(model, depth)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def render_json(model, depth=None, indent: int | None = None) -> str:
    if depth is None and indent is None:
        return _stream_json(model)
    d = model.to_dict()
    if depth is not None:
        d["depth"] = depth
        d["layers"] = [r.to_json() for r in rows(model, depth)]
    return dumps(d, indent)


def summary_parts(model, fmt: str, depth=None, indent: int | None = None):
    """The summary's text in parts: compact JSON as it is encoded (json_parts), else whole."""
    if fmt == "json" and depth is None and indent is None:
        return json_parts(model)
    return [render_summary(model, fmt, depth, indent)]


def _stream_json(model, chunk: int = 512) -> str:
    return "".join(json_parts(model, chunk))


def json_parts(model, chunk: int = 512):
    """model.to_dict() as compact JSON text, in parts: its layers are encoded a chunk at a
    time, so the document of a 100,000-layer graph is never held as Python objects, and a
    writer that writes each part as it comes never holds its whole text (issue 17)."""
    import json
    from itertools import islice

    from archviz.backends.json_text import layer_texts
    head = json.JSONEncoder(separators=(",", ":")).encode(model.json_head())
    yield head[:-1] + ',"layers":['
    entries = layer_texts(model)      # each entry's text, as json.dumps writes it
    sep = ""
    while batch := list(islice(entries, chunk)):
        yield sep + ",".join(batch)
        sep = ","
    yield "]}\n"


def dumps(doc, indent: int | None = None) -> str:
    """JSON text ending in a newline: compact by default, written by the json module's C
    encoder (it takes no `indent`: indenting switches to the pure-Python encoder, 4-5x as
    slow on a 10,000-layer summary, issue 17); indented by `indent` spaces when asked. The
    parsed document is the same either way."""
    import json
    if indent is None:
        return json.dumps(doc, separators=(",", ":")) + "\n"
    return json.dumps(doc, indent=indent) + "\n"


_COLS = ("id", "op", "inputs", "output_shape", "params", "macs", "flops", "elementwise_ops")


def render_csv(model, depth=None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_COLS)
    for r in rows(model, depth):
        w.writerow([r.id, r.label, " ".join(r.inputs), "x".join(map(str, r.output_shape)), r.params, r.macs,
                    r.flops, r.elementwise])
    t = model.totals
    w.writerow(["TOTAL", "", "", "", t["params"], t["macs"], t["flops"], t["elementwise_ops"]])
    return buf.getvalue()


def _human(n: int) -> str:
    for unit, v in (("T", 10 ** 12), ("G", 10 ** 9), ("M", 10 ** 6), ("K", 10 ** 3)):
        if abs(n) >= v:
            return f"{n / v:.2f}{unit}"
    return str(n)


def _bytes(n: int) -> str:
    for unit, v in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= v:
            return f"{n / v:.2f} {unit}"
    return f"{n} B"


def totals_lines(model) -> list[tuple[str, str]]:
    t = model.totals
    # a mixture of experts: a token runs the router and top_k experts (a dense model: all params)
    active = [("active params per token", f"{t['active_params']:,} ({_human(t['active_params'])})")] \
        if t["active_params"] != t["params"] else []
    return [
        ("params", f"{t['params']:,} ({_human(t['params'])})"), *active,
        ("trainable / non-trainable", f"{t['trainable_params']:,} / {t['non_trainable_params']:,}"),
        ("buffers", f"{t['buffers']:,}"),
        ("MACs", f"{t['macs']:,} ({_human(t['macs'])})"),
        ("FLOPs (= 2 × MACs)", f"{t['flops']:,} ({_human(t['flops'])})"),
        ("element-wise ops", f"{t['elementwise_ops']:,} ({_human(t['elementwise_ops'])})"),
        (f"param memory ({model.dtype})", _bytes(t["param_bytes"])),
        (f"activation memory ({model.dtype})", _bytes(t["activation_bytes"])),
    ]


def render_markdown(model, depth=None) -> str:
    lines = [f"# {model.name}", ""]
    if model.graph.doc:
        lines += [model.graph.doc.strip(), ""]
    ins = ", ".join(f"`{k}` {fmt_shape(v)}" for k, v in model.input_shapes.items())
    outs = ", ".join(f"`{k}` {fmt_shape(v)}" for k, v in model.output_shapes.items())
    lines += [f"Inputs: {ins}  ", f"Outputs: {outs}", "",
              "| id | op | output shape | params | MACs |", "|---|---|---|---:|---:|"]
    for r in rows(model, depth):
        lines.append(f"| `{r.id}` | {r.label} | {fmt_shape(r.output_shape)} | {r.params_cell} | {r.macs:,} |")
    from archviz.backends.sharing import lines as share_lines
    ties = share_lines(model)
    lines += ([""] + [f"{t}  " for t in ties]) if ties else []
    lines += ["", "| total | |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in totals_lines(model)]
    return "\n".join(lines) + "\n"


# Rows past which a table is laid out here as aligned text, not by rich: rich measures and
# wraps every cell (about 1 ms a row), so 6,000 rows took 5 s of CPU.
LARGE_TABLE = 400


def plain_table(title: str, columns, rows, footer=None, caption=None) -> str:
    """A long table as aligned text: the same title, columns (name, justify) and cells as
    the rich table, without the box. A cell may hold several lines (a name broken to fit
    a narrow terminal): its row then takes as many lines."""
    heads = [c for c, _ in columns]
    allrows = [heads, *rows, *([footer] if footer else [])]
    cells = [list(map(str, r)) for r in allrows]
    if "\n" not in "\t".join(map("\t".join, cells)):       # one line a row (most tables)
        return _plain_lines(title, columns, cells, bool(footer), caption)
    widths = [max(len(part) for r in allrows for part in str(r[i]).split("\n")) for i in range(len(columns))]

    def line(cells):
        cols = [str(c).split("\n") for c in cells]
        return "\n".join("  ".join((c[k] if k < len(c) else "").rjust(w) if j == "right"
                                   else (c[k] if k < len(c) else "").ljust(w)
                                   for c, w, (_, j) in zip(cols, widths, columns)).rstrip()
                         for k in range(max(len(c) for c in cols)))
    rule = "  ".join("─" * w for w in widths)
    out = [title, line(heads), rule, *map(line, rows)]
    if footer:
        out += [rule, line(footer)]
    if caption:
        out.append(caption)
    return "\n".join(out)


def _plain_lines(title, columns, cells, footer: bool, caption) -> str:
    """plain_table's text when no cell holds several lines: `cells` are the heads, the rows
    and the footer (when `footer`), as str."""
    widths = [max(map(len, col)) for col in zip(*cells)]
    # each row by one format: '{:<w}' pads a str as ljust(w), '{:>w}' as rjust(w)
    fmt = "  ".join(f"{{:{'>' if j == 'right' else '<'}{w}}}" for (_, j), w in zip(columns, widths)).format
    lines = [fmt(*r).rstrip() for r in cells]
    rule = "  ".join("─" * w for w in widths)
    body = lines[1:-1] if footer else lines[1:]
    out = [title, lines[0], rule, *body]
    if footer:
        out += [rule, lines[-1]]
    if caption:
        out.append(caption)
    return "\n".join(out)


# a table's frame: one rule per column and at each edge, one space of padding each side
def _frame(ncols: int) -> int:
    return ncols + 1 + 2 * ncols


def break_name(text: str, width: int) -> str:
    """`text` (an id like layer1.0.downsample.0, an op like attention_gru ×2) in lines of at
    most `width` characters, broken after '.', '_', '-', '×' or a space, the places where a
    reader sees a word end; a part longer than the line alone is cut where it must be."""
    if len(text) <= width or width < 1:
        return text
    import re
    parts = re.findall(_PARTS, text)
    lines, cur = [], ""
    for p in parts:
        if cur and len(cur) + len(p.rstrip()) > width:
            lines.append(cur.rstrip())
            cur = ""
        while len(p.rstrip()) > width:
            lines.append(p[:width])
            p = p[width:]
        cur += p
    if cur.strip():
        lines.append(cur.rstrip())
    return "\n".join(lines)


_PARTS = r"[^._\-× ]*[._\-× ]|[^._\-× ]+$"


def _longest_part(texts) -> int:
    import re
    return max([len(p) for t in texts for p in re.findall(_PARTS, str(t))] or [1])


def fit_names(body, heads, width: int, footer=(), frame: int | None = None):
    """(rows, column widths or None) so that the table fits `width` columns: numbers keep
    their width, the shape wraps after its commas, and the id, op and RF columns are
    broken between the parts of a name (after '.', '_', '-', '×' or a space). What gives
    way, in turn: the shape down to 13 columns, the ids down to their longest part, the
    ops, then the receptive fields, down to theirs, the shape down to its longest number;
    past that a name is cut where it must be. (rows, None) when the table fits as it is."""
    allrows = [heads, *body, *([footer] if footer else [])]
    w = [max(map(len, map(str, col))) for col in zip(*allrows)]
    avail = width - (_frame(len(heads)) if frame is None else frame)
    if sum(w) <= avail:
        return body, None
    shape_min = max([len(x) for x in heads[2].split()] + [len(tok) for r in body for tok in r[2].split(" ")])
    part = (lambda i: _longest_part([r[i] for r in allrows]))      # noqa: E731
    floors = [(2, max(shape_min, 13)), (0, part(0)), (1, part(1)), (5, part(5)), (2, shape_min),
              (0, 4), (1, 4)]
    for col, floor in floors:
        excess = sum(w) - avail
        if excess <= 0:
            break
        w[col] = max(min(w[col], floor), w[col] - excess)
    import textwrap
    rows = [(break_name(r[0], w[0]), break_name(r[1], w[1]),
             "\n".join(textwrap.wrap(r[2], w[2], break_long_words=False)) or r[2], r[3], r[4],
             break_name(r[5], w[5])) for r in body]
    return rows, w


def print_table(con, title, columns, rows, footer=None, caption=None, **style) -> None:
    """Print a table: rich's for a screenful, aligned text past LARGE_TABLE rows.
    `columns` are (name, justify) or (name, justify, rich column options)."""
    if len(rows) > LARGE_TABLE:
        text = plain_table(title, [c[:2] for c in columns], rows, footer, caption)
        if getattr(con, "record", False) or con.is_terminal:
            con.print(text, markup=False, highlight=False, soft_wrap=True)
        else:       # a file or a pipe: the same characters (as the console spells them), without
            # rich's pass over every character of a 10,000-line text (issue 17)
            from archviz.terminal import ascii_text
            con.file.write(ascii_text(text, con.file) + "\n")
        return
    from archviz.backends.boxed import boxed_text
    text = boxed_text(con, title, columns, rows, footer, caption, **style)      # a file or a pipe
    if text is not None:
        con.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    from rich.table import Table
    table = Table(title=title, show_footer=footer is not None, caption=caption, **style)
    for i, (name, justify, *opts) in enumerate(columns):
        table.add_column(name, justify=justify, footer=footer[i] if footer else "", **(opts[0] if opts else {}))
    for r in rows:
        table.add_row(*r)
    con.print(table)


def print_summary(con, model, depth=None) -> None:
    """The layer table with a totals footer, then the totals."""
    t = model.totals
    ins = ", ".join(f"{k} {fmt_shape(v)}" for k, v in model.input_shapes.items())
    rf, warn = _rf_texts(model, depth)
    caption = rf.get("__failed__") or (f"RF: {len({nid for nid, _ in warn})} misaligned merge(s), e.g. "
                                       f"{warn[0][1]} — see `archviz rf`" if warn else None)
    columns = [("id", "left", {"no_wrap": True}), ("op", "left", {"style": "magenta", "no_wrap": True}),
               ("output shape", "left"), ("params", "right", {"no_wrap": True}),
               ("MACs", "right", {"no_wrap": True}), ("RF", "right", {"no_wrap": True})]
    # (id, label, shape, params, its nodes, MACs, whether they share weights), a row each
    if depth is None:       # a row a layer: straight from the layers (no Row)
        items = [(l.id, l.op, l.output_shape, l.params.total, (l.node,), l.macs, l.node.meta.get(M.TIES))
                 for l in model.layers]
    else:
        items = [(r.id, r.label, r.output_shape, r.params, r.nodes, r.macs, any(x.meta.get(M.TIES) for x in r.nodes))
                 for r in rows(model, depth)]
    shapes: dict = {}       # a shape's text once (the shape pass shares the objects)
    nums: dict = {}         # a count's text once
    body = []
    for rid, label, shape, n, nodes, macs, tied in items:
        params = _params_cell(n, nodes) if tied else nums.get(n)
        if params is None:
            params = nums[n] = f"{n:,}"
        m = nums.get(macs)
        if m is None:
            m = nums[macs] = f"{macs:,}"
        body.append((rid, label, by_id(shapes, shape, fmt_shape), params, m, rf.get(rid, "")))
    footer = ("total", "", "", f"{t['params']:,}", f"{t['macs']:,}", "")
    plain = len(body) > LARGE_TABLE        # aligned text: two spaces between columns, no frame
    body, widths = fit_names(body, [c[0] for c in columns], con.width, footer,
                             frame=2 * (len(columns) - 1) if plain else None)
    if widths:
        columns = [(c[0], c[1], {**(c[2] if len(c) > 2 else {}), "width": w}) for c, w in zip(columns, widths)]
    print_table(con, f"{model.name}  —  batch {model.batch}, input {ins}", columns, body,
                footer=("total", "", "", f"{t['params']:,}", f"{t['macs']:,}", ""), caption=caption,
                title_style="bold", header_style="bold cyan")
    from archviz.backends.context import lines as context_lines
    from archviz.backends.sharing import lines as share_lines
    for line in context_lines(model) + share_lines(model):
        con.print(line, markup=False, highlight=False)
    text = None if con.is_terminal else totals_text(model, con)
    if text is None:
        con.print(totals_table(model))
    else:
        con.print(text, markup=False, highlight=False, soft_wrap=True)


def totals_text(model, con) -> str | None:
    """The totals as rich lays out totals_table when it fits `con` (what a file or a pipe
    gets: no style), without rich; None when it would not fit or rich might count a
    character otherwise (tests compare the two)."""
    from archviz.plain_console import fits
    from archviz.terminal import ascii_text
    cells = [(ascii_text(k, con.file), ascii_text(v, con.file)) for k, v in totals_lines(model)]
    wk, wv = max(len(k) for k, _ in cells), max(len(v) for _, v in cells)
    if wk + 2 + wv > con.width or not all(fits(k) and fits(v) for k, v in cells):
        return None
    return "\n".join(f"{k.ljust(wk)}  {v.rjust(wv)}" for k, v in cells)


def _rf_texts(model, depth=None):
    """({row id: receptive field per axis, e.g. '7×7', '188–204×188–204', 'global'}, warnings);
    a group shows its last layer's.  Never fails the summary."""
    try:
        from archviz.passes import rf as RF, run
        run(model.graph, "rf")
        out = {}
        memo: dict = {}
        for l in model.layers:
            out[l.id if depth is None else ".".join(l.id.split(".")[:max(depth, 1)])] = RF.short(l.node, memo)
        return out, RF.warnings(model.graph)
    except Exception as exc:    # the table still shows; the caption says what failed
        why = exc.message if isinstance(exc, ArchvizError) else f"{type(exc).__name__}: {exc}"
        return {"__failed__": f"receptive fields unavailable: {why}"}, []


def totals_table(model):
    from rich.table import Table
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for k, v in totals_lines(model):
        table.add_row(k, v)
    return table


def render_table_text(model, depth=None, width: int = 110) -> str:
    from rich.console import Console
    con = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    print_summary(con, model, depth)
    return con.export_text()


def compare_rows(a, b) -> list[tuple[str, int, int, "Fraction | None"]]:
    """Totals of two models side by side with the exact ratio a / b (None where b is 0)."""
    from fractions import Fraction
    ta, tb = a.totals, b.totals
    return [(k, ta[k], tb[k], None if tb[k] == 0 else Fraction(ta[k], tb[k]))
            for k in ("params", "macs", "flops", "elementwise_ops", "param_bytes", "activation_bytes")]


def fmt_ratio(r) -> str:
    return "—" if r is None else f"{float(r):.4g}×"
