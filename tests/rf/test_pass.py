"""The receptive-field pass without torch: the exam derivations, the closed forms, the
forward fields against the backward propagation, merges, global fields, sequences, the
JSON contract and robustness (a missing rule never breaks the summary)."""
from __future__ import annotations

import gc
import json
import os
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import archviz
from archviz.errors import ArchvizError
from archviz.ir import meta as M
from archviz.ops import registry
from archviz.ops.base import Op
from archviz.passes import rf as RF, run
from archviz.passes.rf_exact import field_of, theoretical_field

from .helpers import model_of

SPECS = os.path.join(os.path.dirname(__file__), "..", "..", "specs")
_DEEP = int(os.environ.get("ARCHVIZ_HYPOTHESIS_EXAMPLES", "0"))


def rf_of(m, nid):
    sums, note = RF.layer_rf(m.graph.nodes[nid])
    assert sums is not None, note
    return sums


def conv(i, k, s=1, p=0, d=1, **kw):
    return {"id": f"c{i}", "op": "conv2d", "out": 2, "kernel": k, "stride": s, "padding": p, "dilation": d, **kw}


# -- the exam's derivations -------------------------------------------------------------------
def test_two_3x3_see_5x5():
    m = model_of([conv(1, 3, p=1), {"id": "r1", "op": "relu"}, conv(2, 3, p=1), {"id": "r2", "op": "relu"}])
    # layer 1: r1 = 1 + (3 − 1)·1 = 3, j1 = 1·1 = 1; layer 2: r2 = r1 + (3 − 1)·j1 = 5
    r1, j1 = 1 + (3 - 1) * 1, 1 * 1
    r2 = r1 + (3 - 1) * j1
    assert r2 == 5
    for ax in rf_of(m, "r2"):
        assert (ax["size_min"], ax["size_max"], ax["jump"], ax["start"]) == (5, 5, 1, -2)
        assert ax["centre"] == 0                     # padding 1 keeps the field centred on the output
    text = m.explain("c2")
    assert "r = r_in + (k' − 1)·j_in" in text and "3 + (3 − 1)·1 = 5" in text
    assert "−1 − 1·1 = −2" in text                  # start = start_in − p·j_in


def test_three_3x3_see_7x7_like_one_7x7():
    three = model_of([conv(i, 3, p=1) for i in range(3)])
    one = model_of([conv(0, 7, p=3)])
    r = 1
    for _ in range(3):
        r += (3 - 1) * 1                             # r_l = r_{l−1} + (k − 1)·j, j = 1
    assert r == 7
    for a, b in zip(rf_of(three, "c2"), rf_of(one, "c0")):
        assert a["size_max"] == b["size_max"] == 7 and a["start"] == b["start"] == -3
        # same field, but the stack's effective field is narrower: σ² = 3·(3² − 1)/12 < (7² − 1)/12
        assert a["erf_sigma"] ** 2 == pytest.approx(3 * 8 / 12) and b["erf_sigma"] ** 2 == pytest.approx(48 / 12)


@pytest.mark.parametrize("name,size", [("exam_two_3x3", 5), ("exam_three_3x3", 7), ("exam_one_7x7", 7),
                                       ("exam_one_5x5", 5)])
def test_exam_specs(name, size):
    path = os.path.join(SPECS, f"{name}.yaml")
    if not os.path.exists(path):
        pytest.skip(f"{name}.yaml not in specs/")
    m = archviz.load(path)
    last = [l for l in m.layers if RF.layer_rf(l.node)[0]][-1]
    assert all(s["size_max"] == size for s in rf_of(m, last.id))


@pytest.mark.parametrize("name,node,size,jump", [
    ("vgg16", None, 212, 32),          # 5 stages of 3×3 convs and 2×2 pools: 1 + 4 + 1 + 8 + 2 + ... = 212
    ("alexnet", "pool5", 195, 32),     # 11/4 → pool 3/2 → 5 → pool → 3, 3, 3 → pool: 195
    ("resnet18", "layer4.1.relu2", 435, 32),
])
def test_known_networks(name, node, size, jump):
    path = os.path.join(SPECS, f"{name}.yaml")
    if not os.path.exists(path):
        pytest.skip(f"{name}.yaml not in specs/")
    m = archviz.load(path)
    if node is None:
        node = [l.id for l in m.layers if l.op == "maxpool2d"][-1]
    for s in rf_of(m, node):
        assert (s["size_max"], s["jump"]) == (size, jump)


