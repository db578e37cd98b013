"""The unrolled picture of a recurrent network as a model, built before any DOT is written.

It is a grid.  Each drawn time step is a **column**: its slots from bottom to top are the
input x_t, then per layer the junction where a stacked bidirectional layer reads both
directions below, the forward state and the backward state, and on top the output y_t.
Each slot says what it is (its kind, layer and direction), so it belongs to a named
**row** — ``x``, ``(l, "f")``, ``(l, "b")``, ``(l, "j")``, ``y`` — and the edges between
slots follow from what their ends are:

- ``vertical``: x → h⁽¹⁾ (W_xh), h⁽ˡ⁻¹⁾ or the junction → h⁽ˡ⁾, h⁽ᴸ⁾ → y (W_hy), each
  tagged with its kind and whether its two ends are neighbours in the column;
- ``spacers``: the invisible edges that keep the other neighbours of a column one rank
  apart (light into a backward state, which sits beside its column);
- ``chains``: per layer and direction the states along time, initial state included
  (a decoder's forward chain may start from the encoder's last states instead).

:mod:`recurrent` turns this model into DOT; nothing there reads meaning out of an id.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from archviz.backends.render.seqinfo import default_steps, init_source

GAP = "gap"
FULL_STEPS = 6     # a longer sequence is drawn as steps 1, 2, 3, …, T (unless --unroll asks)

X, H, J, Y = "x", "h", "j", "y"                     # the kinds of a column's slots
XH, HH, HY, JOIN = "xh", "hh", "hy", "join"         # the kinds of its edges


def columns_of(T: int, unroll) -> list:
    """Time steps to draw: all of them up to FULL_STEPS (or when --unroll chose T), else
    the first three, an ellipsis column and the last (labelled with the real T), as the
    seq2seq layout elides a long source."""
    if unroll or T <= FULL_STEPS:
        return list(range(1, T + 1))
    return [1, 2, 3, GAP, T]


@dataclass(frozen=True)
class Slot:
    """One box of a column: what it is decides its row and the edges at it."""
    id: str
    kind: str               # X, H, J or Y
    layer: int = 0
    back: bool = False      # a backward state (drawn right of its column)

    @property
    def row(self):
        if self.kind in (X, Y):
            return self.kind
        return (self.layer, "j" if self.kind == J else ("b" if self.back else "f"))


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    kind: str               # XH, HY or JOIN
    layer: int = 1
    back: bool = False
    near: bool = False      # a and b are neighbours in the column


@dataclass
class Column:
    t: object               # the time step, or GAP for the elided ones
    group: str              # dot's group: keeps the column straight
    slots: list             # bottom to top
    context: str | None = None    # c_t beside x_t (an attention decoder)

    @property
    def gap(self) -> bool:
        return self.t == GAP

    def find(self, kind: str, layer: int = 0, back: bool = False) -> Slot | None:
        return next((s for s in self.slots if (s.kind, s.layer, s.back) == (kind, layer, back)), None)

    def vertical(self, layers: int, dirs: tuple) -> list:
        """The edges up the column, in drawing order: into each state from below (x, the
        junction of a stacked bidirectional layer, or the same direction one layer down),
        both directions into the junction above them, and the top layer into y."""
        below = {}
        for l in range(1, layers + 1):
            for back in dirs:
                src = self.find(X) if l == 1 else (self.find(J, l) or self.find(H, l - 1, back))
                below.setdefault(l, []).append((src, self.find(H, l, back), XH, back))
            if l > 1 and self.find(J, l):
                below[l] += [(self.find(H, l - 1, b), self.find(J, l), JOIN, b) for b in dirs]
        edges = [e for l in below for e in below[l]]
        top = self.find(Y)
        if top is not None:
            edges += [(self.find(H, layers, back), top, HY, back) for back in dirs]
        pos = {s.id: i for i, s in enumerate(self.slots)}
        return [Edge(a.id, b.id, kind, b.layer if kind == XH else 1, back, pos[b.id] - pos[a.id] == 1)
                for a, b, kind, back in edges]

    def spacers(self, linked: set) -> list:
        """(a, b, weight): the neighbours in the column that no drawn edge links."""
        return [(a.id, b.id, 1 if b.back and not self.gap else 10)
                for a, b in zip(self.slots, self.slots[1:]) if (a.id, b.id) not in linked]


@dataclass
class Segment:
    """One recurrence of the picture (an encoder, then its decoder)."""
    index: int
    rec: object             # seqinfo.Rec
    steps: int              # T
    columns: list
    init_from: object = None          # seqinfo.InitFrom: how a decoder's s_0 is made
    handover: dict | None = None      # layer -> the previous segment's last state it starts from
    chains: dict = field(default_factory=dict)   # (layer, back) -> state ids along time
    inits: list = field(default_factory=list)    # [(layer, back, id)] initial states drawn

    @property
    def dirs(self) -> tuple:
        return (False, True) if self.rec.bidir else (False,)

    def last_states(self) -> dict:
        return {l: self.chains[(l, False)][-1] for l in range(1, self.rec.layers + 1)}


def _ids(si: int):
    def node(kind, t, layer=0, back=False):
        if kind == H:
            return f"s{si}.h{layer}{'b' if back else 'f'}.{t}"
        return f"s{si}.j{layer}.{t}" if kind == J else f"s{si}.{kind}.{t}"
    return node


def _column(si: int, r, T: int, t) -> Column:
    node = _ids(si)
    dirs = (False, True) if r.bidir else (False,)
    slots = [Slot(node(X, t), X)]
    for l in range(1, r.layers + 1):
        if r.bidir and l > 1:
            slots.append(Slot(node(J, t, l), J, l))
        slots += [Slot(node(H, t, l, b), H, l, b) for b in dirs]
    if r.head is not None and (t == T or not r.head_last):
        slots.append(Slot(node(Y, t), Y))
    ctx = node("c", t) if r.attends and t != GAP else None
    return Column(t, f"c{si}.{t}", slots, ctx)


def segment(si: int, r, T: int, unroll, init_from, before: Segment | None) -> Segment:
    """The columns of one recurrence, its chains along time and the initial states it draws.
    A decoder whose s_0 is handed over as it is (no `via`) continues the encoder's chains."""
    node = _ids(si)
    seg = Segment(si, r, T, [_column(si, r, T, t) for t in columns_of(T, unroll)], init_from)
    if before is not None and init_from is not None and not init_from.via:
        seg.handover = before.last_states()
    top = max(seg.handover) if seg.handover else 0
    for l in range(1, r.layers + 1):
        states = [c.find(H, l).id for c in seg.columns]
        start = seg.handover.get(l, seg.handover[top]) if seg.handover else node(H, 0, l)
        seg.chains[(l, False)] = [start] + states
        if not seg.handover:
            seg.inits.append((l, False, start))
        if r.bidir:
            end = node(H, T + 1, l, True)
            seg.chains[(l, True)] = [c.find(H, l, True).id for c in seg.columns] + [end]
            seg.inits.append((l, True, end))
    return seg


