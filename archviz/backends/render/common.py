"""Shared pieces of the diagram layouts: what a node is (asked of its op), label text,
colours, node facts.

Everything here only READS the analysed graph (``node.meta`` written by the passes) and
the ops' own descriptions (:mod:`archviz.ops.describe`): no shape or count is recomputed,
and no layout decides by an op's name, so an op added later is drawn by what it says it is.
"""
from __future__ import annotations

import re

from archviz.backends.render.dot import html_escape
from archviz.ir import meta as M
from archviz.ops import registry
from archviz.ops.describe import FUSABLE_ROLES, LAYER_ROLES, RECURRENT_ROLES, Merge, Role

FONT = "DejaVu Sans"


# -- what a node is (the op says) ----------------------------------------------------------
def op_of(name: str):
    """The op called `name`, or None (a block's name)."""
    return registry.get(name)


def role_of(name: str) -> Role | None:
    o = registry.get(name)
    return o.role if o is not None else None


def family(op: str) -> str:
    o = registry.get(op)
    return o.family if o is not None else "block"


def textbook(op: str) -> str:
    """The op's label in a figure ('conv', 'BN', 'σ'); a block keeps its name."""
    o = registry.get(op)
    return o.title if o is not None else op


def key_attrs(op: str, a: dict) -> str:
    """The attributes a reader looks for, in textbook order: 'conv 3×3, 64, /2' (the op's
    caption; `a` may hold only some attributes)."""
    o = registry.get(op)
    return o.caption(a or {}) if o is not None else ""


def is_layer(op: str) -> bool:
    """A layer a reader names (conv, fc, embedding, attention): it heads a fused box."""
    return role_of(op) in LAYER_ROLES


def fusable(op: str) -> bool:
    """Ops drawn inside the box of the weight layer before them (conv → BN → ReLU)."""
    return role_of(op) in FUSABLE_ROLES


def merge_kind(op: str) -> Merge | None:
    o = registry.get(op)
    return o.merge if o is not None else None


def is_crop(op: str) -> bool:
    """Reads some inputs only for their size (copy-and-crop): looking through it finds the data."""
    o = registry.get(op)
    return bool(o is not None and o.size_inputs)


def data_inputs(node) -> list:
    """The node's input refs that carry data (not those read only for their size)."""
    o = registry.get(node.op)
    skip = o.size_inputs if o is not None else ()
    return [r for i, r in enumerate(node.inputs) if i not in skip]


def is_recurrent(op: str) -> bool:
    return role_of(op) in RECURRENT_ROLES


def recurrence(node):
    o = registry.get(node.op)
    return o.recurrence(node.attrs) if o is not None else None


def attends(node) -> bool:
    """A recurrence that attends over a memory at every step (Bahdanau's decoder)."""
    r = recurrence(node)
    return r is not None and r.memory is not None


def is_attention_step(node) -> bool:
    """An attention, or a recurrence with its attention inside (drawn in a seq2seq step)."""
    return role_of(node.op) is Role.ATTENTION or attends(node)


def resample(node):
    """The node's resampling factor per spatial axis (output per input position), or None."""
    o = registry.get(node.op)
    if o is None or M.SHAPES not in node.meta:
        return None
    return o.resample(node.attrs, in_shapes(node), node.meta[M.SHAPES])


def goes_up(node) -> bool:
    f = resample(node)
    return f is not None and any(x > 1 for x in f)


def goes_down(node) -> bool:
    f = resample(node)
    return f is not None and any(x < 1 for x in f)


# -- text ---------------------------------------------------------------------------------
def fmt_int(n: int) -> str:
    return f"{n:,}"


def dims(shape, batch: bool = True) -> str:
    """(1, 64, 56, 56) → '1×64×56×56' (the batch dimension included unless batch=False)."""
    s = list(shape)[0 if batch else 1:]
    return "×".join(str(d) for d in s) if s else "scalar"


