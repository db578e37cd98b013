"""The exam's specs, parameterised: every variant of a question is one `-p`. Expected numbers
are derived here from the formulas (torch.nn.Conv2d / MaxPool2d / ConvTranspose2d docs, the
receptive-field recurrence r_l = r_{l−1} + (k − 1)·j, He et al. 2016 Table 1), not copied."""
from __future__ import annotations

import os

import pytest

import archviz
from archviz.passes import rf as RF, run

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")


def load(name, **kw):
    return archviz.load(os.path.join(SPECS, f"{name}.yaml"), **kw)


def rf_size(m):
    run(m.graph, "rf")
    last = [l for l in m.layers if RF.layer_rf(l.node)[0]][-1]
    sums, _ = RF.layer_rf(last.node)
    assert len({s["size_max"] for s in sums}) == 1
    return sums[0]["size_max"]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_n_stacked_3x3_see_1_plus_2n(n):
    C, H = 64, 56
    for name in ("exam_two_3x3", "exam_three_3x3"):
        m = load(name, n=n)
        assert rf_size(m) == 1 + 2 * n                 # r = 1 + n·(3 − 1)
        assert m.totals["params"] == n * 9 * C * C
        assert m.totals["macs"] == n * 9 * C * C * H * H


@pytest.mark.parametrize("k", [3, 5, 7, 9])
def test_one_kxk_baseline(k):
    m = load("exam_one_7x7", k=k)
    assert rf_size(m) == k and m.totals["params"] == k * k * 64 * 64
    assert m.output_shapes["y"] == (1, 64, 56, 56)     # padding k // 2 keeps the size


@pytest.mark.parametrize("size,kernel,stride,kind,out", [
    (13, 3, 2, "max", 6),      # AlexNet's overlapping pooling: ⌊(13 − 3)/2⌋ + 1
    (13, 2, 2, "max", 6),      # non-overlapping: ⌊(13 − 2)/2⌋ + 1 = 6 (the exam writes 6.5 ≈ 6)
    (55, 3, 2, "max", 27),     # AlexNet's pool1
    (13, 3, 2, "avg", 6),
    (224, 2, 2, "avg", 112),
])
def test_pool_question(size, kernel, stride, kind, out):
    m = load("exam_pool", size=size, kernel=kernel, stride=stride, kind=kind)
    assert m.output_shapes["y"] == (1, 256, out, out)
    assert [l.op for l in m.layers] == [f"{kind}pool2d"]


def test_pool_kind_is_checked():
    with pytest.raises(archviz.errors.ArchvizError, match="kind is max or avg"):
        load("exam_pool", kind="min")


@pytest.mark.parametrize("size,k,s,p,op,out", [
    (14, 3, 2, 0, 0, 29),      # the exam: (14 − 1)·2 + 3
    (14, 2, 2, 0, 0, 28),      # U-Net's 2x2 up-convolution
    (32, 4, 2, 1, 0, 64),
    (32, 3, 2, 1, 1, 64),
    (7, 5, 3, 0, 0, 23),
])
def test_transposed_conv_question(size, k, s, p, op, out):
    m = load("exam_transposed_conv", size=size, kernel=k, stride=s, padding=p, output_padding=op)
    # torch.nn.ConvTranspose2d: H_out = (H − 1)·s − 2p + (k − 1) + output_padding + 1
    assert (size - 1) * s - 2 * p + (k - 1) + op + 1 == out
    assert m.output_shapes["out"] == (1, 32, out, out)
    assert m.totals["params"] == 64 * 32 * k * k + 32
    assert m.totals["macs"] == 64 * size * size * 32 * k * k


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_conv1_bias_switch(name):
    off, on = load(name), load(name, conv1_bias=True)
    assert off.layer("conv1").params.total == 7 * 7 * 3 * 64 == 9_408
    assert on.layer("conv1").params.total == 7 * 7 * 3 * 64 + 64 == 9_472
    assert on.totals["params"] - off.totals["params"] == 64


def test_resnet50_v1_vs_v1_5():
    v15, v1 = load("resnet50"), load("resnet50", v1=True)
    assert v15.totals["params"] == v1.totals["params"]          # only where the stride sits
    # torchvision's figure for resnet50 (v1.5): 4.09 GFLOPS in its model docs (= MACs)
    assert v15.totals["macs"] == 4_089_184_256
    # v1 strides the first 1x1 of stages 2-4: that 1x1 (C_in → width) runs at the output
    # resolution H/2 instead of H; the 3x3 has the same output size either way.
    diff = 0
    for stage, (H, c_in, width) in enumerate([(56, 256, 128), (28, 512, 256), (14, 1024, 512)], start=2):
        a, b = v15.layer(f"layer{stage}.0.conv1"), v1.layer(f"layer{stage}.0.conv1")
        assert a.macs == H * H * c_in * width and b.macs == (H // 2) ** 2 * c_in * width
        assert v15.layer(f"layer{stage}.0.conv2").macs == v1.layer(f"layer{stage}.0.conv2").macs
        diff += a.macs - b.macs
    assert diff == 3 * 77_070_336
    assert v1.totals["macs"] == v15.totals["macs"] - diff == 3_857_973_248      # the paper's "3.8 × 10⁹"
    assert v1.output_shapes == v15.output_shapes
