"""One decoder step of an encoder–decoder with attention (Bahdanau et al. 2015, Fig. 1;
Luong et al. 2015, Fig. 2): the encoder states h_i, the attention weights α_{t,i} over
them, the context vector c_t = Σ_i α_{t,i} h_i, and the decoder step that combines c_t
with its state to predict y_t.  What follows the attention (concat, W_c, tanh, the
generator) is read from the graph, so Bahdanau-, Luong- and custom variants are drawn as
specified.

``rankdir=BT``; the encoder in a dashed cluster; the attention weights are one HTML table
node with a port per α cell, each h_i pointing at its own cell; the query (the decoder
state that scores the h_i) and the initial state hand-over are dashed edges with
``constraint=false`` so they do not disturb the ranking.  Attention weights depend on the
input, so the cells carry no numbers.  A long source is elided (h_1 h_2 h_3 … h_S) unless
``--unroll`` asks for a number of encoder steps.

An attention decoder with the context fed back (op ``attention_gru``, Bahdanau et al.
2015, §3.1) is drawn as its own step: α_t scored by the PREVIOUS state s_{t−1}
(v_aᵀ tanh(W_a s_{t−1} + U_a h_i)), c_t entering the GRU step beside y_{t−1}, the read-out
on [s_t; c_t]; the attention sits inside the decoder's cluster (it is part of that op).
An ``attention`` op after the decoder (Luong et al.) is scored by s_t and feeds the
read-out only.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from archviz.codes import E
from archviz.errors import UnsupportedError
from archviz.ops.describe import Cell, Merge

from archviz.backends.render.common import (FONT, dims, fmt_int, key_attrs, merge_kind, params_of, stack, textbook,
                                            with_subscripts)
from archviz.backends.render.dot import Dot, Html, html_escape
from archviz.backends.render.layouts.recurrent import need_recurrence, sub
from archviz.backends.render.seqinfo import (attention_nodes, init_formula, init_source, port_map, rec_info,
                                             state_chain)

X_FILL, H_FILL, S_FILL, Y_FILL, C_FILL, OP_FILL = "#fde9c8", "#cfe2f3", "#d9ead3", "#fff2cc", "#ead1dc", "#f3f3f3"
EDGE = "#3d5a99"
SCORES = {"dot": "s<SUB>t</SUB><SUP>T</SUP>h<SUB>i</SUB>",
          "scaled_dot": "s<SUB>t</SUB><SUP>T</SUP>h<SUB>i</SUB> / √d",
          "general": "s<SUB>t</SUB><SUP>T</SUP>W<SUB>a</SUB>h<SUB>i</SUB>",
          "additive": "v<SUB>a</SUB><SUP>T</SUP>tanh(W<SUB>a</SUB>s<SUB>t</SUB> + U<SUB>a</SUB>h<SUB>i</SUB>)",
          "concat": "v<SUB>a</SUB><SUP>T</SUP>tanh(W<SUB>a</SUB>[s<SUB>t</SUB>; h<SUB>i</SUB>])"}
# attention fed back (attention_gru): the PREVIOUS state scores the annotations
FED_SCORE = ("v<SUB>a</SUB><SUP>T</SUP>tanh(W<SUB>a</SUB>s<SUB>t−1</SUB> + U<SUB>a</SUB>h<SUB>i</SUB>)",
             "additive")


def _shown(S: int, unroll: int | None) -> list:
    if unroll:
        return list(range(1, unroll + 1))
    if S <= 5:
        return list(range(1, S + 1))
    return [1, 2, 3, None, S]


@dataclass(frozen=True)
class Source:
    """One column of the encoder row: the position i (None for the elided ones), its boxes
    x_i and h_i and its cell α_{t,i} in the attention table."""
    i: int | None

    @property
    def x(self) -> str:
        return f"x.{self.i}" if self.i else "x.gap"

    @property
    def h(self) -> str:
        return f"h.{self.i}" if self.i else "h.gap"

    @property
    def port(self) -> str:
        return f"a{self.i}" if self.i else "agap"


@dataclass
class Parts:
    """Who plays which part of the picture: the encoder, the decoder (if any), the
    attention (an op, or the decoder itself when it attends: `fed`)."""
    graph: object
    enc: object
    dec: object
    attn: object
    fed: bool

    def reaches(self, a: str, b: str) -> bool:
        """b is a or computed from it."""
        return a == b or a in nx.ancestors(self.graph.g, b)


@dataclass
class Readout:
    """The decoder's read-out (what follows the attention, or its output layer): the ops in
    order, and for each the box each of its inputs comes from (None: not drawn)."""
    ops: list
    sources: dict       # op id -> [box id or None per input]

    @property
    def last(self) -> str:
        return f"op.{self.ops[-1].id}" if self.ops else "s.t"


def build_seq2seq(model, opts) -> Dot:
    """The parts and the encoder row first, then their DOT: the encoder cluster, the
    attention (or the final state as the context), the decoder step and its read-out."""
    p = _parts(model.graph, [rec_info(model.graph, n) for n in need_recurrence(model.graph, "seq2seq")])
    row = [Source(i) for i in _shown(p.enc.steps, opts.unroll)]
    dot = _new_dot(model.graph)
    _emit_encoder(dot, p.enc, row)
    if p.attn is not None:
        _emit_attention(dot, p, row)
    else:
        S = p.enc.steps
        dot.node("ctx", fillcolor=C_FILL, label=Html(
            f"context = final encoder state h<SUB>{S}</SUB>"
            + (f", c<SUB>{S}</SUB>" if p.enc.kind is Cell.LSTM else "")))
        dot.edge(row[-1].h, "ctx", weight=5)
    if p.dec is not None:
        readout = _readout(p)
        _emit_decoder(dot, p, readout)
        _emit_decoder_edges(dot, p, readout, row)
    return dot


def _parts(g, recs: list) -> Parts:
    attn = next(iter(attention_nodes(g)), None)
    p = Parts(g, None, None, attn, attn is not None and any(r.id == attn.id and r.attends for r in recs))
    if p.fed:
        # Bahdanau: the decoder itself attends over its memory (the encoder's annotations)
        p.dec = next(r for r in recs if r.id == attn.id)
        p.enc = next((r for r in recs if r is not p.dec and p.dec.memory_src is not None
                      and p.reaches(r.id, p.dec.memory_src)), None)
        if p.enc is None:
            raise UnsupportedError(f"the seq2seq layout draws an encoder feeding a decoder, and the memory of "
                                   f"'{p.dec.id}' does not come from a recurrent encoder",
                                   hint="use --layout unrolled or graph", code=E.LAYOUT_MISMATCH)
    elif attn is not None:
        pm = port_map(attn)
        key = pm.get("key", pm.get("query"))
        query = pm.get("query")
        p.enc = next((r for r in recs if key is not None and p.reaches(r.id, key.node)), None)
        p.dec = next((r for r in recs if query is not None and p.reaches(r.id, query.node) and r is not p.enc),
                     None)
    if p.enc is None:
        chain = state_chain(g, recs)
        p.enc = chain[0]
        p.dec = chain[1] if len(chain) > 1 else None
    return p


def _new_dot(g) -> Dot:
    dot = Dot(g.name, comment=f"archviz seq2seq layout of '{g.name}': one decoder step; rankdir=BT, encoder "
              "cluster, attention weights as an HTML table with one port per alpha, query/init dashed "
              "with constraint=false", rankdir="BT", newrank=True, fontname=FONT, nodesep=0.35, ranksep=0.45,
              splines="spline")
    dot.attrs("node", fontname=FONT, fontsize=11, shape="box", style="rounded,filled")
    dot.attrs("edge", fontname=FONT, fontsize=9, arrowsize=0.6)
    return dot


def _emit_encoder(dot: Dot, enc, row: list) -> None:
    """The encoder's row in its dashed cluster: x_i under h_i, the h_i chained left to right."""
    bi = " = [→h; ←h]" if enc.bidir else ""
    with dot.subgraph("cluster_encoder", label=f"encoder '{enc.id}': {enc.title}, h = {enc.hidden}"
                      + (", bidirectional" if enc.bidir else "") + f", {enc.steps} steps", labeljust="l",
                      style="dashed", color="gray50", fontsize=10):
        prev = None
        for k, src in enumerate(row):
            if src.i is None:
                dot.node(src.x, label="…", shape="plaintext", style="", group="gap")
                dot.node(src.h, label="…", shape="plaintext", style="", group="gap")
                dot.edge(src.x, src.h, style="invis", weight=10)
                if prev:
                    dot.edge(prev, src.h, weight=1)
                prev = src.h
                continue
            dot.node(src.x, label=Html(sub("x", src.i)), fillcolor=X_FILL, group=f"c{src.i}")
            note = f'<FONT POINT-SIZE="8">{bi}</FONT>' if k == 0 and bi else ""
            dot.node(src.h, label=Html(sub("h", src.i) + note), fillcolor=H_FILL, group=f"c{src.i}")
            dot.edge(src.x, src.h, weight=10)
            if prev:
                dot.edge(prev, src.h)
            prev = src.h
        dot.rank_same([src.h for src in row])


