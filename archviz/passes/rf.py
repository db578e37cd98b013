"""The receptive-field pass: for every tensor and every spatial axis of the primary input,
which input positions one output position sees.

Conventions (DESIGN.md; shared/notes/receptive-fields.md).  Axes are those of the primary
input: dims 2.. of a channel-first input (N, C, H, W) / (N, C, L), or the time axis (dim 1)
of a sequence (N, T, F) / token (N, T) input read by sequence ops.  Positions are input
indices; the field of an output position is an interval [lo, hi] (its bounding box).

Forward, per tensor and axis, a :class:`Field`:

``periodic``  field(o) = (lo[o mod P], hi[o mod P]) + J·⌊o / P⌋.  P = 1 is the affine
              recurrence r, j, start (Distill 2019): j_out = j·s, r_out = r + (k' − 1)·j,
              start_out = start − p·j — O(1) per layer, so long chains stay fast.  After a
              transposed convolution or an upsampling the field depends on the position;
              it repeats every P positions (P from :func:`rfmaps.periodic_compose`), so one
              period gives the exact minimum and maximum size.
``table``     one (lo, hi) per position (after a reversal, a causal recurrence, a concat
              along the axis...): no extension past the tensor's ends.
``flat``      after flatten: element f sees the field of the input position it came from.
``fixed``     the axis is no longer a dim (a selected time step): one field for every element.
``global``    every element sees the whole axis.
``unavailable`` with the reason (an op without a rule): never a made-up number.

These are the *theoretical* fields (padding moves a field, never shrinks it).  The exact
set of input positions torch reads — clipped to every tensor, following torch's index
arithmetic — comes from :func:`field_of` (backward interval propagation), which equals
the bounding box of the input gradient of one output position.
"""
from __future__ import annotations

from fractions import Fraction
from math import gcd

from archviz.ir import meta as M
from archviz.ir.frozen import EMPTY_LIST
from archviz.ops import registry
from archviz.ops import rfmaps as R
from archviz.ops.base import Op
from archviz.passes.rf_affine import affine_fields
from archviz.passes.rf_field import Axis, Context, Field, NodeRF, _global, _num, summarize

PERIOD_CAP = 4096          # beyond this many phases a field is tabulated instead
TABLE_CAP = 1 << 17        # positions per tabulated axis
_NAMES = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}


# -- the pass --------------------------------------------------------------------------
def choose_axes(g, input_name: str | None = None) -> Context:
    """The primary input and its axes: the first input with spatial axes (N, C, *spatial),
    or with a time axis (N, T[, F]) when sequence ops read it."""
    for name, nid in g.inputs.items():
        if input_name is not None and name != input_name:
            continue
        shape = g.nodes[nid].meta[M.SHAPES]["out"]
        cons = [(registry[c.op], c) for c in g.consumers(nid) if c.op in registry]
        seq = any(o.features_last for o, _ in cons)
        if len(shape) == 2 and any(o.token_vocab(c.attrs) is not None for o, c in cons):
            return Context(name, [Axis("T", 1, shape[1])], "sequence")
        if len(shape) == 3 and seq:
            return Context(name, [Axis("T", 1, shape[1])], "sequence")
        if len(shape) >= 3:
            names = _NAMES.get(len(shape) - 2) or [f"x{i}" for i in range(len(shape) - 2)]
            return Context(name, [Axis(nm, 2 + i, shape[2 + i]) for i, nm in enumerate(names)],
                           "channels-first")
    if input_name is not None and input_name not in g.inputs:
        raise KeyError(input_name)
    return Context(None, [], note="no input has spatial axes (N, C, H, W) or a time axis read by "
                                  "sequence ops (N, T, F)")


def has_rule(op: Op) -> bool:
    return type(op).receptive_field is not Op.receptive_field


