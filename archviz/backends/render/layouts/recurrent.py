"""An RNN unrolled over T steps, beside its folded view (Goodfellow et al., Deep Learning,
Fig. 10.3; Olah, "Understanding LSTM Networks").

``rankdir=BT``: the inputs x_t on the bottom row, one row per layer (and direction) of
hidden states with the chain h_0 → h_1 → … → h_T drawn as flat edges labelled W_hh, the
per-step outputs y_t on top; W_xh and W_hy label the vertical edges.  ``group`` per time
step keeps every column straight.  On the left, the folded network with its W_hh
self-loop; below, the note that the weights are shared across the steps.

Stacked layers (``num_layers``) add rows (W⁽ˡ⁾); a bidirectional layer adds a row whose
chain runs right to left (declared left to right with ``dir=back`` so dot keeps the column
order).  An encoder whose final state initialises a decoder continues to the right as the
decoder's row (states s_t, inputs y_{t−1}, outputs ŷ_t): Sutskever et al. (2014), Fig. 1.
A decoder whose s_0 is computed (Bahdanau's tanh(W_s ←h_1)) starts from its own dashed box
saying so; an attention decoder (``attention_gru``) gets a context c_t beside each input,
fed by a dashed query from s_{t−1}.

Bidirectional rows: the backward states sit right of their column (``ordering=out``); a
stacked layer reads both directions below through one junction point per step; labels of
edges that pass a row, and the W_hh labels, sit beside their arrowheads, never mid-edge,
where another row's or column's edge would run through them.
"""
from __future__ import annotations

from archviz.backends.render.common import FONT, fmt_int, params_of, stack
from archviz.backends.render.dot import Dot, Html, html_escape
from archviz.backends.render.layouts.unrolled import H, J, JOIN, X, XH, Y, rows, segments
from archviz.backends.render.seqinfo import init_formula, init_source, rec_info, recurrent_nodes, state_chain
from archviz.codes import E
from archviz.errors import UnsupportedError
from archviz.ops.describe import Cell

X_FILL, H_FILL, Y_FILL, C_FILL = "#fde9c8", "#cfe2f3", "#d9ead3", "#ead1dc"
SYMBOLS = [("x", "h", "y", "xh", "hh", "hy"), ("y", "s", "ŷ", "ys", "ss", "sŷ")]


def need_recurrence(graph, layout: str):
    nodes = recurrent_nodes(graph)
    if not nodes:
        raise UnsupportedError(f"the '{layout}' layout draws a recurrent network, and '{graph.name}' has no "
                               "rnn, lstm, gru or *_cell node", hint="use --layout auto or graph",
                               code=E.LAYOUT_MISMATCH)
    return nodes


def sub(base: str, t, sup: str = "") -> str:
    s = f"{html_escape(base)}<SUB>{t}</SUB>"
    return s + (f"<SUP>{sup}</SUP>" if sup else "")


def wlabel(name: str, layer: int, layers: int, back: bool) -> Html:
    sup = (f"({layer})" if layers > 1 else "") + ("←" if back else "")
    return Html(sub("W", name, sup))


def weight_dims(r) -> tuple:
    """(W_xh, W_hh) sizes as text: G·h × F and G·h × h_out (G gate blocks); an attention
    decoder's cell reads [x_t; c_t], G·h × (F + M)."""
    gh = f"{r.gates}·{r.hidden}" if r.gates > 1 else f"{r.hidden}"
    f = f"({r.features}+{r.context})" if r.attends else f"{r.features}"
    return f"{gh}×{f}", f"{gh}×{r.h_out}"


