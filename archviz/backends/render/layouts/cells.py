"""Inside one recurrent step: LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of
Gers et al. 2000), GRU (Cho et al. 2014, in torch.nn.GRU's form: the reset gate scales
W_hn h_{t−1} + b_hn, as cuDNN computes it) and the Elman RNN, drawn from a node's attributes
(hidden size h, input size x) in the style of Olah's "Understanding LSTM Networks".

``rankdir=BT``; inputs at the bottom; the gates on one row (``rank=same``, invisible edges
fix their order); the state line (the LSTM's cell state c, the GRU's h) is a bold row of
its own, left to right.  No cluster around the cell: with Graphviz 2.43 a cluster reversed
the belt's left-to-right order.
"""
from __future__ import annotations

from archviz.backends.render.common import FONT, fmt_int, params_of, stack
from archviz.backends.render.dot import Dot, Html, html_escape
from archviz.backends.render.layouts.recurrent import need_recurrence, sub
from archviz.backends.render.seqinfo import rec_info
from archviz.ops.describe import Cell

GATE, POINT = "#fff2cc", "#fce5cd"


def _small(s: str) -> str:
    return f'<FONT POINT-SIZE="8" COLOR="#444444">{s}</FONT>'


def _gate(dot, nid, fn, w, dims):
    dot.node(nid, label=Html(f"{html_escape(fn)}<BR/>{_small(sub('W', w) + ' ' + dims)}"), shape="box",
             style="filled", fillcolor=GATE, height=0.35)


def _op(dot, nid, sym, fontsize=12):
    dot.node(nid, label=sym, shape="circle", fixedsize=True, width=0.32, style="filled", fillcolor=POINT,
             fontsize=fontsize)


def build_cell(model, opts) -> Dot:
    g = model.graph
    n = need_recurrence(g, "cell")[0]
    r = rec_info(g, n)
    # an attention decoder (attention_gru) is a GRU cell whose input is [y_{t−1}; c_t]
    h, x = r.hidden, r.features + (r.context if r.attends else 0)
    dot = Dot(g.name, comment=f"archviz cell layout: the {r.title} step of '{n.id}'; rankdir=BT, gates on one "
              "rank=same row, the state line a bold row; no cluster (it reversed the belt in dot 2.43)",
              rankdir="BT", newrank=True, fontname=FONT, nodesep=0.3, ranksep=0.35, splines="spline")
    dot.attrs("node", fontname=FONT, fontsize=11)
    dot.attrs("edge", fontname=FONT, fontsize=9, arrowsize=0.6)
    wd = f"{h}×({h}+{x})"
    if r.kind is Cell.GRU:
        _gru(dot, wd, h, x)
    else:
        {Cell.LSTM: _lstm, Cell.RNN: _rnn}[r.kind](dot, wd)
    desc = (f"{r.title} cell of '{html_escape(n.id)}': hidden size h = {h}, input size x = {x}"
            + (f" (layer 1 of {r.layers}; the layers above read x = {h * (2 if r.bidir else 1)})"
               if r.layers > 1 else "")
            + (", each direction its own cell" if r.bidir else "")
            + (f"; x<SUB>t</SUB> = [y<SUB>t−1</SUB>; c<SUB>t</SUB>] ({r.features} + {r.context}), c<SUB>t</SUB> the "
               f"attention context over '{html_escape(r.memory_src)}' scored by h<SUB>t−1</SUB>" if r.attends else "")
            + f" · {fmt_int(params_of(n))} params in all")
    dot.set(fontsize=10, labelloc="b", labeljust="c",
            label=Html(stack([_EQUATIONS[r.kind]] + _CONVENTION.get(r.kind, [])
                             + [f'<FONT POINT-SIZE="9" COLOR="#444444">{desc}</FONT>'])))
    return dot


