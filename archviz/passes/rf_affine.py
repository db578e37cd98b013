"""The receptive-field pass's short way for the layers of most networks (issue 17): every
field read is affine (periodic with P = 1) and every input is read through a window along
the field's own dim (a convolution, a pooling, a pad, an element-wise layer).  Then a
layer's field is the affine recurrence r, j, start per input (rf.compose) and their hull
(rf.merge, one interval when the inputs' jumps are equal), computed here without the
general path's rows and per-axis lists: the same Fields, about a third of the work.

Anything else (another map, a field that is not affine, unequal jumps, misaligned centres,
which warn) is left to the general path: :func:`affine_fields` answers None and the pass
goes on as before, so each answer given here is the one the general path would give."""
from __future__ import annotations

from archviz.ops.rfmaps import IDENTITY, Window, erf_variance_step
from archviz.passes.rf_field import Field


def affine_fields(deps: list, ins: list, out_shape) -> list | None:
    """The node's fields per axis for one output port, or None when the short way does not
    apply (the general path then decides, the same way for every layer it handles)."""
    per = []            # per input read: its field per axis, composed through its window
    for st, d in zip(ins, deps):
        if st is None or d is None:
            continue
        dims = d.dims
        row = []
        for f in st:
            if f.kind != "periodic" or f.P != 1:
                return None
            lo = f.lo[0]
            dim = f.dim
            od, m = dims[dim]
            if lo is None or od != dim:
                return None
            n = out_shape[od]
            if m is IDENTITY or type(m) is Window and m.k == 1 and m.s == 1 and m.p == 0:
                # position o reads o
                row.append(f if f.n == n else Field.new_affine(od, n, f.J, f.lo, f.hi, f.var12))
                continue
            if type(m) is not Window or m.s < 1:
                return None
            J = f.J
            var = None if f.var12 is None else f.var12 + erf_variance_step(J, m)
            row.append(Field.new_affine(od, n, J * m.s, [lo - m.p * J], [f.hi[0] + (m.d * (m.k - 1) - m.p) * J],
                                        var))
        per.append(row)
    if not per:
        return None
    if len(per) == 1:
        return per[0]
    out = []
    for fs in zip(*per):            # one axis: the hull of the inputs' fields (rf.merge)
        f0 = fs[0]
        J, dim, c = f0.J, f0.dim, f0.lo[0] + f0.hi[0]
        lo, hi = f0.lo[0], f0.hi[0]
        for f in fs[1:]:
            # unequal jumps, another dim, or another centre (merge warns): the general path
            if f.J != J or f.dim != dim or f.lo[0] + f.hi[0] != c:
                return None
            lo, hi = min(lo, f.lo[0]), max(hi, f.hi[0])
        out.append(Field.new_affine(dim, out_shape[dim], J, [lo], [hi]))
    return out