def segments(graph, recs: list, unroll) -> list:
    """The segments of the picture, one per recurrence of the state chain (an encoder,
    then the decoder its final state starts), each with its T (--unroll overrides)."""
    steps = [default_steps(graph, recs[0], unroll)] + [unroll or r.steps for r in recs[1:]]
    segs: list = []
    for si, (r, T) in enumerate(zip(recs, steps)):
        init_from = init_source(graph, recs[si - 1], r) if si > 0 else None
        segs.append(segment(si, r, T, unroll, init_from, segs[-1] if segs else None))
    return segs


def rows(segs: list, fold: dict) -> dict:
    """The named rows (rank=same), each its ids in drawing order: the folded view's boxes
    (`fold`: row -> ids), then every segment's column slots, a context beside its input,
    and the initial states (the first segment's forward ones lead their rows)."""
    layers = max(s.rec.layers for s in segs)
    bidir = [l for l in range(1, layers + 1) if any(s.rec.bidir and l <= s.rec.layers for s in segs)]
    out: dict = {X: [], Y: []}
    for l in range(1, layers + 1):
        out[(l, "f")] = []
        if l in bidir:
            out[(l, "b")] = []
    for l in bidir:
        if l > 1:       # a stacked bidirectional layer reads both directions below here
            out[(l, "j")] = []
    for k, ids in fold.items():
        out[k] += ids
    for s in segs:
        for c in s.columns:
            for slot in c.slots:
                out[slot.row].append(slot.id)
                if slot.kind == X and c.context:
                    out[X].append(c.context)
        for l, back, nid in s.inits:
            key = (l, "b" if back else "f")
            out[key].insert(0 if not back and s.index == 0 else len(out[key]), nid)
    return out
