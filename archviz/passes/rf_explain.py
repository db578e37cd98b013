"""`explain` for receptive fields: the recurrence of each axis with its numbers, like the
exam's two-3×3 derivation (r = r_in + (k' − 1)·j_in = 3 + (3 − 1)·1 = 5)."""
from __future__ import annotations

from fractions import Fraction

from archviz.ir import meta as M
from archviz.ops import rfmaps as R
from archviz.passes.driver import run
from archviz.passes import rf as RF
from archviz.passes.rf import _graph
from archviz.passes.rf_field import Axis, Field, _num, summarize


def explain_lines(model, node_id: str) -> list:
    """Line objects deriving each axis's field of one node (the exam's two-3×3 derivation);
    axes with the same derivation (a square kernel on a square input) share their lines."""
    from archviz.ops.base import Line
    g = _graph(model)
    ctx = run(g, "rf")
    node = g.nodes[node_id]
    if not ctx.axes:
        return []
    rec = node.meta[M.RF]
    port = "out" if "out" in rec.fields else next(iter(rec.fields))
    fields = rec.fields.get(port)
    if fields is None:
        return [Line("receptive field", f"does not depend on input '{ctx.input}'", "", None)]
    contribs = RF.contribs(g, node, port)
    per_axis = [_axis_lines(node, ax, fields[a], contribs[a]) for a, ax in enumerate(ctx.axes)]
    lines, done = [], set()
    for a, ax in enumerate(ctx.axes):
        if a in done:
            continue
        same = [b for b in range(a, len(ctx.axes)) if per_axis[b] == per_axis[a]]
        done.update(same)
        names = ", ".join(ctx.axes[b].name for b in same)
        for what, formula, numbers, value in per_axis[a]:
            head = what.replace("{axes}", names) if "{axes}" in what else f"{what} {names}"
            lines.append(Line(head + (f" (input '{ctx.input}')" if what == "receptive field" else ""),
                              formula, numbers, value))
    for w in rec.warnings:
        lines.append(Line("warning", w, "", None))
    return lines


def _axis_lines(node, ax: Axis, f: Field, cs: list) -> list:
    """[(what, formula, numbers, value)] for one axis."""
    n = _num
    what = "receptive field"
    s = summarize(f, ax)
    if node.is_input:
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
        if not f.affine and r0 is not None:
            return _merge_period_lines(f, cs, names, s)
        if r0 is None:
            return [(what, f"position-dependent: size {_range(s)} over one period of {f.P} positions", "",
                     s["size_max"])]
        return [(what, "hull of the inputs' fields of output position 0: [min start, max end]",
                 f"{parts} → [{n(r0[0])}, {n(r0[1])}], r = {r0[1] - r0[0] + 1}", r0[1] - r0[0] + 1)]
    if f.kind == "periodic" and len(cs) == 1 and cs[0][1].kind == "periodic" and cs[0][2] is not None:
        lines = _period_lines(names[cs[0][0]], cs[0][1], cs[0][2], f, s)
        if lines:
            return lines
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


def _contrib_at0(fi, m, o=0):
    if fi is None or fi.kind in ("global", "unavailable"):
        return None
    if fi.kind == "fixed" or m is None:
        return fi.at(o)
    s = m.span(o, o)
    return None if s is None else fi.span(*s)


# -- position-dependent fields: one period, position by position -------------------------------
LIST_CAP = 8        # a longer period lists its first position and those giving the min and max size


def _shown(f: Field, sizes: dict) -> tuple[list, str]:
    """The positions of one period to list, and a note when not all are."""
    if f.P <= LIST_CAP:
        return list(range(f.P)), ""
    lo, hi = min(sizes.values()), max(sizes.values())
    pick = sorted({0, min(t for t, r in sizes.items() if r == lo), min(t for t, r in sizes.items() if r == hi)})
    return pick, f" ({len(pick)} of the {f.P} positions shown: " + (
        "the first, a smallest, a largest)" if lo < hi else f"the first; every one has size {lo})")


def _mark(r, sizes):
    lo, hi = min(sizes.values()), max(sizes.values())
    if lo == hi:
        return ""
    return " — the minimum" if r == lo else " — the maximum" if r == hi else ""


