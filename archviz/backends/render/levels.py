"""Resolution levels and encoder/decoder sides, read from the inferred shapes.

A node's level is its first input's level plus round(log2(H_in / H_out)): a 2×2 pool or a
stride-2 convolution goes one level down (+1), a ×2 up-convolution or upsampling one
level up (−1), and the few pixels a valid 3×3 convolution or a centre crop removes do not
count (572 → 570 is level 0).  Measuring each step, not the ratio to the input size,
keeps the original U-Net's decoder (104² … 100² at level 2) on its level.

A node is on the decoder side when an upsampling step is among its ancestors; a centre
crop's second input only gives the target size, so it does not make the crop a decoder
node (copy-and-crop copies from the encoder).
"""
from __future__ import annotations

from math import log2

from archviz.backends.render.common import MERGE_OPS, UP_OPS, family, in_shapes, out_shape


def spatial_op(op: str) -> bool:
    """Ops whose trailing axes are spatial (N, C, H, W): only these change levels.  A
    linear layer on (N, T, F) changes F, which is not a resolution."""
    return op in UP_OPS or op in MERGE_OPS or op in ("center_crop", "pad") or family(op) in ("conv", "pool")


def _delta(s_in, s_out) -> int:
    if not s_in or not s_out or len(s_in) < 3 or len(s_out) < 3 or len(s_in) != len(s_out):
        return 0
    r = [a / b for a, b in zip(s_in[2:], s_out[2:]) if a > 0 and b > 0]
    if not r:
        return 0
    mean = sum(log2(x) for x in r) / len(r)
    return int(round(mean))


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
            d = _delta(ins[i] if i < len(ins) else None, out) if spatial_op(n.op) else 0
            if best is None or abs(d) < abs(best[1]):
                best = (r.node, d)
        if best is None:
            level[n.id], dec[n.id] = 0, False
            continue
        level[n.id] = level[best[0]] + best[1]
        flow = n.inputs[:1] if n.op == "center_crop" else n.inputs
        dec[n.id] = best[1] < 0 or any(dec.get(r.node, False) for r in flow)
    return level, dec


def has_unet(graph) -> bool:
    """Levels going down and coming back up, joined by at least one skip: a merge on the
    decoder side reading (possibly through a crop) an encoder node of its own level."""
    level, dec = node_levels(graph)
    if not level or max(level.values()) < 1:
        return False
    for n in graph.nodes.values():
        if n.op not in MERGE_OPS or not dec.get(n.id):
            continue
        for r in n.inputs:
            src = graph.nodes.get(r.node)
            if src is None:
                continue
            if src.op == "center_crop" and src.inputs:
                src = graph.nodes.get(src.inputs[0].node, src)
            if not dec.get(src.id) and level.get(src.id) == level[n.id]:
                return True
    return False
