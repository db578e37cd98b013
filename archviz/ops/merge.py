"""Merges: add, mul (broadcasting, numpy/torch rules), concat (any axis)."""
from __future__ import annotations

from archviz.errors import OpError
from math import prod

from archviz.ops.base import Attr, Line, NoMacs, NoParams, Op, fmt_shape, keep_extra, keep_in, numel, register_op
from archviz.ops.terms import C, Numel, V
from archviz.ops.describe import Keeps, Merge, Role, lowered


def broadcast(shapes) -> tuple:
    """torch/numpy broadcasting: align trailing axes; sizes must match or be 1."""
    rank = max(len(s) for s in shapes)
    out = []
    for ax in range(rank):
        sizes = {s[len(s) - rank + ax] for s in shapes if len(s) - rank + ax >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise OpError("cannot broadcast shapes " + " and ".join(fmt_shape(s) for s in shapes)
                          + f": axis {ax} has sizes {sorted(sizes)}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class _Broadcast(NoParams, NoMacs, Op):
    family = "merge"
    role = Role.MERGE
    attrs = {}
    min_inputs, max_inputs = 2, None
    elementwise_note = ""

    def infer_shape(self, a, ins):
        return {"out": broadcast(ins)}

    def elementwise_terms(self, a, ins, outs):
        return (V("inputs", len(ins)) - C(1)) * Numel(outs["out"], "numel(out)")

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "broadcast of the inputs", " ⊕ ".join(map(fmt_shape, ins)) + f" → {fmt_shape(o)}", o)]

    def receptive_field(self, a, ins, outs):
        """Element-wise with broadcasting: a size-1 dim broadcast over the output reads index 0.
        Several inputs: the hull of their fields (the pass warns when centres differ)."""
        from archviz.ops import rfmaps as R
        return {"out": [R.broadcast(s, outs["out"]) for s in ins]}


@register_op
class Add(_Broadcast):
    name = "add"
    label = "+"
    merge = Merge.SUM
    keeps = Keeps.NOTHING
    doc = "Element-wise sum of two or more inputs, broadcasting (residual connections)."
    samples = [{"attrs": {}, "inputs": [(2, 64, 8, 8), (2, 64, 8, 8)]},
               {"attrs": {}, "inputs": [(2, 4, 5, 5), (2, 4, 1, 1), (1, 4, 5, 5)]}]

    def torch_spec(self, a, ins, outs):
        return lowered("Add")

    def saved(self, a, ins, outs, need):
        return []



@register_op
class Mul(_Broadcast):
    name = "mul"
    merge = Merge.PRODUCT
    keeps = Keeps.INPUTS     # each input's gradient is the other input
    doc = "Element-wise product of two or more inputs, broadcasting (gates, attention)."
    samples = [{"attrs": {}, "inputs": [(2, 16, 4, 4), (2, 16, 1, 1)]},
               {"attrs": {}, "inputs": [(2, 1, 4), (2, 3, 1), (1, 3, 4)]}]

    def torch_spec(self, a, ins, outs):
        return lowered("Mul")

    def saved(self, a, ins, outs, need):
        """x0 · x1 · x2 … left to right: each product keeps its left factor where the right one
        needs a gradient and the right where the left does (the left is the running product
        after the first step, a tensor of its own)."""
        out, left, left_shape, left_grad = [], keep_in(ins, 0), ins[0], need.input(0)
        for k in range(1, len(ins)):
            if need.input(k):
                out.append(left)
            if left_grad:
                out.append(keep_in(ins, k))
            left_shape = broadcast([left_shape, ins[k]])
            left_grad = left_grad or need.input(k)
            left = keep_extra(f"product of inputs 0..{k}", prod(left_shape))
        return out



@register_op
class Concat(NoParams, NoMacs, Op):
    name = "concat"
    family = "merge"
    role = Role.MERGE
    merge = Merge.CONCAT
    keeps = Keeps.NOTHING
    doc = "Concatenate inputs along `axis` (torch.cat); every other axis must match."
    attrs = {"axis": Attr("int", 1, "axis to join (0 is the batch axis; default channels)")}
    min_inputs, max_inputs = 2, None
    samples = [{"attrs": {}, "inputs": [(1, 64, 8, 8), (1, 32, 8, 8)]},
               {"attrs": {"axis": -1}, "inputs": [(2, 3, 4), (2, 3, 6), (2, 3, 1)]}]

    def infer_shape(self, a, ins):
        r = len(ins[0])
        if not -r <= a.axis < r:
            raise OpError(f"axis {a.axis} is out of range for {r}-D inputs", attr="axis")
        ax = a.axis % r
        for s in ins[1:]:
            if len(s) != r or any(s[i] != ins[0][i] for i in range(r) if i != ax):
                raise OpError(f"cannot concatenate on axis {ax}: shapes " + " and ".join(map(fmt_shape, ins))
                              + " differ on another axis")
        return {"out": tuple(sum(s[i] for s in ins) if i == ax else ins[0][i] for i in range(r))}

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def saved(self, a, ins, outs, need):
        return []

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        ax = a.axis % len(o)
        return [Line("output shape", f"sum of axis {ax}", " + ".join(str(s[ax]) for s in ins) + f" = {o[ax]} → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        return lowered("Concat", a.axis)

    def receptive_field(self, a, ins, outs):
        """Input k fills the output's [offset_k, offset_k + size_k) along `axis`; other dims pass
        through."""
        from archviz.ops import rfmaps as R
        o = outs["out"]
        ax = a.axis % len(o)
        out, off = [], 0
        for s in ins:
            out.append(R.along(s, {ax: R.Segment(off, s[ax], o[ax])}))
            off += s[ax]
        return {"out": out}

