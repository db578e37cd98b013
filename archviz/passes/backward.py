"""What a training step's backward keeps and computes, over a whole graph.

:func:`train_costs` asks each layer whose backward runs for the tensors it keeps
(:meth:`Op.saved`) and its backward MACs (:meth:`Op.backward_macs_terms`), and adds them up:

- **Which gradients.**  A tensor needs a gradient when a trainable parameter lies upstream of it:
  graph inputs (data, token ids) never do; a layer's weights need one unless frozen.  A layer
  whose inputs need none and whose weights are frozen (or absent) runs no backward: it keeps
  nothing and costs nothing, as in torch.
- **One tensor counts once.**  A saved input or output is the tensor its producer made; views
  (reshape, split, dropout with p = 0: ``Op.train_views``) are followed to the tensor whose
  storage they share, and counted at its size, as torch frees a storage only when no view of it
  is kept.  A view of a parameter (``Op.state_output``) is model state, not an activation.
  Op-internal tensors (a mask, pooling indices, a norm's statistics) are each their own.
- **Activation checkpointing** (``checkpoint=True``; torch.utils.checkpoint, non-reentrant, each
  top-level block instance one segment, as ``layer1.0``): a segment keeps only its inputs from
  outside it; its own saved tensors exist again only while its backward runs.  Kept = the tensors
  saved outside segments ∪ the segments' inputs, plus the largest segment's own saved tensors
  not among those (the peak while it is recomputed; the largest by elements).  Its forward runs again: the
  recompute MACs are the segments' forward MACs.

Results: a :class:`TrainCosts`, and per layer ``node.meta[M.BACKWARD]`` (a
:class:`NodeBackward`) for `explain`.  The pass reads what the shape and cost passes wrote and
calls two op rules per layer; nothing is derived twice.  Core: no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from archviz.ir import meta as M
from archviz.ir.graph import LayerGraph, Node
from archviz.ops import registry
from archviz.ops.saved import Need, Saved, kind_bytes
from archviz.passes.tokens import token_vocab


@dataclass(slots=True)
class NodeBackward:
    """One layer's backward: which gradients it computes, what it keeps (each kept tensor with
    the key it is counted under; `new` False where another layer counted it first) and its MACs."""
    need: Need
    kept: list = field(default_factory=list)        # [(Saved, key, numel counted, new)]
    macs: int = 0


@dataclass
class TrainCosts:
    """Elements backward keeps, by dtype kind ("act" = the activation dtype, or a fixed one),
    and backward MACs.  With checkpointing `saved_elems` is the peak (see the module doc) and
    `recompute_macs` the forward MACs run again."""
    saved_elems: dict
    backward_macs: int
    checkpoint: bool = False
    recompute_macs: int = 0
    segments: int = 0

    def saved_bytes(self, act_bytes: int) -> int:
        """Bytes kept at `act_bytes` per activation element."""
        return sum(n * kind_bytes(k, act_bytes) for k, n in self.saved_elems.items())


def _trainable(node: Node) -> bool:
    """The layer has parameters whose gradient is computed (its own or shared ones)."""
    if node.frozen:
        return False
    if node.meta[M.PARAMS].trainable:
        return True
    return any(kind == "param" for *_x, kind in (node.meta.get(M.TIES) or {}).values())


def _roots(g: LayerGraph, order: list) -> dict:
    """(node id, port) -> (the key of the tensor whose storage it shares, its elements), or
    None for model state."""
    root: dict = {}
    for node in order:
        op = registry[node.op]
        shapes = node.meta[M.SHAPES]
        for port, s in shapes.items():
            if op.state_output:
                root[(node.id, port)] = None
            elif node.inputs and op.train_views(node.attrs):
                r = node.inputs[0]
                root[(node.id, port)] = root[(r.node, r.port)]
            else:
                root[(node.id, port)] = ((node.id, port), prod(s))
    return root


def _token_ids(g: LayerGraph, nid: str) -> bool:
    """A graph input read by an embedding holds int64 token ids."""
    return g.nodes[nid].is_input and token_vocab(g, nid) is not None


def _segment(node: Node, checkpoint: bool):
    return node.scope[0] if checkpoint and node.scope else None


def train_costs(g: LayerGraph, checkpoint: bool = False, share=None, inputs_need_grad: bool = False,
                frozen: bool = False) -> TrainCosts:
    """The training step's backward over `g` (analysed: shapes and costs done): see the module doc.
    `share(key, elements)`, if given, is the part of a kept tensor one device holds (tensor
    parallelism): `key` is (node id, output port) of the tensor, or (node id, "extra:NAME") of
    an op-internal one.  `inputs_need_grad`: the graph's inputs (token ids excepted) need a
    gradient, as a block's inputs do inside a larger trained model; `frozen`: no weight is
    trained."""
    from archviz.passes.driver import run
    run(g, "cost")
    order = g.topo_order()
    root = _roots(g, order)
    grad: dict = {}                     # node id -> its outputs need a gradient
    strided: dict = {}                  # (node id, port) -> its layout when not contiguous
    kept: dict = {}                     # key -> (elements, dtype kind), outside segments
    seg_kept: dict = {}                 # segment -> {key: (elements, kind)}
    seg_inputs: dict = {}               # key -> (elements, kind) read by a segment from outside it
    seg_of = {}
    total_macs = recompute = 0
    for node in order:
        seg_of[node.id] = seg = _segment(node, checkpoint)
        if node.is_input:
            grad[node.id] = inputs_need_grad and not _token_ids(g, node.id)
            continue
        op = registry[node.op]
        # an input read for its size only (a crop's target, a learned tensor's batch) gets no gradient
        ins = [grad[r.node] and i not in op.size_inputs for i, r in enumerate(node.inputs)]
        first = {}
        same = tuple(first.setdefault(r, i) for i, r in enumerate(node.inputs))
        st = tuple(strided.get((r.node, r.port), False) for r in node.inputs)
        for port in node.meta[M.SHAPES]:
            layout = op.strided_out(node.attrs, node.meta[M.IN_SHAPES], node.meta[M.SHAPES], port, st)
            if layout:
                strided[(node.id, port)] = layout
        need = Need(tuple(ins), not frozen and _trainable(node), same if len(first) < len(same) else (),
                    st if any(st) else ())
        grad[node.id] = need.any
        nb = NodeBackward(need)
        node.meta[M.BACKWARD] = nb
        if seg is not None:
            recompute += node.meta[M.MACS]
            for r in node.inputs:
                if seg_of.get(r.node) != seg and root[(r.node, r.port)] is not None:
                    key, n = root[(r.node, r.port)]
                    kind = "int64" if _token_ids(g, key[0]) else "act"
                    seg_inputs.setdefault(key, (share(key, n) if share is not None else n, kind))
        if not need.any:
            continue
        _layer(node, op, nb, root, seg_kept.setdefault(seg, {}) if seg is not None else kept, share)
        total_macs += nb.macs
    if not checkpoint:
        return TrainCosts(_by_kind(kept.values()), total_macs)
    base = dict(kept)
    for key, v in seg_inputs.items():
        base.setdefault(key, v)
    own = [[v for k, v in d.items() if k not in base] for d in seg_kept.values()]
    peak = max(own, key=lambda vs: sum(n for n, _ in vs), default=[])
    return TrainCosts(_by_kind(list(base.values()) + peak), total_macs, True, recompute,
                      len({s for s in seg_of.values() if s is not None}))


def _layer(node: Node, op, nb: NodeBackward, root: dict, book: dict, share) -> None:
    """One layer's backward: each tensor its `saved` rule names, under the key of the tensor it
    is (into `book` and nb.kept), and its MACs; a graph of its own (inner_graph) added `times` over."""
    from archviz.passes.driver import run_rule
    need = nb.need
    a, shapes_in, outs = node.attrs, node.meta[M.IN_SHAPES], node.meta[M.SHAPES]
    for s in run_rule(node, op.saved, a, shapes_in, outs, need, ins=shapes_in):
        if s.input is not None:
            r = node.inputs[s.input]
            ref = root[(r.node, r.port)]
        elif s.port is not None:
            ref = root[(node.id, s.port)]
        else:
            ref = ((node.id, "extra:" + s.extra), s.numel)
        if ref is None:                 # model state
            continue
        key, n = ref
        n = share(key, n) if share is not None else n
        nb.kept.append((s, key, n, key not in book))
        book.setdefault(key, (n, s.dtype))
    nb.macs = int(run_rule(node, op.count_backward_macs, a, shapes_in, outs, need, ins=shapes_in))
    inner = op.inner_graph(a, shapes_in)
    if inner is not None:               # a graph of its own (experts), `times` over the tokens
        sub, times = inner
        tc = train_costs(sub, inputs_need_grad=need.input(0), frozen=not need.weights)
        for kind, n in tc.saved_elems.items():
            key = (node.id, "extra:inner " + kind)
            n = share(key, times * n) if share is not None else times * n
            book[key] = (n, kind)
            nb.kept.append((Saved(n, extra="inner " + kind, dtype=kind), key, n, True))
        nb.macs += times * tc.backward_macs


def _by_kind(items) -> dict:
    out: dict = {}
    for n, kind in items:
        out[kind] = out.get(kind, 0) + n
    return out
