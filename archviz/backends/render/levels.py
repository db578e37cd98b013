"""Resolution levels and encoder/decoder sides, read from the inferred shapes.

A node's level is its input's level plus the number of halvings its op performs: a 2×2
pool or a stride-2 convolution goes one level down (+1), a ×2 up-convolution or upsampling
one level up (−1).  The step is read from the op's stride / scale, not from the size
ratio, so the few pixels a valid 3×3 convolution, a centre crop or a pad remove or add
never count, however small the map (572² → 570² and 6² → 4² are both level 0; a size
ratio would round log2(6/4) = 0.585 up to a level).  Ops without a stride or scale
(adaptive pooling, pixel shuffle, ``upsample(size=...)``) fall back to round(log2(H_in /
H_out)).  Measuring each step, not the ratio to the input size, keeps the original
U-Net's decoder (104² … 100² at level 2) on its level.

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


def _halvings(factor) -> int | None:
    """Levels for a resampling factor per axis (stride 2 → 1, stride 4 → 2, 1 → 0)."""
    f = [x for x in (factor if isinstance(factor, (tuple, list)) else (factor,)) if x]
    if not f:
        return None
    try:
        mean = sum(log2(float(x)) for x in f) / len(f)
    except (TypeError, ValueError):
        return None
    if mean == 0:
        return 0
    return int(round(mean)) or (1 if mean > 0 else -1)


def _op_delta(n):
    """Levels down (+) or up (−) from the op's own stride / scale; None where the op has
    none (then the size ratio decides)."""
    op, a = n.op, n.attrs or {}
    if op in ("center_crop", "pad") or op in MERGE_OPS:
        return 0
    if op in UP_OPS:
        if op == "upsample":
            if a.get("scale") is None:
                return None
            d = _halvings(a["scale"])
        elif op.startswith("conv_transpose"):
            d = _halvings(a.get("stride", 1))
        else:
            return None
        return None if d is None else -d
    fam = family(op)
    if fam == "conv" or (fam == "pool" and "kernel" in a):
        st = a.get("stride")
        if st is None:
            st = a.get("kernel", 1) if fam == "pool" else 1
        return _halvings(st)
    return None


def _delta(s_in, s_out, node=None) -> int:
    if not s_in or not s_out or len(s_in) < 3 or len(s_out) < 3 or len(s_in) != len(s_out):
        return 0
    if node is not None:
        d = _op_delta(node)
        if d is not None:
            return d
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
            d = _delta(ins[i] if i < len(ins) else None, out, n) if spatial_op(n.op) else 0
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