_EQUATIONS = {
    Cell.LSTM: "f, i, o = σ(W·[h<SUB>t−1</SUB>; x<SUB>t</SUB>] + b) · g = tanh(W<SUB>g</SUB>·[h<SUB>t−1</SUB>; "
            "x<SUB>t</SUB>] + b<SUB>g</SUB>) · c<SUB>t</SUB> = f ⊙ c<SUB>t−1</SUB> + i ⊙ g · "
            "h<SUB>t</SUB> = o ⊙ tanh(c<SUB>t</SUB>)",
    Cell.GRU: "r, z = σ(W·[h<SUB>t−1</SUB>; x<SUB>t</SUB>] + b) · n = tanh(W<SUB>in</SUB> x<SUB>t</SUB> + "
           "b<SUB>in</SUB> + r ⊙ (W<SUB>hn</SUB> h<SUB>t−1</SUB> + b<SUB>hn</SUB>)) · "
           "h<SUB>t</SUB> = (1 − z) ⊙ n + z ⊙ h<SUB>t−1</SUB>",
    Cell.RNN: "h<SUB>t</SUB> = tanh(W<SUB>xh</SUB> x<SUB>t</SUB> + W<SUB>hh</SUB> h<SUB>t−1</SUB> + b)",
}


# the GRU's z has two conventions (archviz eval gru; docs/exam.md): say which one is drawn
_GRU_Z = ('<FONT POINT-SIZE="9" COLOR="#444444">z as in torch (Cho et al. 2014): z = 1 keeps h<SUB>t−1</SUB>. '
          'Chung et al. 2014 and the exam write h<SUB>t</SUB> = (1 − z) ⊙ h<SUB>t−1</SUB> + z ⊙ h̃: '
          'their z is 1 − this z</FONT>')
_CONVENTION = {Cell.GRU: [_GRU_Z]}


def _io(dot, nid, label):
    dot.node(nid, label=Html(label), shape="plaintext")


def _lstm(dot, wd):
    # declaration order matters to dot's ordering inside a rank: belt ends first
    _io(dot, "c_prev", sub("c", "t−1"))
    _io(dot, "c_t", sub("c", "t"))
    dot.node("concat", label=Html("[h<SUB>t−1</SUB>; x<SUB>t</SUB>]"), shape="box", style="rounded",
             fontsize=9, margin="0.12,0.03", height=0.3)
    for gid, fn, w in (("f", "σ", "f"), ("i", "σ", "i"), ("g", "tanh", "g"), ("o", "σ", "o")):
        _gate(dot, f"gate_{gid}", fn, w, wd)
        dot.edge("concat", f"gate_{gid}", label=f" {gid}", weight=2)
    _op(dot, "mul_f", "×")
    _op(dot, "mul_i", "×")
    _op(dot, "add_c", "+")
    dot.node("tanh_c", label="tanh", shape="ellipse", style="filled", fillcolor=POINT, fontsize=9, height=0.3)
    _op(dot, "mul_o", "×")
    _io(dot, "h_prev", sub("h", "t−1"))
    _io(dot, "x_t", sub("x", "t"))
    _io(dot, "h_t", sub("h", "t"))
    dot.edge("h_prev", "concat")
    dot.edge("x_t", "concat")
    dot.edge("gate_f", "mul_f")
    dot.edge("gate_i", "mul_i")
    dot.edge("gate_g", "mul_i")
    dot.edge("mul_i", "add_c")
    dot.edge("gate_o", "mul_o")
    dot.edge("add_c", "tanh_c", weight=3)
    dot.edge("tanh_c", "mul_o", weight=3)
    dot.edge("mul_o", "h_t", weight=3)
    # the cell-state belt, left to right
    dot.edge("c_prev", "mul_f", penwidth=2.2, weight=5)
    dot.edge("mul_f", "add_c", penwidth=2.2, weight=5)
    dot.edge("add_c", "c_t", penwidth=2.2, weight=5)
    dot.rank_same(["h_prev", "x_t"])
    dot.rank_same(["gate_f", "gate_i", "gate_g", "gate_o"])
    dot.rank_same(["c_prev", "mul_f", "add_c", "c_t"])
    for a, b in (("gate_f", "gate_i"), ("gate_i", "gate_g"), ("gate_g", "gate_o"), ("h_prev", "x_t"),
                 ("c_prev", "mul_f")):
        dot.edge(a, b, style="invis")


