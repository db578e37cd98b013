"""Unrolled bidirectional and attention-decoder diagrams: every weight label sits on its own
edge, no edge leaves the picture, and the attention context enters each decoder step;
checked through `dot -Tjson` coordinates."""
import math
import os

import pytest

from archviz.backends.render import to_dot

from .conftest import layout_of, load, needs_dot

pytestmark = needs_dot
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _spec(name):
    import archviz
    return archviz.load(os.path.join(ROOT, "specs", name + ".yaml"))


def _curve(edge) -> list:
    """Points along the edge's B-spline (cubic Bézier pieces), 16 per piece."""
    pts = []
    for tok in edge.get("pos", "").split():
        if tok[:2] in ("e,", "s,"):
            continue
        x, y = tok.split(",")
        pts.append((float(x), float(y)))
    out = []
    for i in range(0, len(pts) - 3, 3):
        p0, p1, p2, p3 = pts[i:i + 4]
        for k in range(17):
            t = k / 16
            a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t ** 3
            out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


def _labels(lay):
    """(edge index, label centre) for every edge label of any kind."""
    res = []
    for i, (_t, _h, e) in enumerate(lay.edges):
        for key in ("lp", "head_lp", "tail_lp", "xlp"):
            if key in e:
                x, y = map(float, e[key].split(","))
                res.append((i, key, (x, y)))
    return res


def _dist(p, curve):
    return min(math.hypot(p[0] - x, p[1] - y) for x, y in curve)


CASES = [("mini_bilstm", {"unroll": 4}), ("mini_bilstm", {"unroll": 2}), ("bilstm_tagger", {"unroll": 4}),
         ("seq2seq_bahdanau", {"unroll": 3}), ("mini_bahdanau", {})]


def _layout(name, kw):
    m = load(name) if name.startswith("mini") else _spec(name)
    return layout_of(to_dot(m, "unrolled", **kw))


@pytest.mark.parametrize("name,kw", CASES)
def test_every_label_is_nearest_its_own_edge(name, kw):
    lay = _layout(name, kw)
    curves = [_curve(e) if e.get("style") != "invis" else [] for _t, _h, e in lay.edges]
    for i, key, p in _labels(lay):
        own = _dist(p, curves[i])
        t, h, e = lay.edges[i]
        for j, c in enumerate(curves):
            if j == i or not c or lay.edges[j][2].get("style") == "dashed":
                continue
            other = _dist(p, c)
            # a label placed where another edge passes (on a row's chain, on a column's
            # vertical edge) reads as that edge's label
            assert other > min(own + 4, 14), (t, h, key, e.get(key.replace("lp", "label")),
                                               lay.edges[j][:2], own, other)


@pytest.mark.parametrize("name,kw", CASES)
def test_no_edge_leaves_the_nodes_bounding_box(name, kw):
    lay = _layout(name, kw)
    left = min(lay.left(n) for n in lay.nodes)
    right = max(lay.right(n) for n in lay.nodes)
    for t, h, e in lay.edges:
        if e.get("style") == "invis":
            continue
        xs = [x for x, _ in _curve(e)]
        assert left - 1 <= min(xs) and max(xs) <= right + 1, (t, h, min(xs), max(xs), left, right)


@pytest.mark.parametrize("name,kw", CASES[:3])
def test_backward_states_sit_right_of_their_column(name, kw):
    lay = _layout(name, kw)
    T = kw["unroll"]
    for l in (1, 2):
        for t in range(1, T + 1):
            assert lay.x(f"s0.h{l}b.{t}") > lay.x(f"s0.h{l}f.{t}") + 10, (l, t)
    # layer 2 reads both directions of layer 1 through one junction per step
    for t in range(1, T + 1):
        j = f"s0.j2.{t}"
        ins = {a for a, b, e in lay.edges if b == j}
        outs = {b for a, b, e in lay.edges if a == j}
        assert ins == {f"s0.h1f.{t}", f"s0.h1b.{t}"} and outs == {f"s0.h2f.{t}", f"s0.h2b.{t}"}
        assert lay.y(f"s0.h1b.{t}") < lay.y(j) < lay.y(f"s0.h2f.{t}")


@pytest.mark.parametrize("name,kw", [("mini_bahdanau", {}), ("seq2seq_bahdanau", {"unroll": 3})])
def test_attention_decoder_unrolled_feeds_the_context_into_each_step(name, kw):
    m = load(name) if name.startswith("mini") else _spec(name)
    text = to_dot(m, "unrolled", **kw)
    lay = layout_of(text)
    T = kw.get("unroll", 3)
    for t in range(1, T + 1):
        c, s = f"s1.c.{t}", f"s1.h1f.{t}"
        assert any(a == c and b == s for a, b, _ in lay.edges)
        # α_t is scored by the previous state s_{t−1} (s_0 for the first step)
        q = [a for a, b, e in lay.edges if b == c and e.get("style") == "dashed"]
        assert q == [f"s1.h1f.{t - 1}"], (t, q)
        assert abs(lay.y(c) - lay.y(f"s1.x.{t}")) < 1 and lay.x(c) > lay.x(f"s1.x.{t}")
    # s_0 = tanh(W_s ←h_1) is its own box, not an arrow from the encoder's last state
    assert "s1.h1f.0" in lay.nodes and "tanh(fc(←h<SUB>1</SUB>))" in text
    assert not [a for a, b, _ in lay.edges if a.startswith("s0.") and b.startswith("s1.h")]
    assert "(256+512)" in text or "(8+12)" in text
