"""`archviz rf --plot FILE.png`: the PNG carries the same title and legend as the SVG (audit
item A: the PNG had the grid and the regions but no text at all).  The PNG is decoded here
with a decoder of its own (filter 0 per row, as the writer promises; 8-bit RGB)."""
from __future__ import annotations

import shutil
import struct
import zlib

import pytest

from archviz.backends import rfplot

from .helpers import model_of

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

NODES = [{"id": "c1", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
         {"id": "c2", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1}]


def decode(data: bytes):
    """(w, h, rows of (r, g, b) tuples) of an 8-bit RGB PNG whose rows all use filter 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, raw, head = 8, b"", None
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            raw += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = head
    assert (depth, ctype, interlace) == (8, 2, 0)
    pix = zlib.decompress(raw)
    assert len(pix) == h * (1 + 3 * w)
    rows = []
    for y in range(h):
        line = pix[y * (1 + 3 * w):(y + 1) * (1 + 3 * w)]
        assert line[0] == 0
        rows.append([tuple(line[1 + 3 * x:4 + 3 * x]) for x in range(w)])
    return w, h, rows


def dark(c):
    return max(c) < 110


def solid_block(rows, color, x0, size=8):
    """Top-left corner (x, y) of a size×size block of exactly ``color`` at x ≥ x0, or None."""
    h, w = len(rows), len(rows[0])
    for y in range(h - size + 1):
        for x in range(x0, w - size + 1):
            if rows[y][x] == color and all(rows[y + dy][x + dx] == color
                                           for dy in range(size) for dx in range(size)):
                return x, y
    return None


@needs_dot
def test_png_has_title_and_legend():
    m = model_of(NODES, shape=(2, 12, 12))
    axes, regs = rfplot.regions(m, "c2", [6, 6])
    assert [r.label for r in regs][:2] == ["c2", "c1"]
    w, h, rows = decode(rfplot.to_png(m, "c2", [6, 6]))
    L = rfplot._Layout(axes, regs)
    grid_w = L.x(L.nw) + L.margin
    # the grid is there, undistorted: its last row of cells (outside every region) spans 12 cells
    # of L.cs pixels, the input's grey between grid lines
    gy = max(y for y in range(h) if (244, 244, 244) in rows[y])
    xs = [x for x in range(w) if rows[gy][x] == (244, 244, 244)]
    assert xs[-1] - xs[0] + 1 == 12 * L.cs and sum(1 for x in xs) == 12 * L.cs - 11
    gy = min(y for y in range(h) if (244, 244, 244) in rows[y])
    # a title above the grid: dark text pixels in the band over it
    assert sum(dark(c) for y in range(gy - 2) for c in rows[y]) > 50
    # a legend right of the grid: for each region its swatch (the region's colour, solid) and
    # dark text just right of it, on the same rows
    assert w > grid_w + 150
    for r in regs:
        at = solid_block(rows, r.color, grid_w)
        assert at is not None, f"no legend swatch for {r.label} in colour {r.color}"
        x, y = at
        text = [c for yy in range(y, y + 8) for c in rows[yy][x + 10:x + 120]]
        assert sum(map(dark, text)) > 10, f"no legend text beside the swatch of {r.label}"


@needs_dot
def test_png_text_is_the_svg_text(monkeypatch):
    """The text drawn in the PNG is the SVG's: the title and every legend line."""
    m = model_of(NODES, shape=(2, 12, 12))
    seen = []
    real = rfplot._render_text

    def spy(dot_text):
        seen.append(dot_text)
        return real(dot_text)

    monkeypatch.setattr(rfplot, "_render_text", spy)
    rfplot.to_png(m, "c2", [0, 0])
    axes, regs = rfplot.regions(m, "c2", [0, 0])
    drawn = "".join(seen)
    title = rfplot._title(m, "c2", [0, 0], axes)
    legend = rfplot._legend(regs, axes)
    assert "receptive field of 'c2' at (0, 0)" in title
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
    for text in [title] + legend:
        assert esc(text) in drawn or text in drawn, text
    assert "theory 5 × 5" in " ".join(legend)          # the corner: 3 × 3 exact, 5 × 5 theoretical
    assert "dashed: theoretical field" in drawn


@needs_dot
def test_png_one_axis_has_text():
    m = model_of([{"id": "c", "op": "conv1d", "out": 2, "kernel": 5, "padding": 2}], shape=(2, 30))
    w, h, rows = decode(rfplot.to_png(m, "c", [3]))
    assert sum(dark(c) for row in rows[:20] for c in row) > 50


def test_png_without_dot_has_the_grid_and_says_what_it_lacks(monkeypatch, tmp_path):
    """Without Graphviz the PNG still shows the grid and the regions (pure Python), with a
    note that the title and legend need dot; the SVG needs no dot at all."""
    m = model_of(NODES, shape=(2, 12, 12))
    with_text = decode(rfplot.to_png(m, "c2", [6, 6])) if shutil.which("dot") else None
    monkeypatch.setenv("ARCHVIZ_DOT", "no-such-dot-program")
    notes = []
    w, h, rows = decode(rfplot.to_png(m, "c2", [6, 6], notes))
    assert len(notes) == 1 and "no title or legend" in notes[0] and "dot" in notes[0]
    assert any(c[0] > 150 and c[1] < 100 and c[2] < 100 for row in rows for c in row)    # the red region
    if with_text:
        assert w < with_text[0]                                   # the legend's width is not there
    notes = rfplot.write_plot(m, "c2", [6, 6], str(tmp_path / "p.png"))
    assert notes and (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rfplot.write_plot(m, "c2", [6, 6], str(tmp_path / "p.svg")) == []


def test_png_reader_errors_are_png_errors():
    from archviz.backends.png import PNGError, png_bytes, png_decode
    good = png_bytes(2, 1, bytes([255, 0, 0, 0, 0, 255]))
    assert png_decode(good) == (2, 1, bytes([255, 0, 0, 0, 0, 255]))
    for bad in (b"GIF89a", good[:30], good[:8] + good[33:]):     # not a PNG, truncated, no IHDR
        with pytest.raises(PNGError):
            png_decode(bad)
