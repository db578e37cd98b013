"""`archviz compare`: two models side by side, optionally on a selection of their layers,
with exact ratios A / B.

A selection (``--only``) names op roles (`recurrent`, `norm`, … as the ops declare them:
archviz.ops.describe.Role), op families (`conv`, `dense`) or op names (`gru`, `lstm`);
``--weights`` leaves out normalisation layers (their scale and shift are parameters, not
weights). The matching is :func:`matches`, in one place.
"""
from __future__ import annotations

from fractions import Fraction

from archviz.codes import E
from archviz.errors import SpecError
from archviz.ops.describe import Role

QUANTITIES = ("params", "macs", "flops", "elementwise_ops", "param_bytes", "activation_bytes")
SELECTED_QUANTITIES = ("params", "macs", "flops", "elementwise_ops")


def known_roles() -> set:
    """Every op's role, by name (archviz.ops.describe.Role's values)."""
    return {r.value for r in Role}


def matches(op, token: str, roles: set) -> bool:
    """A token that is a role matches by the op's role (so `recurrent` leaves out an
    embedding: its role is `embedding`); any other token matches the op's family or name."""
    if token in roles:
        return op.role.value == token or op.name == token
    return token in (op.family, op.name)


def is_norm(op) -> bool:
    return op.role is Role.NORM


def selection_words() -> list[str]:
    from archviz.ops import registry
    return sorted({op.family for op in registry.values()} | known_roles() | set(registry))


def check_selection(only: tuple) -> tuple:
    """The tokens of --only (comma-separated, repeatable), each a family, role or op name."""
    from archviz.errors import did_you_mean
    tokens = tuple(t.strip() for part in only for t in part.split(",") if t.strip())
    if only and not tokens:     # `--only "$SEL"` with SEL empty must not count every layer
        raise ValueError("the selection is empty: name op families, roles or ops (e.g. --only conv)")
    words = selection_words()
    for t in tokens:
        if t not in words:
            raise ValueError(f"'{t}' is no op family, role or op. "
                             + (did_you_mean(t, words) or "Families: " + ", ".join(sorted(
                                 {w for w in words if w.isalpha() and len(w) > 3})[:12]) + ", …"))
    return tokens


def selected_layers(model, tokens: tuple, weights_only: bool) -> list:
    from archviz.ops import registry
    roles = known_roles()
    out = []
    for l in model.layers:
        op = registry[l.op]
        if tokens and not any(matches(op, t, roles) for t in tokens):
            continue
        if weights_only and is_norm(op):
            continue
        out.append(l)
    return out


def totals(model, tokens: tuple = (), weights_only: bool = False) -> tuple[dict, list]:
    """(quantity → exact int, the layers counted). Without a selection, the model's totals."""
    if not tokens and not weights_only:
        return {k: model.totals[k] for k in QUANTITIES}, list(model.layers)
    layers = selected_layers(model, tokens, weights_only)
    if not layers:
        what = ", ".join(tokens) if tokens else "weights"
        raise SpecError(f"no layer of '{model.name}' is selected by --only {what}"
                        + (" (without norms)" if weights_only and tokens else ""), code=E.NOTHING_SELECTED,
                        hint="its ops: " + ", ".join(sorted({l.op for l in model.layers})))
    t = {"params": sum(l.params.total for l in layers), "macs": sum(l.macs for l in layers),
         "elementwise_ops": sum(l.elementwise for l in layers)}
    t["flops"] = 2 * t["macs"]
    return {k: t[k] for k in SELECTED_QUANTITIES}, layers


# the rows `compare --size` adds (archviz size at its defaults): section.figure
SIZE_ROWS = ("params.embedding", "params.active", "flops.forward_per_token", "flops.train_step",
             "flops.decode_step", "inference.weights_bytes", "inference.kv_cache_bytes_per_token",
             "inference.kv_cache_bytes", "training.optimizer_bytes", "training.activations_bytes",
             "training.total_bytes")


def size_totals(model) -> dict:
    """The sizing rows of one model: figure -> exact int, or None where it does not apply."""
    s = model.size()
    return {key: getattr(s, key.split(".")[0])[key.split(".")[1]] for key in SIZE_ROWS}


def json_row(k: str, a, b) -> dict:
    """One row of `compare -f json`: a figure that is not an integer (a per-token FLOP count
    that does not divide) as the text "p/q"."""
    r = ratio(a, b)
    show = (lambda v: v if v is None or isinstance(v, int) else str(v))  # noqa: E731
    return {"quantity": k, "a": show(a), "b": show(b), "ratio": None if r is None else float(r),
            "ratio_exact": None if r is None else str(r)}


def ratio(a: int | None, b: int | None) -> Fraction | None:
    return None if a is None or not b else Fraction(a, b)


def fmt_ratio(a: int, b: int) -> str:
    """`69,632/1,179,648 = 17/288 (0.05903×)`: the exact ratio, reduced, and its value."""
    r = ratio(a, b)
    if r is None:
        return "—"
    exact = f"{r.numerator:,}" if r.denominator == 1 else f"{r.numerator:,}/{r.denominator:,}"
    full = f"{_num(a)}/{_num(b)}"
    return (f"{full} = " if full != exact and a else "") + f"{exact} ({float(r):.4g}×)"


def _num(v) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def describe(tokens: tuple, weights_only: bool) -> str:
    if not tokens and not weights_only:
        return ""
    parts = []
    if tokens:
        parts.append("only " + ", ".join(tokens))
    if weights_only:
        parts.append("weights only (norm layers left out)")
    return "; ".join(parts)


def print_compare(con, a, b, sel_a, sel_b, sel: str, batch: int, params_a=(), params_b=()) -> None:
    """The table of `archviz compare`: each quantity of A and B and the exact ratio, the
    output shapes, and with a selection the layers counted on each side."""
    from rich.table import Table
    from archviz.ops.base import fmt_shape
    (ta, la), (tb, lb) = sel_a, sel_b
    t = Table(title=f"{a.name} vs {b.name} (batch {batch})" + (f" — {sel}" if sel else ""), header_style="bold cyan")
    t.add_column("quantity")
    t.add_column(a.name if a.name != b.name else "A " + " ".join(params_a), justify="right")
    t.add_column(b.name if a.name != b.name else "B " + " ".join(params_b), justify="right")
    t.add_column("A / B (exact)", justify="right")
    for k in ta:
        t.add_row(k, _num(ta[k]), _num(tb[k]), fmt_ratio(ta[k], tb[k]))
    shp = lambda m: ", ".join(fmt_shape(v) for v in m.output_shapes.values())  # noqa: E731
    t.add_row("output shape", shp(a), shp(b), "")
    con.print(t)
    if sel:
        ids = lambda ls: ", ".join(l.id for l in ls[:8]) + (f", … ({len(ls)} layers)" if len(ls) > 8 else "")  # noqa: E731
        con.print(f"counted in A: {ids(la)}", markup=False)
        con.print(f"counted in B: {ids(lb)}", markup=False)
