"""A table as rich draws it for a file or a pipe (no colour), written without rich (issue 17,
item 5): rich measures and lays out every cell (about 1 ms a row, and 40-60 ms to import),
so a 200-layer `summary` piped to a file took 1.6x its JSON run.

Only the plain case is drawn here: one-line cells whose characters rich counts one cell
wide, a table that fits the console's width without shrinking a column, a title that fits
on one line, a UTF-8 stream (rich draws an ASCII box for others).  :func:`boxed_text`
answers None for anything else and the caller hands the table to rich.  rich's layout, as
drawn here: its default box (HEAVY_HEAD), one space of padding each side of a cell, each
column as wide as its widest cell, the title centred over the table, the caption wrapped
to the table's width (rich's word wrap: rich._wrap.divide_line) and justified.
tests/test_plain_console.py compares the text with rich's for every bundled spec."""
from __future__ import annotations

import codecs
import re

from archviz.plain_console import fits

_STYLE = {"title_style", "header_style", "caption_justify"}      # what changes no character in a pipe
_COLUMN = {"no_wrap", "style"}
_WORD = re.compile(r"\s*\S+\s*")


def boxed_text(con, title, columns, rows, footer=None, caption=None, **style) -> str | None:
    """The text rich prints for Table(title, columns, rows, footer, caption, **style) on
    `con`, or None where it is not plain to draw (see the module's docstring)."""
    enc = getattr(con.file, "encoding", None) or "utf-8"
    if con.is_terminal or getattr(con, "record", False) or set(style) - _STYLE or not rows:
        return None
    try:
        if codecs.lookup(enc).name != "utf-8":
            return None
    except LookupError:
        return None
    if any(set(c[2]) - _COLUMN for c in columns if len(c) > 2):
        return None
    table = [[c[0] for c in columns], *rows, *([footer] if footer is not None else [])]
    for r in table:
        if len(r) != len(columns) or not all(type(c) is str and fits(c) and c == c.strip() for c in r):
            return None
    widths = [max(map(len, col)) for col in zip(*table)]
    W = sum(widths) + 3 * len(widths) + 1
    if W > con.width or (title and (not fits(title) or len(title) > W or title != title.strip())):
        return None
    just = [str.rjust if c[1] == "right" else _centre if c[1] == "center" else str.ljust for c in columns]

    def rule(left, fill, mid, right):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def row(r, bar):
        return bar + bar.join(" " + f(c, w) + " " for f, c, w in zip(just, r, widths)) + bar
    out = [_centre(title, W)] if title else []
    out += [rule("┏", "━", "┳", "┓"), row(table[0], "┃"), rule("┡", "━", "╇", "┩")]
    out += [row(r, "│") for r in rows]
    if footer is not None:
        out += [rule("├", "─", "┼", "┤"), row(table[-1], "│")]
    out.append(rule("└", "─", "┴", "┘"))
    if caption:
        lines = _caption(caption, W, style.get("caption_justify", "center"))
        if lines is None:
            return None
        out += lines
    return "\n".join(out)


def _centre(text: str, width: int) -> str:
    """rich's Lines.justify 'center' of one line that fits."""
    text = text.rstrip()
    left = (width - len(text)) // 2
    return (" " * left + text).ljust(width)


def _caption(text: str, width: int, justify: str) -> list | None:
    """The caption's lines as rich wraps (rich._wrap.divide_line, no word longer than the
    line) and justifies ('left' or 'center') them, or None."""
    if justify not in ("left", "center") or not fits(text) or not text.strip():
        return None
    lines, cur = [], ""
    for word in _WORD.findall(text):
        if len(word.rstrip()) > width:
            return None                     # rich folds such a word: left to rich
        if cur and len(cur) + len(word.rstrip()) > width:
            lines.append(cur)
            cur = ""
        cur += word
    if cur or not lines:
        lines.append(cur)
    if justify == "center":
        return [_centre(line, width) for line in lines]
    # rstrip_end: the spaces past the width go; 'left' pads (only spaces: fits() refused others)
    return [line.rstrip(" ").ljust(width) if len(line) > width else line.ljust(width) for line in lines]
