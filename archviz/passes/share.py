"""The ties pass: each `share:` (archviz.spec.share) checked against the tensors the two
nodes have at their shapes, and resolved to the tensor that owns the storage.

After it, ``node.meta[M.TIES]`` maps each tensor the node shares to (owner id, owner's
tensor, shape, kind), following chains (c shares b, b shares a: c's weight is a's), the
owner's ``meta[M.TIED_BY]`` names the layers that share each of its tensors, and the cost
pass counts a shared tensor once, at its owner, as torch's ``parameters()`` and
``buffers()`` deduplicate one tensor held by two modules.  A sharing layer still computes:
its MACs and element-wise work are its own.
"""
from __future__ import annotations

from archviz.codes import E
from archviz.errors import RefError, ShapeError, SpecError
from archviz.ir import meta as M
from archviz.ir.frozen import EMPTY_DICT as _NONE
from archviz.ir.graph import LayerGraph, Node
from archviz.ops import registry
from archviz.ops.base import Params, fmt_shape, numel


def tensors(node: Node, run_rule) -> dict:
    """{name: (shape, kind)} of a shaped node's parameters and buffers (`run_rule`: the
    driver's, which locates an op rule's failure at the node)."""
    op = registry[node.op]
    ins = node.meta[M.IN_SHAPES]
    return {n: (tuple(s), k) for n, s, k in run_rule(node, op.param_tensors, node.attrs, ins, ins=ins)}


def _names(ts: dict) -> str:
    return ", ".join(ts) if ts else "none"


def ties_pass(g: LayerGraph, run_rule) -> None:
    direct: dict = {}       # (node id, tensor) -> (owner id, owner's tensor, Tie)
    shapes: dict = {}       # (node id, tensor) -> (shape, kind)
    for node in g.nodes.values():
        meta = node.meta
        # most layers share nothing: they share one empty mapping of each (a node that does
        # is given its own below)
        meta[M.TIES] = meta[M.TIED_BY] = _NONE
        if not node.ties:
            continue
        mine = tensors(node, run_rule)
        for t in node.ties:
            owner = g.nodes[t.owner]
            theirs = tensors(owner, run_rule)
            if t.param is None:
                if not mine and t.lenient:
                    continue
                if not mine:
                    raise _err(RefError, node, t, f"'{node.id}' ({node.op}) has no parameters to share",
                               E.SHARE_NO_PARAM)
                lost = [n for n in mine if n not in theirs]
                if lost:
                    both = [n for n in mine if n in theirs]
                    raise _err(RefError, node, t, f"'{t.written}' ({owner.op}) has no parameter '{lost[0]}'",
                               E.SHARE_NO_PARAM, f"its parameters: {_names(theirs)}" + (
                                   "; share some of them by name: share: {" + ", ".join(f"{n}: {t.written}" for n in both) + "}"
                                   if both and not t.lenient else ""))
                pairs = [(n, n) for n in mine]
            else:
                if t.param not in mine:
                    raise _err(RefError, node, t, f"'{node.id}' ({node.op}) has no parameter '{t.param}'",
                               E.SHARE_NO_PARAM, f"its parameters: {_names(mine)}")
                other = t.owner_param or t.param
                if other not in theirs:
                    raise _err(RefError, node, t, f"'{t.written}' ({owner.op}) has no parameter '{other}'",
                               E.SHARE_NO_PARAM, f"its parameters: {_names(theirs)}")
                pairs = [(t.param, other)]
            for p, q in pairs:
                (s1, k1), (s2, k2) = mine[p], theirs[q]
                if k1 != k2:
                    what = {"param": "a parameter", "buffer": "a buffer"}
                    raise _err(RefError, node, t, f"'{node.id}.{p}' is {what[k1]} but '{t.written}.{q}' is "
                               f"{what[k2]}", E.SHARE_KIND, "a parameter shares a parameter, a buffer a buffer")
                if s1 != s2:
                    raise _err(ShapeError, node, t, f"'{node.id}' shares '{p}' with '{t.written}.{q}', but their "
                               f"shapes differ: {fmt_shape(s1)} and {fmt_shape(s2)}", E.SHARE_SHAPE,
                               "shared tensors are one tensor: they need the same shape (a linear head "
                               "tied to an embedding (num, dim) takes dim features in and gives out = num)")
                if k1 == "param" and node.frozen != owner.frozen:
                    which = (owner, node) if owner.frozen else (node, owner)
                    raise _err(SpecError, node, t, f"'{p}' is frozen in '{which[0].id}' but trainable in "
                               f"'{which[1].id}': a shared parameter is one tensor", E.SHARE_FROZEN,
                               "mark both nodes frozen: true, or neither")
                direct[(node.id, p)] = (owner.id, q, t)
                shapes[(node.id, p)] = mine[p]
    root: dict = {}         # (node id, tensor) -> the (owner id, tensor) holding it, chains followed
    for key, (_o, _q, t) in direct.items():
        path, seen, cur = [], set(), key
        while cur in direct and cur not in root:
            if cur in seen:
                loop = path[path.index(cur):]
                raise _err(RefError, g.nodes[loop[0][0]], direct[loop[0]][2], "a cycle of shared weights: "
                           + " -> ".join([n for n, _ in loop] + [cur[0]]), E.SHARE_CYCLE,
                           "one node owns the weights: take `share:` off it")
            seen.add(cur)
            path.append(cur)
            cur = direct[cur][:2]
        end = root.get(cur, cur)
        for k in path:
            root[k] = end
    for key, (o, q) in root.items():
        _own(g.nodes[key[0]].meta, M.TIES)[key[1]] = (o, q, *shapes[key])
        _own(g.nodes[o].meta, M.TIED_BY).setdefault(q, []).append(key)


def _own(meta: dict, key: str) -> dict:
    """meta[key], the node's own dict (not the shared empty one)."""
    d = meta[key]
    if d is _NONE:
        d = meta[key] = {}
    return d


def own_params(node: Node, p: Params) -> Params:
    """The node's Params less the tensors it shares (counted at their owners)."""
    ties = node.meta.get(M.TIES)
    if not ties:
        return p
    out = Params(p.trainable, p.non_trainable, p.buffers)
    for _o, _q, shape, kind in ties.values():
        n = numel(shape)
        if kind == "buffer":
            out.buffers -= n
        elif node.frozen:
            out.non_trainable -= n
        else:
            out.trainable -= n
    return out


def users(g: LayerGraph, nid: str) -> dict:
    """{tensor of node nid: [(node id, its tensor)]}: the layers that share nid's tensors."""
    return g.nodes[nid].meta.get(M.TIED_BY) or {}


def _err(cls, node: Node, tie, message: str, code, hint: str | None = None):
    return cls(message, tie.span or node.span, code=code, hint=hint, notes=list(node.notes))