def build_unrolled(model, opts) -> Dot:
    """The model first (:mod:`unrolled`: rows, columns, chains), then its DOT: the folded
    view, each segment's boxes, initial states and edges, the rows, the note."""
    g = model.graph
    recs = state_chain(g, [rec_info(g, n) for n in need_recurrence(g, "unrolled")])
    segs = segments(g, recs, opts.unroll)
    dot = _new_dot(g, sum(len(s.columns) for s in segs))
    fold = _emit_fold(dot, recs[0])
    for s in segs:
        for c in s.columns:
            _emit_column(dot, s, c)
        _emit_inits(dot, s)
        if s.index == 0:
            dot.edge("unfold", s.chains[(1, False)][0], style="invis", weight=5)
        for j, c in enumerate(s.columns):
            _emit_column_edges(dot, s, j, c)
    for key, ids in rows(segs, fold).items():
        with dot.subgraph(f"row.{key if isinstance(key, str) else f'{key[0]}{key[1]}'}", rank="same"):
            for i in ids:
                dot.node(i)
    dot.set(fontsize=11, labelloc="b", labeljust="c", label=Html(_note(g, recs, [s.steps for s in segs])))
    return dot


def _new_dot(g, n_cols: int) -> Dot:
    big = n_cols > 60
    dot = Dot(g.name, comment=f"archviz unrolled layout of '{g.name}': rankdir=BT, rows x / h (per layer, "
              "direction) / y via rank=same, one group per time step, folded view on the left",
              rankdir="BT", newrank=True, fontname=FONT, nodesep=0.45 if not big else 0.3, ranksep=0.5,
              splines="spline", **({"nslimit": 2, "nslimit1": 2, "mclimit": 0.3, "searchsize": 10} if big else {}))
    dot.attrs("node", fontname=FONT, fontsize=12, shape="box", style="rounded,filled")
    dot.attrs("edge", fontname=FONT, fontsize=10, arrowsize=0.7)
    return dot


def _emit_fold(dot: Dot, r0) -> dict:
    """The folded network left of the unrolled one, with its W_hh self-loop; its boxes by row."""
    dot.node("fold.x", label=Html("x"), fillcolor=X_FILL, group="fold")
    fold_h = "h" + ("" if r0.layers == 1 else f" ×{r0.layers} layers") + (" (both directions)" if r0.bidir else "")
    dot.node("fold.h", label=Html(f"{html_escape(fold_h)}<BR/>{_small(r0.title)}"), fillcolor=H_FILL,
             group="fold")
    dot.edge("fold.x", "fold.h", label=wlabel("xh", 1, 1, False), weight=10)
    dot.edge("fold.h", "fold.h", label=wlabel("hh", 1, 1, False))
    out = {X: ["fold.x"], (1, "f"): ["fold.h"], Y: []}
    if r0.head is not None:
        dot.node("fold.y", label=Html("y"), fillcolor=Y_FILL, group="fold")
        dot.edge("fold.h", "fold.y", label=wlabel("hy", 1, 1, False), weight=10)
        out[Y].append("fold.y")
    dot.node("unfold", label="unfold\n⟹", shape="plaintext", style="", fontcolor="#555555", fontsize=11)
    out[(1, "f")].append("unfold")
    dot.edge("fold.h", "unfold", style="invis", weight=5)
    return out