def _emit_attention(dot: Dot, p: Parts, row: list) -> None:
    """The α table (one cell per h_i, each h_i pointing at its own) and the context c_t."""
    attn, enc = p.attn, p.enc
    score = attn.attrs.get("score", "scaled_dot")
    formula = SCORES.get(score, "score(s<SUB>t</SUB>, h<SUB>i</SUB>)")
    if p.fed:
        formula, score = FED_SCORE
    cells = "".join(
        f'<TD PORT="{src.port}" BGCOLOR="#e1e1ff" WIDTH="56">α<SUB>t,{src.i}</SUB></TD>' if src.i else
        f'<TD PORT="{src.port}" WIDTH="30">…</TD>' for src in row)
    cap = (f'<FONT POINT-SIZE="9">attention weights α<SUB>t,i</SUB> = softmax<SUB>i</SUB>(e<SUB>t,i</SUB>), '
           f'e<SUB>t,i</SUB> = {formula} ({html_escape(score)})</FONT>')
    dot.node("attn", shape="plain", style="", label=Html(
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
        f'<TR><TD COLSPAN="{len(row)}" PORT="cap">{cap}</TD></TR><TR>{cells}</TR></TABLE>'))
    for src in row:
        dot.edge(src.h, ("attn", src.port, "s"), color=EDGE)
    where = (f"fed into the step of '{html_escape(attn.id)}'" if p.fed else
             f"{html_escape(attn.id)}: {fmt_int(params_of(attn))} params")
    d_h = enc.h_out * (2 if enc.bidir else 1)
    dot.node("ctx", fillcolor=C_FILL, label=Html(stack([
        "context c<SUB>t</SUB> = Σ<SUB>i</SUB> α<SUB>t,i</SUB> h<SUB>i</SUB>",
        f'<FONT POINT-SIZE="8">{d_h}-d · {where}</FONT>'], pad=1)))
    dot.edge("attn", "ctx", weight=5)