# -- closed forms (Distill 2019) over random chains ------------------------------------------------
layer = st.tuples(st.sampled_from(["conv2d", "maxpool2d", "avgpool2d"]), st.integers(1, 4), st.integers(1, 3),
                  st.integers(0, 2), st.integers(1, 2))


def _chain_nodes(layers):
    nodes = []
    for i, (op, k, s, p, d) in enumerate(layers):
        if op == "conv2d":
            nodes.append(conv(i, k, s, p, d))
        else:
            p = min(p, k // 2)
            nd = {"id": f"c{i}", "op": op, "kernel": k, "stride": s, "padding": p}
            if op == "maxpool2d":
                nd["dilation"] = d
            nodes.append(nd)
    return nodes


@settings(deadline=None, max_examples=_DEEP or 60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(layer, min_size=1, max_size=6))
def test_closed_forms(layers):
    """r0 = 1 + Σ_l (k'_l − 1)·Π_{i<l} s_i;  j = Π s_l;  start = −Σ_l p_l·Π_{i<l} s_i."""
    try:
        m = model_of(_chain_nodes(layers), shape=(1, 64, 64))
    except ArchvizError:
        assume(False)
    r, j, start = 1, 1, 0
    for op, k, s, p, d in layers:
        if op != "conv2d":
            p = min(p, k // 2)
            d = d if op == "maxpool2d" else 1
        r += (d * (k - 1)) * j
        start -= p * j
        j *= s
    got = rf_of(m, f"c{len(layers) - 1}")[0]
    assert (got["size_min"], got["size_max"], got["jump"], got["start"]) == (r, r, j, start)


# -- forward fields == backward propagation (theory), everywhere --------------------------------------
op_step = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2)),
    st.tuples(st.just("tconv"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2)),
    st.tuples(st.just("up"), st.sampled_from(["nearest", "bilinear"]), st.integers(2, 3), st.booleans(), st.none()),
    st.tuples(st.just("res"), st.integers(1, 3), st.integers(0, 2), st.none(), st.none()),
    st.tuples(st.just("pad"), st.integers(-1, 2), st.integers(0, 2), st.sampled_from(["constant", "reflect"]),
              st.none()),
    st.tuples(st.just("adapt"), st.integers(2, 7), st.none(), st.none(), st.none()),
)


def graph_nodes(steps):
    nodes, prev = [], "x"
    for i, (kind, a, b, c, d) in enumerate(steps):
        nid = f"n{i}"
        if kind == "conv":
            nodes.append({"id": nid, "op": "conv2d", "in": prev, "out": 2, "kernel": a, "stride": b,
                          "padding": c, "dilation": d})
        elif kind == "tconv":
            nodes.append({"id": nid, "op": "conv_transpose2d", "in": prev, "out": 2, "kernel": a, "stride": b,
                          "padding": min(c, a - 1), "dilation": d})
        elif kind == "up":
            nodes.append({"id": nid, "op": "upsample", "in": prev, "scale": b, "mode": a,
                          **({"align_corners": c} if a == "bilinear" else {})})
        elif kind == "res":                       # branch conv(k, 'same'-ish padding p) added to its input
            nodes.append({"id": f"{nid}b", "op": "conv2d", "in": prev, "out": 2, "kernel": 2 * a - 1,
                          "padding": "same"})
            nodes.append({"id": nid, "op": "add", "in": [prev, f"{nid}b"]})
        elif kind == "pad":
            nodes.append({"id": nid, "op": "pad", "in": prev, "pads": [a, b, b, a], "mode": c})
        elif kind == "adapt":
            nodes.append({"id": nid, "op": "adaptive_avgpool2d", "in": prev, "size": a})
        prev = nid
    return nodes


