"""Shared weights as reports show them (the ties pass, archviz.passes.share, resolved them):
a sharing layer's params are its own tensors only; the tensors it shares are counted once,
at their owner, as torch's `parameters()` counts one tensor held by two modules."""
from __future__ import annotations

from archviz.ir import meta as M
from archviz.ops.base import fmt_shape

MARK = "↔"      # in a params cell: the layer shares weights with the layer named after it


def shared(node) -> dict:
    """{tensor: 'owner.tensor'} of a layer (empty when it shares nothing)."""
    return {p: f"{o}.{q}" for p, (o, q, _s, _k) in (node.meta.get(M.TIES) or {}).items()}


def shared_by(node) -> dict:
    """{tensor: ['layer.tensor', ...]} of an owner: the layers that share its tensors."""
    return {q: [f"{n}.{p}" for n, p in who] for q, who in (node.meta.get(M.TIED_BY) or {}).items()}


def json_keys(node) -> dict:
    """The keys a layer's JSON entry gains: `shared` (what it shares) and `shared_by` (who
    shares its tensors), each only where there is something to say."""
    out = {}
    if node.meta.get(M.TIES):
        out["shared"] = shared(node)
    if node.meta.get(M.TIED_BY):
        out["shared_by"] = shared_by(node)
    return out


def owners(node) -> list:
    """The layers whose tensors this one shares, in order, once each."""
    return list(dict.fromkeys(o for o, _q, _s, _k in (node.meta.get(M.TIES) or {}).values()))


def params_cell(n: int, nodes) -> str:
    """A params cell: the count, then `↔ owner` when the row's layers share weights held by
    layers outside it (for a group: its layers' owners outside the group)."""
    if not any(x.meta.get(M.TIES) for x in nodes):      # it shares nothing (most rows)
        return f"{n:,}"
    ids = {x.id for x in nodes}
    outside = list(dict.fromkeys(o for x in nodes for o in owners(x) if o not in ids))
    if not outside:
        return f"{n:,}"
    return f"{n:,} {MARK} " + ", ".join(outside[:2]) + (f" +{len(outside) - 2}" if len(outside) > 2 else "")


def lines(model, limit: int = 8) -> list[str]:
    """One line per sharing layer: which tensor is which (under the table)."""
    out = []
    for l in model.layers:
        ties = l.node.meta.get(M.TIES) or {}
        if ties:
            what = ", ".join(f"{l.id}.{p} is {o}.{q} {fmt_shape(s)}" for p, (o, q, s, _k) in ties.items())
            out.append(f"{MARK} shared weights: {what} (counted once, at the owner)")
    if len(out) > limit:
        out = out[:limit] + [f"{MARK} … {len(out) - limit} more sharing layers (`archviz explain` names each)"]
    return out


def explain_lines(model, nid: str) -> list[str]:
    """What `archviz explain` adds for a layer that shares or lends weights."""
    from archviz.passes.share import users
    node = model.graph.nodes[nid]
    out = []
    ties = node.meta.get(M.TIES) or {}
    if ties:
        out.append("  shared weights (share:):")
        for p, (o, q, s, _k) in ties.items():
            out.append(f"      {p} {fmt_shape(s)}: shared with {o}.{q} (one tensor), counted at {o}")
        p = node.meta[M.PARAMS]
        out.append(f"      params counted here = {p.total:,} (+ {p.buffers:,} buffers)" if p.buffers
                   else f"      params counted here = {p.total:,}")
    for q, who in users(model.graph, nid).items():
        out.append(f"  {q}: used also by " + ", ".join(f"{n}" + (f" (as {p})" if p != q else "") for n, p in who)
                   + " (share:), counted once, here")
    return out
