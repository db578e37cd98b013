"""Residual networks as in He et al. (2016), Fig. 2 and 3: the main path in one straight
column, every skip connection a bypass arc beside it (from a fork point to the '+'), a
projection shortcut drawn as a box on its arc.

Layers are fused as in the paper's figures (conv · BN · ReLU in one box).  Consecutive
identical blocks are drawn once, in a bracket marked ×N (``[3×3, 64; 3×3, 64] ×2``);
``--expand`` draws every copy.  Keeping the column straight: every main-path node is in
``group=main`` and main edges have weight 10; skip edges leave and enter through east
ports with weight 0, so dot routes them beside the column.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from archviz.backends.render.clusters import cluster_tree, emit_tree
from archviz.backends.render.common import FONT, dims, is_layer, key_attrs, merge_kind, role_of, small, textbook
from archviz.backends.render.dot import Dot, Html, html_escape
from archviz.backends.render.view import build_view, draw_ties, graph_outputs, fuse
from archviz.ops import registry
from archviz.ops.describe import Merge, Role

MAIN_FILL, ACT_FILL, PROJ_FILL, POOL_FILL, OTHER_FILL = "#e8eef7", "#fde9c8", "#f4cccc", "#e2f0d9", "#f3f3f3"
SKIP = "#c00000"
MAX_WALK = 500


def _branch(view, start):
    """Walk back from an input of a merge to the fork it comes from.
    Returns (fork, chain of units strictly between fork and merge) or (None, chain)."""
    chain, cur = [], start
    for _ in range(MAX_WALK):
        if len(view.succs(cur)) > 1:
            return cur, chain
        chain.append(cur)
        ps = view.preds(cur)
        if len(ps) != 1:
            return None, chain
        cur = ps[0]
    return None, chain


def residual_structure(view):
    """{add unit: (fork unit, main chain, [skip chains])} for every add whose inputs come
    from one fork, the longest branch being the main path."""
    out = {}
    for key, u in view.units.items():
        if u.kind != "node" or merge_kind(view.op(key)) is not Merge.SUM:
            continue
        ins = view.ordered_inputs(key)
        if len(ins) < 2:
            continue
        walked = [_branch(view, i) for i in ins]
        forks = {f for f, _ in walked}
        if None in forks or len(forks) != 1:
            continue
        chains = [c for _, c in walked]
        main_i = max(range(len(chains)), key=lambda i: (len(chains[i]), -i))
        out[key] = (walked[0][0], chains[main_i], [c for i, c in enumerate(chains) if i != main_i])
    return out


def has_residual(graph) -> bool:
    return bool(residual_structure(build_view(graph, "expand")))


def _label(view, key, shapes) -> Html:
    g = view.graph
    u = view.units[key]
    n = g.nodes[u.head]
    if u.kind != "node":
        title = f"<B>{html_escape(key)}</B> {html_escape(u.block)} ×{u.count}" if u.kind == "repeat" else \
            f"<B>{html_escape(key)}</B> {html_escape(u.block)}"
        rows = [title]
    else:
        attrs = key_attrs(n.op, n.attrs)
        times = f" ×{u.count}" if u.count > 1 else ""
        rows = [html_escape(textbook(n.op) + (" " + attrs if attrs else "") + times)]
    sub = [textbook(g.nodes[f].op) for f in u.fused_heads]
    if shapes and view.shape(key) is not None:
        sub.append(dims(view.shape(key)))
    if sub:
        rows.append(small(" · ".join(sub)))
    return Html("<BR/>".join(rows))


MAIN, IDENTITY, INTO_SKIP, OUT_OF_SKIP, SKIP_PATH = "main", "identity", "into_skip", "out_of_skip", "skip_path"


@dataclass
class Bypasses:
    """The picture's model: every '+' with its fork, main chain and skip chains
    (:func:`residual_structure`), the units drawn on a skip arc (a projection), and the fork
    points, each living with the first '+' it forks into."""
    res: dict
    skip_units: set = field(default_factory=set)
    forks: dict = field(default_factory=dict)       # fork unit -> the '+' it lives with

    @classmethod
    def of(cls, view) -> "Bypasses":
        res = residual_structure(view)
        b = cls(res, {k for _, _, skips in res.values() for c in skips for k in c})
        for a, (f, _, _) in res.items():
            b.forks.setdefault(f, a)
        return b

    def point(self, unit: str) -> str:
        """Where an edge out of `unit` starts: its fork point when it forks."""
        return unit + "#fork" if unit in self.forks else unit

    def kind(self, a: str, b: str) -> str:
        """What the view's edge a → b is in the picture."""
        if b in self.res and a == self.res[b][0] and any(not c for c in self.res[b][2]):
            return IDENTITY                 # the fork straight into its '+'
        if b in self.skip_units and a in self.forks:
            return INTO_SKIP                # the fork into a projection
        if a in self.skip_units and b in self.res:
            return OUT_OF_SKIP              # a projection into its '+'
        if a in self.skip_units or b in self.skip_units:
            return SKIP_PATH
        return MAIN


