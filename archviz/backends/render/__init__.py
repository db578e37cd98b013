"""Diagrams: deterministic Graphviz DOT per layout family, rendered by `dot`.

    >>> from archviz.backends.render import to_dot, draw
    >>> text = to_dot(model, layout="auto")            # DOT text (deterministic)
    >>> draw(model, "resnet18.svg", layout="residual")  # .svg .png .pdf or .dot

Layouts (``archviz draw --layout``): ``graph`` (generic, blocks as clusters, repeats as ×N),
``residual`` (main column, bypass arcs), ``unet`` (one row per resolution level),
``unrolled`` (an RNN unrolled over T steps beside its folded view), ``cell`` (LSTM/GRU
internals) and ``seq2seq`` (one decoder step with attention).  ``auto`` picks one from the
graph's structure (:func:`detect_layout`).  Backends only read the analysed graph.
"""
from __future__ import annotations

import os

from archviz.backends.render.engine import format_of, write_diagram
from archviz.backends.render.options import LAYOUTS, DrawOptions
from archviz.codes import E

__all__ = ["LAYOUTS", "DrawOptions", "detect_layout", "to_dot", "draw", "render_gallery_item"]


def detect_layout(model) -> str:
    from archviz.backends.render.detect import detect
    return detect(model.graph)


def _builder(layout: str):
    import importlib
    mod, fn = {"graph": ("graph", "build"), "residual": ("residual", "build"), "unet": ("unet", "build"),
               "unrolled": ("recurrent", "build_unrolled"), "cell": ("cells", "build_cell"),
               "seq2seq": ("seq2seq", "build_seq2seq")}[layout]
    return getattr(importlib.import_module(f"archviz.backends.render.layouts.{mod}"), fn)


def to_dot(model, layout: str = "auto", **kw) -> str:
    """DOT text of the model's diagram. Keywords: see :class:`DrawOptions`."""
    opts = DrawOptions(layout=layout, **kw)
    if opts.layout not in LAYOUTS:
        from archviz.errors import UnsupportedError
        raise UnsupportedError(f"unknown layout '{layout}'", hint="layouts: " + ", ".join(LAYOUTS),
                               code=E.UNKNOWN_LAYOUT)
    chosen = detect_layout(model) if opts.layout == "auto" else opts.layout
    return _builder(chosen)(model, opts).source()


def draw(model, path: str, layout: str = "auto", **kw) -> str:
    """Write the diagram to `path`; the format follows the extension (.svg .png .pdf .dot)."""
    fmt = format_of(path)
    return write_diagram(to_dot(model, layout, **kw), path, fmt)


def render_gallery_item(model, out_dir: str, stem: str) -> list:
    """The main job's diagrams: STEM.svg and STEM.png (auto layout) in `out_dir`, and the
    entry of `stem` in `out_dir`/gallery.md. Returns the file names written."""
    from archviz.backends.render.engine import render_bytes, write_file
    from archviz.backends.render.gallery import update_index
    layout = detect_layout(model)
    from archviz.backends.render.options import teaching_expand
    text = _builder(layout)(model, DrawOptions(layout=layout, expand=teaching_expand(model, layout))).source()
    data = {f"{stem}.{fmt}": render_bytes(text, fmt) for fmt in ("svg", "png")}  # both, then write
    files = []
    for name, b in data.items():
        write_file(os.path.join(out_dir, name), b)
        files.append(name)
    update_index(out_dir, stem, model, layout)
    files.append("gallery.md")
    return files
