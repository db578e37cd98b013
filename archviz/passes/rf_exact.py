"""Exact receptive fields: backward propagation of index sets from one output position
through every ancestor (reverse topological order), following torch's index arithmetic and
clipping every set to its tensor — what the gradient of that position shows.  Also the
theoretical field of one position from the forward pass (archviz.passes.rf)."""
from __future__ import annotations

from archviz.ir import meta as M
from archviz.ops import rfmaps as R
from archviz.passes.driver import run
from archviz.passes.rf import _graph


def field_of(model, node_id: str, position=None, *, port: str | None = None, clip: bool = True):
    """The input interval (lo, hi) per axis seen by one output position of ``node_id``.

    ``position``: one index per axis (an int for all axes; default: the middle), ignored
    for axes that are no longer a dim of the output.  Propagates the output position
    backwards through every ancestor in reverse topological order (a tensor read twice
    takes the union).  ``clip=True`` (default): the indices torch really reads — its index
    arithmetic, every set clipped to its tensor, a dilated window's holes kept — so the
    result is the bounding box of the non-zero input gradient.  ``clip=False``: the
    theoretical field (tensors extend past their ends; hulls), equal to the forward pass's.
    (Clipping the theoretical field to the input at the end is not exact: a crop, a stride
    that drops trailing positions or a dilated window over padding reads less.)  An axis
    the output does not depend on is None.
    """
    g = _graph(model)
    ctx = run(g, "rf")
    boxes = backward_boxes(g, node_id, position, port=port, clip=clip)
    res = boxes.get((g.inputs[ctx.input], "out")) if ctx.axes else None
    if res is None:
        return [None] * len(ctx.axes)
    return [res[ax.dim] for ax in ctx.axes]


def start_box(g, node_id: str, position=None, port: str | None = None, clip: bool = True):
    """(port, box) of one output position: the position on the axes' dims, whole elsewhere."""
    ctx = run(g, "rf")
    if not ctx.axes:
        raise ValueError(ctx.note)
    node = g.nodes[node_id]
    rec = node.meta[M.RF]
    port = port or ("out" if "out" in rec.fields else next(iter(rec.fields)))
    fields = rec.fields[port]
    shape = node.meta[M.SHAPES][port]
    box = [(0, n - 1) for n in shape]
    if fields is None:
        return port, None
    if position is None:
        position = [None] * len(ctx.axes)
    elif isinstance(position, int):
        position = [position] * len(ctx.axes)
    if len(position) != len(ctx.axes):
        raise ValueError(f"give one position per axis ({', '.join(a.name for a in ctx.axes)})")
    for f, pos in zip(fields, position):
        if f.kind == "unavailable":
            raise ValueError(f.reason)
        if f.dim is not None and f.kind != "fixed":
            n = shape[f.dim]
            if pos is None:
                pos = (n - 1) // 2
            if clip and not 0 <= pos < n:
                raise ValueError(f"position {pos} is outside the axis of {n} positions")
            box[f.dim] = (pos, pos)
    return port, box


def backward_boxes(g, node_id: str, position=None, *, port: str | None = None, clip: bool = True) -> dict:
    """{(node id, port): box (per dim (lo, hi))} for every tensor the output position reads
    (see field_of).  Exact mode carries, per dim, the union of intervals really read — a
    dilated window reads its taps, not the holes between them — and reports its hull.  Theory
    mode carries unions too: each position's span whole, but positions that read nothing (after
    a stride over a transposed convolution's empty outputs) add nothing."""
    port, box = start_box(g, node_id, position, port, clip)
    if box is None:
        return {}
    ctx = run(g, "rf")
    primary = g.inputs[ctx.input]
    pending = {(node_id, port): [[iv] for iv in box]}
    done = {}
    for n in reversed(g.topo_order()):
        mine = [(p, b) for (nid, p), b in pending.items() if nid == n.id]
        for p, b in mine:
            del pending[(n.id, p)]
            done[(n.id, p)] = [(d[0][0], d[-1][1]) for d in b]
            if n.id == primary:
                continue
            r = n.meta[M.RF]
            deps = r.deps.get(p)
            if deps is None:
                raise ValueError(r.reason or f"no receptive-field rule for '{n.id}'")
            for i, ref in enumerate(n.inputs):
                d = deps[i]
                src = g.nodes[ref.node]
                sf = src.meta[M.RF].fields.get(ref.port)
                if d is None or sf is None:
                    continue
                ib = _input_box(d, b, src.meta[M.SHAPES][ref.port], clip,
                                {f.dim for f in sf if f.kind in ("table", "flat")})
                if ib is not None:
                    key = (ref.node, ref.port)
                    old = pending.get(key)
                    pending[key] = ib if old is None else [R.union(x + y) for x, y in zip(old, ib)]
    return done


def _input_box(d: R.Deps, b, in_shape, clip: bool, tab: set):
    """The input's per-dim index sets read by the output sets ``b`` (exact: unions of
    intervals, clipped; theory: the union of each position's span — positions that read
    nothing leave holes, as in the forward pass — clipped only where the field is a table)."""
    ib = []
    for k, (od, m) in enumerate(d.dims):
        ivs = b[od] if od is not None else [(0, 0)]
        if clip:
            s = m.image(ivs, in_shape[k])
            if not s:
                return None
            ib.append(s)
            continue
        s = m.theory_image(ivs)
        if k in tab:
            s = [(max(lo, 0), min(hi, in_shape[k] - 1)) for lo, hi in s]
            s = [x for x in s if x[0] <= x[1]]
        if not s:
            return None
        ib.append(s)
    return ib


def theoretical_field(model, node_id: str, position, port: str | None = None):
    """The forward pass's field of one output position, per axis ((lo, hi), 'global' or None)."""
    g = _graph(model)
    ctx = run(g, "rf")
    rec = g.nodes[node_id].meta[M.RF]
    port = port or ("out" if "out" in rec.fields else next(iter(rec.fields)))
    fields = rec.fields[port]
    if fields is None:
        return [None] * len(ctx.axes)
    if isinstance(position, int):
        position = [position] * len(ctx.axes)
    out = []
    for f, pos, ax in zip(fields, position, ctx.axes):
        if f.kind == "global":
            out.append((0, ax.size - 1))
        elif f.kind == "unavailable":
            raise ValueError(f.reason)
        else:
            out.append(f.at(pos))
    if any(x is None for x in out):          # one axis reads nothing: the element reads nothing
        return [None] * len(out)
    return out