def _gru(dot, wd, h=None, x=None):
    # torch.nn.GRU: n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn)); the reset gate
    # scales the hidden state's product, not h_{t−1} itself (Cho et al.'s form).
    # Columns, left to right: reset (r, r ⊙ (W_hn h + b_hn), candidate n), update (z, 1 − z), the belt
    _io(dot, "h_belt", sub("h", "t−1"))
    _io(dot, "h_t", sub("h", "t"))
    dot.node("concat", label=Html("[h<SUB>t−1</SUB>; x<SUB>t</SUB>]"), shape="box", style="rounded",
             fontsize=9, margin="0.12,0.03", height=0.3)
    _gate(dot, "gate_r", "σ", "r", wd)
    _gate(dot, "gate_z", "σ", "z", wd)
    dot.node("lin_hn", label=Html(stack(["W<SUB>hn</SUB> h<SUB>t−1</SUB> + b<SUB>hn</SUB>", _small(f"{h}×{h}")], pad=1)),
             shape="box", style="rounded", fontsize=9, height=0.3)
    _op(dot, "mul_r", "×")
    dot.node("lin_in", label=Html(stack(["W<SUB>in</SUB> x<SUB>t</SUB> + b<SUB>in</SUB>", _small(f"{h}×{x}")], pad=1)),
             shape="box", style="rounded", fontsize=9, height=0.3)
    _op(dot, "add_n", "+")
    dot.node("gate_n", label="tanh", shape="box", style="filled", fillcolor=GATE, height=0.3)
    _op(dot, "one_minus", "1−", fontsize=10)
    _op(dot, "mul_n", "×")
    _op(dot, "mul_z", "×")
    _op(dot, "add_h", "+")
    _io(dot, "h_prev", sub("h", "t−1"))
    _io(dot, "x_t", sub("x", "t"))
    dot.edge("h_prev", "concat")
    dot.edge("x_t", "concat")
    dot.edge("concat", "gate_r", label=" r", weight=2)
    dot.edge("concat", "gate_z", label=" z", weight=2)
    dot.edge("h_prev", "lin_hn", color="#888888")
    dot.edge("lin_hn", "mul_r", weight=2)
    dot.edge("gate_r", "mul_r", weight=4)
    dot.edge("x_t", "lin_in", color="#888888")
    dot.edge("mul_r", "add_n", weight=4)
    dot.edge("lin_in", "add_n")
    dot.edge("add_n", "gate_n", label=" n", weight=4)
    dot.edge("gate_n", "mul_n")
    dot.edge("gate_z", "one_minus", weight=4)
    dot.edge("one_minus", "mul_n", weight=4)
    dot.edge("mul_n", "add_h")
    dot.edge("gate_z", "mul_z")
    dot.edge("h_belt", "mul_z", penwidth=2.2, weight=5)
    dot.edge("mul_z", "add_h", penwidth=2.2, weight=5)
    dot.edge("add_h", "h_t", penwidth=2.2, weight=5)
    dot.rank_same(["h_prev", "x_t"])
    dot.rank_same(["gate_r", "gate_z"])
    dot.rank_same(["h_belt", "mul_z", "add_h", "h_t"])
    for a, b in (("h_prev", "x_t"), ("gate_r", "gate_z"), ("h_belt", "mul_z")):
        dot.edge(a, b, style="invis")


def _rnn(dot, wd):
    _io(dot, "h_prev", sub("h", "t−1"))
    _io(dot, "x_t", sub("x", "t"))
    _io(dot, "h_t", sub("h", "t"))
    dot.node("tanh", label=Html("tanh<BR/>" + _small("W<SUB>xh</SUB> x + W<SUB>hh</SUB> h + b")), shape="box",
             style="filled", fillcolor=GATE)
    dot.edge("h_prev", "tanh", label=Html(" " + sub("W", "hh")))
    dot.edge("x_t", "tanh", label=Html(" " + sub("W", "xh")))
    dot.edge("tanh", "h_t")
    dot.rank_same(["h_prev", "x_t"])
    dot.edge("h_prev", "x_t", style="invis")