@settings(deadline=None, max_examples=_DEEP or 60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_step, min_size=1, max_size=5))
# a stride over a transposed conv's empty outputs leaves holes; bilinear then reads two empty
# positions (n2[3] → n1[1], n1[2]): its field is empty, not the hull's (n0[2..4] holds n0[3] → x[1])
@example(steps=[("tconv", 1, 3, 0, 1), ("conv", 1, 2, 0, 1), ("up", "bilinear", 2, False, None)])
# bilinear 29 → 87 with align_corners: src = (28/86)·43 = 14 reads only i0 in exact arithmetic,
# but torch's doubles give 14.000000000000002, so it reads i1 = 15 too: the theory must contain it
@example(steps=[("up", "bilinear", 3, False, None), ("conv", 1, 1, 1, 1), ("up", "bilinear", 3, True, None)])
@example(steps=[("tconv", 3, 3, 0, 2), ("up", "bilinear", 3, True, None)])
# the stride reads only even W positions of the padded tensor, all empty (odd before the pad),
# but H positions that are not: every element reads nothing, the layer's field is None
@example(steps=[("tconv", 1, 2, 0, 1), ("pad", 1, 0, "constant", None), ("conv", 1, 2, 0, 1)])
# n3's periods pass PERIOD_CAP, so its fields are tables; the pad's first column reads n3[−2] (theory:
# a shift), before the table's start: nothing (not the slice lo[0:−1], nearly the whole table)
@example(steps=[("up", "bilinear", 3, False, None), ("up", "nearest", 3, True, None), ("tconv", 4, 3, 1, 2),
                ("up", "bilinear", 3, True, None), ("pad", 2, 1, "reflect", None)])
def test_forward_equals_backward_theory(steps):
    try:
        m = model_of(graph_nodes(steps), shape=(2, 11, 9))
    except ArchvizError:
        assume(False)
    g = m.graph
    for l in m.layers:
        fields = l.node.meta[M.RF].fields["out"]
        h, w = l.output_shape[2:]
        if fields is None:         # e.g. a dilated transposed conv whose outputs a stride skips
            assert all(field_of(m, l.id, (o % h, o % w), clip=c) == [None, None]
                       for o in range(max(h, w)) for c in (True, False))
            continue
        for o in range(max(h, w)):
            pos = (o % h, o % w)
            theory = theoretical_field(m, l.id, pos)
            back = field_of(m, l.id, pos, clip=False)
            assert [x and tuple(x) for x in back] == [x and tuple(x) for x in theory], (l.id, pos)
            exact = field_of(m, l.id, pos, clip=True)
            for e, t, ax in zip(exact, theory, run(g, "rf").axes):   # exact ⊆ theory, inside the input
                if e is not None and not any(s[0] == "pad" and s[3] == "reflect" for s in steps):
                    assert t is not None and t[0] <= e[0] <= e[1] <= t[1] and 0 <= e[0] and e[1] < ax.size
        for f in fields:                      # periodic fields repeat: field(o + P) = field(o) + J
            if f.kind == "periodic":
                for o in range(-3, 5):
                    a, b = f.at(o), f.at(o + f.P)
                    assert (a is None) == (b is None)
                    if a:
                        assert (b[0] - a[0], b[1] - a[1]) == (f.J, f.J)


def test_upsampling_makes_the_field_position_dependent():
    m = model_of([{"id": "up", "op": "upsample", "scale": 2}, conv(1, 3, p=1)], shape=(1, 8, 8))
    up, c = rf_of(m, "up")[0], rf_of(m, "c1")[0]
    assert up["jump"] == Fraction(1, 2) and up["size_min"] == up["size_max"] == 1
    # after ×2 nearest, a 3-wide window covers 2 input positions at one phase, 3... no: o−1..o+1
    # map to ⌊(o−1)/2⌋..⌊(o+1)/2⌋: 2 positions for every o
    assert (c["size_min"], c["size_max"], c["jump"]) == (2, 2, Fraction(1, 2))
    d = json.loads(m.to_json())
    assert d["layers"][0]["rf"][0]["jump"] == "1/2"
    m = model_of([{"id": "up", "op": "conv_transpose2d", "out": 2, "kernel": 3, "stride": 2, "padding": 1}],
                 shape=(1, 8, 8))
    s = rf_of(m, "up")[0]
    # o even reads i = o/2 only; o odd reads (o−1)/2 and (o+1)/2
    assert (s["size_min"], s["size_max"], s["jump"]) == (1, 2, Fraction(1, 2))


