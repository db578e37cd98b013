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
from archviz.backends.render.seqinfo import (default_steps, init_formula, init_source, rec_info, recurrent_nodes,
                                             state_chain)
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
    g = model.graph
    recs = [rec_info(g, n) for n in need_recurrence(g, "unrolled")]
    segs = state_chain(g, recs)
    steps = [default_steps(g, segs[0], opts.unroll)] + [opts.unroll or s.steps for s in segs[1:]]
    cols = [_columns(T, opts.unroll) for T in steps]
    n_cols = sum(len(c) for c in cols)
    big = n_cols > 60
    dot = Dot(g.name, comment=f"archviz unrolled layout of '{g.name}': rankdir=BT, rows x / h (per layer, "
              "direction) / y via rank=same, one group per time step, folded view on the left",
              rankdir="BT", newrank=True, fontname=FONT, nodesep=0.45 if not big else 0.3, ranksep=0.5,
              splines="spline", **({"nslimit": 2, "nslimit1": 2, "mclimit": 0.3, "searchsize": 10} if big else {}))
    dot.attrs("node", fontname=FONT, fontsize=12, shape="box", style="rounded,filled")
    dot.attrs("edge", fontname=FONT, fontsize=10, arrowsize=0.7)

    rows: dict = {"x": [], "y": []}
    layers = max(s.layers for s in segs)
    row_keys = [(l, d) for l in range(1, layers + 1) for d in ("f", "b")
                if d == "f" or any(s.bidir and l <= s.layers for s in segs)]
    for k in row_keys:
        rows[k] = []
    # a stacked bidirectional layer reads [h→; h←] of the layer below: one junction point
    # per step between the layers (instead of four crossing edges, one of which dot routed
    # around the last column's initial state)
    for l in range(2, layers + 1):
        if any(s.bidir and l <= s.layers for s in segs):
            rows[(l, "j")] = []

    # -- the folded view ------------------------------------------------------------
    r0 = segs[0]
    lstm_state = r0.kind is Cell.LSTM
    dot.node("fold.x", label=Html("x"), fillcolor=X_FILL, group="fold")
    fold_h = "h" + ("" if r0.layers == 1 else f" ×{r0.layers} layers") + (" (both directions)" if r0.bidir else "")
    dot.node("fold.h", label=Html(f"{html_escape(fold_h)}<BR/>{_small(r0.title)}"), fillcolor=H_FILL,
             group="fold")
    dot.edge("fold.x", "fold.h", label=wlabel("xh", 1, 1, False), weight=10)
    dot.edge("fold.h", "fold.h", label=wlabel("hh", 1, 1, False))
    rows["x"].append("fold.x")
    rows[(1, "f")].append("fold.h")
    if r0.head is not None:
        dot.node("fold.y", label=Html("y"), fillcolor=Y_FILL, group="fold")
        dot.edge("fold.h", "fold.y", label=wlabel("hy", 1, 1, False), weight=10)
        rows["y"].append("fold.y")
    dot.node("unfold", label="unfold\n⟹", shape="plaintext", style="", fontcolor="#555555", fontsize=11)
    rows[(1, "f")].append("unfold")
    dot.edge("fold.h", "unfold", style="invis", weight=5)

    def sid(si, l, d, t):
        return f"s{si}.h{l}{d}.{t}"

    def jid(si, l, t):
        return f"s{si}.j{l}.{t}"

    prev_last = None
    for si, (r, T) in enumerate(zip(segs, steps)):
        X, H, Y, WX, WH, WY = SYMBOLS[min(si, 1)]
        dirs = ("f", "b") if r.bidir else ("f",)
        ts = cols[si]
        init_from = init_source(g, segs[si - 1], r) if si > 0 else None
        if si > 0 and (init_from is None or init_from.via):
            # s_0 computed from an encoder state (Bahdanau's tanh(W_s ←h_1)), not handed over
            # as it is: its own dashed box says how, instead of an arrow from h_T
            prev_last = None
        for t in ts:
            grp = f"c{si}.{t}"
            if t == GAP:    # the elided steps: one column of '…'
                ids = [f"s{si}.x.{t}"] + [sid(si, l, d, t) for l in range(1, r.layers + 1) for d in dirs]
                keys = ["x"] + [(l, d) for l in range(1, r.layers + 1) for d in dirs]
                if r.bidir:
                    for l in range(2, r.layers + 1):
                        dot.node(jid(si, l, t), shape="point", style="invis", width=0.01, group=grp)
                        rows[(l, "j")].append(jid(si, l, t))
                if r.head is not None and not r.head_last:
                    ids.append(f"s{si}.y.{t}")
                    keys.append("y")
                for i, k in zip(ids, keys):
                    dot.node(i, label="…", shape="plaintext", style="", fontsize=16, group=grp)
                    rows[k].append(i)
                continue
            xt = t - 1 if si > 0 else t
            # bidirectional: each node's out-edges keep their written order (x → h→ before
            # x → h←, h→ → junction before the invisible h→ → h←), so every backward state
            # sits right of its column and every edge passing a row passes it on the same side
            od = {"ordering": "out"} if r.bidir else {}
            dot.node(f"s{si}.x.{t}", label=Html(sub(X, _tt(xt, si))), fillcolor=X_FILL, group=grp, **od)
            rows["x"].append(f"s{si}.x.{t}")
            if r.attends:   # c_t beside the step's input: the cell reads [x_t; c_t]
                dot.node(f"s{si}.c.{t}", label=Html(sub("c", t)), fillcolor=C_FILL)
                rows["x"].append(f"s{si}.c.{t}")
                dot.edge(f"s{si}.x.{t}", f"s{si}.c.{t}", style="invis")
            for l in range(1, r.layers + 1):
                for d in dirs:
                    sup = (f"({l})" if r.layers > 1 else "") + ("←" if d == "b" else ("→" if r.bidir else ""))
                    lab = (stack([sub(H, t, sup), _small(sub('c', t, ''), raw=True)], pad=1) if lstm_state
                           else sub(H, t, sup))
                    # backward states sit beside the column, so edges from x_t and to y_t
                    # pass them diagonally instead of crossing the forward state
                    dot.node(sid(si, l, d, t), label=Html(lab), fillcolor=H_FILL, group=grp if d == "f" else None,
                             **od)
                    rows[(l, d)].append(sid(si, l, d, t))
                if r.bidir and l < r.layers:
                    dot.node(jid(si, l + 1, t), shape="point", width=0.07, color="#444444", group=grp, **od)
                    rows[(l + 1, "j")].append(jid(si, l + 1, t))
            if r.head is not None and (t == T or not r.head_last):
                dot.node(f"s{si}.y.{t}", label=Html(sub(Y, t)), fillcolor=Y_FILL, group=grp)
                rows["y"].append(f"s{si}.y.{t}")
        # initial states
        for l in range(1, r.layers + 1):
            for d in dirs:
                init = sid(si, l, d, 0 if d == "f" else T + 1)
                if d == "f" and si > 0 and prev_last is not None:
                    continue
                t0 = 0 if d == "f" else "T+1"
                lab = sub(H, t0) + (f", {sub('c', t0)}" if lstm_state else "")
                if si > 0 and d == "f" and init_from is not None:
                    lab += " = " + init_formula(init_from)
                dot.node(init, label=Html(lab), style="rounded,dashed", fillcolor="white")
                rows[(l, d)].insert(0 if d == "f" and si == 0 else len(rows[(l, d)]), init)
        if si == 0:
            dot.edge("unfold", sid(0, 1, "f", 0), style="invis", weight=5)
        # edges: the column of step t is x, then each layer's forward (and backward) state,
        # then y; an edge that skips a row (x → h← past h→) does not rank, invisible edges
        # between neighbours in the column do, so every row stays one rank high
        for j, t in enumerate(ts):
            t_prev = ts[j - 1] if j > 0 else 0
            t_next = ts[j + 1] if j + 1 < len(ts) else T + 1
            col = [f"s{si}.x.{t}"]
            for l in range(1, r.layers + 1):
                col += ([jid(si, l, t)] if r.bidir and l > 1 else []) + [sid(si, l, d, t) for d in dirs]
            has_y = r.head is not None and (t == T or not r.head_last)
            if has_y:
                col.append(f"s{si}.y.{t}")
            if t == GAP:
                for a, b in zip(col, col[1:]):
                    dot.edge(a, b, style="invis", weight=10)
                for l in range(1, r.layers + 1):
                    dot.edge(sid(si, l, "f", t_prev), sid(si, l, "f", t), weight=10)
                    if r.bidir:
                        dot.edge(sid(si, l, "b", t), sid(si, l, "b", t_next), dir="back", weight=10)
                continue
            pos = {c: i for i, c in enumerate(col)}
            vertical = []
            for l in range(1, r.layers + 1):
                for d in dirs:
                    back = d == "b"
                    if l == 1:
                        vertical.append((col[0], sid(si, l, d, t), wlabel(WX, l, r.layers, back), True))
                    elif r.bidir:
                        vertical.append((jid(si, l, t), sid(si, l, d, t), wlabel(WX, l, r.layers, back), True))
                    else:
                        vertical.append((sid(si, l - 1, d, t), sid(si, l, d, t), wlabel(WX, l, r.layers, back), True))
                if r.bidir and l > 1:
                    for d2 in dirs:     # both directions of the layer below meet at the junction
                        vertical.append((sid(si, l - 1, d2, t), jid(si, l, t), None, "join"))
            if has_y:
                for d in dirs:
                    vertical.append((sid(si, r.layers, d, t), col[-1], wlabel(WY, 1, 1, d == "b"), True))
            linked = set()
            for a, b, lab, straight in vertical:
                near = pos[b] - pos[a] == 1
                if near:
                    linked.add((a, b))
                join = {"arrowhead": "none"} if straight == "join" else {}
                if near:
                    dot.edge(a, b, label=lab, weight=10, **join)
                elif lab is None:
                    dot.edge(a, b, weight=1, **join)
                else:
                    # an edge that passes a row: a mid-edge label would sit ON that row,
                    # beside the row's own W_hh labels; it goes next to the arrowhead instead
                    dot.edge(a, b, headlabel=lab, labeldistance=2, labelangle=-35, weight=1)
            for a, b in zip(col, col[1:]):
                if (a, b) not in linked:
                    dot.edge(a, b, style="invis", weight=1 if b.startswith(f"s{si}.h") and ".h" in b and "b." in b
                             else 10)
            for l in range(1, r.layers + 1):
                src = sid(si, l, "f", t_prev)
                if j == 0 and si > 0 and prev_last is not None:
                    src = prev_last.get(l, prev_last[max(prev_last)])
                if r.bidir:
                    # the backward states sit half a column right, so a mid-edge W_hh label
                    # would sit on the next column's vertical edge: each label goes beside its
                    # own arrowhead (forward: below, left of h_t; backward: above, right of h_t←)
                    dot.edge(src, sid(si, l, "f", t), headlabel=wlabel(WH, l, r.layers, False), labelangle=-30,
                             labeldistance=2.2, weight=10)
                    dot.edge(sid(si, l, "b", t), sid(si, l, "b", t_next), taillabel=wlabel(WH, l, r.layers, True),
                             labelangle=-30, labeldistance=2.2, dir="back", weight=10)
                else:
                    dot.edge(src, sid(si, l, "f", t), label=wlabel(WH, l, r.layers, False), weight=10)
            if r.attends:
                # c_t = Σ_j α_tj h_j with α_t scored by the PREVIOUS state: a dashed query from
                # s_{t−1} (s_0 for the first step), then c_t into the step beside x_t
                dot.edge(f"s{si}.c.{t}", sid(si, 1, "f", t), weight=1)
                q = sid(si, r.layers, "f", t_prev)
                if j == 0 and prev_last is not None:
                    q = prev_last.get(r.layers, prev_last[max(prev_last)])
                dot.edge(q, f"s{si}.c.{t}", style="dashed", color="gray40", constraint=False)
        prev_last = {l: sid(si, l, "f", T) for l in range(1, r.layers + 1)}

    for key, ids in rows.items():
        with dot.subgraph(f"row.{key if isinstance(key, str) else f'{key[0]}{key[1]}'}", rank="same"):
            for i in ids:
                dot.node(i)
    dot.set(fontsize=11, labelloc="b", labeljust="c", label=Html(_note(g, segs, steps)))
    return dot


GAP = "gap"
FULL_STEPS = 6     # a longer sequence is drawn as steps 1, 2, 3, …, T (unless --unroll asks)


def _columns(T: int, unroll) -> list:
    """Time steps to draw: all of them up to FULL_STEPS (or when --unroll chose T), else
    the first three, an ellipsis column and the last (labelled with the real T), as the
    seq2seq layout elides a long source."""
    if unroll or T <= FULL_STEPS:
        return list(range(1, T + 1))
    return [1, 2, 3, GAP, T]


def _tt(t, si):
    return t if si == 0 else (f"{t}" if t > 0 else "0")


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
