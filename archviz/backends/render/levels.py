"""Resolution levels and encoder/decoder sides, read from the ops' resampling factors.

A node's level is its input's level plus the number of halvings its op performs: a 2×2
pool or a stride-2 convolution goes one level down (+1), a ×2 up-convolution or upsampling
one level up (−1).  The step is read from the op's own resampling factor
(``Op.resample``: 1/stride, the scale, or size over input), not from the map sizes, so the
few pixels a valid 3×3 convolution, a centre crop or a pad remove or add never count,
however small the map (572² → 570² and 6² → 4² are both level 0: those ops do not
resample).  A whole stride or scale (2, 1/2, (2, 1)) is at least one level; a ratio that
is not whole (adaptive pooling 7 → 6, a scale of 1.2) is rounded, so it may be none.
Measuring each step, not the ratio to the input size, keeps the original U-Net's decoder
(104² … 100² at level 2) on its level.

A node is on the decoder side when an upsampling step is among its ancestors; a centre
crop's second input only gives the target size, so it does not make the crop a decoder
node (copy-and-crop copies from the encoder).
"""
from __future__ import annotations

from math import log2

from archviz.backends.render.common import data_inputs, in_shapes, is_crop, merge_kind, out_shape, resample


def _levels(factor) -> int:
    """Levels down (+) or up (−) for a resampling factor per axis (output positions per
    input position): 1/2 → 1, 1/4 → 2, 2 → −1, 1 → 0."""
    f = [x for x in factor if x]
    if not f:
        return 0
    mean = sum(log2(1 / x) for x in f) / len(f)
    if mean == 0:
        return 0
    whole = all(x.numerator == 1 or x.denominator == 1 for x in f)
    return int(round(mean)) or ((1 if mean > 0 else -1) if whole else 0)


def _delta(s_in, s_out, node) -> int:
    if not s_in or not s_out or len(s_in) < 3 or len(s_out) < 3 or len(s_in) != len(s_out):
        return 0
    f = resample(node)
    return 0 if f is None else _levels(f)


def node_levels(graph):
    """({node id: level}, {node id: True if decoder side})."""
    level, dec = {}, {}
    for n in graph.topo_order():
        ins = in_shapes(n)
        out = out_shape(n)
        best = None
        for i, r in enumerate(n.inputs):
            if r.node not in level:
                continue
            d = _delta(ins[i] if i < len(ins) else None, out, n)
            if best is None or abs(d) < abs(best[1]):
                best = (r.node, d)
        if best is None:
            level[n.id], dec[n.id] = 0, False
            continue
        level[n.id] = level[best[0]] + best[1]
        dec[n.id] = best[1] < 0 or any(dec.get(r.node, False) for r in data_inputs(n))
    return level, dec


def has_unet(graph) -> bool:
    """Levels going down and coming back up, joined by at least one skip: a merge on the
    decoder side reading (possibly through a crop) an encoder node of its own level."""
    level, dec = node_levels(graph)
    if not level or max(level.values()) < 1:
        return False
    for n in graph.nodes.values():
        if merge_kind(n.op) is None or not dec.get(n.id):
            continue
        for r in n.inputs:
            src = graph.nodes.get(r.node)
            if src is None:
                continue
            if is_crop(src.op) and data_inputs(src):
                src = graph.nodes.get(data_inputs(src)[0].node, src)
            if not dec.get(src.id) and level.get(src.id) == level[n.id]:
                return True
    return False
