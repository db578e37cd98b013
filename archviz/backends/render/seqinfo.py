"""What the sequence-model diagrams need to know about a recurrent node, read from its op's
recurrence description and the inferred shapes (nothing is recomputed): cell kind, hidden size, layers,
directions, input size, sequence length, where its input and initial state come from, and
the per-step output layer (W_hy) that reads its outputs."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from archviz.backends.render.common import (attends, in_shapes, is_attention_step, is_recurrent, op_of,
                                            recurrence)
from archviz.ops.describe import Cell, Role


@dataclass
class Rec:
    node: object
    kind: Cell
    hidden: int
    layers: int
    bidir: bool
    features: int          # F, the input size of layer 0
    steps: int             # T (sequence length; 1 for a cell)
    h_out: int             # emitted hidden size (proj_size or hidden)
    x_src: str | None
    h0_src: str | None
    head: object = None    # linear reading the outputs (W_hy), if any
    head_last: bool = False  # ... read at the last step only (many-to-one)
    memory_src: str | None = None  # attention fed back (attention_gru): the annotations it attends over
    context: int = 0       # ... and their size M: the cell reads [x_t; c_t], E + M

    @property
    def attends(self) -> bool:
        """Bahdanau's decoder: α from the previous state, c_t enters the cell's input."""
        return attends(self.node)

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def title(self) -> str:
        return self.kind.title

    @property
    def gates(self) -> int:
        return self.kind.gates


def recurrent_nodes(graph) -> list:
    return [n for n in graph.topo_order() if is_recurrent(n.op)]


def rec_info(graph, n) -> Rec:
    rc = recurrence(n)
    ins = in_shapes(n)
    x = ins[0] if ins else ()
    steps = 1 if rc.step else (x[1] if len(x) >= 3 else 1)
    h0 = mem = None
    memory_i = None
    for i, (p, r) in enumerate(port_map(n).items()):
        if rc.state_in and p == rc.state_in[0]:
            h0 = r.node
        elif p == rc.memory:
            mem, memory_i = r.node, i
    head, last = output_head(graph, n)
    return Rec(node=n, kind=rc.kind, hidden=rc.hidden, layers=rc.layers, bidir=rc.directions == 2,
               features=x[-1] if x else 0, steps=steps, h_out=rc.h_out,
               x_src=n.inputs[0].node if n.inputs else None, h0_src=h0, head=head, head_last=last,
               memory_src=mem, context=ins[memory_i][-1] if mem is not None and ins[memory_i] else 0)


def port_map(n) -> dict:
    """{port: Ref} of a node's inputs: the ports the spec named, else the op's ports in
    order (an attention_gru's second input is its memory, not h0)."""
    o = op_of(n.op)
    ports = n.input_ports or (o.input_ports if o is not None else None) or ()
    return dict(zip(ports, n.inputs))


def output_head(graph, n):
    """(linear, last_only): the linear layer reading the outputs through dropout/identity,
    at every step, or at the last step only after `last_step` (many-to-one)."""
    cur, last = n.id, False
    for _ in range(20):
        nxt = [c for c in graph.consumers(cur)
               if any(r.node == cur and r.port == "out" for r in c.inputs)]
        if len(nxt) != 1:
            return None, False
        c = nxt[0]
        o = op_of(c.op)
        if o is None:
            return None, False
        if o.role is Role.WEIGHT and o.features_last:       # a dense layer: W_hy
            return c, last
        sel = o.selects(c.attrs, in_shapes(c))
        if sel is not None and sel[0] == 1 and sel[1] == in_shapes(c)[0][1] - 1 and not last:
            last = True                                      # the last time step (many-to-one)
        elif not o.passthrough:
            return None, False
        cur = c.id
    return None, False


def state_chain(graph, recs: list) -> list:
    """Recurrent nodes linked through their state: [encoder, decoder, ...] where each one's
    initial state is computed from the one before (Sutskever et al.'s hand-over)."""
    chain = [recs[0]]
    for r in recs[1:]:
        if r.h0_src is None:
            continue
        anc = nx.ancestors(graph.g, r.h0_src) | {r.h0_src}
        if chain[-1].id in anc:
            chain.append(r)
    return chain


def attention_nodes(graph) -> list:
    return [n for n in graph.topo_order() if is_attention_step(n)]


def default_steps(graph, rec: Rec, unroll: int | None) -> int:
    if unroll:
        return unroll
    if rec is not None and rec.steps > 1:
        return rec.steps
    t = graph.params.get("T") if isinstance(graph.params, dict) else None
    if isinstance(t, int) and not isinstance(t, bool) and t > 0:
        return t
    return 3


@dataclass
class InitFrom:
    """Which encoder state initialises the decoder: the step it sits at (1..S; None when
    it cannot be told), its symbol (HTML) and the ops between it and the decoder."""
    step: int | None
    symbol: str
    via: list


def init_source(graph, enc: Rec, dec: Rec) -> InitFrom | None:
    """Follow the decoder's initial state back to the encoder.

    torch's h_n is (layers · directions, N, H), index l · D + d: with one bidirectional
    layer h_n[0] is the forward final state →h_S and h_n[1] the backward final state ←h_1
    (Bahdanau et al.'s s_0 = tanh(W_s ←h_1)).  Reading the outputs at step i
    (``select_step`` on axis 1) or the last step (``last_step``) gives h_i or h_S."""
    if dec.h0_src is None:
        return None
    S, D = enc.steps, 2 if enc.bidir else 1
    cur, via = graph.nodes.get(dec.h0_src), []
    for _ in range(50):
        if cur is None or not cur.inputs:
            return None
        if cur.id == enc.id:
            # the decoder reads h_n itself: the last layer's final state(s)
            return InitFrom(S, f"h<SUB>{S}</SUB>", via)
        r = cur.inputs[0]
        if r.node == enc.id:
            sel = _selects(cur)
            # the final states h_n (and c_n), not a cell's output h_t
            states = set(recurrence(enc.node).state_out) - {"out"}
            if sel is not None and r.port in states and sel[0] == 0:
                idx = sel[1]                                   # l · D + d
                back = D == 2 and idx % 2 == 1
                sym = ("←" if back else ("→" if D == 2 else "")) + f"h<SUB>{1 if back else S}</SUB>"
                return InitFrom(1 if back else S, sym, [cur] + via)
            if sel is not None and r.port == "out" and sel[0] == 1:
                step = sel[1] + 1                              # the output at step i + 1
                return InitFrom(step, f"h<SUB>{step}</SUB>", [cur] + via)
            if r.port in states:
                return InitFrom(S, f"h<SUB>{S}</SUB>", [cur] + via)
            return InitFrom(None, "h", [cur] + via)
        via.insert(0, cur)
        cur = graph.nodes.get(r.node)
    return None


def _selects(node):
    """(axis, index) when the node picks one index along an axis, else None."""
    o = op_of(node.op)
    return o.selects(node.attrs, in_shapes(node)) if o is not None else None


def init_formula(src: InitFrom) -> str:
    """The decoder's initial state as HTML, outermost op first: 'tanh(fc(←h<SUB>1</SUB>))'."""
    from archviz.backends.render.common import textbook
    from archviz.backends.render.dot import html_escape
    fns = [textbook(n.op) for n in src.via if _selects(n) is None]
    return ("(".join(html_escape(f) for f in reversed(fns)) + "(" if fns else "") + src.symbol + ")" * len(fns)