def rf_pass(g, input_name: str | None = None) -> Context:
    """Compute ``node.meta["rf"]`` for every node. Never raises for a missing rule.  Run by
    the pass driver (``archviz.passes.driver.run(g, "rf", input=...)``), after shapes."""
    ctx = choose_axes(g, input_name)
    states: dict = {}       # node id -> its fields by port (NodeRF.fields)
    memo: dict = {}         # (op, attrs, input shapes, shapes) -> the node's Deps (see _node)
    none: dict = {}
    for node in g.topo_order():
        meta = node.meta
        rec = meta[M.RF] = NodeRF(ctx)
        shapes = meta[M.SHAPES]
        states[node.id] = rec.fields
        if node.is_input:
            for p, s in shapes.items():
                if ctx.axes and node.id == ctx.input:
                    rec.fields[p] = [Field("periodic", dim=ax.dim, n=ax.size, P=1, J=1, lo=[0], hi=[0],
                                           var12=0) for ax in ctx.axes]
                else:
                    rec.fields[p] = None
            continue
        inputs = node.inputs
        if len(inputs) == 1:
            ins = [states.get(inputs[0].node, none).get(inputs[0].port)]
        else:
            ins = [states.get(r.node, none).get(r.port) for r in inputs]
        if not ctx.axes or ins.count(None) == len(ins):
            for p in shapes:
                rec.fields[p] = None
            continue
        try:
            _node(rec, node, ins, shapes, memo)
        except Exception as e:      # a bug here must not break `summary`: report it, go on
            rec.reason = rec.reason or (f"internal error of the receptive-field pass at '{node.id}': "
                                        f"{type(e).__name__}: {e}")
            for p in shapes:
                rec.fields[p] = [Field("unavailable", reason=rec.reason) for _ in ctx.axes]
    return ctx


def _node(rec: NodeRF, node, ins: list, shapes: dict, memo: dict | None = None) -> None:
    ctx = rec.ctx
    in_shapes = node.meta[M.IN_SHAPES]
    # a rule is a function of (attrs, input shapes, output shapes), and its Deps are never
    # changed once made: the layers that share their Attrs and shapes (the shape pass shares
    # the objects) share one answer (issue 17)
    key = (node.op, id(node.attrs), id(in_shapes), id(shapes))
    hit = memo.get(key) if memo is not None else None
    op = registry[node.op] if hit is None else None
    if hit is not None:
        rec.deps = hit
    elif not has_rule(op):
        rec.reason = f"op '{node.op}' has no receptive_field rule (node '{node.id}')"
    else:
        try:
            raw = op.receptive_field(node.attrs, in_shapes, shapes)
        except Exception as e:
            rec.reason = f"receptive-field rule of '{node.op}' failed at '{node.id}': {type(e).__name__}: {e}"
            raw = None
        if not rec.reason:
            rec.deps = {}       # (its own, not NodeRF's shared empty one)
        for p in ([] if rec.reason else shapes):
            per = raw[p]
            if len(per) != len(node.inputs):
                raise ValueError(f"rule gave {len(per)} answers for {len(node.inputs)} inputs")
            rec.deps[p] = [R.normalize(v, s) for v, s in zip(per, in_shapes)]
        if memo is not None and not rec.reason:
            memo[key] = rec.deps
    for p, out_shape in shapes.items():
        if rec.reason:
            rec.fields[p] = [Field("unavailable", reason=rec.reason) for _ in ctx.axes]
            continue
        # an element-wise layer passes its input's fields on; most others compose affine fields
        deps = rec.deps[p]
        same = _passthrough(deps, ins, out_shape)
        if same is None:
            same = affine_fields(deps, ins, out_shape)
        if same is not None:
            rec.fields[p] = same
            continue
        rows = _rows(ctx, deps, ins, out_shape)
        per_axis = [merge(rec, node, ax, [(i, row[a][2]) for i, row in rows], out_shape)
                    for a, ax in enumerate(ctx.axes)]
        rec.fields[p] = None if all(f is None for f in per_axis) else [
            f if f is not None else Field("unavailable", reason="no dependence along this axis")
            for f in per_axis]


def _passthrough(deps: list, ins: list, out_shape):
    """The one input's fields themselves (the list, shared: fields never change) when the node
    reads it position for position along every axis (an element-wise layer: what _rows and
    merge would give, without building it again), else None."""
    if len(deps) != 1 or deps[0] is None or ins[0] is None:
        return None
    dims = deps[0].dims
    for f in ins[0]:
        if f.kind in ("periodic", "table", "flat"):
            od, m = dims[f.dim]
            if od != f.dim or not m.is_identity or out_shape[od] != f.n:
                return None
        # unavailable, global, fixed: passed on as they are
    return ins[0]


def _rows(ctx, deps: list, ins: list, out_shape) -> list:
    """Per input read, (input index, [(f_in, map, composed field) per axis])."""
    rows = []
    for i, (st, d) in enumerate(zip(ins, deps)):
        if st is None or d is None:
            continue
        row = []
        for a in range(len(ctx.axes)):
            f_in = st[a]
            if f_in.kind in ("unavailable", "global", "fixed"):
                row.append((f_in, None, f_in))
            else:
                od, m = d.dims[f_in.dim]
                row.append((f_in, m, compose(f_in, od, m, out_shape)))
        # an element reads the product of its axes' fields: an input read at no position along
        # one axis (a stride that lands only on a transposed conv's empty outputs) is not read
        # at all, and adds nothing along the other axes either
        if all(c is not None for _, _, c in row):
            rows.append((i, row))
    return rows


