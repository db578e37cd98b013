"""`--layout auto`: the family from the graph's structure.

Down/up resolution levels joined by skips → unet; a recurrent op → unrolled (seq2seq when
an attention op joins two recurrent ones, or a recurrent encoder feeds an attention
decoder such as attention_gru); add-merges with a fork → residual; else graph.
"""
from __future__ import annotations

from archviz.backends.render.common import is_attention_step, is_recurrent


def detect(graph) -> str:
    from archviz.backends.render.layouts.residual import has_residual
    from archviz.backends.render.levels import has_unet
    rec = [n for n in graph.nodes.values() if is_recurrent(n.op)]
    if has_unet(graph):
        return "unet"
    if rec:
        if len(rec) >= 2 and any(is_attention_step(n) for n in graph.nodes.values()):
            return "seq2seq"
        return "unrolled"
    if has_residual(graph):
        return "residual"
    return "graph"


def structure_mismatch(graph, layout: str) -> str | None:
    """Why a forced `layout` does not fit the graph's structure (None when it fits or
    when the layout fits anything).  The recurrent layouts refuse a graph without
    recurrence on their own; here: a U without levels joined by skips, a residual column
    without add-merges, a seq2seq step without an encoder feeding a decoder."""
    from archviz.backends.render.layouts.residual import has_residual
    from archviz.backends.render.levels import has_unet
    if layout == "unet" and not has_unet(graph):
        return "it has no resolution levels going down and back up joined by skip connections"
    if layout == "residual" and not has_residual(graph):
        return "it has no residual (add-merge) connections"
    if layout == "seq2seq":
        rec = [n for n in graph.nodes.values() if is_recurrent(n.op)]
        if 0 < len(rec) < 2:
            return "it has a single recurrent layer, not an encoder and a decoder"
    return None
