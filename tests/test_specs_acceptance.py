"""The architecture library against independent truths: torchvision's published parameter
counts (https://pytorch.org/vision/stable/models.html, the "Params" column), MAC counts
derived from the conv/linear formulas, the papers' figures (AlexNet 2012 Fig. 2, U-Net 2015
Fig. 1) and hand-written torch modules (tests/torch_reference.py)."""
from __future__ import annotations

import glob
import os

import pytest

import archviz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")


def load(name, **kw):
    return archviz.load(os.path.join(SPECS, f"{name}.yaml"), **kw)


# torchvision model docs, "Params" (exact counts from sum(p.numel() for p in m.parameters()))
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840, "vgg16": 138_357_544, "vgg19": 143_667_240, "resnet18": 11_689_512,
    "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160, "resnet152": 60_192_808,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_params_equal_torchvision(name):
    m = load(name)
    assert m.totals["params"] == TORCHVISION_PARAMS[name]
    assert m.totals["trainable_params"] == TORCHVISION_PARAMS[name]


# conv + linear multiply-accumulates at 1x3x224x224, bias adds excluded (the convention of
# torchinfo's "mult-adds" and half of FlopCounterMode's count). Sources: torchvision's model docs,
# "GFLOPS" column (which counts MACs): alexnet 0.71, vgg16 15.47, resnet18 1.81, resnet50 4.09;
# the exact values are derived by hand for AlexNet below and re-derived by torch's
# FlopCounterMode on the hand-written modules in test_macs_equal_torch_flop_counter.
MACS_224 = {"alexnet": 714_188_480, "vgg16": 15_470_264_320, "resnet18": 1_814_073_344,
            "resnet50": 4_089_184_256}


@pytest.mark.parametrize("name", sorted(MACS_224))
def test_macs_at_224(name):
    assert load(name).totals["macs"] == MACS_224[name]


def test_alexnet_macs_derived_by_hand():
    """MACs of torchvision's AlexNet written out: C_out·H·W·C_in·k² per conv, in·out per linear."""
    convs = [(64, 55, 3, 11), (192, 27, 64, 5), (384, 13, 192, 3), (256, 13, 384, 3), (256, 13, 256, 3)]
    linear = [(9216, 4096), (4096, 4096), (4096, 1000)]
    expected = sum(co * h * h * ci * k * k for co, h, ci, k in convs) + sum(i * o for i, o in linear)
    assert load("alexnet").totals["macs"] == expected


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16", "alexnet", "unet"])
def test_macs_linear_in_batch_params_constant(name):
    a, b = load(name), load(name, batch=3)
    assert b.totals["macs"] == 3 * a.totals["macs"]
    assert b.totals["params"] == a.totals["params"]
    assert b.totals["elementwise_ops"] == 3 * a.totals["elementwise_ops"]


def test_unet_matches_the_paper():
    m = load("unet")
    assert m.input_shapes == {"image": (1, 1, 572, 572)}
    assert m.output_shapes == {"logits": (1, 2, 388, 388)}
    assert m.totals["params"] == 31_030_658
    sizes = {l.id: l.output_shape[2] for l in m.layers}
    # Fig. 1: every feature map's size along the contracting and the expansive path
    down = [(570, 568, 284), (282, 280, 140), (138, 136, 68), (66, 64, 32)]
    for i, (c1, c2, pooled) in enumerate(down):
        assert sizes[f"enc.{i}.conv.conv1"] == c1
        assert sizes[f"enc.{i}.conv.conv2"] == c2
        assert sizes[f"enc.{i}.pool"] == pooled
    assert (sizes["bottom.conv1"], sizes["bottom.conv2"]) == (30, 28)
    up = {"dec4": (56, 54, 52), "dec3": (104, 102, 100), "dec2": (200, 198, 196), "dec1": (392, 390, 388)}
    for d, (u, c1, c2) in up.items():
        assert sizes[f"{d}.upconv"] == u and sizes[f"{d}.crop"] == u
        assert (sizes[f"{d}.conv.conv1"], sizes[f"{d}.conv.conv2"]) == (c1, c2)
    channels = {l.id: l.output_shape[1] for l in m.layers}
    assert [channels[f"dec{i}.concat"] for i in (4, 3, 2, 1)] == [1024, 512, 256, 128]