def contribs(g, node, port: str) -> list:
    """Per axis, [(input index, input field, map)] of the inputs that reach output `port` of
    `node` (what explain derives a field from). Derived again from what the pass kept (the
    inputs' fields and the node's maps) for the one node asked about: kept for every node,
    they took 0.6 KB per layer."""
    rec = node.meta[M.RF]
    deps = rec.deps.get(port)
    if rec.reason or deps is None:
        return [[] for _ in rec.ctx.axes]
    ins = [g.nodes[r.node].meta[M.RF].fields.get(r.port) for r in node.inputs]
    rows = _rows(rec.ctx, deps, ins, node.meta[M.SHAPES][port])
    return [[(i, row[a][0], row[a][1]) for i, row in rows] for a in range(len(rec.ctx.axes))]


def compose(f_in: Field, od, m: R.Map, out_shape) -> Field | None:
    """The field of the output along one axis, reading ``f_in`` through map ``m``."""
    if m.const:
        if isinstance(m, R.All):
            return _global()
        s = m.span(0, 0)
        f = f_in.span(*s)
        return None if f is None else Field("fixed", lo=f[0], hi=f[1])
    n = out_shape[od]
    if m.is_identity and f_in.dim == od and f_in.n == n and f_in.kind in ("periodic", "table", "flat"):
        return f_in         # position o reads o along the same dim: the same field (fields never change)
    if isinstance(m, R.Unravel):
        return Field("flat", dim=od, n=n, src=f_in, map=m)
    if f_in.kind == "flat" and m.is_identity:
        return Field("flat", dim=od, n=n, src=f_in.src, map=f_in.map)
    if f_in.kind == "table" and m.is_identity and f_in.n == n:     # position o reads o: the same table
        return Field("table", dim=od, n=n, lo=f_in.lo, hi=f_in.hi)
    if f_in.kind == "periodic" and m.ratio is not None and m.ratio.numerator > 0:
        if m.is_identity:
            return Field("periodic", dim=od, n=n, P=f_in.P, J=f_in.J, lo=f_in.lo, hi=f_in.hi, var12=f_in.var12)
        if f_in.P == 1 and isinstance(m, R.Window):      # the affine recurrence, O(1)
            if f_in.lo[0] is None:
                return None
            J = f_in.J
            var = None if f_in.var12 is None else f_in.var12 + R.erf_variance_step(J, m)
            return Field("periodic", dim=od, n=n, P=1, J=J * m.s, lo=[f_in.lo[0] - m.p * J],
                         hi=[f_in.hi[0] + (m.k_eff - 1 - m.p) * J], var12=var)
        P, J = R.periodic_compose(f_in.P, f_in.J, m.ratio)
        if P <= PERIOD_CAP:
            lo, hi = [], []
            for t in range(P):
                s = m.span(t, t)
                f = None if s is None else f_in.span(*s)
                lo.append(None if f is None else f[0])
                hi.append(None if f is None else f[1])
            # the tensor has only n positions: when none of them reads the input (a strided
            # transposed convolution whose taps all fall between the inputs or in the cropped
            # padding: the output is its bias), the output does not depend on the input
            if all(x is None for x in lo[:n]):
                return None
            var = f_in.var12 if isinstance(m, R.Reflect) and f_in.P == 1 else None
            return Field("periodic", dim=od, n=n, P=P, J=J, lo=lo, hi=hi, var12=var)
    return _table(n, od, lambda o: _through(f_in, m, o))


def _through(f_in, m, o):
    s = m.span(o, o)
    return None if s is None else f_in.span(*s)


def _table(n, dim, fn) -> Field | None:
    if n > TABLE_CAP:
        return Field("unavailable", reason=f"the axis has {n} positions after a position-dependent op "
                                           f"(more than {TABLE_CAP} to tabulate)")
    lo, hi = [], []
    for o in range(n):
        f = fn(o)
        lo.append(None if f is None else f[0])
        hi.append(None if f is None else f[1])
    if all(x is None for x in lo):
        return None
    return Field("table", dim=dim, n=n, lo=lo, hi=hi)


def _lcm(a, b):
    return a * b // gcd(a, b)