def build(model, opts) -> Dot:
    """The bypasses first (forks, '+', projections), then the DOT: the units in their
    clusters, the edges by kind, the graph's outputs."""
    g = model.graph
    mode = "runs" if opts.view_mode == "collapse" else opts.view_mode
    view = fuse(build_view(g, mode, opts.depth), is_layer)
    bp = Bypasses.of(view)
    rankdir = opts.rankdir or "TB"
    dot = _new_dot(g, rankdir, big=len(view.units) > 250)
    items = [(view.units[k].clusters, ("unit", k)) for k in view.units]
    items += [(view.units[a].clusters, ("fork", f)) for f, a in bp.forks.items()]
    index = {k: i for i, k in enumerate(view.units)}
    items.sort(key=lambda t: (index[t[1][1]], t[1][0] == "fork"))
    emit_tree(dot, cluster_tree(items), lambda item: _emit_item(dot, view, bp, opts.shapes, item),
              lambda c: _cluster_attrs(view, c))
    _emit_edges(dot, view, bp, "e" if rankdir == "TB" else "n")
    for name, ref, src, oid, shp in graph_outputs(view):
        dot.node(oid, label=name + (f"  {dims(shp)}" if opts.shapes and shp else ""), shape="plaintext",
                 style="", group="main")
        dot.edge(bp.point(src), oid, weight=10)
    return dot


def _new_dot(g, rankdir: str, big: bool) -> Dot:
    dot = Dot(g.name, comment=f"archviz residual layout of '{g.name}': main column (group=main, weight=10), "
              "bypass arcs through east ports (weight=0)",
              rankdir=rankdir, fontname=FONT, nodesep=0.35, ranksep=0.22, splines="spline", newrank=True,
              **({"nslimit": 2, "nslimit1": 2, "mclimit": 0.5, "searchsize": 10} if big else {}))
    dot.attrs("node", shape="box", style="rounded,filled", fillcolor=MAIN_FILL, fontname=FONT, fontsize=10,
              height=0.35, width=1.9, margin="0.1,0.04")
    dot.attrs("edge", arrowsize=0.6, fontname=FONT, fontsize=9)
    return dot


def _emit_item(dot: Dot, view, bp: Bypasses, shapes: bool, item) -> None:
    """A fork point, or a unit's box by what it is: an input, a '+', a projection on a skip
    arc, a main-path box (fused layer, activation, pool, other; a block drawn double)."""
    kind, key = item
    if kind == "fork":
        dot.node(bp.point(key), label="", shape="point", width=0.05, group="main", style="")
        return
    u = view.units[key]
    op = view.op(key)
    grp = None if key in bp.skip_units else "main"
    if role_of(op) is Role.INPUT:
        shp = view.shape(key)
        dot.node(key, label=key + (f"  {dims(shp)}" if shapes and shp else ""), shape="plaintext",
                 style="", group=grp)
    elif u.kind == "node" and merge_kind(op) is Merge.SUM:
        dot.node(key, label="+", shape="circle", fixedsize=True, width=0.28, fillcolor="white", fontsize=12,
                 group=grp)
    elif key in bp.skip_units:
        dot.node(key, label=_label(view, key, shapes), fillcolor=PROJ_FILL, width=1.2)
    else:
        fill = MAIN_FILL
        if u.kind == "node" and not is_layer(op):
            narrow = role_of(op) is Role.ACTIVATION and not registry[op].passthrough
            fill = ACT_FILL if not u.fused and narrow else POOL_FILL if role_of(op) is Role.POOL else OTHER_FILL
        dot.node(key, label=_label(view, key, shapes), fillcolor=fill, group=grp,
                 width=1.0 if fill == ACT_FILL else None, peripheries=2 if u.kind != "node" else None)


def _cluster_attrs(view, c) -> dict:
    info = view.containers[c]
    if info.kind == "run":
        lab = f"{info.label}: {info.block} ×{info.count}" if info.count > 1 else f"{info.label}: {info.block}"
        return dict(label=lab, labeljust="r", labelloc="b", style="rounded,dashed", color="#7a5fa8",
                    fontcolor="#7a5fa8", fontname=FONT, fontsize=10, penwidth=1.2)
    if info.kind == "repeat":
        return dict(label=f"{c}: {info.block} ×{info.count}", labeljust="r", style="rounded,dashed",
                    color="#7a5fa8", fontcolor="#7a5fa8", fontname=FONT, fontsize=10)
    return dict(label=f"{c}: {info.block}", labeljust="r", style="rounded", color="#bbbbbb",
                fontcolor="#666666", fontname=FONT, fontsize=10)


def _emit_edges(dot: Dot, view, bp: Bypasses, port: str) -> None:
    """The view's edges by kind: the main column straight and heavy, the skip arcs red
    through the side ports, weightless where they bypass; the fork points on the column."""
    for a, b, lab in view.edges:
        kind = bp.kind(a, b)
        if kind == IDENTITY:
            dot.edge((bp.point(a), None, port), (b, None, port), color=SKIP, weight=0, penwidth=1.2)
        elif kind == INTO_SKIP:
            dot.edge((bp.point(a), None, port), b, color=SKIP, penwidth=1.2)
        elif kind == OUT_OF_SKIP:
            dot.edge(a, (b, None, port), color=SKIP, penwidth=1.2)
        elif kind == SKIP_PATH:
            dot.edge(a, b, color=SKIP, penwidth=1.2)
        else:
            dot.edge(bp.point(a), b, weight=10, label=lab or None)
    for f in bp.forks:
        dot.edge(f, bp.point(f), arrowhead="none", weight=10)
    draw_ties(dot, view)