def _emit_column(dot: Dot, s, c) -> None:
    """The boxes of one column, bottom to top (an elided column: its junctions, then '…')."""
    r, (X_, H_, Y_) = s.rec, SYMBOLS[min(s.index, 1)][:3]
    if c.gap:
        for slot in c.slots:
            if slot.kind == J:
                dot.node(slot.id, shape="point", style="invis", width=0.01, group=c.group)
        for slot in c.slots:
            if slot.kind != J:
                dot.node(slot.id, label="…", shape="plaintext", style="", fontsize=16, group=c.group)
        return
    # bidirectional: each node's out-edges keep their written order (x → h→ before
    # x → h←, h→ → junction before the invisible h→ → h←), so every backward state
    # sits right of its column and every edge passing a row passes it on the same side
    od = {"ordering": "out"} if r.bidir else {}
    lstm = r.kind is Cell.LSTM      # its memory cell c_t beside h_t
    for slot in c.slots:
        if slot.kind == X:
            x_t = c.t - 1 if s.index > 0 else c.t     # a decoder reads the previous target
            dot.node(slot.id, label=Html(sub(X_, x_t)), fillcolor=X_FILL, group=c.group, **od)
            if c.context:   # c_t beside the step's input: the cell reads [x_t; c_t]
                dot.node(c.context, label=Html(sub("c", c.t)), fillcolor=C_FILL)
                dot.edge(slot.id, c.context, style="invis")
        elif slot.kind == H:
            sup = (f"({slot.layer})" if r.layers > 1 else "") + ("←" if slot.back else ("→" if r.bidir else ""))
            lab = stack([sub(H_, c.t, sup), _small(sub('c', c.t, ''), raw=True)], pad=1) if lstm else sub(H_, c.t, sup)
            # backward states sit beside the column, so edges from x_t and to y_t
            # pass them diagonally instead of crossing the forward state
            dot.node(slot.id, label=Html(lab), fillcolor=H_FILL, group=None if slot.back else c.group, **od)
        elif slot.kind == J:
            dot.node(slot.id, shape="point", width=0.07, color="#444444", group=c.group, **od)
        else:
            dot.node(slot.id, label=Html(sub(Y_, c.t)), fillcolor=Y_FILL, group=c.group)


def _emit_inits(dot: Dot, s) -> None:
    """The dashed initial states h_0 (and h_T+1 of a backward chain); a decoder's s_0 made
    from an encoder state (Bahdanau's tanh(W_s ←h_1)) says how, instead of an arrow."""
    H_, lstm = SYMBOLS[min(s.index, 1)][1], s.rec.kind is Cell.LSTM
    for _l, back, nid in s.inits:
        t0 = "T+1" if back else 0
        lab = sub(H_, t0) + (f", {sub('c', t0)}" if lstm else "")
        if s.index > 0 and not back and s.init_from is not None:
            lab += " = " + init_formula(s.init_from)
        dot.node(nid, label=Html(lab), style="rounded,dashed", fillcolor="white")


def _emit_column_edges(dot: Dot, s, j: int, c) -> None:
    """Up the column (W_xh, W_hy, the junctions), the invisible spacers that keep every row
    one rank high, the W_hh chains into and out of the column, the attention's query."""
    r, (_X, _H, _Y, WX, WH, WY) = s.rec, SYMBOLS[min(s.index, 1)]
    linked = set()
    for e in ([] if c.gap else c.vertical(r.layers, s.dirs)):
        lab = None if e.kind == JOIN else (wlabel(WX, e.layer, r.layers, e.back) if e.kind == XH
                                           else wlabel(WY, 1, 1, e.back))
        join = {"arrowhead": "none"} if e.kind == JOIN else {}
        if e.near:
            linked.add((e.a, e.b))
            dot.edge(e.a, e.b, label=lab, weight=10, **join)
        elif lab is None:
            dot.edge(e.a, e.b, weight=1, **join)
        else:
            # an edge that passes a row: a mid-edge label would sit ON that row,
            # beside the row's own W_hh labels; it goes next to the arrowhead instead
            dot.edge(e.a, e.b, headlabel=lab, labeldistance=2, labelangle=-35, weight=1)
    for a, b, w in c.spacers(linked):
        dot.edge(a, b, style="invis", weight=w)
    for l in range(1, r.layers + 1):
        fwd, bwd = s.chains[(l, False)], s.chains.get((l, True))
        if c.gap:
            dot.edge(fwd[j], fwd[j + 1], weight=10)
            if bwd:
                dot.edge(bwd[j], bwd[j + 1], dir="back", weight=10)
        elif bwd:
            # the backward states sit half a column right, so a mid-edge W_hh label
            # would sit on the next column's vertical edge: each label goes beside its
            # own arrowhead (forward: below, left of h_t; backward: above, right of h_t←)
            dot.edge(fwd[j], fwd[j + 1], headlabel=wlabel(WH, l, r.layers, False), labelangle=-30,
                     labeldistance=2.2, weight=10)
            dot.edge(bwd[j], bwd[j + 1], taillabel=wlabel(WH, l, r.layers, True), labelangle=-30,
                     labeldistance=2.2, dir="back", weight=10)
        else:
            dot.edge(fwd[j], fwd[j + 1], label=wlabel(WH, l, r.layers, False), weight=10)
    if c.context:
        # c_t = Σ_j α_tj h_j with α_t scored by the PREVIOUS state: a dashed query from
        # s_{t−1} (s_0 for the first step), then c_t into the step beside x_t
        dot.edge(c.context, s.chains[(1, False)][j + 1], weight=1)
        dot.edge(s.chains[(r.layers, False)][j], c.context, style="dashed", color="gray40", constraint=False)


