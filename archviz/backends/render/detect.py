"""`--layout auto`: the family from the graph's structure.

Down/up resolution levels joined by skips → unet; a recurrent op → unrolled (seq2seq when
an attention op joins two recurrent ones); add-merges with a fork → residual; else graph.
"""
from __future__ import annotations

from archviz.backends.render.common import CELL_OPS, RECURRENT_OPS, is_attention


def detect(graph) -> str:
    from archviz.backends.render.layouts.residual import has_residual
    from archviz.backends.render.levels import has_unet
    ops = [n.op for n in graph.nodes.values()]
    rec = [o for o in ops if o in RECURRENT_OPS or o in CELL_OPS]
    if has_unet(graph):
        return "unet"
    if rec:
        if len(rec) >= 2 and any(is_attention(o) for o in ops):
            return "seq2seq"
        return "unrolled"
    if has_residual(graph):
        return "residual"
    return "graph"