def _p(x):
    """A number inside arithmetic: a negative one in parentheses."""
    return f"({_num(x)})" if x < 0 else _num(x)


def _period_line(f: Field, s) -> tuple:
    return ("receptive field {axes}, period",
            f"the pattern repeats every P = {f.P} positions: field(o + {f.P}) = field(o) + {f.J} "
            f"(jump J/P = {_num(f.jump)}); over one period size {_range(s)}, start {_num(s['start'])}",
            "", s["size_max"])


def _rule(m: R.Map) -> str:
    """The index rule of a periodic map: which input positions i_lo..i_hi output o reads."""
    if isinstance(m, R.Transposed):
        rule = ("i_lo = ⌈(o + p − d·(k − 1))/s⌉, i_hi = ⌊(o + p)/s⌋ "
                "(torch ConvTranspose: o = i·s − p + d·t, t < k)")
        return rule + (", skipping the i no tap reaches" if m.d > 1 else "")
    if isinstance(m, R.Window):
        return "i_lo = o·s − p, i_hi = o·s − p + k' − 1"
    if isinstance(m, R.Nearest):
        return "i = ⌊o·in/out⌋"
    if isinstance(m, R.Bilinear):
        src = "ρ·o" if m.align else "ρ·(o + 1/2) − 1/2"
        return (f"src = {src} (ρ = {_num(m.ratio)}), i_lo = ⌊src⌋, i_hi = i_lo + 1 "
                "(i_lo alone where src is an integer)")
    if isinstance(m, R.AdaptiveWindow):
        return "i_lo = ⌊o·in/out⌋, i_hi = ⌈(o + 1)·in/out⌉ − 1"
    return m.describe()


def _reads(m: R.Map, t: int, a: int, b: int) -> str:
    """The numbers of :func:`_rule` at output position t (reading a..b)."""
    if isinstance(m, R.Transposed) and m.d == 1:
        return (f"i_lo = ⌈({t} + {m.p} − {m.d}·({m.k} − 1))/{m.s}⌉ = {_num(a)}; "
                f"i_hi = ⌊({t} + {m.p})/{m.s}⌋ = {_num(b)}")
    if isinstance(m, R.Window):
        base = f"{t}·{m.s} − {_p(m.p)}"
        return f"i_lo = {base} = {_num(a)}; i_hi = {base} + {m.k_eff} − 1 = {_num(b)}"
    if isinstance(m, R.Nearest) and a == b:
        return f"i = ⌊{t}·{m.ratio.numerator}/{m.ratio.denominator}⌋ = {_num(a)}"
    if isinstance(m, R.Bilinear) and m.ratio is not None and m.n_in != m.n_out:
        q = f"{m.ratio.numerator}/{m.ratio.denominator}"
        src = m._src(t)
        txt = f"src = {q}·{t} = {_num(src)}" if m.align else f"src = {q}·({t} + 1/2) − 1/2 = {_num(src)}"
        txt += f"; i_lo = ⌊{_num(src)}⌋ = {_num(a)}"
        return txt + ("; i_hi = i_lo + 1" if b == a + 1 else "; i_hi = i_lo (src is an integer: the other weight is 0)")
    if isinstance(m, R.AdaptiveWindow):
        return (f"i_lo = ⌊{t}·{m.n_in}/{m.n_out}⌋ = {_num(a)}; "
                f"i_hi = ⌈({t} + 1)·{m.n_in}/{m.n_out}⌉ − 1 = {_num(b)}")
    return f"i_lo = {_num(a)}; i_hi = {_num(b)}"


