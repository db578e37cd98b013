"""Misaligned merges when a field depends on the output position (audit item D).

Misaligned means: the fields the inputs give one output position are centred on different
input positions, on average over the output positions.  An affine field (no upsampling) has
one offset; after a transposed convolution or an upsampling a field's centre moves around
its mean from one position to the next (the up path of a U-Net alternates ±), and only the
mean over one period says whether the paths are shifted against each other.  The truth here
is the gradient oracle's boxes at interior positions, one period of them."""
from __future__ import annotations

import os
from fractions import Fraction

import pytest

import archviz
from archviz.passes import rf as RF

from .helpers import model_of

torch = pytest.importorskip("torch")

from .oracle import oracle_boxes, prepared  # noqa: E402

SPECS = os.path.join(os.path.dirname(__file__), "..", "..", "specs")


def u_net_level(skip):
    """A skip path ``skip`` and an up path (2×2 max-pool, 3×3 conv, 2×2 up-convolution) joined by
    a channel concat, on a 16 × 16 input."""
    return model_of(skip + [
        {"id": "d", "op": "maxpool2d", "in": "x", "kernel": 2},
        {"id": "dc", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"id": "u", "op": "conv_transpose2d", "out": 2, "kernel": 2, "stride": 2},
        {"id": "cat", "op": "concat", "in": ["s", "u"]},
    ], shape=(2, 16, 16))


ALIGNED = [{"id": "s", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 1}]
SHIFTED = [{"id": "s0", "op": "conv2d", "in": "x", "out": 2, "kernel": 3},
           {"id": "s", "op": "pad", "pads": [2, 0, 2, 0]}]          # 2 on the left of W and on top of H


def oracle_mean_centres(m, nids, P, o0=6):
    """Per node: the mean over output positions o0..o0 + P − 1 (both axes alike) of the centre of
    the oracle's box along H."""
    gm = prepared(m)
    out = {}
    for nid in nids:
        boxes = oracle_boxes(m, nid, [(o, o) for o in range(o0, o0 + P)], gm=gm)
        out[nid] = sum(Fraction(b[0][0] + b[0][1], 2) for b in boxes) / P
    return out


@pytest.mark.parametrize("skip,aligned", [(ALIGNED, True), (SHIFTED, False)])
def test_position_dependent_merge_warns_only_when_shifted_on_average(skip, aligned):
    m = u_net_level(skip)
    f = m.graph.nodes["cat"].meta["rf"].fields["out"][0]
    assert f.P == 2
    # the up path's centre alternates around the skip path's at every position (so a check of
    # output position 0 alone would call the aligned case misaligned), but on average:
    c = oracle_mean_centres(m, ["s", "u"], f.P)
    assert (c["s"] == c["u"]) == aligned
    w = [msg for nid, msg in RF.warnings(m.graph) if nid == "cat"]
    if aligned:
        assert w == []
        gm = prepared(m)
        per = [oracle_boxes(m, nid, [(6, 6), (7, 7)], gm=gm) for nid in ("s", "u")]
        assert {sum(b[0]) for b in per[0]} != {sum(b[0]) for b in per[1]}   # not equal position by position
        return
    assert len(w) == 2                                       # H and W
    offset = abs(c["s"] - c["u"])
    assert f"(offset {RF._num(offset)})" in w[0]
    assert "over one period of 2 output positions" in w[0]
    assert "centred on different input positions" in w[0]


def test_affine_warning_says_what_misaligned_means():
    m = model_of([
        {"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 1},
        {"id": "b", "op": "conv2d", "in": "x", "out": 2, "kernel": 2, "padding": "same"},
        {"id": "add", "op": "add", "in": ["a", "b"]},
    ])
    (_, msg), _ = RF.warnings(m.graph)
    assert "centred on different input positions" in msg and "over one period" not in msg


def test_canonical_unet_has_no_misaligned_merge():
    m = archviz.load(os.path.join(SPECS, "unet.yaml"))
    assert RF.warnings(m.graph) == []
    assert "misaligned" not in m.summary()


def test_a_field_with_holes_is_compared_where_it_exists():
    """A 1×1 stride-2 transposed convolution reads x_{t/2} at even t and nothing at odd t (a
    hole); a 3×3 stride-2 one (padding 1) reads x_{t/2} at even t and x_{(t−1)/2}, x_{(t+1)/2}
    at odd t: centred on t/2 everywhere. Where both exist they agree: no warning (averaging
    each over its own positions would make 0 against 1/4 and warn)."""
    m = model_of([
        {"id": "a", "op": "conv_transpose2d", "in": "x", "out": 2, "kernel": 1, "stride": 2, "output_padding": 1},
        {"id": "b", "op": "conv_transpose2d", "in": "x", "out": 2, "kernel": 3, "stride": 2, "padding": 1,
         "output_padding": 1},
        {"id": "m", "op": "add", "in": ["a", "b"]},
    ], shape=(2, 8, 8))
    gm = prepared(m)
    for t in (2, 4):                                   # the oracle: both read x_{t/2} at even t
        assert oracle_boxes(m, "a", [(t, t)], gm=gm)[0] == [(t // 2, t // 2)] * 2
        assert oracle_boxes(m, "b", [(t, t)], gm=gm)[0] == [(t // 2, t // 2)] * 2
    assert oracle_boxes(m, "a", [(3, 3)], gm=gm)[0] == [None, None]       # a hole
    assert oracle_boxes(m, "b", [(3, 3)], gm=gm)[0] == [(1, 2)] * 2       # centred on 3/2
    assert not [w for w in m.graph.nodes["m"].meta["rf"].warnings if "misaligned" in w]