def _small(text, raw=False):
    body = text if raw else html_escape(text)
    return f'<FONT POINT-SIZE="9" COLOR="#444444">{body}</FONT>'


def _note(g, segs, steps) -> str:
    lines = []
    for si, (r, T) in enumerate(zip(segs, steps)):
        _X, _H, _Y, WX, WH, WY = SYMBOLS[min(si, 1)]
        wx, wh = weight_dims(r)
        names = [f"{sub('W', WX)} ({wx})", f"{sub('W', WH)} ({wh})"]
        if r.head is not None:
            ins = r.head.meta.get("in_shapes") or [()]
            names.append(f"{sub('W', WY)} ({r.head.attrs.get('out')}×{ins[0][-1] if ins[0] else '?'})")
        more = []
        if r.layers > 1:
            more.append(f"each of the {r.layers} layers has its own")
        if r.bidir:
            more.append("each direction has its own")
        who = "Weights " if len(segs) == 1 else ("Encoder weights " if si == 0 else "Decoder weights ")
        lines.append(who + ", ".join(names) + (" (" + "; ".join(more) + ")" if more else "")
                     + f" are shared across all time steps t = 1..{T}")
        desc = (f"'{html_escape(r.id)}': {r.title}, hidden size {r.hidden}, input size {r.features}"
                + (f", {r.layers} layers" if r.layers > 1 else "") + (", bidirectional" if r.bidir else "")
                + f" · {fmt_int(params_of(r.node))} params")
        if r.head is not None:
            desc += (f" · output layer '{html_escape(r.head.id)}' ({fmt_int(params_of(r.head))} params)"
                     + (" at the last step only" if r.head_last else ""))
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#444444">{desc}</FONT>')
        if r.attends:
            X, H = SYMBOLS[min(si, 1)][:2]
            lines.append(f'<FONT POINT-SIZE="9" COLOR="#444444">attention fed back: c<SUB>t</SUB> = '
                         f'Σ<SUB>j</SUB> α<SUB>t,j</SUB> h<SUB>j</SUB> over the annotations of '
                         f"'{html_escape(r.memory_src)}', α<SUB>t</SUB> scored by the previous state "
                         f'{sub(H, "t−1")} (dashed, W<SUB>a</SUB>, U<SUB>a</SUB>, v<SUB>a</SUB>); the cell reads '
                         f'[{sub(X, "t" if si == 0 else "t−1")}; c<SUB>t</SUB>]</FONT>')
    if len(segs) > 1:
        src = init_source(g, segs[0], segs[1])
        how = (f"s<SUB>0</SUB> = {init_formula(src)}, the encoder summary" if src is not None and src.via else
               "the encoder's final state, the context vector, initialises the decoder (s<SUB>0</SUB> from "
               "h<SUB>T</SUB>)" + ("" if any(r.attends for r in segs) else ": all it sees of the source"))
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#444444">{how}; decoder inputs are the previous target '
                     'tokens (teacher forcing)</FONT>')
    return stack(lines)
