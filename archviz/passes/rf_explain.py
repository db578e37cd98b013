"""`explain` for receptive fields: the recurrence of each axis with its numbers, like the
exam's two-3×3 derivation (r = r_in + (k' − 1)·j_in = 3 + (3 − 1)·1 = 5)."""
from __future__ import annotations

from fractions import Fraction

from archviz.ir import meta as M
from archviz.ops import rfmaps as R
from archviz.passes.rf import Axis, Field, _graph, _num, ensure, summarize


def explain_lines(model, node_id: str) -> list:
    """Line objects deriving each axis's field of one node (the exam's two-3×3 derivation);
    axes with the same derivation (a square kernel on a square input) share their lines."""
    from archviz.ops.base import Line
    g = _graph(model)
    ctx = ensure(g)
    node = g.nodes[node_id]
    if not ctx.axes:
        return []
    rec = node.meta[M.RF]
    port = "out" if "out" in rec.fields else next(iter(rec.fields))
    fields = rec.fields.get(port)
    if fields is None:
        return [Line("receptive field", f"does not depend on input '{ctx.input}'", "", None)]
    contribs = rec.contribs.get(port) or [[] for _ in ctx.axes]
    per_axis = [_axis_lines(node, ax, fields[a], contribs[a]) for a, ax in enumerate(ctx.axes)]
    lines, done = [], set()
    for a, ax in enumerate(ctx.axes):
        if a in done:
            continue
        same = [b for b in range(a, len(ctx.axes)) if per_axis[b] == per_axis[a]]
        done.update(same)
        names = ", ".join(ctx.axes[b].name for b in same)
        for what, formula, numbers, value in per_axis[a]:
            lines.append(Line(f"{what} {names}" + (f" (input '{ctx.input}')" if what == "receptive field" else ""),
                              formula, numbers, value))
    for w in rec.warnings:
        lines.append(Line("warning", w, "", None))
    return lines


def _axis_lines(node, ax: Axis, f: Field, cs: list) -> list:
    """[(what, formula, numbers, value)] for one axis."""
    n = _num
    what = "receptive field"
    s = summarize(f, ax)
    if node.op == "input":
        return [(what, "the input itself: r = 1, j = 1, start = 0", "", 1)]
    if f.kind == "unavailable":
        return [(what, f"unavailable: {f.reason}", "", None)]
    if f.kind == "global":
        return [(what, f"global: every output element sees the whole axis ({ax.size} positions)", "", ax.size)]
    names = {i: str(node.inputs[i]) for i, _, _ in cs}
    if len(cs) == 1 and f.affine and cs[0][1].affine and isinstance(cs[0][2], R.Window):
        return _window_lines(names[cs[0][0]], cs[0][1], cs[0][2], f)
    if len(cs) > 1 and f.kind == "periodic" and all(c[1].kind == "periodic" for c in cs):
        ivs = [(names[i], _contrib_at0(fi, m)) for i, fi, m in cs]
        parts = ", ".join(f"'{nm}' [{n(iv[0])}, {n(iv[1])}]" for nm, iv in ivs if iv is not None)
        r0 = f.at(0)
        out = [(what, "hull of the inputs' fields of output position 0: [min start, max end]",
                f"{parts} → [{n(r0[0])}, {n(r0[1])}], r = {r0[1] - r0[0] + 1}", r0[1] - r0[0] + 1)]
        if not f.affine:
            out.append((what, f"position-dependent: size {_range(s)} over one period of {f.P} positions", "",
                        s["size_max"]))
        return out
    if f.kind == "periodic":
        made = [m for _, fi, m in cs if m is not None and not (isinstance(m, R.Window) and fi.kind == "periodic"
                                                                and fi.P == f.P)]
        how = ("after " + ", ".join(sorted({m.describe() for m in made}))) if made else \
            "(transposed convolution or upsampling upstream)"
        return [(what, f"position-dependent {how}: field(o + P) = field(o) + J with P = {f.P}, J = {f.J} "
                       f"(jump {n(f.jump)}); size {_range(s)} over one period, start {n(s['start'])}", "",
                 s["size_max"])]
    if f.kind == "fixed":
        return [(what, f"the axis is no longer a dim: every element sees [{n(f.lo)}, {n(f.hi)}], "
                       f"r = {f.hi - f.lo + 1}", "", f.hi - f.lo + 1)]
    if f.kind == "flat":
        return [(what, f"flatten: element f sees the field of the position it came from (size {_range(s)})", "",
                 s["size_max"])]
    if len(cs) == 1 and (cs[0][2] is None or cs[0][2].is_identity):
        return [(what, f"the field of '{names[cs[0][0]]}' (position-dependent): size {_range(s)} over the "
                       f"{f.n} positions, start {n(s['start'])}", "", s["size_max"])]
    how = ", ".join(sorted({m.describe() for _, _, m in cs if m is not None and not m.is_identity})) \
        or "merged inputs"
    return [(what, f"position-dependent ({how}): size {_range(s)} over the {f.n} positions, "
                   f"start {n(s['start'])}", "", s["size_max"])]


def _contrib_at0(fi, m):
    if fi is None or fi.kind in ("global", "unavailable"):
        return None
    if fi.kind == "fixed" or m is None:
        return fi.at(0)
    s = m.span(0, 0)
    return None if s is None else fi.span(*s)


def _range(s):
    return str(s["size_min"]) if s["size_min"] == s["size_max"] else f"{s['size_min']}–{s['size_max']}"


def _window_lines(src, fi, m: R.Window, f):
    n = _num
    r_in, j_in, st_in = fi.hi[0] - fi.lo[0] + 1, fi.J, fi.lo[0]
    r, j, st = f.hi[0] - f.lo[0] + 1, f.J, f.lo[0]
    c = Fraction(2 * st + r - 1, 2)
    what = "receptive field"
    if m.is_identity:
        return [(what, f"element-wise: the field of '{src}': r = {r}, j = {j}, start = {n(st)}, centre = {n(c)}",
                 "", r)]
    kk = m.k_eff
    p = f"({n(m.p)})" if m.p < 0 else str(m.p)
    out = []
    if m.d != 1:
        out.append(("effective kernel", "k' = d·(k − 1) + 1", f"{m.d}·({m.k} − 1) + 1 = {kk}", kk))
    out += [(what, "r = r_in + (k' − 1)·j_in", f"{r_in} + ({kk} − 1)·{j_in} = {r}", r),
            ("jump", "j = j_in·s", f"{j_in}·{m.s} = {j}", j),
            ("start", "start = start_in − p·j_in", f"{n(st_in)} − {p}·{j_in} = {n(st)}", st),
            ("centre", "centre = start + (r − 1)/2", f"{n(st)} + ({r} − 1)/2 = {n(c)}", c)]
    if f.var12 is not None and fi.var12 is not None and r > 1:
        v_in, v = Fraction(fi.var12, 12), Fraction(f.var12, 12)
        out.append(("effective RF spread (estimate)",
                    "σ² = σ²_in + j_in²·d²·(k² − 1)/12  (uniform weights; Luo et al. 2016)",
                    f"{n(v_in)} + {j_in}²·{m.d}²·({m.k}² − 1)/12 = {n(v)};  σ ≈ {float(v) ** 0.5:.3g}",
                    float(v) ** 0.5))
    return out
