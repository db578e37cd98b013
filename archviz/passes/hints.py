"""Hints for the mistakes spec writers make that compile, or fail far from their cause.

- A batch dimension written into an input's `shape` ([1, 3, 224, 224] where archviz adds
  the batch itself): the first layer then fails on a 5-D tensor. When the layer would
  accept its inputs with that axis of 1 left out, the error says so and names the input.
- An op used in a way torch runs but that is almost always a mistake (op.lint: a linear
  layer on a 4-D feature map without flatten) is a spec warning, W0704 — not where the
  axes were reordered on purpose upstream (a channels-last MLP after a permute).
"""
from __future__ import annotations

from archviz.codes import E
from archviz.errors import ArchvizError, OpError, SpecWarning
from archviz.ir import meta as M
from archviz.ir.graph import LayerGraph, Node
from archviz.ops import registry
from archviz.ops.describe import Role


def _declared(g: LayerGraph, rank: int) -> list[tuple[str, list]]:
    """Inputs whose tensor (batch included) has `rank` axes: (name, declared shape)."""
    out = []
    for name, nid in g.inputs.items():
        shape = list(g.nodes[nid].attrs.get("shape", ()) or ())
        if len(shape) + 1 == rank and len(shape) >= 2:
            out.append((name, shape))
    return out


def _accepts(node: Node, ins: list) -> bool:
    op = registry[node.op]
    try:
        op.check(node.attrs, ins)
        op.infer_shape(node.attrs, ins)
        return True
    except (OpError, ArchvizError, ValueError, TypeError, ZeroDivisionError):
        return False


def batch_hint(g: LayerGraph, node: Node, err: ArchvizError) -> None:
    """Add the 'batch written in shape' hint to `err` (raised while shaping `node`) where
    the node would accept its inputs with axis 1 (the hand-written batch, after archviz's
    own) removed, and a graph input to name exists: one of that rank, else one whose
    declared shape starts with 1 (an embedding between them adds an axis)."""
    ins = node.meta.get(M.IN_SHAPES)
    if not ins or not isinstance(err, ArchvizError) or len(ins[0]) < 3:
        return
    names = _declared(g, len(ins[0])) or [
        (n, list(g.nodes[nid].attrs.get("shape", ()) or ())) for n, nid in g.inputs.items()
        if len(g.nodes[nid].attrs.get("shape", ()) or ()) >= 2 and g.nodes[nid].attrs.get("shape")[0] == 1]
    if not names:
        return
    squeezed = [s[:1] + s[2:] if len(s) >= 3 else s for s in ins]
    if not _accepts(node, squeezed):
        return
    name, shape = names[0]
    text = (f"input '{name}' is declared with shape {shape}: shapes in a spec leave out the batch "
            f"(archviz adds it: --batch); if the leading {shape[0]} is the batch, write shape: {shape[1:]}")
    err.hint = text if not err.hint else f"{err.hint}; {text}"


def _axes_moved(g: LayerGraph, node: Node) -> bool:
    """Were the axes of `node`'s input moved on purpose upstream (a permute to channels-last,
    as ConvNeXt's block; Liu et al. 2022, Fig. 4)?  Walk back through the layers that keep
    every axis but the last (element-wise ops, norms, a linear per position) to the first
    that does not; it moved the axes if it is a shape op whose output is a reordering of its
    input (the same sizes in another order)."""
    seen = 0
    while node.inputs and seen < 10_000:
        seen += 1
        src = g.nodes[node.inputs[0].node]
        ins, out = src.meta.get(M.IN_SHAPES), src.meta.get(M.SHAPES, {}).get("out")
        if not ins or out is None:
            return False
        x = tuple(ins[0])
        if registry[src.op].role is Role.SHAPE:
            return tuple(out) != x and sorted(out) == sorted(x)
        if len(out) != len(x) or tuple(out[:-1]) != x[:-1]:
            return False
        node = src
    return False


def lint_warnings(g: LayerGraph) -> None:
    """W0704 for every node whose op finds its use suspicious (op.lint), unless its input's
    axes were reordered on purpose upstream (_axes_moved)."""
    for node in g.topo_order():
        ins = node.meta.get(M.IN_SHAPES)
        if ins is None:         # a graph input
            continue
        msg = registry[node.op].lint(node.attrs, ins)
        if msg and not _axes_moved(g, node):
            g.warnings.append(SpecWarning(f"'{node.id}' ({node.op}): {msg}", node.span, code=E.SUSPICIOUS_USE,
                                          hint="torch allows it, so this is a warning, not an error"))


__all__ = ["batch_hint", "lint_warnings"]