def _readout(p: Parts) -> Readout:
    """What follows the attention up to the outputs (else the decoder's output layer), each
    input traced to its box: the context, the attention, another read-out op or s_t."""
    attn, dec = p.attn, p.dec
    ops = _after(p.graph, attn, dec) if attn is not None else ([dec.head] if dec.head is not None else [])
    ids = {n.id for n in ops}

    def source(r):
        if p.fed and r.node == attn.id:
            return {"context": "ctx", "weights": "attn"}.get(r.port, "s.t")
        if attn is not None and r.node == attn.id:
            return "ctx"
        if r.node in ids:
            return f"op.{r.node}"
        if p.reaches(dec.id, r.node):
            return "s.t"
        return None
    return Readout(ops, {n.id: [source(r) for r in n.inputs] for n in ops})


def _emit_decoder(dot: Dot, p: Parts, readout: Readout) -> None:
    """The decoder's step in its cluster: s_{t−1} and y_{t−1} into s_t, the read-out, y_t."""
    dec = p.dec
    title = f"{dec.title} with attention fed back" if p.fed else dec.title
    with dot.subgraph("cluster_decoder", label=f"decoder '{dec.id}': {title}, h = {dec.hidden}, step t",
                      labeljust="r", style="dashed", color="gray50", fontsize=10):
        if p.fed:     # the attention is part of the decoder's step (one op): inside its cluster
            dot.node("attn")
            dot.node("ctx")
        dot.node("s.prev", label=Html(sub("s", "t−1")), fillcolor=S_FILL)
        step = ('<FONT POINT-SIZE="8">' + f" = {dec.title}([y<SUB>t−1</SUB>; c<SUB>t</SUB>], s<SUB>t−1</SUB>)"
                + "</FONT>") if p.fed else ""
        dot.node("s.t", label=Html(sub("s", "t") + step), fillcolor=S_FILL)
        dot.node("y.prev", label=Html(sub("y", "t−1") + '<FONT POINT-SIZE="8"> (previous token)</FONT>'),
                 fillcolor=X_FILL)
        dot.edge("s.prev", "s.t")
        dot.edge("y.prev", "s.t")
        sym = {"ctx": "c<SUB>t</SUB>", "s.t": "s<SUB>t</SUB>"}
        for n in readout.ops:
            if merge_kind(n.op) is Merge.CONCAT:
                parts = [sym.get(src, html_escape(r.node)) for r, src in zip(n.inputs, readout.sources[n.id])]
                lab = "concat [" + "; ".join(parts) + "]"
            else:
                lab = f"{html_escape(textbook(n.op))} {html_escape(key_attrs(n.op, n.attrs))}".strip()
            doc = n.meta.get("doc")
            # the id as written; the spec's doc with its subscripts drawn (W_c → W<SUB>c</SUB>)
            note = html_escape(f"'{n.id}'") + (f": {with_subscripts(doc)}" if doc else "")
            dot.node(f"op.{n.id}", fillcolor=OP_FILL, fontsize=10,
                     label=Html(stack([lab, f'<FONT POINT-SIZE="8">{note}</FONT>'], pad=1)))
        shp = readout.ops[-1].meta["shapes"]["out"] if readout.ops else None
        dot.node("y.t", fillcolor=Y_FILL, label=Html(sub("y", "t") + (
            f'<FONT POINT-SIZE="8"> {dims(shp[-1:], batch=True)} logits</FONT>' if shp else "")))


