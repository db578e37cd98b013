"""`archviz rf --plot`: the input grid with the region one output position sees and, nested
inside it, the regions of the layers before it — the exam's receptive-field grid, made
real.  Pure Python: SVG as text; PNG through zlib + struct (no matplotlib, no Pillow), its
title and legend typeset by Graphviz's `dot` (the project's required tool for diagrams).

Each region is exact (torch's index arithmetic, clipped to the input, :func:`field_of`):
for the chosen node at the chosen position, then for every earlier layer along the path
with the largest field, the region of that layer's position at the centre of what the
later layer reads.  The theoretical field (which may reach into the padding) of the chosen
position is drawn dashed.  Two spatial axes: nested rectangles on the H × W grid; one axis
(L or T): one interval bar per layer under a row of cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from archviz.backends.png import PNGError, png_bytes, png_decode
from archviz.errors import ArchvizError
from archviz.ir import meta as M
from archviz.passes import rf as RF, run
from archviz.passes import rf_exact

PALETTE = [(214, 39, 40), (255, 127, 14), (188, 189, 34), (44, 160, 44), (23, 190, 207),
           (31, 119, 180), (148, 103, 189), (227, 119, 194), (140, 86, 75), (127, 127, 127)]
LEGEND_W = 360


@dataclass
class Region:
    label: str
    exact: list        # per axis (lo, hi) on the input, clipped
    theory: list       # per axis (lo, hi), unclipped
    color: tuple = (0, 0, 0)


def _port_of(g, nid):
    rec = g.nodes[nid].meta[M.RF]
    return "out" if "out" in rec.fields else next(iter(rec.fields))


def spine(g, node_id: str) -> list[tuple[str, str]]:
    """(node, port) from ``node_id`` back to the primary input, each time through the input
    whose field is largest (the main path)."""
    ctx = run(g, "rf")
    out = [(node_id, _port_of(g, node_id))]
    seen = {node_id}
    cur = g.nodes[node_id]
    while not cur.is_input:
        best, best_size = None, -1
        for ref in cur.inputs:
            f = g.nodes[ref.node].meta[M.RF].fields.get(ref.port)
            if f is None or any(x.kind in ("unavailable", "global") for x in f):
                continue
            size = sum(RF.summarize(x, ax)["size_max"] or 0 for x, ax in zip(f, ctx.axes))
            if size > best_size:
                best, best_size = ref, size
        if best is None or best.node in seen:
            break
        seen.add(best.node)
        out.append((best.node, best.port))
        cur = g.nodes[best.node]
    return out


def regions(model, node_id: str, position=None) -> tuple[list, list[Region]]:
    """(axes, regions outermost first) for the plot; consecutive equal regions merge."""
    g = model.graph
    ctx = run(g, "rf")
    if not ctx.axes:
        raise ValueError(ctx.note)
    boxes = rf_exact.backward_boxes(g, node_id, position, clip=True)
    regs: list[Region] = []
    for i, (nid, port) in enumerate(spine(g, node_id)):
        fields = g.nodes[nid].meta[M.RF].fields[port]
        if i == 0:
            pos = position
        else:
            box = boxes.get((nid, port))
            if box is None:
                break
            pos = [(box[f.dim][0] + box[f.dim][1]) // 2 if f.dim is not None and f.kind != "fixed" else 0
                   for f in fields]
        exact = rf_exact.field_of(g, nid, pos, port=port, clip=True)
        if any(e is None for e in exact):
            continue
        theory = rf_exact.field_of(g, nid, pos, port=port, clip=False)
        label = nid if port == "out" else f"{nid}.{port}"
        if regs and regs[-1].exact == exact:      # same region as the layer after it (element-wise...)
            if len(regs[-1].label.split(", ")) < 3:
                regs[-1].label += f", {label}"
            elif not regs[-1].label.endswith("…"):
                regs[-1].label += ", …"
            continue
        regs.append(Region(label, exact, theory))
    for k, r in enumerate(regs):
        r.color = PALETTE[k % len(PALETTE)]
    if len(regs) > 1 and all(hi == lo for lo, hi in regs[-1].exact):
        regs[-1].color = (0, 0, 0)        # the one input position at the centre
    return ctx.axes, regs


def _title(model, node_id, position, axes):
    pos = "" if position is None else " at (" + ", ".join(map(str, position)) + ")"
    dims = " × ".join(str(a.size) for a in axes)
    shown = ""
    try:
        L = _Layout(axes, regions(model, node_id, position)[1])
        if L.cropped:
            shown = ", shown: " + ", ".join(f"{a.name} {lo}..{hi}" for a, (lo, hi) in zip(
                ([L.ah] if L.two_d else []) + [L.aw], ([(L.h0, L.h1)] if L.two_d else []) + [(L.w0, L.w1)]))
    except ValueError:
        pass
    return (f"{model.name}: receptive field of '{node_id}'{pos} on input '{run(model.graph, 'rf').input}' "
            f"({dims}{shown})")


def _legend(regs, axes):
    lines = []
    for r in regs:
        ex = " × ".join(f"{hi - lo + 1}" for lo, hi in r.exact)
        th = " × ".join(f"{hi - lo + 1}" for lo, hi in r.theory)
        span = ", ".join(f"{a.name} {lo}..{hi}" for a, (lo, hi) in zip(axes, r.exact))
        lines.append(f"{r.label}: {ex}" + (f" (theory {th})" if th != ex else "") + f" — {span}")
    return lines


# -- geometry shared by SVG and PNG -----------------------------------------------------------
def _window(n: int, lo: int, hi: int) -> tuple[int, int]:
    """The cells shown on an axis of n: the region lo..hi with as much again around it, when
    that is under half of the axis (a 5×5 field is the point of the figure, not the 56×56
    grid around it); else the whole axis."""
    pad = max(2, (hi - lo + 2) // 2)
    w0, w1 = max(0, lo - pad), min(n - 1, hi + pad)
    return (w0, w1) if (w1 - w0 + 1) * 2 <= n else (0, n - 1)


class _Layout:
    def __init__(self, axes, regs):
        self.two_d = len(axes) >= 2
        if self.two_d:
            self.ah, self.aw = axes[-2], axes[-1]
            self.ih, self.iw = len(axes) - 2, len(axes) - 1
        else:
            self.aw = axes[0]
            self.iw = 0
        full = [(0, a.size - 1) for a in axes]
        if regs:                        # crop to the outermost region (its theoretical field)
            full = [_window(a.size, min(t[0], e[0]), max(t[1], e[1]))
                    for a, t, e in zip(axes, regs[0].theory, regs[0].exact)]
        self.w0, self.w1 = full[self.iw]
        self.h0, self.h1 = full[self.ih] if self.two_d else (0, 0)
        nh, nw = self.h1 - self.h0 + 1, self.w1 - self.w0 + 1
        self.nh, self.nw = nh, nw
        self.cropped = any(w != (0, a.size - 1) for w, a in zip(full, axes))
        self.cs = max(1, min(28, 640 // max(nh, nw)))
        over = 0
        if regs:
            t = regs[0].theory
            idx = [(self.iw, self.w0, self.w1)] + ([(self.ih, self.h0, self.h1)] if self.two_d else [])
            for i, lo, hi in idx:
                over = max(over, lo - t[i][0], t[i][1] - hi)
        self.margin = 12 + min(max(over, 0) * self.cs, 80)
        self.tick = tick_step(self.cs)
        self.lab = 30 if self.tick else 0      # room for the axis indices, left of and above the grid
        self.top = 34
        self.bar_h = max(6, min(self.cs, 16))
        grid_h = nh * self.cs
        self.height = (self.top + self.lab + self.margin * 2 + grid_h
                       + (0 if self.two_d else (len(regs) + 1) * (self.bar_h + 4)))
        self.width = self.lab + self.margin * 2 + nw * self.cs + LEGEND_W

    def x(self, i):
        return self.lab + self.margin + (i - self.w0) * self.cs

    def y(self, i):
        return self.top + self.lab + self.margin + (i - self.h0) * self.cs

    def grid(self):
        """(x0, y0, x1, y1) of the cells shown."""
        return self.x(self.w0), self.y(self.h0), self.x(self.w1 + 1), self.y(self.h1 + 1)

    def ticks(self, lo, hi):
        return [i for i in range(lo, hi + 1) if self.tick and i % self.tick == 0]

    def rect(self, reg_box):
        """Pixel rectangle (x0, y0, x1, y1) of a region box (2-D) on the grid."""
        (h0, h1), (w0, w1) = reg_box[self.ih], reg_box[self.iw]
        return self.x(w0), self.y(h0), self.x(w1 + 1), self.y(h1 + 1)

    def bar(self, k, reg_box):
        lo, hi = reg_box[self.iw]
        y0 = self.y(self.h0 + 1) + 6 + k * (self.bar_h + 4)
        return self.x(lo), y0, self.x(hi + 1), y0 + self.bar_h


def tick_step(cs: int) -> int:
    """Label every k-th index, k in 1, 2, 5, 10, 20, 50, ...: the fewest that leave 26 pixels
    for a label (three digits); 0 (no labels) when the cells are under 2 pixels."""
    if cs < 2:
        return 0
    k = 1
    while k * cs < 26:
        k = k * 5 // 2 if str(k)[0] == "2" else k * 2
    return k


def _hex(c):
    return "#%02x%02x%02x" % c


def to_svg(model, node_id: str, position=None) -> str:
    axes, regs = regions(model, node_id, position)
    L = _Layout(axes, regs)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{L.width}" height="{L.height}" '
           f'viewBox="0 0 {L.width} {L.height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{L.width}" height="{L.height}" fill="white"/>',
           f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(_title(model, node_id, position, axes))}</text>']
    gx0, gy0, gx1, gy1 = L.grid()
    out.append(f'<rect x="{gx0}" y="{gy0}" width="{gx1 - gx0}" height="{gy1 - gy0}" fill="#f4f4f4" stroke="#888"/>')
    if L.cs >= 6:
        path = "".join(f"M{L.x(i)} {gy0}V{gy1}" for i in range(L.w0 + 1, L.w1 + 1)) + \
            "".join(f"M{gx0} {L.y(i)}H{gx1}" for i in range(L.h0 + 1, L.h1 + 1))
        out.append(f'<path d="{path}" stroke="#d0d0d0" stroke-width="1" fill="none"/>')
    for i in L.ticks(L.w0, L.w1):       # axis indices: W above the grid, H left of it
        out.append(f'<text x="{L.x(i) + L.cs / 2}" y="{gy0 - 6}" font-size="10" text-anchor="middle">{i}</text>')
    if L.two_d:
        for i in L.ticks(L.h0, L.h1):
            out.append(f'<text x="{gx0 - 5}" y="{L.y(i) + L.cs / 2 + 4}" font-size="10" text-anchor="end">{i}</text>')
        out.append(f'<text x="{gx0 - 5}" y="{gy0 - 6}" font-size="10" text-anchor="end" fill="#555">'
                   f'{escape(L.ah.name)}↓ {escape(L.aw.name)}→</text>')
    for k, r in enumerate(regs):
        c = _hex(r.color)
        x0, y0, x1, y1 = L.rect(r.exact) if L.two_d else L.bar(k, r.exact)
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="{c}" '
                   f'fill-opacity="0.18" stroke="{c}" stroke-width="2"><title>{escape(r.label)}</title></rect>')
    if regs and regs[0].theory != regs[0].exact:
        r = regs[0]
        x0, y0, x1, y1 = L.rect(r.theory) if L.two_d else L.bar(0, r.theory)
        x0, x1 = max(x0, 0), min(x1, L.width - LEGEND_W)
        y0, y1 = max(y0, L.top), min(y1, L.height)
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" '
                   f'stroke="{_hex(r.color)}" stroke-width="1.5" stroke-dasharray="6 4"/>')
    lx = L.width - LEGEND_W + 10
    for k, (r, text) in enumerate(zip(regs, _legend(regs, axes))):
        y = L.top + L.margin + 6 + 18 * k
        out.append(f'<rect x="{lx}" y="{y}" width="12" height="12" fill="{_hex(r.color)}" fill-opacity="0.5" '
                   f'stroke="{_hex(r.color)}"/>')
        out.append(f'<text x="{lx + 18}" y="{y + 11}">{escape(text)}</text>')
    if regs and regs[0].theory != regs[0].exact:
        y = L.top + L.margin + 6 + 18 * len(regs)
        out.append(f'<text x="{lx}" y="{y + 11}" fill="#555">dashed: theoretical field (reaches into the padding)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_png(model, node_id: str, position=None, notes: list | None = None) -> bytes:
    """The picture of :func:`to_svg` as an 8-bit RGB PNG: the grid and the regions rasterised
    here (pixel-exact cells), the title and the legend typeset by Graphviz's `dot` (real
    fonts, no font data of our own) and pasted beside the grid.  Without a usable `dot` the
    grid comes alone, and `notes` (if given) says why."""
    axes, regs = regions(model, node_id, position)
    L = _Layout(axes, regs)
    gw, gh, grid = _raster(L, regs)
    note = regs and regs[0].theory != regs[0].exact
    try:
        tw, th, title = _text_image(_title_dot(_title(model, node_id, position, axes)))
        lw, lh, legend = _text_image(_legend_dot(regs, _legend(regs, axes), note))
    except (ArchvizError, PNGError) as e:      # no dot, dot failed, or a PNG it wrote we cannot read
        if notes is not None:
            why = e.message if isinstance(e, ArchvizError) else str(e)
            notes.append(f"the PNG has no title or legend ({why}); the .svg has both")
        tw = th = lw = lh = 0
        title = legend = b""
    band = max(L.top, th + 8)                  # the title band (the grid reserves L.top for it)
    w = max(gw + lw + 8, tw + 16)
    h = max(band - L.top + gh, band + L.margin + lh + 8)
    img = bytearray(b"\xff" * (w * h * 3))
    _paste(img, w, grid, gw, gh, 0, band - L.top)
    _paste(img, w, title, tw, th, 8, (band - th) // 2)
    _paste(img, w, legend, lw, lh, gw, band + L.margin)
    return png_bytes(w, h, bytes(img))


def _raster(L: _Layout, regs) -> tuple[int, int, bytearray]:
    """(width, height, RGB) of the grid with the regions, without text."""
    w, h = L.width - LEGEND_W + 8, L.height
    img = bytearray(b"\xff" * (w * h * 3))

    def fill(x0, y0, x1, y1, c, a=1.0):
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x0 >= x1 or y0 >= y1:
            return
        # alpha blending per channel through a 256-entry table (bytes.translate, C speed)
        tabs = [bytes(int(v * (1 - a) + c[ch] * a + 0.5) for v in range(256)) for ch in range(3)]
        for y in range(y0, y1):
            i0, i1 = (y * w + x0) * 3, (y * w + x1) * 3
            for ch in range(3):
                img[i0 + ch:i1:3] = bytes(img[i0 + ch:i1:3]).translate(tabs[ch])

    def outline(x0, y0, x1, y1, c, t=2, dash=0):
        for k in range(t):
            for (ax, ay, bx, by) in ((x0, y0 + k, x1, y0 + k + 1), (x0, y1 - 1 - k, x1, y1 - k),
                                     (x0 + k, y0, x0 + k + 1, y1), (x1 - 1 - k, y0, x1 - k, y1)):
                if not dash:
                    fill(ax, ay, bx, by, c)
                    continue
                horiz = by - ay == 1
                n = (bx - ax) if horiz else (by - ay)
                for s in range(0, n, 2 * dash):
                    if horiz:
                        fill(ax + s, ay, min(bx, ax + s + dash), by, c)
                    else:
                        fill(ax, ay + s, bx, min(by, ay + s + dash), c)

    gx0, gy0, gx1, gy1 = L.grid()
    fill(gx0, gy0, gx1, gy1, (244, 244, 244))
    if L.cs >= 6:
        for i in range(L.w0 + 1, L.w1 + 1):
            fill(L.x(i), gy0, L.x(i) + 1, gy1, (208, 208, 208))
        for i in range(L.h0 + 1, L.h1 + 1):
            fill(gx0, L.y(i), gx1, L.y(i) + 1, (208, 208, 208))
    ink = (51, 51, 51)
    for i in L.ticks(L.w0, L.w1):       # axis indices: W above the grid, H left of it
        text = str(i)
        _digits(fill, text, L.x(i) + L.cs // 2 - _text_w(text) // 2, gy0 - 14, ink)
    if L.two_d:
        for i in L.ticks(L.h0, L.h1):
            text = str(i)
            _digits(fill, text, gx0 - 4 - _text_w(text), L.y(i) + L.cs // 2 - 5, ink)
    outline(gx0 - 1, gy0 - 1, gx1 + 1, gy1 + 1, (136, 136, 136), 1)
    t = 2 if L.cs >= 4 else 1
    for k, r in enumerate(regs):
        box = L.rect(r.exact) if L.two_d else L.bar(k, r.exact)
        fill(*box, r.color, 0.18)
        outline(*box, r.color, t)
    if regs and regs[0].theory != regs[0].exact:
        box = L.rect(regs[0].theory) if L.two_d else L.bar(0, regs[0].theory)
        outline(*box, regs[0].color, 1, dash=5)
    return w, h, img


# -- axis indices: a 3×5 pixel font, drawn at twice its size ------------------------------------
_GLYPHS = {"0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
           "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
           "8": "111101111101111", "9": "111101111001111", "-": "000000111000000"}


def _text_w(text: str) -> int:
    return len(text) * 8 - 2


def _digits(fill, text: str, x: int, y: int, color) -> None:
    for k, ch in enumerate(text):
        g = _GLYPHS.get(ch)
        if g is None:
            continue
        for b in range(15):
            if g[b] == "1":
                px, py = x + k * 8 + (b % 3) * 2, y + (b // 3) * 2
                fill(px, py, px + 2, py + 2, color)


# -- text through Graphviz ---------------------------------------------------------------------
_HEAD = ('graph [margin=0, pad=0.02]; '
         'node [shape=plaintext, margin=0, width=0, height=0, fontname="DejaVu Sans,Helvetica,Arial,sans-serif"];')


def _title_dot(title: str) -> str:
    return (f'digraph t {{ {_HEAD}\n'
            f'  t [label=<<B>{escape(title)}</B>>, fontsize=11]; }}\n')


def _legend_dot(regs, lines, note: bool) -> str:
    rows = [f'<TR><TD FIXEDSIZE="TRUE" WIDTH="9" HEIGHT="9" BGCOLOR="{_hex(r.color)}"> </TD>'
            f'<TD ALIGN="LEFT">{escape(text)}</TD></TR>' for r, text in zip(regs, lines)]
    if note:
        rows.append('<TR><TD> </TD><TD ALIGN="LEFT"><FONT COLOR="#555555">dashed: theoretical field '
                    '(reaches into the padding)</FONT></TD></TR>')
    table = '<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="1">' + "".join(rows) + "</TABLE>"
    return (f'digraph l {{ {_HEAD}\n'
            f'  l [label=<{table}>, fontsize=10]; }}\n')


def _render_text(dot_text: str) -> bytes:
    from archviz.backends.render.engine import render_bytes
    return render_bytes(dot_text, "png")


def _text_image(dot_text: str) -> tuple[int, int, bytes]:
    return png_decode(_render_text(dot_text))


def _paste(img: bytearray, w: int, src, sw: int, sh: int, x: int, y: int) -> None:
    for row in range(sh):
        i = ((y + row) * w + x) * 3
        img[i:i + sw * 3] = src[row * sw * 3:(row + 1) * sw * 3]


def write_plot(model, node_id: str, position, path: str) -> list:
    """Write the plot (.svg or .png); returns notes for the user (what the picture lacks)."""
    from archviz.backends.files import write_atomic
    notes: list = []
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext == "svg":
        write_atomic(path, to_svg(model, node_id, position))
    elif ext == "png":
        write_atomic(path, to_png(model, node_id, position, notes))
    else:
        raise ValueError(f"unknown plot format '.{ext}': use .svg or .png")
    return notes
