"""Fixtures for the diagram tests: the small specs beside this file, and `dot -Tjson`
coordinates (layout is tested through geometry, never by comparing images)."""
from __future__ import annotations

from archviz.backends.render.engine import layout_json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SPECS = os.path.join(HERE, "specs")

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def spec_path(name: str) -> str:
    return os.path.join(SPECS, name + ".yaml")


_cache: dict = {}


def load(name: str, **params):
    import archviz
    key = (name, tuple(sorted(params.items())))
    if key not in _cache:
        _cache[key] = archviz.load(spec_path(name), **params)
    return _cache[key]


class Layout:
    """Node boxes (centre x, y, width, height in points; y grows upwards as in dot) and
    edges (tail, head, attributes) of a laid-out graph."""

    def __init__(self, data: dict):
        objs = data.get("objects", [])
        self.nodes, self.clusters = {}, {}
        by_id = {}
        for o in objs:
            by_id[o["_gvid"]] = o
            if "pos" in o:
                x, y = map(float, o["pos"].split(","))
                self.nodes[o["name"]] = (x, y, float(o["width"]) * 72, float(o["height"]) * 72)
            elif "bb" in o:
                self.clusters[o["name"]] = tuple(map(float, o["bb"].split(",")))
        self.edges = [(by_id[e["tail"]]["name"], by_id[e["head"]]["name"], e) for e in data.get("edges", [])]

    def x(self, n):
        return self.nodes[n][0]

    def y(self, n):
        return self.nodes[n][1]

    def right(self, n):
        return self.nodes[n][0] + self.nodes[n][2] / 2

    def left(self, n):
        return self.nodes[n][0] - self.nodes[n][2] / 2

    @staticmethod
    def points(edge) -> list:
        pts = []
        for tok in edge.get("pos", "").split():
            if tok[:2] in ("e,", "s,"):
                tok = tok[2:]
            x, y = tok.split(",")
            pts.append((float(x), float(y)))
        return pts


def layout_of(dot_text: str) -> Layout:
    return Layout(layout_json(dot_text, timeout=120))


def dot_warnings(dot_text: str) -> str:
    res = subprocess.run(["dot", "-Tsvg", "-o", os.devnull], input=dot_text.encode(), capture_output=True,
                         timeout=120)
    return res.stderr.decode()