def merge(rec: NodeRF, node, ax: Axis, contribs: list, out_shape) -> Field | None:
    """Hull of the fields reaching an output through several inputs (add, concat, ...)."""
    if not contribs:
        return None
    if len(contribs) == 1:
        f = contribs[0][1]
        return f if f.kind != "global" else _global()
    fs = [c for _, c in contribs]
    for f in fs:
        if f.kind == "unavailable":
            return f
    if any(f.kind == "global" for f in fs):
        return _global()
    if len(fs) == 1:
        return fs[0]
    if all(f.kind == "fixed" for f in fs):
        return Field("fixed", lo=min(f.lo for f in fs), hi=max(f.hi for f in fs))
    dims = {f.dim for f in fs if f.kind != "fixed"}
    if len(dims) > 1:
        return Field("unavailable", reason=f"axis {ax.name} is spread over several dims at '{node.id}'")
    dim = dims.pop()
    n = out_shape[dim]
    f0 = fs[0]
    if f0.kind == "periodic" and f0.P == 1 and f0.lo[0] is not None and all(
            f.kind == "periodic" and f.P == 1 and f.J == f0.J and f.lo[0] is not None for f in fs):
        # affine fields of one jump (most merges: a residual add): the hull is one interval, and
        # equal lo + hi are equal centres (the general path below, without its loops)
        if len({f.lo[0] + f.hi[0] for f in fs}) > 1:
            _warn_centres(rec, node, ax, [str(node.inputs[i]) for i, _ in contribs], fs, 1)
        return Field("periodic", dim=dim, n=n, P=1, J=f0.J, lo=[min(f.lo[0] for f in fs)],
                     hi=[max(f.hi[0] for f in fs)])
    names = [str(node.inputs[i]) for i, _ in contribs]
    # equal jumps J/P, compared as J·P' = J'·P (exact, without a Fraction per field)
    if all(f.kind == "periodic" for f in fs) and all(f.J * fs[0].P == fs[0].J * f.P for f in fs):
        P = 1
        for f in fs:
            P = _lcm(P, f.P)
        if P <= PERIOD_CAP:
            J = fs[0].J * (P // fs[0].P)
            _warn_centres(rec, node, ax, names, fs, P)
            lo, hi = [], []
            for t in range(P):
                iv = [f.at(t) for f in fs]
                iv = [x for x in iv if x is not None]
                lo.append(min(x[0] for x in iv) if iv else None)
                hi.append(max(x[1] for x in iv) if iv else None)
            return Field("periodic", dim=dim, n=n, P=P, J=J, lo=lo, hi=hi)

    def hull(o):
        iv = [f.at(o) for f in fs]
        iv = [x for x in iv if x is not None]
        return (min(x[0] for x in iv), max(x[1] for x in iv)) if iv else None
    return _table(n, dim, hull)


def _warn_centres(rec, node, ax, names, fs, P):
    """Warn when the inputs' fields are misaligned: centred on different input positions, on
    average over the output positions.  An affine field has one centre offset; a position-
    dependent one (after a transposed convolution or an upsampling) moves its centre around
    its mean from one position to the next — a U-Net's up path alternates ± against its skip
    path — so the mean over one period of P positions decides (it is what the offset of every
    position would be if the field did not depend on the position)."""
    # over the positions where every input's field exists: a field with holes (the empty
    # positions of a strided transposed convolution) is not compared where it has none
    common = [t for t in range(P) if all(f.at(t) is not None for f in fs)]
    if not common:
        return
    # the mean centre is Σ (lo + hi) / (2·len(common)): the same denominator for every input, so
    # equal sums are equal centres (most merges are aligned: no Fraction is made for them)
    if len({sum(sum(f.at(t)) for t in common) for f in fs}) <= 1:
        return
    cs = [(nm, sum(Fraction(sum(f.at(t)), 2) for t in common) / len(common)) for nm, f in zip(names, fs)]
    if len({c for _, c in cs}) <= 1:
        return
    what = "field centres" if P == 1 else f"mean field centres over one period of {P} output positions"
    if rec.warnings is EMPTY_LIST:      # (NodeRF's shared empty one: the node's own)
        rec.warnings = []
    rec.warnings.append(
        f"{ax.name}: misaligned inputs at '{node.id}' ({node.op}): {what} "
        + ", ".join(f"'{nm}' {_num(c)}" for nm, c in cs)
        + f" (offset {_num(max(c for _, c in cs) - min(c for _, c in cs))}): the inputs' fields of an output "
          "position are centred on different input positions"
        + ("" if P == 1 else ", on average over the positions (each position's centre moves around "
                             "that mean after a transposed convolution or an upsampling)"))



# -- reporting -------------------------------------------------------------------------------
def layer_rf(node, port: str | None = None):
    """(list of per-axis summaries, note) for one node's output (``port`` default: 'out')."""
    rec = node.meta.get(M.RF)
    if rec is None:
        return None, "receptive fields were not computed"
    ctx = rec.ctx
    if not ctx.axes:
        return None, ctx.note
    port = port or ("out" if "out" in rec.fields else next(iter(rec.fields)))
    fields = rec.fields.get(port)
    if fields is None:
        return None, f"does not depend on input '{ctx.input}'"
    sums = [summarize(f, ax) for f, ax in zip(fields, ctx.axes)]
    bad = [s for s in sums if s["kind"] == "unavailable"]
    if bad:
        return None, bad[0]["reason"]
    return sums, None


def json_value(x):
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
    return x


def layer_json(node, memo: dict | None = None):
    """The `layers[].rf` entry: one object per axis, or None (with a note). `memo` (id of a
    Field -> its entry) shares the entries of the layers that share a field (an element-wise
    layer passes its input's on), while the fields live."""
    rec = node.meta.get(M.RF)
    fields = rec.fields.get("out") if rec is not None and rec.ctx.axes else None
    if memo is not None and fields:
        out = []
        for f, ax in zip(fields, rec.ctx.axes):
            e = memo.get(id(f))
            if e is None or e["axis"] != ax.name:
                e = _axis_json(f, ax)
                if e is None:
                    break
                memo[id(f)] = e
            out.append(e)
        else:
            return out, None
    sums, note = layer_rf(node)
    if sums is None:
        return None, note
    return [{"axis": s["axis"], "size_min": s["size_min"], "size_max": s["size_max"],
             "jump": json_value(s["jump"]), "start": s["start"], "global": s["global"]} for s in sums], None


def _axis_json(f, ax):
    """layer_json's object of one axis, straight from an affine or global field (what
    summarize gives, without its Fractions), or None for the other kinds."""
    if f is None:
        return None
    if f.kind == "periodic" and f.P == 1 and f.lo[0] is not None:
        return {"axis": ax.name, "size_min": f.hi[0] - f.lo[0] + 1, "size_max": f.hi[0] - f.lo[0] + 1,
                "jump": f.J, "start": f.lo[0], "global": False}
    if f.kind == "global":
        return {"axis": ax.name, "size_min": ax.size, "size_max": ax.size, "jump": None, "start": 0,
                "global": True}
    return None


def short(node, memo: dict | None = None) -> str:
    """Compact text for tables: '5×5', '7–11×7–11', 'global', '—'. `memo` (id of a fields
    list -> its text) answers once for the layers that share their fields, while they live."""
    rec = node.meta.get(M.RF)
    fields = rec.fields.get("out") if memo is not None and rec is not None and rec.ctx.axes else None
    if fields:
        text = memo.get(id(fields))
        if text is None:
            text = memo[id(fields)] = _short_affine(fields) or _short(node)
        return text
    return _short(node)


def _short_affine(fields) -> str | None:
    """_short's text straight from affine or global fields (what summarize gives), else None."""
    parts = []
    for f in fields:
        if f is not None and f.kind == "global":
            parts.append("global")
        elif f is not None and f.kind == "periodic" and f.P == 1 and f.lo[0] is not None:
            parts.append(str(f.hi[0] - f.lo[0] + 1))
        else:
            return None
    return "global" if all(p == "global" for p in parts) else "×".join(parts)


def _short(node) -> str:
    sums, note = layer_rf(node)
    if sums is None:
        return "—" if note and note.startswith("does not") else ("n/a" if note else "—")
    parts = []
    for s in sums:
        if s["global"]:
            parts.append("global")
        elif s["size_min"] == s["size_max"]:
            parts.append(str(s["size_min"]))
        else:
            parts.append(f"{s['size_min']}–{s['size_max']}")
    if all(p == "global" for p in parts):
        return "global"
    return "×".join(parts)


def warnings(g) -> list[tuple[str, str]]:
    """(node id, message) for every misaligned merge (of a graph the pass has run on)."""
    return [(n.id, w) for n in g.topo_order() for w in n.meta[M.RF].warnings]


def _graph(model_or_graph):
    return getattr(model_or_graph, "graph", model_or_graph)
