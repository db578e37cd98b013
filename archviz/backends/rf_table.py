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
    from archviz.ops.base import fmt_shape
    from archviz.passes import rf as RF, run
    num = RF._num
    run(model.graph, "rf")
    out = []
    for l in model.layers:
        sums, note = RF.layer_rf(l.node)
        if sums is None:
            out.append((l.id, l.op, fmt_shape(l.output_shape), "—", "", "", "", "", note or ""))
            continue
        sig = _cell([dict(x, erf_sigma=None) if x["size_max"] == 1 else x for x in sums], "erf_sigma",
                    lambda x: f"{x:.3g}")
        out.append((l.id, l.op, fmt_shape(l.output_shape), _cell(sums, "size"), _cell(sums, "jump", num),
                    _cell(sums, "start", num), _cell(sums, "centre", num), "" if sig == "—" else sig, ""))
    return out
