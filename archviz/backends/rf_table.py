"""The rows of the receptive-field table (`archviz rf`, Model.rf()): per layer its output
shape, field size (min–max), jump, start, centre and σ, as text. No click, no rich."""
from __future__ import annotations


def _cell(sums, key, fmt=str):
    vals = []
    for s in sums:
        if s["global"]:
            vals.append("global" if key == "size" else "—")
            continue
        if key == "size":
            v = str(s["size_min"]) if s["size_min"] == s["size_max"] else f"{s['size_min']}–{s['size_max']}"
        else:
            v = "—" if s.get(key) is None else fmt(s[key])
        vals.append(v)
    return vals[0] if len(set(vals)) == 1 else " × ".join(vals)


def rf_rows(model):
    """Per layer: (id, op, shape, size, jump, start, centre, σ, note)."""
    from archviz.ir import meta as M
    from archviz.ir.once import by_id
    from archviz.ops.base import fmt_shape
    from archviz.passes import rf as RF, run
    run(model.graph, "rf")
    out = []
    # the cells of a fields list, and the text of a shape, once: an element-wise layer passes
    # its input's fields on, and the shape pass shares the shapes (by id, with the object kept)
    cells_of: dict = {}
    shapes: dict = {}
    for l in model.layers:
        rec = l.node.meta.get(M.RF)
        fields = rec.fields.get("out") if rec is not None and rec.ctx.axes else None
        cells = by_id(cells_of, fields, lambda _f: _cells(l.node, RF)) if fields else _cells(l.node, RF)
        out.append((l.id, l.op, by_id(shapes, l.output_shape, fmt_shape), *cells))
    return out


def _cells(node, RF) -> tuple:
    """(size, jump, start, centre, σ, note) of one layer's row."""
    sums, note = RF.layer_rf(node)
    if sums is None:
        return "—", "", "", "", "", note or ""
    num = RF._num
    sig = _cell([dict(x, erf_sigma=None) if x["size_max"] == 1 else x for x in sums], "erf_sigma",
                lambda x: f"{x:.3g}")
    return (_cell(sums, "size"), _cell(sums, "jump", num), _cell(sums, "start", num), _cell(sums, "centre", num),
            "" if sig == "—" else sig, "")
