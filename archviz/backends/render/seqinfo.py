"""What the sequence-model diagrams need to know about a recurrent node, read from its
attributes and inferred shapes (nothing is recomputed): cell kind, hidden size, layers,
directions, input size, sequence length, where its input and initial state come from, and
the per-step output layer (W_hy) that reads its outputs."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from archviz.backends.render.common import ATTN_RECURRENT_OPS, CELL_OPS, RECURRENT_OPS, in_shapes, is_attention

from archviz.ops.recurrent import GATES  # noqa: E402  (gate sets per recurrence, one place)
PASS_THROUGH = {"dropout", "identity"}


@dataclass
class Rec:
    node: object
    kind: str              # rnn | gru | lstm
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
        return self.node.op in ATTN_RECURRENT_OPS

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def title(self) -> str:
        return {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[self.kind]

    @property
    def gates(self) -> int:
        return GATES[self.kind]


def recurrent_nodes(graph) -> list:
    return [n for n in graph.topo_order() if n.op in RECURRENT_OPS or n.op in CELL_OPS]


def rec_info(graph, n) -> Rec:
    a = n.attrs
    ins = in_shapes(n)
    x = ins[0] if ins else ()
    cell = n.op in CELL_OPS
    kind = "gru" if n.op in ATTN_RECURRENT_OPS else n.op.replace("_cell", "")
    steps = 1 if cell else (x[1] if len(x) >= 3 else 1)
    h0 = mem = None
    for p, r in port_map(n).items():
        if p in ("h0", "h"):
            h0 = r.node
        elif p == "memory":
            mem = r.node
    head, last = output_head(graph, n)
    return Rec(node=n, kind=kind, hidden=a.get("out"), layers=a.get("num_layers", 1) or 1,
               bidir=bool(a.get("bidirectional", False)), features=x[-1] if x else 0, steps=steps,
               h_out=a.get("proj_size") or a.get("out"), x_src=n.inputs[0].node if n.inputs else None,
               h0_src=h0, head=head, head_last=last, memory_src=mem,
               context=ins[1][-1] if mem is not None and len(ins) > 1 and ins[1] else 0)


def port_map(n) -> dict:
    """{port: Ref} of a node's inputs: the ports the spec named, else the op's ports in
    order (an attention_gru's second input is its memory, not h0)."""
    from archviz.ops import registry
    ports = n.input_ports
    if not ports:
        op = registry[n.op] if n.op in registry else None
        ports = list(getattr(op, "input_ports", None) or ()) or (
            ["x", "h", "c"] if n.op in CELL_OPS else ["x", "h0", "c0"])
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
        if c.op == "linear":
            return c, last
        if c.op == "last_step" and not last:
            last = True
        elif c.op not in PASS_THROUGH:
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
    return [n for n in graph.topo_order() if is_attention(n.op)]


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
            a = cur.attrs or {}
            shp = (in_shapes(cur) or [()])[0] or ()
            axis = a.get("axis", 1)
            axis = axis % len(shp) if isinstance(axis, int) and shp else axis
            if cur.op == "select_step" and r.port in ("h", "c"):
                idx = a.get("index", 0)
                if axis == 0 and isinstance(idx, int):
                    idx = idx % (enc.layers * D)
                    back = D == 2 and idx % 2 == 1
                    sym = ("←" if back else ("→" if D == 2 else "")) + f"h<SUB>{1 if back else S}</SUB>"
                    return InitFrom(1 if back else S, sym, [cur] + via)
            if cur.op == "select_step" and r.port == "out" and axis == 1:
                i = a.get("index", -1)
                if isinstance(i, int):
                    step = i % S + 1
                    return InitFrom(step, f"h<SUB>{step}</SUB>", [cur] + via)
            if cur.op == "last_step" and r.port == "out":
                return InitFrom(S, f"h<SUB>{S}</SUB>", [cur] + via)
            if r.port in ("h", "c"):
                return InitFrom(S, f"h<SUB>{S}</SUB>", [cur] + via)
            return InitFrom(None, "h", [cur] + via)
        via.insert(0, cur)
        cur = graph.nodes.get(r.node)
    return None


def init_formula(src: InitFrom) -> str:
    """The decoder's initial state as HTML, outermost op first: 'tanh(fc(←h<SUB>1</SUB>))'."""
    from archviz.backends.render.common import textbook
    from archviz.backends.render.dot import html_escape
    fns = [textbook(n.op) for n in src.via if n.op not in ("select_step", "last_step")]
    return ("(".join(html_escape(f) for f in reversed(fns)) + "(" if fns else "") + src.symbol + ")" * len(fns)
