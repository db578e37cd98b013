"""The static receptive field equals the gradient oracle exactly: the bounding box of the
non-zero input gradient of one output position (tests/rf/oracle.py) is the interval
`field_of` computes, clipped to the input — for single layers over many (k, s, p, d),
random chains, branches, transposed convolutions, upsampling at every phase, and the
position-dependent ops; at interior positions it is also the theoretical field."""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from archviz.errors import ArchvizError  # noqa: E402
from archviz.passes import rf as RF, run  # noqa: E402
from archviz.passes.rf_exact import field_of  # noqa: E402

from .helpers import model_of  # noqa: E402
from .oracle import oracle_boxes, prepared, static_boxes  # noqa: E402

_DEEP = int(os.environ.get("ARCHVIZ_HYPOTHESIS_EXAMPLES", "0"))
torch.set_num_threads(min(4, torch.get_num_threads()))


def every_position(m, nid, port="out"):
    """All positions of the node's output: (i, i) along the longer axis, the other wrapping."""
    node = m.graph.nodes[nid]
    fields = node.meta["rf"].fields[port]
    shape = node.meta["shapes"][port]
    sizes = [shape[f.dim] if f.dim is not None and f.kind != "fixed" else 1 for f in fields]
    return [tuple(o % n for n in sizes) for o in range(max(sizes))]


def check(m, nid, positions=None, port="out", gm=None, interior=False):
    positions = positions or every_position(m, nid, port)
    got = oracle_boxes(m, nid, positions, port=port, gm=gm)
    want = static_boxes(m, nid, positions, port=port)
    for pos, o, s in zip(positions, got, want):
        assert o == [x and tuple(x) for x in s], f"{nid} at {pos}: oracle {o}, static {s}"
        if interior:             # where the theoretical field fits in the input, it is the exact one
            th = field_of(m, nid, pos, port=port, clip=False)
            ctx = run(m.graph, "rf")
            if all(t and 0 <= t[0] and t[1] < ax.size for t, ax in zip(th, ctx.axes)):
                assert o == [tuple(t) for t in th], f"{nid} at {pos}: oracle {o}, theory {th}"
    return got


# -- single layers over many (k, s, p, d) -------------------------------------------------------------
GEOMS = [(k, s, p, d) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3) for p in (0, 1, 2) for d in (1, 2)
         if d * (k - 1) + 1 <= 13 + 2 * p]


@pytest.mark.parametrize("g1,g2", list(zip(GEOMS[0::2], GEOMS[1::2])),
                         ids=lambda g: "k{}s{}p{}d{}".format(*g))
def test_single_conv(g1, g2):
    """Two geometries per layer (one per axis): k, s, p, d all vary, even kernels included."""
    m = model_of([{"id": "c", "op": "conv2d", "out": 2, "kernel": [g1[0], g2[0]], "stride": [g1[1], g2[1]],
                   "padding": [g1[2], g2[2]], "dilation": [g1[3], g2[3]]}], shape=(2, 13, 14))
    check(m, "c", interior=True)


@pytest.mark.parametrize("k,d", [(2, 1), (4, 1), (3, 2), (4, 3), (5, 2), (1, 1)])
def test_same_padding(k, d):
    """'same': left = ⌊d(k − 1)/2⌋ (torch): an even kernel's centre moves by ½."""
    m = model_of([{"id": "c", "op": "conv2d", "out": 2, "kernel": [k, 3], "padding": "same",
                   "dilation": [d, 1]}], shape=(2, 12, 11))
    check(m, "c", interior=True)
    m1 = model_of([{"id": "c1", "op": "conv1d", "out": 2, "kernel": k, "padding": "same", "dilation": d}],
                  shape=(2, 12))
    check(m1, "c1", interior=True)
    s = RF.layer_rf(m.graph.nodes["c"])[0][0]
    assert s["start"] == -(d * (k - 1) // 2)


@pytest.mark.parametrize("op,k,s,p,d,ceil", [
    ("maxpool2d", 2, 2, 0, 1, False), ("maxpool2d", 3, 2, 1, 1, True), ("maxpool2d", 3, 1, 1, 2, False),
    ("maxpool2d", 2, 3, 1, 2, True), ("maxpool2d", 3, 3, 0, 1, True), ("avgpool2d", 3, 2, 1, 1, True),
    ("avgpool2d", 2, 2, 0, 1, False), ("avgpool2d", 4, 3, 2, 1, True), ("avgpool2d", 3, 2, 0, 1, False),
])
def test_single_pool(op, k, s, p, d, ceil):
    node = {"id": "p", "op": op, "kernel": k, "stride": s, "padding": p, "ceil_mode": ceil}
    if op == "maxpool2d":
        node["dilation"] = d
    m = model_of([node], shape=(2, 13, 10))
    check(m, "p", interior=True)


def test_conv1d_and_groups():
    m = model_of([{"id": "c", "op": "conv1d", "out": 4, "kernel": 3, "stride": 2, "padding": 1, "groups": 2},
                  {"id": "d", "op": "conv1d", "out": 4, "kernel": 2, "dilation": 3, "groups": 4}],
                 shape=(4, 17))
    assert [a.name for a in run(m.graph, "rf").axes] == ["L"]
    check(m, "d", interior=True)


# -- random chains -----------------------------------------------------------------------------------
layer = st.one_of(
    st.tuples(st.just("conv2d"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2)),
    st.tuples(st.sampled_from(["maxpool2d", "avgpool2d"]), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1),
              st.integers(1, 2)),
    st.tuples(st.just("pad"), st.integers(-1, 2), st.integers(-1, 2), st.sampled_from(["constant", "replicate"]),
              st.none()),
)


