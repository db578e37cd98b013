"""U-Net as the U of Ronneberger et al. (2015), Fig. 1.

One row (``rank=same``) per resolution level; the contracting path runs left to right
and steps down a row at each pooling, the expansive path comes back up on the right;
copy-and-crop arrows are flat edges inside a row.  Every feature map is a box with its
channels above and its spatial size below, its width growing with log2(channels) and its
height with the spatial size; a concatenation is one box with one cell per input (the
copied half white).  Vertical arrows are kept straight by ``group`` (pool source and
target, up-conv source and target); a legend names the arrow kinds.

With ``--depth D`` each block is one box (one node per level) and the vertical arrows
leave and enter through corner ports (se → nw going down, sw → ne coming up), which is
what makes dot shift every level inwards into a U.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import log2

from archviz.backends.render.common import (FONT, dims, goes_down, goes_up, is_crop, is_layer, key_attrs,
                                            merge_kind, out_shape, resample, role_of, spatial, textbook)
from archviz.backends.render.dot import Dot, Html, html_escape
from archviz.backends.render.levels import node_levels
from archviz.backends.render.view import build_view, fuse
from archviz.codes import E
from archviz.errors import UnsupportedError
from archviz.ops.describe import Merge, Role

COLORS = {"conv": "#1f4e79", "conv1x1": "#00838f", "down": "#c00000", "up": "#2e7d32", "skip": "#7f7f7f",
          "other": "#444444"}
ARROW = {"down": "&#x2193;", "up": "&#x2191;"}
MAP_FILL, COPY_FILL, IN_FILL = "#9cc3e6", "#ffffff", "#ffffff"


def _width(ch) -> int:
    return int(round(6 + 3 * log2(max(ch, 1))))


class _Maps:
    def __init__(self, model, opts):
        g = model.graph
        self.g = g
        self.units_mode = opts.depth is not None
        v = build_view(g, "depth" if self.units_mode else "expand", opts.depth, split_repeats=True)
        self.v = fuse(v, is_layer)
        lv, dec = node_levels(g)
        # a block is drawn at the level of its highest-resolution output (a 'down' block
        # that returns its pooled map and its skip sits on the skip's row)
        self.disp = {}
        for k, u in self.v.units.items():
            best = min(u.outputs, key=lambda n: (lv[n], -u.members.index(n) if n in u.members else 0))
            self.disp[k] = best
        self.level = {k: lv[self.disp[k]] for k in self.v.units}
        self.dec = {k: dec[self.disp[k]] for k in self.v.units}
        if max(self.level.values(), default=0) < 1:
            raise UnsupportedError(f"'{g.name}' has no resolution levels (no pooling or strided step), "
                                   "so it cannot be drawn as a U", hint="use --layout graph", code=E.LAYOUT_MISMATCH)
        self.shift = -min(self.level.values())
        self.cells: dict = {}       # concat unit -> [(port, input unit, kind)]
        self.absorbed: set = set()
        self.into_cell: dict = {}   # (src unit, concat unit) -> (port, kind, label)
        self._absorb()
        sizes = [self._size(k) for k in self.v.units]
        self.max_size = max([s for s in sizes if s] or [1])

    def shape(self, k):
        return out_shape(self.g.nodes[self.disp[k]])

    def is_block(self, k) -> bool:
        return self.v.units[k].kind != "node"

    def op(self, k):
        return self.v.op(k)

    def _size(self, k):
        s = self.shape(k)
        return max(s[2:]) if s is not None and len(s) >= 3 else None

    def _channels(self, k):
        s = self.shape(k)
        return s[1] if s is not None and len(s) >= 2 else None

    def _absorb(self):
        v = self.v
        for c in v.units:
            if v.units[c].kind != "node" or merge_kind(self.op(c)) is not Merge.CONCAT:
                continue
            cells = []
            for i, src in enumerate(v.ordered_inputs(c)):
                port = f"c{i}"
                op = self.op(src)
                succs = set(v.succs(src))
                crops = {s for s in succs if s != c and is_crop(self.op(s)) and set(v.succs(s)) == {c}}
                if is_crop(op) and succs == {c}:
                    data = v.unit_of[v.node(src).inputs[0].node]
                    cells.append((port, src, "copy"))
                    self.absorbed.add(src)
                    self.into_cell[(data, c)] = (port, "skip", "copy and crop")
                elif v.units[src].kind == "node" and goes_up(v.node(src)) and succs <= {c} | crops:
                    data = v.unit_of[v.node(src).inputs[0].node]
                    cells.append((port, src, "map"))
                    self.absorbed.add(src)
                    self.into_cell[(data, c)] = (port, "up", self.edge_label(src))
                else:
                    skip = not self.dec[src] and self.dec[c]
                    cells.append((port, src, "copy" if skip else "map"))
                    self.into_cell[(src, c)] = (port, "skip" if skip else None, "copy" if skip else None)
            self.cells[c] = cells

    def edge_label(self, k) -> str:
        u = self.v.units[k]
        if u.kind != "node":
            return f"{u.block} block" if u.block else k
        n = self.v.node(k)
        if role_of(n.op) is Role.WEIGHT and goes_up(n):
            return f"{textbook(n.op)} {key_attrs(n.op, {'kernel': n.attrs.get('kernel')})}"
        if self.is_conv(n):
            ks = key_attrs(n.op, {kk: n.attrs.get(kk) for kk in ("kernel", "stride") if kk in n.attrs})
            return textbook(n.op) + " " + ks + "".join(", " + textbook(self.g.nodes[f].op) for f in u.fused_heads)
        base = textbook(n.op) + (" " + key_attrs(n.op, {kk: vv for kk, vv in n.attrs.items() if kk != "out"})
                                 if merge_kind(n.op) is not Merge.CONCAT else "")
        return base.strip().rstrip(",")

    def step_label(self, a, b, kind) -> str:
        """Name an arrow after the layer that does the step: for a level change, the
        pooling / strided / up-sampling layer inside either block, else the target."""
        if kind in ("down", "up") and (self.is_block(a) or self.is_block(b)):
            want = goes_up if kind == "up" else (lambda n: role_of(n.op) is Role.POOL or goes_down(n))
            for k in (b, a):
                for nid in self.v.units[k].members:
                    n = self.g.nodes[nid]
                    if want(n):
                        keep = ("kernel", "scale", "size", "mode") if kind == "up" else ("kernel", "stride")
                        return (textbook(n.op) + " " + key_attrs(n.op, {kk: vv for kk, vv in n.attrs.items()
                                                                       if kk in keep})).strip()
        return self.edge_label(b)

    @staticmethod
    def is_conv(n) -> bool:
        """A convolution that does not go up (a learned layer with a spatial window)."""
        return role_of(n.op) is Role.WEIGHT and resample(n) is not None and not goes_up(n)

    def kind_of(self, a, b) -> str:
        la, lb = self.level[a], self.level[b]
        if lb > la:
            return "down"
        if lb < la:
            return "up"
        if not self.dec[a] and self.dec[b]:
            return "skip"
        if self.v.units[b].kind == "node" and self.is_conv(self.v.node(b)):
            k = self.v.node(b).attrs.get("kernel")
            return "conv1x1" if k in (1, (1,), (1, 1)) else "conv"
        return "conv" if self.v.units[b].kind != "node" else "other"

    # -- boxes ---------------------------------------------------------------------
    def _height(self, size) -> int:
        if not size:
            return 24
        return int(round(16 + 72 * size / self.max_size))

    def box(self, k) -> Html:
        op = self.op(k)
        shp = self.shape(k)
        h = self._height(self._size(k))
        top = '<TR><TD><FONT POINT-SIZE="9">{}</FONT></TD></TR>'
        tab = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        name = ""
        if self.units_mode:
            name = f'<TR><TD><FONT POINT-SIZE="9"><B>{html_escape(k)}</B></FONT></TD></TR>'
        if k in self.cells:
            cells = self.cells[k]
            heads = "".join(f'<TD><FONT POINT-SIZE="9">{self._channels(s) or ""}</FONT></TD>' for _, s, _ in cells)
            boxes = "".join(
                f'<TD PORT="{p}" BORDER="1" BGCOLOR="{COPY_FILL if kind == "copy" else MAP_FILL}" '
                f'WIDTH="{_width(self._channels(s) or 1)}" HEIGHT="{h}" FIXEDSIZE="TRUE"></TD>'
                for p, s, kind in cells)
            foot = (f'<TD><FONT POINT-SIZE="8">{html_escape(spatial(shp))}</FONT></TD>'
                    + "<TD></TD>" * (len(cells) - 1))
            return Html(f"{tab}<TR>{heads}</TR><TR>{boxes}</TR><TR>{foot}</TR></TABLE>")
        ch = self._channels(k)
        fill = IN_FILL if role_of(op) is Role.INPUT else MAP_FILL
        sub = spatial(shp) if shp is not None and len(shp) >= 3 else (dims(shp, batch=False) if shp else "")
        return Html(f"{tab}{name}{top.format(ch if ch is not None else '')}"
                    f'<TR><TD PORT="m" BORDER="1" BGCOLOR="{fill}" WIDTH="{_width(ch or 1)}" HEIGHT="{h}" '
                    f'FIXEDSIZE="TRUE"></TD></TR>'
                    f'<TR><TD><FONT POINT-SIZE="8">{html_escape(sub)}</FONT></TD></TR></TABLE>')


@dataclass(frozen=True)
class Arrow:
    """One arrow of the U: from unit a into unit b (at `port`, a concat's cell or the map
    'm'), its kind (down, up, skip, conv, conv1x1, other) and the label the legend shows."""
    a: str
    b: str
    port: str
    kind: str
    label: str


def _arrows(m: _Maps) -> list:
    """The arrows between drawn units, in the order of their targets then sources: the
    view's edges (into a concat's cell where it has one) and the arrows into cells from the
    sources of the units a cell absorbed (an up-conv from below, a copy from the left)."""
    v, g = m.v, m.g
    out = []
    for a, b, _lab in v.edges:
        if b in m.absorbed or a in m.absorbed:
            continue
        cell = m.into_cell.get((a, b))
        kind = m.kind_of(a, b)
        label = m.step_label(a, b, kind)
        port_b = "m"
        if cell is not None:
            port_b = cell[0]
            kind = cell[1] or kind
            label = cell[2] or label
        if kind == "skip" and cell is None:
            crop = any(is_crop(g.nodes[x].op) for x in v.units[b].members)
            label = "copy and crop" if crop else "copy"
        out.append(Arrow(a, b, port_b, kind, label))
    for (src, c), (port, kind, label) in m.into_cell.items():
        if kind in ("up", "skip") and not any(e.a == src and e.b == c for e in out):
            out.append(Arrow(src, c, port, kind, label))
    index = {k: i for i, k in enumerate(v.units)}
    return sorted(out, key=lambda e: (index[e.b], index[e.a]))


def _groups(m: _Maps, arrows: list) -> dict:
    """A group per vertical arrow between two maps, so dot keeps it straight."""
    groups: dict = {}
    n = 0
    for e in arrows:
        if (e.kind in ("down", "up") and not (m.is_block(e.a) or m.is_block(e.b))
                and e.a not in groups and e.b not in groups):
            n += 1
            groups[e.a] = groups[e.b] = f"{e.kind}{n}"
    return groups


def _levels(m: _Maps) -> dict:
    """The rows, top (finest resolution) down: level -> its units, the contracting path
    first, then the expansive path, each in topological order."""
    index = {k: i for i, k in enumerate(m.v.units)}
    by_level: dict = {}
    for k in m.v.units:
        if k not in m.absorbed:
            by_level.setdefault(m.level[k], []).append(k)
    return {lvl: sorted(by_level[lvl], key=lambda k: (m.dec[k], index[k])) for lvl in sorted(by_level)}


def build(model, opts) -> Dot:
    """The arrows, their groups and the rows first, then the DOT: one rank=same row per
    level, the arrows by kind, the legend beside the deepest row."""
    m = _Maps(model, opts)
    arrows = _arrows(m)
    groups = _groups(m, arrows)
    levels = _levels(m)
    g = m.g
    dot = Dot(g.name, comment=f"archviz unet layout of '{g.name}': one rank=same row per resolution level, "
              "contracting path left, expansive path right, copy-and-crop as flat edges",
              rankdir="TB", fontname=FONT, nodesep=0.12, ranksep=0.35, splines="spline", newrank=True)
    dot.attrs("node", shape="plain", fontname=FONT)
    dot.attrs("edge", arrowsize=0.6, penwidth=1.4)
    for lvl, keys in levels.items():
        with dot.subgraph(f"level{lvl + m.shift}", rank="same"):
            for k in keys:
                dot.node(k, label=m.box(k), group=groups.get(k))
    for e in arrows:
        _emit_arrow(dot, m, e)
    _emit_legend(dot, arrows, levels[max(levels)])
    return dot


def _emit_arrow(dot: Dot, m: _Maps, e: Arrow) -> None:
    """Down and up arrows vertical (through the corners between blocks, which makes dot
    shift every level inwards into a U); the others flat, out of a concat's last cell."""
    color = COLORS[e.kind]
    corner = m.is_block(e.a) or m.is_block(e.b)
    out_port = m.cells[e.a][-1][0] if e.a in m.cells else "m"
    if e.kind == "down":
        if corner:
            dot.edge((e.a, None, "se"), (e.b, None, "nw"), color=color, weight=10)
        else:
            dot.edge((e.a, None, "s"), (e.b, None, "n"), color=color, weight=4)
    elif e.kind == "up":
        if corner:
            dot.edge((e.b, None if e.port == "m" else e.port, "sw"), (e.a, None, "ne"), color=color, dir="back",
                     weight=10)
        else:
            dot.edge((e.b, e.port, "s"), (e.a, None, "n"), color=color, dir="back", weight=4)
    elif e.kind == "skip":
        dot.edge((e.a, out_port, "e"), (e.b, e.port, "w"), color=color, penwidth=2)
    else:
        dot.edge((e.a, out_port, "e"), (e.b, e.port, "w"), color=color)


def _emit_legend(dot: Dot, arrows: list, deepest: list) -> None:
    """One line per kind and label of arrow, in order of appearance, beside the deepest row."""
    legend: dict = {}
    for e in arrows:
        legend.setdefault((e.kind, e.label), COLORS[e.kind])
    rows = []
    for (kind, label), color in legend.items():
        arrow = ARROW.get(kind, "&#x2192;")
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{color}">{arrow}</FONT> {html_escape(label)}</TD></TR>')
    if rows:
        dot.node("legend", label=Html('<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">'
                                      + "".join(rows) + "</TABLE>"), fontsize=11)
        dot.rank_same([deepest[0], "legend"])
        dot.edge(deepest[-1], "legend", style="invis")