def test_alexnet_original_shapes_and_params():
    m = load("alexnet_original")
    shapes = {l.id: l.output_shape[1:] for l in m.layers}
    assert shapes["conv1"] == (96, 55, 55)          # (227 − 11)/4 + 1 = 55
    assert shapes["pool1"] == (96, 27, 27)          # (55 − 3)/2 + 1 = 27
    assert shapes["pool2"] == (256, 13, 13)
    assert shapes["conv5"] == (256, 13, 13)
    assert shapes["pool5"] == (256, 6, 6)
    # weights per layer with the two-GPU grouping: C_out · (C_in / groups) · k² + C_out
    layers = [(96, 3, 1, 11), (256, 96, 2, 5), (384, 256, 1, 3), (384, 384, 2, 3), (256, 384, 2, 3)]
    convs = sum(co * (ci // g) * k * k + co for co, ci, g, k in layers)
    fcs = (256 * 6 * 6 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert m.totals["params"] == convs + fcs == 60_965_224


@pytest.mark.parametrize("a,b,n_small,k_big", [("exam_three_3x3", "exam_one_7x7", 3, 7),
                                                ("exam_two_3x3", "exam_one_5x5", 2, 5)])
def test_stacked_small_kernels_vs_one_big(a, b, n_small, k_big):
    C, H = 64, 56
    ma, mb = load(a), load(b)
    # n stacked 3x3: n·9·C² weights; one k×k: k²·C² (no bias in these specs)
    assert ma.totals["params"] == n_small * 9 * C * C
    assert mb.totals["params"] == k_big * k_big * C * C
    assert ma.totals["macs"] == n_small * 9 * C * C * H * H
    assert mb.totals["macs"] == k_big * k_big * C * C * H * H
    # with biases: n·(9·C² + C) against k²·C² + C
    assert load(a, bias=True).totals["params"] == n_small * (9 * C * C + C)
    assert load(b, bias=True).totals["params"] == k_big * k_big * C * C + C
    # the shape is kept (stride 1, padding (k − 1)/2)
    assert ma.output_shapes["y"] == mb.output_shapes["y"] == (1, C, H, H)
    # C is a param: the counts scale with C²
    assert load(a, c=32).totals["params"] == n_small * 9 * 32 * 32
    # like for like: a ReLU after every convolution (VGG, Simonyan & Zisserman 2015 §2.3:
    # "three non-linear rectification layers instead of a single one"): n ReLUs against 1,
    # one max per element each
    relus = lambda m: [l for l in m.layers if l.op == "relu"]
    assert (len(relus(ma)), len(relus(mb))) == (n_small, 1)
    assert ma.totals["elementwise_ops"] == n_small * C * H * H
    assert mb.totals["elementwise_ops"] == C * H * H


def test_basic_vs_bottleneck_block():
    C, H = 256, 56
    basic, bottle = load("exam_basic_block"), load("exam_bottleneck_block")
    # basic: two 3x3 C→C convs + two BNs (2C each); bottleneck: 1x1 C→C/4, 3x3 C/4→C/4, 1x1 C/4→C, three BNs
    assert basic.totals["params"] == 2 * 9 * C * C + 2 * 2 * C
    w = C // 4
    assert bottle.totals["params"] == C * w + 9 * w * w + w * C + 2 * (w + w + C)
    assert basic.totals["macs"] == 2 * 9 * C * C * H * H
    assert bottle.totals["macs"] == (C * w + 9 * w * w + w * C) * H * H


def test_exam_conv_pool():
    m = load("exam_conv_pool")
    assert m.output_shapes == {"out": (1, 64, 112, 112)}
    assert m.totals["params"] == 64 * 3 * 3 * 3 + 64
    assert m.layer("conv").macs == 64 * 224 * 224 * 3 * 3 * 3


def test_resnet_ids_follow_torchvision():
    m = load("resnet50")
    ids = {l.id for l in m.layers}
    assert {"conv1", "bn1", "layer1.0.conv1", "layer4.2.conv3", "layer2.0.downsample", "fc"} <= ids
    assert "layer2.1.downsample" not in ids


@pytest.mark.parametrize("spec", sorted(glob.glob(os.path.join(SPECS, "*.yaml"))),
                         ids=lambda p: os.path.basename(p))
def test_every_spec_loads(spec):
    m = archviz.load(spec)
    assert m.layers and m.output_shapes


def test_resnet152_at_4096_has_the_same_params():
    a, b = load("resnet152"), load("resnet152", size=4096)
    assert a.totals["params"] == b.totals["params"]
    assert b.output_shapes == {"logits": (1, 1000)}


# -- cross-check with hand-written torch modules --------------------------------------------
# the depths are He et al. 2016 Table 1 and Simonyan & Zisserman 2015 Table 1 (configs D, E)
torch_models = [("resnet18", "resnet", ("basic", (2, 2, 2, 2))), ("resnet34", "resnet", ("basic", (3, 4, 6, 3))),
                ("resnet50", "resnet", ("bottleneck", (3, 4, 6, 3))),
                ("resnet101", "resnet", ("bottleneck", (3, 4, 23, 3))),
                ("resnet152", "resnet", ("bottleneck", (3, 8, 36, 3))),
                ("vgg16", "vgg", ((2, 2, 3, 3, 3),)), ("vgg19", "vgg", ((2, 2, 4, 4, 4),)),
                ("alexnet", "alexnet", ()), ("alexnet_original", "alexnet_2012", ()), ("unet", "UNet", ())]


@pytest.mark.parametrize("name,builder,args", torch_models, ids=[t[0] for t in torch_models])
def test_params_equal_hand_written_torch(name, builder, args):
    torch = pytest.importorskip("torch")
    from tests import torch_reference as ref
    with torch.device("meta"):      # counts only: no memory for the weights
        mod = getattr(ref, builder)(*args)
    m = load(name)
    assert m.totals["params"] == sum(p.numel() for p in mod.parameters())
    assert m.totals["buffers"] == sum(b.numel() for b in mod.buffers())


@pytest.mark.parametrize("name,block,depths", [("resnet18", "basic", (2, 2, 2, 2)),
                                               ("resnet34", "basic", (3, 4, 6, 3)),
                                               ("resnet50", "bottleneck", (3, 4, 6, 3))])
def test_resnet_widths_param(name, block, depths):
    """The specs' `widths` param works as torchvision's stage widths: the stem stays 64, and a
    stage whose input width differs gets a projection shortcut (torchvision _make_layer)."""
    torch = pytest.importorskip("torch")
    from tests import torch_reference as ref
    for widths in ((32, 64, 128, 256), (96, 128, 256, 512)):
        with torch.device("meta"):
            mod = ref.resnet(block, depths, widths=widths)
        m = load(name, widths=list(widths))
        assert m.totals["params"] == sum(p.numel() for p in mod.parameters())
        assert m.totals["buffers"] == sum(b.numel() for b in mod.buffers())


def test_unet_output_shape_in_torch():
    torch = pytest.importorskip("torch")
    from tests import torch_reference as ref
    with torch.device("meta"):
        y = ref.UNet()(torch.empty(1, 1, 572, 572))
    assert tuple(y.shape) == load("unet").output_shapes["logits"]


@pytest.mark.parametrize("name,builder,args", torch_models, ids=[t[0] for t in torch_models])
def test_macs_equal_torch_flop_counter(name, builder, args):
    """torch.utils.flop_counter counts 2 FLOPs per multiply-accumulate of conv, transposed conv
    and linear (no bias adds): half its count must equal archviz's MACs. Run on the meta
    device, so no memory is allocated and no arithmetic done."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode
    from tests import torch_reference as ref
    m = load(name)
    (shape,) = m.input_shapes.values()
    with torch.device("meta"):
        mod = getattr(ref, builder)(*args)
        with FlopCounterMode(display=False) as counter:
            mod(torch.empty(shape))
    assert counter.get_total_flops() == 2 * m.totals["macs"]
