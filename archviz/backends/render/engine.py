"""Run Graphviz's `dot` on DOT text; write the result atomically.

No fixed page size is set anywhere, so a diagram is as large as its graph.  PNG output
gets a resolution (``-Gdpi``) on the command line, which keeps the DOT text the same for
every format.  A missing `dot` is a clear :class:`UnsupportedError`, not a traceback.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from archviz.backends.files import write_atomic
from archviz.codes import E
from archviz.errors import UnsupportedError

FORMATS = ("svg", "png", "pdf", "dot")
PNG_DPI = 96


class GraphvizMissingError(UnsupportedError):
    code = E.NO_GRAPHVIZ


class GraphvizFailedError(UnsupportedError):
    code = E.GRAPHVIZ_FAILED


def dot_binary() -> str:
    exe = shutil.which(os.environ.get("ARCHVIZ_DOT", "dot"))
    if exe is None:
        raise GraphvizMissingError(
            "Graphviz's `dot` program was not found on PATH, so the diagram cannot be rendered",
            hint="install Graphviz (apt install graphviz · brew install graphviz · conda install graphviz), "
                 "or write the DOT text with `-o FILE.dot`")
    return exe


def format_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext == "gv":
        ext = "dot"
    if ext not in FORMATS:
        raise UnsupportedError(f"cannot write a diagram as '.{ext}'" if ext else "the output file has no extension",
                               hint="use one of: " + ", ".join("." + f for f in FORMATS), code=E.DIAGRAM_FORMAT)
    return ext


def render_bytes(dot_text: str, fmt: str, timeout: float = 300.0) -> bytes:
    if fmt == "dot":
        return dot_text.encode("utf-8")
    cmd = [dot_binary(), f"-T{fmt}"]
    if fmt == "png":
        cmd.append(f"-Gdpi={PNG_DPI}")
    try:
        res = subprocess.run(cmd, input=dot_text.encode("utf-8"), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GraphvizFailedError(f"Graphviz's dot took longer than {timeout:.0f} s to lay out the diagram",
                                  hint="draw fewer boxes: --depth D, or leave out --expand") from None
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphvizFailedError("Graphviz's dot failed: " + (err[-1] if err else f"exit {res.returncode}"))
    return res.stdout


def layout_json(dot_text: str, timeout: float = 300.0) -> dict:
    """`dot -Tjson` (coordinates of every node, edge and cluster), for layout tests."""
    import json
    return json.loads(render_bytes(dot_text, "json", timeout))


def write_file(path: str, data) -> str:
    """write_atomic (which gives the file the mode a plain open() would), returning the path."""
    write_atomic(path, data)
    return path


def write_diagram(dot_text: str, path: str, fmt: str | None = None) -> str:
    fmt = fmt or format_of(path)
    return write_file(path, render_bytes(dot_text, fmt))
