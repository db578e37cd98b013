"""Every spec in specs/ that loads renders with the auto layout (and as a plain graph)."""
import glob
import os

import pytest

from archviz.backends.render import detect_layout, to_dot
from archviz.backends.render.engine import render_bytes
from archviz.errors import ArchvizError

from .conftest import dot_warnings, needs_dot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")))


def _load(path):
    import archviz
    try:
        return archviz.load(path)
    except ArchvizError as e:
        pytest.skip(f"{os.path.basename(path)} does not load: {e}")


@needs_dot
@pytest.mark.parametrize("path", SPECS, ids=[os.path.basename(p)[:-5] for p in SPECS])
def test_spec_renders(path):
    m = _load(path)
    layout = detect_layout(m)
    text = to_dot(m, layout)
    assert text == to_dot(m, layout)
    svg = render_bytes(text, "svg")
    assert b"<svg" in svg
    assert "Warning" not in dot_warnings(text), dot_warnings(text)
    graph = to_dot(m, "graph")
    assert b"<svg" in render_bytes(graph, "svg")


def test_there_are_specs():
    assert SPECS, "specs/ has no *.yaml"