def spatial(shape) -> str:
    """Spatial size of (N, C, H, W): '572²' or 'H×W'; of (N, C, L): 'L'."""
    s = list(shape)[2:]
    if not s:
        return ""
    if len(s) == 2 and s[0] == s[1]:
        return f"{s[0]}²"
    return "×".join(map(str, s))


def _outs_text(outs: list) -> str:
    if len(outs) == 1:
        return str(outs[0])
    return "/".join(map(str, outs)) if len(outs) <= 3 else f"{outs[0]}…{outs[-1]}"


def weight_summary(graph, members, limit: int = 3) -> str:
    """The weight layers inside a collapsed box in textbook form, alike ones merged:
    'conv 3×3, 64' (VGG's block), 'conv 1×1, 64/256 · conv 3×3, 64' (a bottleneck), the
    widths of copies that differ joined ('conv 3×3, 64…512')."""
    groups: dict = {}   # (op, attrs but out) -> (attrs of the first such layer, [outs])
    for nid in members:
        n = graph.nodes[nid]
        if not is_layer(n.op):
            continue
        a = {k: v for k, v in (n.attrs or {}).items() if k != "stride"}   # a stage's first stride aside
        out = a.pop("out", None)
        _, outs = groups.setdefault((n.op, key_attrs(n.op, a)), (a, []))
        if out is not None and out not in outs:
            outs.append(out)
    parts = []
    for (op, _k), (a, outs) in groups.items():
        a = dict(a, out=_outs_text(outs)) if outs else a
        parts.append((textbook(op) + " " + key_attrs(op, a)).strip())
    return " · ".join(parts[:limit]) + (" · …" if len(parts) > limit else "")


def out_shape(node, port: str = "out"):
    shapes = node.meta.get(M.SHAPES) or {}
    if port in shapes:
        return shapes[port]
    return next(iter(shapes.values())) if shapes else None


def in_shapes(node) -> list:
    return list(node.meta.get(M.IN_SHAPES) or [])


def params_of(node) -> int:
    p = node.meta.get(M.PARAMS)
    return p.total if p is not None else 0


def macs_of(node) -> int:
    return int(node.meta.get(M.MACS) or 0)


_SUBSCRIPT = re.compile(r"(?<=[^\W_]|[\u0300-\u036f])_(\{[^}]*\}|[^\W_]+)")


def with_subscripts(text: str) -> str:
    """Spec text (docs) as HTML with its TeX-like subscripts drawn: 'W_c' → W<SUB>c</SUB>,
    'h̃_t' → h̃<SUB>t</SUB>, 'x_{t-1}' → x<SUB>t-1</SUB>."""
    return _SUBSCRIPT.sub(lambda m: "<SUB>" + m.group(1).strip("{}") + "</SUB>", html_escape(text))


def stack(lines, pad: int = 2, align: str = "CENTER") -> str:
    """Lines of HTML text one under another, as a borderless table: one row per line.

    Graphviz does not count a <SUB>script's drop in the height of a line broken with
    <BR/>, so a subscript ran into the line below it; a table row is as tall as its text
    and the cell padding keeps the subscript clear of the next row."""
    rows = "".join(f'<TR><TD ALIGN="{align}">{ln}</TD></TR>' for ln in lines if ln is not None)
    return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="{pad}">{rows}</TABLE>'


def small(text: str, size: int = 8, color: str = "#555555") -> str:
    return f'<FONT POINT-SIZE="{size}" COLOR="{color}">{html_escape(text)}</FONT>'


# -- colours by op family -------------------------------------------------------------------
FILL = {"conv": "#dae8fc", "dense": "#d5e8d4", "norm": "#eeeeee", "activation": "#fde9c8",
        "pool": "#f8cecc", "merge": "#ffffff", "shape": "#f5f5f5", "recurrent": "#cfe2f3",
        "attention": "#ead1dc", "embedding": "#fff2cc", "block": "#e4dcf1", "input": "#ffffff"}


def fill_for(op: str) -> str:
    r = role_of(op)
    if r in RECURRENT_ROLES:
        return FILL["recurrent"]
    if r is Role.ATTENTION:
        return FILL["attention"]
    return FILL.get(family(op), "#f5f5f5")
