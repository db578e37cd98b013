"""`archviz explain`: every number with its formula and the numbers put in, the way a
worked exam answer derives them.  The formulas come from each op's own explain rules."""
from __future__ import annotations

from archviz.codes import E
from archviz.errors import ArchvizError
from archviz.ir import meta as M
from archviz.ops import registry
from archviz.ops.base import fmt_shape


def explain_node(model, nid: str) -> list[str]:
    g = model.graph
    n = g.nodes[nid]
    op = registry[n.op]
    ins = n.meta[M.IN_SHAPES]
    outs = n.meta[M.SHAPES]
    head = f"{n.id}  ({n.op})"
    if n.span:
        head += f"   at {n.span}"
    out = [head]
    attrs = ", ".join(f"{k}={_fmt(v)}" for k, v in n.attrs.items() if k in n.attr_spans)
    if attrs:
        out.append(f"  attributes: {attrs}")
    for r, s in zip(n.inputs, ins):
        out.append(f"  input  {fmt_shape(s)} from {r}")
    from archviz.backends.context import lines as context_lines
    out += [f"  {c}" for c in context_lines(model, nid)]
    from archviz.backends.sharing import explain_lines as share_lines
    lines = op.explain(n.attrs, ins, outs) + _rf_lines(model, nid)
    # what it shares goes under its parameters (the count above is of its tensors, shared or not)
    at = max((i + 1 for i, ln in enumerate(lines) if ln.what.startswith(("params", "buffers"))), default=0)
    for i, line in enumerate(lines):
        out.append(f"  {line.what}:")
        out.append(f"      {line.formula}")
        if line.numbers and line.numbers != line.formula:
            out.append(f"      = {line.numbers}")
        if i + 1 == at:
            out += share_lines(model, nid)
    if not at:
        out += share_lines(model, nid)
    if n.frozen:
        out.append("  (frozen: its parameters count as non-trainable)")
    out += _training_lines(op, n.attrs, ins)
    out += _backward_lines(model, n)
    return out


def _backward_lines(model, n) -> list[str]:
    """What the layer's backward keeps and computes in a training step (archviz.passes.backward);
    never fails explain."""
    if n.is_input:
        return []
    try:
        from archviz.passes.backward import train_costs
        if n.meta.get(M.BACKWARD) is None:
            train_costs(model.graph)
        nb = n.meta[M.BACKWARD]
        if not nb.need.any:
            return ["  training: no backward (no input needs a gradient and no weight is trained)"]
        lines = registry[n.op].explain_backward(n.attrs, n.meta[M.IN_SHAPES], n.meta[M.SHAPES], nb.need)
    except Exception as exc:    # explain still shows the other numbers, and says what failed
        why = exc.message if isinstance(exc, ArchvizError) else f"{type(exc).__name__}: {exc}"
        return [f"  training: unavailable ({why})"]
    out = []
    for line in lines:
        out += [f"  {line.what}:", f"      {line.formula}"] + ([f"      = {line.numbers}"] if line.numbers else [])
    shared = [s.source for s, _key, _n, new in nb.kept if not new]
    if shared:
        out.append(f"      ({', '.join(shared)} also kept by an earlier layer: counted once)")
    return out


def _training_lines(op, attrs, ins) -> list[str]:
    """What torch would refuse in training at these shapes (the op's train_check)."""
    from archviz.errors import OpError
    try:
        op.train_check(attrs, ins)
    except OpError as e:
        return [f"  warning: torch cannot train this layer at these shapes: {e.message}"]
    return []


def _rf_lines(model, nid: str) -> list:
    """The receptive-field recurrence with its numbers (archviz.passes.rf); never fails explain."""
    try:
        from archviz.passes.rf_explain import explain_lines
        return explain_lines(model, nid)
    except Exception as exc:    # explain still shows the other numbers, and says what failed
        from archviz.ops.base import Line
        why = exc.message if isinstance(exc, ArchvizError) else f"{type(exc).__name__}: {exc}"
        return [Line("receptive field", f"unavailable ({why})", "", None)]


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        # a per-axis value the same on every axis prints once (kernel=3); a list of values such
        # as pads, or an empty one, prints as a list
        if len(v) in (1, 2) and len(set(v)) == 1:
            return _fmt(v[0])
        return "[" + ", ".join(map(_fmt, v)) + "]"
    return repr(v) if isinstance(v, str) else str(v)


def explain_text(model, nid: str | None = None) -> str:
    g = model.graph
    if nid is not None and nid not in g.nodes:
        members = [l.id for l in model.layers if l.id.startswith(nid + ".")]
        if members:  # a block call or a repeat: explain each of its layers
            label = g.calls.get(nid) or (f"{g.repeats[nid]} copies" if nid in g.repeats else "group")
            head = f"{nid}: {label}, {len(members)} layers\n\n"
            return head + "\n\n".join("\n".join(explain_node(model, m)) for m in members) + "\n"
    if nid is not None:
        if nid not in g.nodes:
            from archviz.errors import RefError, did_you_mean
            raise RefError(f"no node '{nid}' in {model.name}", code=E.UNKNOWN_NODE,
                           hint=did_you_mean(nid, g.nodes) or "run `archviz summary` to see the ids")
        return "\n".join(explain_node(model, nid)) + "\n"
    parts = []
    for l in model.layers:
        parts.append("\n".join(explain_node(model, l.id)))
    t = model.totals
    parts.append("totals\n"
                 f"  params = Σ layer params = {t['params']:,}\n"
                 f"  MACs = Σ layer MACs = {t['macs']:,};  FLOPs = 2 × MACs = {t['flops']:,}\n"
                 f"  element-wise ops = {t['elementwise_ops']:,}")
    return "\n\n".join(parts) + "\n"
