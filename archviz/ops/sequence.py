"""Sequence ops over batch-first (N, T, F): select_step, last_step, reverse.

All are views or copies: no parameters, no MACs, no element-wise arithmetic.

Note on bidirectional outputs: ``last_step`` of a bidirectional recurrence's ``out`` is
out[:, −1] — the forward direction's final state but the backward direction's *first*
step.  The final state of both directions is the ``h`` port (torch layout (L·D, N, h)).
"""
from __future__ import annotations

from archviz.errors import OpError
from archviz.ops.base import Attr, KeepsNothing, Line, NoMacs, NoParams, Op, fmt_shape, register_op
from archviz.ops.terms import C
from archviz.ops.describe import Keeps, Role, lowered


class _SeqOp(KeepsNothing, NoParams, NoMacs, Op):
    family = "sequence"
    role = Role.SEQUENCE
    features_last = True     # (N, T, F): axis 1 is time
    keeps = Keeps.NOTHING

    def elementwise_terms(self, a, ins, outs):
        return C(0)


def _axis(axis, x):
    r = len(x)
    if not -r <= axis < r:
        raise OpError(f"axis {axis} is out of range for a {r}-D input {fmt_shape(x)}", attr="axis")
    return axis % r


@register_op
class SelectStep(_SeqOp):
    name = "select_step"
    aliases = train_view = True           # a view of its input
    doc = ("One time step of a sequence: x[:, index] (torch.select(x, 1, index)); negative indices count "
           "from the end. `axis` selects along another axis (e.g. 0 of a recurrent 'h' state: one layer/direction).")
    attrs = {"index": Attr("int", doc="time step (negative: from the end)"),
             "axis": Attr("int", 1, "axis to select along (1 = time of (N, T, F))")}
    samples = [{"attrs": {"index": 2}, "inputs": [(2, 5, 7)]},
               {"attrs": {"index": -1}, "inputs": [(3, 4, 6)]},
               {"attrs": {"index": 1, "axis": 0}, "inputs": [(2, 3, 8)]}]

    def check(self, a, ins):
        x = ins[0]
        if len(x) < 2:
            _axis(a.axis, x)        # torch's "Dimension out of range" first
            raise OpError(f"expects at least (N, T), got {fmt_shape(x)}: selecting from a 1-D input leaves "
                          f"a 0-D scalar with no batch axis (torch returns one; archviz's tensors always keep "
                          f"their batch axis, so it refuses this on purpose)")
        n = x[_axis(a.axis, x)]
        if not -n <= a.index < n:
            raise OpError(f"index {a.index} is out of range for axis {a.axis} of size {n}", attr="index")

    def selects(self, a, ins):
        x = ins[0]
        ax = _axis(a.axis, x)
        return ax, a.index % x[ax]

    def infer_shape(self, a, ins):
        x = ins[0]
        ax = _axis(a.axis, x)
        return {"out": tuple(d for i, d in enumerate(x) if i != ax)}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", f"drop axis {a.axis} (take index {a.index})",
                     f"{fmt_shape(ins[0])} → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        return lowered("SelectStep", a.index, a.axis)

    def receptive_field(self, a, ins, outs):
        """Reads the one index along `axis` (which disappears); the other axes pass through."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        ax = _axis(a.axis, x)
        return {"out": [R.Deps([(i if i < ax else i - 1, R.IDENTITY) if i != ax else (None, R.Const(a.index % x[ax]))
                        for i in range(len(x))])]}


@register_op
class LastStep(_SeqOp):
    train_view = True
    name = "last_step"
    aliases = True
    doc = ("The last time step x[:, −1] of (N, T, F) → (N, F) (many-to-one). For a bidirectional "
           "recurrence this is not both directions' final state: use its 'h' port for that.")
    attrs = {}
    samples = [{"attrs": {}, "inputs": [(2, 5, 7)]}]

    def check(self, a, ins):
        if len(ins[0]) < 2:
            raise OpError(f"expects (N, T, ...), got {fmt_shape(ins[0])}")

    def selects(self, a, ins):
        return 1, ins[0][1] - 1

    def infer_shape(self, a, ins):
        x = ins[0]
        return {"out": (x[0], *x[2:])}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(N, F): step T − 1", f"{fmt_shape(ins[0])} → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        return lowered("SelectStep", -1, 1)

    def receptive_field(self, a, ins, outs):
        """Reads step T − 1 (the time axis disappears)."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.Deps([(i if i < 1 else i - 1, R.IDENTITY) if i != 1 else (None, R.Const(x[1] - 1))
                        for i in range(len(x))])]}


@register_op
class Reverse(_SeqOp):
    name = "reverse"
    doc = "Reverse a sequence in time: torch.flip(x, [axis]) (default axis 1 of (N, T, F)); same shape."
    attrs = {"axis": Attr("int", 1, "axis to reverse (1 = time)")}
    samples = [{"attrs": {}, "inputs": [(2, 5, 7)]}, {"attrs": {"axis": -1}, "inputs": [(1, 3, 4)]}]

    def check(self, a, ins):
        _axis(a.axis, ins[0])

    def infer_shape(self, a, ins):
        return {"out": tuple(ins[0])}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "same as input (order of axis reversed)", fmt_shape(o), o)]

    def torch_spec(self, a, ins, outs):
        return lowered("Reverse", a.axis)

    def receptive_field(self, a, ins, outs):
        """Position o reads n − 1 − o along `axis`."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        ax = _axis(a.axis, x)
        return {"out": [R.along(x, {ax: R.Flip(x[ax])})]}