# -- merges ----------------------------------------------------------------------------------------
def test_inception_branches_aligned():
    m = model_of([
        {"id": "b1", "op": "conv2d", "in": "x", "out": 2, "kernel": 1},
        {"id": "b3", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 1},
        {"id": "b5", "op": "conv2d", "in": "x", "out": 2, "kernel": 5, "padding": 2},
        {"id": "bp", "op": "maxpool2d", "in": "x", "kernel": 3, "stride": 1, "padding": 1},
        {"id": "cat", "op": "concat", "in": ["b1", "b3", "b5", "bp"]},
    ])
    assert [s["size_max"] for s in rf_of(m, "cat")] == [5, 5]
    assert rf_of(m, "cat")[0]["start"] == -2
    assert RF.warnings(m.graph) == []


def test_misaligned_residual_warns():
    # an even 'same' kernel puts the extra padding on the right: centre shifted by ½
    m = model_of([
        {"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 1},
        {"id": "b", "op": "conv2d", "in": "x", "out": 2, "kernel": 2, "padding": "same"},
        {"id": "add", "op": "add", "in": ["a", "b"]},
    ])
    s = rf_of(m, "add")[0]
    assert (s["start"], s["size_max"]) == (-1, 3)       # hull of [−1, 1] and [0, 1]
    w = RF.warnings(m.graph)
    assert len(w) == 2 and all(nid == "add" for nid, _ in w)
    assert "offset 1/2" in w[0][1] and "'a' 0" in w[0][1] and "'b' 1/2" in w[0][1]
    d = json.loads(m.to_json())
    assert d["layers"][-1]["rf_warnings"] == [msg for _, msg in w]
    assert "misaligned" in m.summary()


# -- global and beyond-the-axes ----------------------------------------------------------------------
def test_global_pooling_and_flatten_linear():
    m = model_of([conv(0, 3, 2, 1), {"id": "gap", "op": "global_avgpool"}, {"id": "fl", "op": "flatten"},
                  {"id": "fc", "op": "linear", "out": 3}], shape=(2, 16, 12))
    for nid in ("gap", "fl", "fc"):
        assert [(s["global"], s["size_max"]) for s in rf_of(m, nid)] == [(True, 16), (True, 12)]
    m = model_of([conv(0, 3, 2, 1), {"id": "fl", "op": "flatten"}, {"id": "fc", "op": "linear", "out": 3}],
                 shape=(2, 8, 8))
    # flatten alone: each element is one position of the conv output, whose field it keeps
    assert [(s["global"], s["size_min"], s["size_max"]) for s in rf_of(m, "fl")] == [(False, 3, 3)] * 2
    assert all(s["global"] for s in rf_of(m, "fc"))
    # flat index 5 of (2, 4, 4) is channel 0, (1, 1): rows and columns 1·2 − 1 .. 1·2 − 1 + 2
    assert field_of(m, "fl", 5) == [(1, 3), (1, 3)]


def test_sequences_causal_prefix_and_global():
    inputs = {"x": {"shape": [7, 4]}}
    m = model_of([{"id": "rnn", "op": "rnn", "out": 3}, {"id": "fc", "op": "linear", "out": 2},
                  {"id": "last", "op": "last_step", "in": "rnn"},
                  {"id": "rev", "op": "reverse", "in": "x"}, {"id": "rnn2", "op": "gru", "in": "rev", "out": 3},
                  {"id": "bi", "op": "lstm", "in": "x", "out": 3, "bidirectional": True},
                  {"id": "pick", "op": "select_step", "in": "x", "index": 2}], inputs=inputs)
    ctx = run(m.graph, "rf")
    assert [a.name for a in ctx.axes] == ["T"] and ctx.layout == "sequence"
    for nid in ("rnn", "fc"):
        s = rf_of(m, nid)[0]
        assert (s["size_min"], s["size_max"], s["start"], s["global"]) == (1, 7, 0, False)
        assert [field_of(m, nid, t) for t in range(7)] == [[(0, t)] for t in range(7)]
    assert field_of(m, "rnn2", 2) == [(4, 6)]                 # reversed, then causal: a suffix
    assert rf_of(m, "last")[0]["size_max"] == 7 and not rf_of(m, "last")[0]["global"]
    assert rf_of(m, "bi")[0]["global"]
    assert rf_of(m, "pick")[0]["size_max"] == 1 and field_of(m, "pick") == [(2, 2)]


def test_tokens_and_attention():
    inputs = {"tokens": {"shape": [6]}}
    m = model_of([{"id": "emb", "op": "embedding", "num": 10, "dim": 4},
                  {"id": "att", "op": "multihead_attention", "in": ["emb"], "heads": 2}], inputs=inputs)
    assert rf_of(m, "emb")[0]["size_max"] == 1
    assert rf_of(m, "att")[0]["global"]


# -- robustness ---------------------------------------------------------------------------------------
def test_missing_rule_is_unavailable_not_a_number(monkeypatch):
    monkeypatch.setattr(type(registry["lrn"]), "receptive_field", Op.receptive_field)
    m = model_of([conv(0, 3), {"id": "n", "op": "lrn"}, conv(1, 3)])
    d = json.loads(m.to_json())
    by = {l["id"]: l for l in d["layers"]}
    assert by["c0"]["rf"][0]["size_max"] == 3
    for nid in ("n", "c1"):
        assert by[nid]["rf"] is None and "'lrn' has no receptive_field rule" in by[nid]["rf_note"]
    assert "n/a" in m.summary()
    with pytest.raises(ValueError, match="no receptive_field rule"):
        field_of(m, "c1", 0)


def test_a_failing_rule_or_pass_never_breaks_the_summary(monkeypatch):
    def boom(self, a, ins, outs):
        raise RuntimeError("boom")
    monkeypatch.setattr(type(registry["relu"]), "receptive_field", boom)
    m = model_of([conv(0, 3), {"id": "r", "op": "relu"}])
    d = json.loads(m.to_json())
    assert d["layers"][1]["rf"] is None and "boom" in d["layers"][1]["rf_note"]
    monkeypatch.setattr(RF, "rf_pass", lambda g, i=None: 1 / 0)
    m = model_of([conv(0, 3)])
    assert "rf" not in json.loads(m.to_json())["layers"][0]
    assert "c0" in m.summary()


def test_json_contract():
    m = model_of([conv(0, 3, 2, 1), {"id": "b", "op": "batchnorm2d"}, {"id": "gap", "op": "global_avgpool"}])
    layers = json.loads(m.to_json())["layers"]
    for l in layers:
        assert isinstance(l["rf"], list) and len(l["rf"]) == 2
        for a in l["rf"]:
            assert set(a) == {"axis", "size_min", "size_max", "jump", "start", "global"}
    assert layers[0]["rf"][0] == {"axis": "H", "size_min": 3, "size_max": 3, "jump": 2, "start": -1, "global": False}
    assert layers[-1]["rf"][1]["global"] is True


def test_no_spatial_input():
    m = model_of([{"id": "fc", "op": "linear", "out": 3}], inputs={"v": {"shape": [5]}})
    d = json.loads(m.to_json())["layers"][0]
    assert d["rf"] is None and "no input" in d["rf_note"]


def test_long_chain_is_linear_time():
    """4× the layers cost about 4× the time (quadratic would be 16×). A ratio within one
    run, best of three each, so a loaded machine does not fail it."""
    def cost(n):
        m = model_of([{"id": "c", "op": "conv2d", "out": 1, "kernel": 3, "padding": 1, "repeat": n}],
                     shape=(1, 8, 8))
        best = float("inf")
        for _ in range(3):
            for n_ in m.graph.nodes.values():
                n_.meta.pop(M.RF, None)
            gc.collect()
            gc.disable()        # the pass's own cost: a big heap left by other tests makes
            try:                # the collector's share grow with it
                t = time.perf_counter()
                RF.rf_pass(m.graph)
                json.dumps(m.to_dict())
                best = min(best, time.perf_counter() - t)
            finally:
                gc.enable()
        return m, best
    _, small = cost(2500)
    m, big = cost(10000)
    assert rf_of(m, m.layers[-1].id)[0]["size_max"] == 1 + 2 * 10000
    assert big / small < 8, f"4× the layers took {big / small:.1f}× the time ({small:.2f} s → {big:.2f} s)"