def chain(layers):
    nodes = []
    for i, (op, a, b, c, d) in enumerate(layers):
        if op == "conv2d":
            nodes.append({"id": f"n{i}", "op": op, "out": 2, "kernel": a, "stride": b, "padding": c, "dilation": d})
        elif op == "pad":
            nodes.append({"id": f"n{i}", "op": "pad", "pads": [a, b, b, a], "mode": c})
        else:
            nd = {"id": f"n{i}", "op": op, "kernel": a, "stride": b, "padding": min(c, a // 2)}
            if op == "maxpool2d":
                nd["dilation"] = d
            nodes.append(nd)
    return nodes


@settings(deadline=None, max_examples=_DEEP or 25, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(layer, min_size=1, max_size=5), st.integers(0, 1000))
def test_random_chains(layers, seed):
    try:
        m = model_of(chain(layers), shape=(1, 19, 16))
    except ArchvizError:
        assume(False)
    gm = prepared(m)
    last = m.layers[-1].id
    check(m, last, gm=gm)
    mid = m.layers[seed % len(m.layers)].id
    check(m, mid, gm=gm)


# -- branches ------------------------------------------------------------------------------------------
def test_residual_aligned():
    m = model_of([
        {"id": "c1", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "r1", "op": "relu"},
        {"id": "c2", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "add", "op": "add", "in": ["c2", "x"]},
        {"id": "down", "op": "conv2d", "in": "add", "out": 2, "kernel": 1, "stride": 2},
        {"id": "c3", "op": "conv2d", "in": "add", "out": 2, "kernel": 3, "stride": 2, "padding": 1},
        {"id": "add2", "op": "add", "in": ["c3", "down"]},
    ], shape=(2, 15, 12))
    assert RF.warnings(m.graph) == []
    check(m, "add", interior=True)
    check(m, "add2", interior=True)


def test_residual_misaligned_warns():
    m = model_of([
        {"id": "a", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "b0", "op": "conv2d", "in": "x", "out": 2, "kernel": 3},
        {"id": "b", "op": "pad", "pads": [2, 0, 0, 2]},           # W: 2 on the left, H: 2 at the bottom
        {"id": "add", "op": "add", "in": ["a", "b"]},
        {"id": "c", "op": "conv2d", "out": 2, "kernel": 2, "stride": 2},
    ], shape=(2, 12, 13))
    w = [msg for _, msg in RF.warnings(m.graph)]
    assert len(w) == 2 and "offset 1" in w[0] and "offset 1" in w[1]
    check(m, "add", interior=True)
    check(m, "c", interior=True)


@pytest.mark.parametrize("aligned", [True, False])
def test_inception(aligned):
    k2 = {"kernel": 5, "padding": 2} if aligned else {"kernel": 4, "padding": "same"}
    m = model_of([
        {"id": "b1", "op": "conv2d", "in": "x", "out": 2, "kernel": 1},
        {"id": "b3r", "op": "conv2d", "in": "x", "out": 2, "kernel": 1},
        {"id": "b3", "op": "conv2d", "in": "b3r", "out": 2, "kernel": 3, "padding": 1},
        {"id": "b5", "op": "conv2d", "in": "x", "out": 2, **k2},
        {"id": "bp", "op": "maxpool2d", "in": "x", "kernel": 3, "stride": 1, "padding": 1},
        {"id": "bpc", "op": "conv2d", "in": "bp", "out": 2, "kernel": 1},
        {"id": "cat", "op": "concat", "in": ["b1", "b3", "b5", "bpc"]},
        {"id": "red", "op": "conv2d", "in": "cat", "out": 2, "kernel": 3, "stride": 2},
    ], shape=(2, 14, 13))
    assert bool(RF.warnings(m.graph)) == (not aligned)
    check(m, "cat", interior=True)
    check(m, "red", interior=True)


def test_concat_along_an_axis_and_center_crop():
    m = model_of([
        {"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3},
        {"id": "b", "op": "maxpool2d", "in": "x", "kernel": 2},
        {"id": "crop", "op": "center_crop", "in": ["a", "b"]},
        {"id": "w", "op": "concat", "in": ["crop", "b"], "axis": 3},       # side by side along W
        {"id": "c", "op": "conv2d", "in": "w", "out": 2, "kernel": 3, "padding": 1},
    ], shape=(2, 14, 12))
    check(m, "crop")
    check(m, "w")
    check(m, "c")


# -- position-dependent: transposed convolution and upsampling, every phase ------------------------------
@pytest.mark.parametrize("k,s,p,op,d", [(3, 2, 1, 1, 1), (4, 2, 1, 0, 1), (2, 2, 0, 0, 1), (3, 3, 0, 2, 1),
                                        (3, 2, 0, 1, 2), (5, 2, 2, 1, 1), (1, 2, 0, 0, 1)])
def test_transposed_conv(k, s, p, op, d):
    m = model_of([
        {"id": "t", "op": "conv_transpose2d", "out": 2, "kernel": k, "stride": s, "padding": p,
         "output_padding": op, "dilation": d},
        {"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "c2", "op": "conv2d", "out": 2, "kernel": 3, "stride": 2},
    ], shape=(2, 7, 8))
    gm = prepared(m)
    for nid in ("t", "c", "c2"):
        check(m, nid, gm=gm, interior=True)


@pytest.mark.parametrize("mode,scale,size,align", [
    ("nearest", 2, None, False), ("nearest", 3, None, False), ("nearest", None, [11, 5], False),
    ("bilinear", 2, None, False), ("bilinear", 3, None, False), ("bilinear", 2, None, True),
    ("bilinear", None, [13, 6], True), ("bilinear", None, [11, 17], False), ("nearest", None, [16, 13], False),
])
def test_upsampling_every_phase(mode, scale, size, align):
    up = {"id": "up", "op": "upsample", "mode": mode}
    up.update({"scale": scale} if scale else {"size": size})
    if mode == "bilinear":
        up["align_corners"] = align
    m = model_of([{"id": "c0", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1}, up,
                  {"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
                  {"id": "p", "op": "maxpool2d", "kernel": 2}], shape=(2, 7, 8))
    gm = prepared(m)
    for nid in ("up", "c", "p"):
        check(m, nid, gm=gm, interior=True)
    s = RF.layer_rf(m.graph.nodes["c"])[0]
    if scale == 2 and mode == "nearest":
        assert [(a["size_min"], a["size_max"]) for a in s] == [(4, 4)] * 2   # 3 ×2-positions → 2 + conv0's 2


def test_adaptive_pooling_and_reflect_padding():
    m = model_of([
        {"id": "pad", "op": "pad", "pads": [2, 1, 1, 3], "mode": "reflect"},
        {"id": "c", "op": "conv2d", "out": 2, "kernel": 3},
        {"id": "ad", "op": "adaptive_avgpool2d", "size": [4, 3]},
    ], shape=(2, 10, 7))
    gm = prepared(m)
    check(m, "pad", gm=gm)
    check(m, "c", gm=gm)
    check(m, "ad", gm=gm, interior=True)


def test_global_fields_cover_the_input():
    m = model_of([{"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "stride": 2},
                  {"id": "fl", "op": "flatten"}, {"id": "fc", "op": "linear", "out": 3},
                  {"id": "gap", "op": "global_avgpool", "in": "c"}], shape=(2, 11, 9))
    for nid in ("fc", "gap"):
        assert all(s["global"] for s in RF.layer_rf(m.graph.nodes[nid])[0])
        assert check(m, nid, positions=[(0, 0)])[0] == [(0, 10), (0, 8)]
    check(m, "fl", positions=[(f, f) for f in range(0, 32, 3)])


# -- sequences -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op,bidir", [("rnn", False), ("gru", False), ("lstm", False), ("lstm", True)])
def test_recurrences(op, bidir):
    m = model_of([{"id": "r", "op": op, "out": 3, "bidirectional": bidir},
                  {"id": "fc", "op": "linear", "out": 2},
                  {"id": "rev", "op": "reverse", "in": "x"}, {"id": "r2", "op": op, "in": "rev", "out": 3}],
                 inputs={"x": {"shape": [6, 3]}})
    gm = prepared(m)
    for nid in ("r", "fc", "r2"):
        check(m, nid, gm=gm)
    s = RF.layer_rf(m.graph.nodes["r"])[0][0]
    assert s["global"] == bidir and (bidir or (s["size_min"], s["size_max"]) == (1, 6))


def test_attention_decoder():
    """attention_gru: s_t reads x_0..x_t, but the context and weights of step t are computed
    from s_t−1, so they read x_0..x_t−1 (nothing of x at t = 0); all read the whole memory."""
    m = model_of([{"id": "d", "op": "attention_gru", "in": {"x": "x", "memory": "mem"}, "out": 3, "dim": 2}],
                 inputs={"x": {"shape": [6, 3]}, "mem": {"shape": [5, 4]}})
    gm = prepared(m)
    for port in ("out", "context"):
        check(m, "d", port=port, gm=gm)
    fields = [field_of(m, "d", (t,), port="context") for t in range(6)]
    assert fields[0] == [None] and fields[1:] == [[(0, t - 1)] for t in range(1, 6)]


def test_broadcast_gates():
    """A squeeze-and-excitation gate (global, broadcast back) and a per-column gate (size-1 H
    broadcast over H): the product's field is the hull of both."""
    m = model_of([
        {"id": "c", "op": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"id": "sq", "op": "global_avgpool"}, {"id": "fc", "op": "conv2d", "out": 4, "kernel": 1},
        {"id": "g", "op": "sigmoid"}, {"id": "se", "op": "mul", "in": ["c", "g"]},
        {"id": "col", "op": "adaptive_avgpool2d", "in": "c", "size": [1, 9]},
        {"id": "cg", "op": "mul", "in": ["c", "col"]},
        {"id": "out", "op": "conv2d", "in": "cg", "out": 2, "kernel": 3, "stride": 2},
    ], shape=(2, 10, 9))
    assert all(s["global"] for s in RF.layer_rf(m.graph.nodes["se"])[0])
    h, w = RF.layer_rf(m.graph.nodes["cg"])[0]
    # H: the column mean reads every row of c, whose 3×3 padding reaches one row past each end
    assert not h["global"] and h["size_max"] == 12 and (w["size_min"], w["size_max"]) == (3, 3)
    gm = prepared(m)
    for nid in ("se", "cg", "out"):
        check(m, nid, gm=gm)


# -- taking tensors apart: split parts, slices, shuffles (issue 12) ---------------------------------------
def test_split_parts_and_slices():
    m = model_of([
        {"id": "c0", "op": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"id": "s", "op": "split", "sizes": [3, 6], "dim": 2},              # along H: rows 0-2 and 3-8
        {"id": "a", "op": "conv2d", "in": "s.1", "out": 2, "kernel": 3},
        {"id": "sl", "op": "slice", "in": "c0", "dim": 3, "start": 1, "end": -1, "step": 3},
        {"id": "b", "op": "conv2d", "in": "sl", "out": 2, "kernel": [1, 2]},
    ], shape=(2, 9, 11))
    gm = prepared(m)
    check(m, "s", gm=gm, port="1")
    check(m, "s", gm=gm, port="0")
    for nid in ("a", "sl", "b"):
        check(m, nid, gm=gm)


@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_and_unshuffle(r):
    m = model_of([
        {"id": "c0", "op": "conv2d", "out": 2 * r * r, "kernel": 3, "padding": 1},
        {"id": "ps", "op": "pixel_shuffle", "factor": r},
        {"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "pu", "op": "pixel_unshuffle", "factor": r},
        {"id": "c2", "op": "conv2d", "out": 2, "kernel": 2},
    ], shape=(2, 5, 4))
    gm = prepared(m)
    for nid in ("ps", "c", "pu", "c2"):
        check(m, nid, gm=gm)


def test_channel_shuffle_keeps_positions():
    m = model_of([
        {"id": "c0", "op": "conv2d", "out": 6, "kernel": 3, "padding": 1},
        {"id": "sh", "op": "channel_shuffle", "groups": 3},
        {"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "stride": 2},
    ], shape=(2, 8, 7))
    gm = prepared(m)
    for nid in ("sh", "c"):
        check(m, nid, gm=gm)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_to_another_nodes_size(mode):
    m = model_of([
        {"id": "skip", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "down", "op": "maxpool2d", "kernel": 2},
        {"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "up", "op": "upsample", "in": ["c", "skip"], "mode": mode},
    ], shape=(2, 11, 9))
    gm = prepared(m)
    check(m, "up", gm=gm)