def _emit_decoder_edges(dot: Dot, p: Parts, readout: Readout, row: list) -> None:
    """The decoder's edges, written outside its cluster (an edge written inside a cluster
    pulls its ends into it): c_t into the step, the read-out, the query and the init."""
    if p.fed:
        # c_t enters the recurrence beside y_{t−1}: s_t = GRU([y_{t−1}; c_t], s_{t−1}); the two
        # inputs side by side on one row; a flat edge keeps y_{t−1} on the left, so s_{t−1}
        # stands on the right, its query going straight down to the α caption
        dot.edge("ctx", "s.t", weight=5)
        dot.rank_same(["y.prev", "ctx"])
        dot.edge("y.prev", "ctx", style="invis")
    for n in readout.ops:
        for src in readout.sources[n.id]:
            if src is not None:
                dot.edge(src, f"op.{n.id}", weight=3 if src == "ctx" else 5)
    dot.edge(readout.last, "y.t", weight=5)
    dot.rank_same(["s.prev", "s.t"])
    if p.attn is None:
        dot.edge("ctx", "s.prev", label="init", style="dashed", color="gray40")
        return
    query = port_map(p.attn).get("query")
    q_from = "s.t" if not p.fed and query is not None and p.reaches(p.dec.id, query.node) else "s.prev"
    dot.edge(q_from, ("attn", "cap", "e"), label="query", style="dashed", color="gray40", constraint=False)
    if p.dec.h0_src is not None and p.reaches(p.enc.id, p.dec.h0_src):
        # from the encoder state the spec selects (Bahdanau's s_0 = tanh(W_s ←h_1)
        # starts at h_1), not always from the last one
        src = init_source(p.graph, p.enc, p.dec)
        from_h, label = row[-1].h, "init"
        if src is not None and src.step is not None:
            from_h = next((s.h for s in row if s.i == src.step), Source(None).h)
            label = Html("init " + init_formula(src))
        dot.edge(from_h, "s.prev", label=label, style="dashed", color="gray40", constraint=False)


def _after(g, attn, dec) -> list:
    """Nodes between the attention output and the graph outputs (the decoder's read-out)."""
    outs = {r.node for r in g.outputs.values()}
    desc = nx.descendants(g.g, attn.id)
    keep = []
    for n in g.topo_order():
        if n.id not in desc:
            continue
        if n.id in outs or nx.descendants(g.g, n.id) & outs:
            keep.append(n)
    return keep