def _ends(src: str, fi: Field, a: int, b: int, lo, hi) -> str:
    """How the field of input positions a..b gives [lo, hi]."""
    if fi.affine:
        st, r_in, j = fi.lo[0], fi.hi[0] - fi.lo[0] + 1, fi.J
        return (f"start = {_num(st)} + {_p(a)}·{j} = {_num(lo)}; "
                f"end = {_num(st)} + {r_in} − 1 + {_p(b)}·{j} = {_num(hi)}")
    if a == b:
        return f"the field of '{src}' position {_num(a)}: [{_num(lo)}, {_num(hi)}]"
    txt = f"start = min start of '{src}' positions {_num(a)}..{_num(b)} = {_num(lo)}"
    if b - a < 64:
        at = [(i, fi.at(i)) for i in range(a, b + 1)]
        at = [(i, x) for i, x in at if x is not None]
        i_lo = next(i for i, x in at if x[0] == lo)
        i_hi = next(i for i, x in reversed(at) if x[1] == hi)
        return (txt + f" (position {_num(i_lo)}: [{_num(fi.at(i_lo)[0])}, {_num(fi.at(i_lo)[1])}]); "
                f"end = max end = {_num(hi)} (position {_num(i_hi)}: [{_num(fi.at(i_hi)[0])}, {_num(fi.at(i_hi)[1])}])")
    return txt + f"; end = max end = {_num(hi)}"


def _period_lines(src: str, fi: Field, m: R.Map, f: Field, s) -> list:
    """One input read through a periodic map: each position of one period, the input positions it
    reads (the map's index rule with its numbers) and the hull of their fields; [] if the field
    was not made that way (the caller then shows the summary)."""
    if not m.is_identity and (m.ratio is None or m.const):
        return []
    rows, sizes = {}, {}
    for t in range(f.P):
        sp = m.span(t, t)
        iv = None if sp is None else fi.span(*sp)
        if iv != f.at(t):
            return []
        rows[t] = (sp, iv)
        if iv is not None:
            sizes[t] = iv[1] - iv[0] + 1
    if not sizes:
        return []
    shown, note = _shown(f, sizes)
    made = "element-wise" if m.is_identity else m.describe()
    head = ("receptive field", f"position-dependent ({made}): output o reads '{src}' positions i_lo..i_hi, "
            + ("i_lo = i_hi = o" if m.is_identity else _rule(m))
            + "; field(o) = [start of position i_lo, end of position i_hi] (the hull of their fields)" + note,
            "" if not fi.affine else f"'{src}': r_in = {fi.hi[0] - fi.lo[0] + 1}; j_in = {fi.J}; "
                                     f"start_in = {_num(fi.lo[0])}", s["size_max"])
    out = [head]
    for t in shown:
        sp, iv = rows[t]
        what = "receptive field {axes}, position o = " + str(t)
        if iv is None:
            out.append((what, f"output o = {t} reads nothing of '{src}' (a hole of the map)", "", None))
            continue
        (a, b), (lo, hi) = sp, iv
        r = hi - lo + 1
        reads = "" if m.is_identity else _reads(m, t, a, b) + "; "
        out.append((what, f"output o = {t} reads '{src}' positions {_num(a)}..{_num(b)}: "
                          f"field [{_num(lo)}, {_num(hi)}], "
                          f"r = {r}{_mark(r, sizes)}",
                    reads + _ends(src, fi, a, b, lo, hi) + f"; r = {_num(hi)} − {_p(lo)} + 1 = {r}", r))
    out.append(_period_line(f, s))
    return out


def _merge_period_lines(f: Field, cs: list, names: dict, s) -> list:
    """A merge of position-dependent fields: each position of one period, the inputs' fields
    there and their hull."""
    sizes = {t: iv[1] - iv[0] + 1 for t in range(f.P) for iv in [f.at(t)] if iv is not None}
    shown, note = _shown(f, sizes)
    out = [("receptive field", "hull of the inputs' fields, position by position over one period: "
                               "[min start, max end]" + note, "", s["size_max"])]
    for t in shown:
        what = "receptive field {axes}, position o = " + str(t)
        iv = f.at(t)
        if iv is None:
            out.append((what, f"output o = {t} reads nothing", "", None))
            continue
        ivs = [(names[i], _contrib_at0(fi, m, t)) for i, fi, m in cs]
        parts = ", ".join(f"'{nm}' [{_num(x[0])}, {_num(x[1])}]" for nm, x in ivs if x is not None)
        lo, hi = iv
        r = hi - lo + 1
        out.append((what, f"output o = {t}: {parts} → field [{_num(lo)}, {_num(hi)}], r = {r}{_mark(r, sizes)}",
                    f"r = {_num(hi)} − {_p(lo)} + 1 = {r}", r))
    out.append(_period_line(f, s))
    return out


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
