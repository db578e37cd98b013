"""The CNN/ViT zoo (issue 12): specs/mobilenet_v2, efficientnet_b0, convnext_tiny, vit_b_16.

Truths:
- counts: torchvision's models (torch 2.14.1, torchvision 0.29.1), measured with
  sum(p.numel() for p in m.parameters()), the same for m.buffers() (num_batches_tracked
  included) and torch.utils.flop_counter.FlopCounterMode / 2 at 1×3×H×W (with the MATH
  SDPA backend, so ViT's QKᵀ and AV count: conv + linear + matmul/attention, bias adds
  excluded). The four defaults are issue 12's figures; the variants (other widths, depths,
  image sizes) were measured the same way for this file (tests/benchmarks/zoo_functional.py
  re-measures the defaults and compares the function, where torchvision is installed).
- one block of each family against a torch module written here from the paper and
  torchvision's definition (torchvision is not imported): the same weights, float64 outputs.
"""
from __future__ import annotations

import math
import os

import pytest

import archviz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")


def load(name, **kw):
    return archviz.load(os.path.join(SPECS, f"{name}.yaml"), **kw)


def counts(m):
    return m.totals["params"], m.totals["buffers"], m.totals["macs"]


# (spec, overrides) -> torchvision's (params, buffers, MACs)
TORCHVISION = [
    # issue 12's figures: torchvision.models.<name>(), 224x224
    ("mobilenet_v2", {}, (3_504_872, 34_164, 300_774_272)),
    ("efficientnet_b0", {}, (5_288_548, 42_065, 385_814_752)),
    ("convnext_tiny", {}, (28_589_128, 0, 4_455_531_264)),
    ("vit_b_16", {}, (86_567_656, 0, 17_563_828_224)),
    # the params a user changes: mobilenet_v2(width_mult=0.5), (width_mult=0.35),
    # (width_mult=1.4, num_classes=10) at 160x160
    ("mobilenet_v2", {"width_mult": 0.5}, (1_968_680, 18_596, 97_131_840)),
    ("mobilenet_v2", {"width_mult": 0.35}, (1_677_128, 14_132, 59_285_808)),
    ("mobilenet_v2", {"width_mult": 1.4, "size": 160, "num_classes": 10}, (4_333_706, 47_988, 296_142_320)),
    # EfficientNet(_efficientnet_conf("efficientnet_b0", width_mult=1.1, depth_mult=1.0)[0], 0.2)
    ("efficientnet_b0", {"width_mult": 1.1}, (6_117_956, 45_713, 443_010_960)),
    # convnext_small(), convnext_base()
    ("convnext_tiny", {"depths": [3, 3, 27, 3]}, (50_223_688, 0, 8_683_712_256)),
    ("convnext_tiny", {"depths": [3, 3, 27, 3], "dims": [128, 256, 512, 1024]}, (88_591_464, 0, 15_354_729_472)),
    # vit_b_16(image_size=384) at 384x384: 577 tokens
    ("vit_b_16", {"size": 384}, (86_859_496, 0, 55_484_350_464)),
]


@pytest.mark.parametrize("name, over, want", TORCHVISION,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for n, o, _ in TORCHVISION])
def test_counts_equal_torchvision(name, over, want):
    m = load(name, **over)
    assert counts(m) == want
    assert m.totals["trainable_params"] == want[0]


def test_vit_macs_split_into_projections_and_attention():
    """17,563,828,224 = FlopCounterMode's count with the fused attention path (the in- and
    out-projections as addmm, QKᵀ and AV not seen) + 12 layers × 2 · 197² · 768 for QKᵀ and AV."""
    m = load("vit_b_16")
    attn = sum(l.macs for l in m.layers if l.op == "multihead_attention")
    projections = 12 * 197 * 768 * (3 * 768 + 768)
    assert attn == projections + 12 * 2 * 197 * 197 * 768
    assert m.totals["macs"] - attn == 11_271_124_992     # conv_proj + MLPs + head: FlopCounterMode, no_grad eval


@pytest.mark.parametrize("name, shapes", [
    ("mobilenet_v2", {"stem.act": (32, 112, 112), "blocks.0.project_bn": (16, 112, 112), "blocks.2.add": (24, 56, 56),
                      "blocks.5.add": (32, 28, 28), "blocks.9.add": (64, 14, 14), "blocks.12.add": (96, 14, 14),
                      "blocks.15.add": (160, 7, 7), "blocks.16.project_bn": (320, 7, 7), "head.act": (1280, 7, 7)}),
    ("efficientnet_b0", {"stem.act": (32, 112, 112), "stages.0.blocks.0.project.bn": (16, 112, 112),
                         "stages.1.blocks.1.add": (24, 56, 56), "stages.2.blocks.1.add": (40, 28, 28),
                         "stages.3.blocks.2.add": (80, 14, 14), "stages.4.blocks.2.add": (112, 14, 14),
                         "stages.5.blocks.3.add": (192, 7, 7), "stages.6.blocks.0.project.bn": (320, 7, 7),
                         "head.act": (1280, 7, 7)}),
    ("convnext_tiny", {"stem": (96, 56, 56), "stages.0.blocks.2.add": (96, 56, 56), "stages.0.downsample": (192, 28, 28),
                       "stages.1.downsample": (384, 14, 14), "stages.2.blocks.8.add": (384, 14, 14),
                       "stages.2.downsample": (768, 7, 7), "stages.3.blocks.2.add": (768, 7, 7)}),
    ("vit_b_16", {"conv_proj": (768, 14, 14), "to_tokens": (196, 768), "cat": (197, 768),
                  "encoder.ln": (197, 768), "class_out": (768,)}),
])
def test_stage_shapes(name, shapes):
    """The feature-map sizes of each paper's table (MobileNetV2 Table 2, EfficientNet Table 1,
    ConvNeXt §2: stride 4 stem, then 2 per stage; ViT: (224/16)² = 196 patches + 1 token)."""
    m = load(name)
    for nid, shape in shapes.items():
        assert m.layer(nid).output_shape[1:] == shape, nid


def test_mobilenet_v2_shortcuts_where_torchvision_has_them():
    """InvertedResidual.use_res_connect = stride == 1 and inp == oup: 10 of the 17 blocks."""
    m = load("mobilenet_v2")
    adds = sorted(int(l.id.split(".")[1]) for l in m.layers if l.op == "add")
    assert adds == [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
    expands = [l.id for l in m.layers if l.id.endswith(".expand.conv")]
    assert len(expands) == 16 and not any(e.startswith("blocks.0.") for e in expands)     # t = 1 in row 0


def test_stochastic_depth_probabilities_are_torchvisions():
    """EfficientNet: p = 0.2 · block / 16 (blocks with a shortcut only); ConvNeXt: p = 0.1 · block / 17
    (torchvision/models/efficientnet.py and convnext.py: stochastic_depth_prob · stage_block_id / total)."""
    eff = load("efficientnet_b0")
    got = {l.id: l.node.attrs["p"] for l in eff.layers if l.op == "stochastic_depth"}
    starts = [0, 1, 3, 5, 8, 11, 15]
    want = {}
    for s, (n, first) in enumerate(zip([1, 2, 2, 3, 3, 4, 1], starts)):
        for j in range(1, n):           # only blocks after a stage's first keep stride 1 and width
            want[f"stages.{s}.blocks.{j}.stochastic_depth"] = 0.2 * float(first + j) / 16
    assert got == want
    cn = load("convnext_tiny")
    got = [l.node.attrs["p"] for l in cn.layers if l.op == "stochastic_depth"]
    assert got == [0.1 * k / (18 - 1.0) for k in range(18)]


# -- one block of each family against a hand-written torch module --------------------------

torch_blocks = pytest.mark.skipif(not __import__("importlib").util.find_spec("torch"), reason="needs torch")


def _block(tmp_path, family, call, shape, batch=2):
    """A spec that calls one block of specs/blocks/<family>.yaml on an input of `shape`."""
    blocks = os.path.join(SPECS, "blocks", f"{family}.yaml")
    rel = os.path.relpath(blocks, tmp_path)
    p = tmp_path / "one_block.yaml"
    p.write_text(f"archviz: 1\nname: one_block\nimports:\n  - {{path: {rel}, as: f}}\n"
                 f"inputs:\n  x: {{shape: {list(shape)}}}\nnodes:\n  - {call}\n")
    return archviz.load(str(p), batch=batch)


def _same_function(model, ref, shape, batch=2, seed=0):
    """Random weights (batch-norm statistics too) in archviz's lowered module, copied into the
    reference by name (strict), both run in float64 eval mode on one random input."""
    import torch
    gm = archviz.to_torch(model, seed=seed, dtype=torch.float64).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    sd = gm.state_dict()
    with torch.no_grad():
        for k, t in sd.items():
            if k.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.5)
    ref = ref.double().eval()
    ref.load_state_dict({k.removeprefix("b."): v for k, v in sd.items()}, strict=True)     # node b's weights
    x = torch.randn(batch, *shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        got, want = gm(x), ref(x)
    got = got["out"] if isinstance(got, dict) else got
    assert got.shape == want.shape == (batch, *model.output_shapes["out"][1:])
    assert (got - want).abs().max().item() <= 1e-12 * max(1.0, want.abs().max().item())
    assert want.std().item() > 1e-3         # a live signal, not a constant


def _conv_bn(torch, cin, cout, k=1, stride=1, groups=1):
    nn = torch.nn
    m = nn.Module()
    m.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
    m.bn = nn.BatchNorm2d(cout)
    return m


def _inverted_residual_ref(torch, inp, out, stride, t):
    """Sandler et al. 2018, Table 1: 1×1 expand + ReLU6 (if t ≠ 1), 3×3 depthwise + ReLU6,
    1×1 linear projection; x + F(x) when stride 1 and inp == out."""
    nn, F = torch.nn, torch.nn.functional
    hidden = inp * t

    class IR(nn.Module):
        def __init__(self):
            super().__init__()
            if t != 1:
                self.expand = _conv_bn(torch, inp, hidden)
            self.dw = _conv_bn(torch, hidden, hidden, 3, stride, groups=hidden)
            self.project = nn.Conv2d(hidden, out, 1, bias=False)
            self.project_bn = nn.BatchNorm2d(out)

        def forward(self, x):
            y = x
            if t != 1:
                y = F.relu6(self.expand.bn(self.expand.conv(y)))
            y = F.relu6(self.dw.bn(self.dw.conv(y)))
            y = self.project_bn(self.project(y))
            return x + y if stride == 1 and inp == out else y
    return IR()


@torch_blocks
@pytest.mark.parametrize("inp, out, stride, t", [(16, 16, 1, 6), (16, 24, 2, 6), (32, 16, 1, 1), (24, 24, 2, 6)])
def test_inverted_residual_is_the_papers(tmp_path, inp, out, stride, t):
    import torch
    shape = (inp, 10, 10)
    m = _block(tmp_path, "mobilenet", f"{{id: b, op: f.inverted_residual, out: {out}, stride: {stride}, t: {t}}}", shape)
    _same_function(m, _inverted_residual_ref(torch, inp, out, stride, t).requires_grad_(False), shape)


def _mbconv_ref(torch, inp, out, k, stride, t):
    """Tan & Le 2019 (torchvision MBConv): 1×1 expand + SiLU to _make_divisible(inp·t, 8) (if that
    differs from inp), k×k depthwise + SiLU, squeeze-excitation (Hu et al. 2018: avgpool, 1×1 conv
    to max(1, inp // 4), SiLU, 1×1 conv, sigmoid, times x), 1×1 projection + BN; + x when stride 1
    and inp == out (stochastic depth is the identity at inference)."""
    nn, F = torch.nn, torch.nn.functional
    v = inp * t
    hidden = max(8, int(v + 4) // 8 * 8)
    hidden += 8 if hidden < 0.9 * v else 0
    sq = max(1, inp // 4)

    class MB(nn.Module):
        def __init__(self):
            super().__init__()
            if hidden != inp:
                self.expand = _conv_bn(torch, inp, hidden)
            self.dw = _conv_bn(torch, hidden, hidden, k, stride, groups=hidden)
            self.se = nn.Module()
            self.se.fc1 = nn.Conv2d(hidden, sq, 1)
            self.se.fc2 = nn.Conv2d(sq, hidden, 1)
            self.project = _conv_bn(torch, hidden, out)

        def forward(self, x):
            y = x
            if hidden != inp:
                y = F.silu(self.expand.bn(self.expand.conv(y)))
            y = F.silu(self.dw.bn(self.dw.conv(y)))
            s = torch.sigmoid(self.se.fc2(F.silu(self.se.fc1(y.mean((2, 3), keepdim=True)))))
            y = self.project.bn(self.project.conv(s * y))
            return x + y if stride == 1 and inp == out else y
    return MB()


@torch_blocks
@pytest.mark.parametrize("inp, out, k, stride, t", [(24, 24, 5, 1, 6), (16, 24, 3, 2, 6), (32, 16, 3, 1, 1)])
def test_mbconv_with_squeeze_excitation_is_the_papers(tmp_path, inp, out, k, stride, t):
    import torch
    shape = (inp, 9, 9)
    m = _block(tmp_path, "efficientnet", f"{{id: b, op: f.mbconv, out: {out}, kernel: {k}, stride: {stride}, t: {t}, p: 0.1}}",
               shape)
    _same_function(m, _mbconv_ref(torch, inp, out, k, stride, t).requires_grad_(False), shape)


def _cnblock_ref(torch, dim):
    """Liu et al. 2022, Fig. 4 (torchvision CNBlock): 7×7 depthwise conv, LayerNorm over the
    channels (eps 1e-6), Linear to 4·dim, GELU, Linear back, times γ (dim, 1, 1), plus x."""
    nn, F = torch.nn, torch.nn.functional

    class CN(nn.Module):
        def __init__(self):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1 = nn.Linear(dim, 4 * dim)
            self.pwconv2 = nn.Linear(4 * dim, dim)
            self.layer_scale = nn.Module()
            self.layer_scale.weight = nn.Parameter(torch.ones(dim, 1, 1))

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
            return x + self.layer_scale.weight * y
    return CN()


@torch_blocks
def test_convnext_block_is_the_papers(tmp_path):
    import torch
    shape = (16, 9, 9)
    m = _block(tmp_path, "convnext", "{id: b, op: f.cnblock, p: 0.1}", shape)
    assert m.totals["params"] == 16 * 49 + 16 + 2 * 16 + 2 * 16 * 64 + 64 + 16 + 16
    _same_function(m, _cnblock_ref(torch, 16).requires_grad_(False), shape)


def _vit_block_ref(torch, dim, heads, mlp_dim):
    """Dosovitskiy et al. 2021, Eq. 2-3 (torchvision EncoderBlock): x' = x + MSA(LN(x)),
    y = x' + MLP(LN(x')), LN eps 1e-6, MLP = Linear, GELU, Linear; MSA written out:
    [q k v] = z W_inᵀ + b_in, per head softmax(q kᵀ / √d_h) v, heads joined, out-projection."""
    nn, F = torch.nn, torch.nn.functional
    dh = dim // heads

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
            self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
            self.out_proj = nn.Linear(dim, dim)

        def forward(self, z):
            n, t, _ = z.shape
            q, k, v = F.linear(z, self.in_proj_weight, self.in_proj_bias).split(dim, dim=-1)
            q, k, v = (a.reshape(n, t, heads, dh).transpose(1, 2) for a in (q, k, v))
            w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
            return self.out_proj((w @ v).transpose(1, 2).reshape(n, t, dim))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
            self.self_attention = Attn()
            self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = nn.Module()
            self.mlp.linear_1 = nn.Linear(dim, mlp_dim)
            self.mlp.linear_2 = nn.Linear(mlp_dim, dim)

        def forward(self, x):
            x = x + self.self_attention(self.ln_1(x))
            return x + self.mlp.linear_2(F.gelu(self.mlp.linear_1(self.ln_2(x))))
    return Block()


@torch_blocks
def test_vit_encoder_block_is_the_papers(tmp_path):
    import torch
    shape = (5, 16)
    m = _block(tmp_path, "vit", "{id: b, op: f.encoder_block, heads: 4, mlp_dim: 32}", shape)
    _same_function(m, _vit_block_ref(torch, 16, 4, 32).requires_grad_(False), shape)


@pytest.mark.skipif(__import__("importlib").util.find_spec("torchvision") is not None,
                    reason="torchvision is installed: the script would run the full comparison")
def test_the_torchvision_comparison_skips_cleanly_without_torchvision():
    import subprocess
    import sys
    script = os.path.join(ROOT, "tests", "benchmarks", "zoo_functional.py")
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0 and r.stdout.startswith("skipped: torchvision is not installed"), r.stdout + r.stderr
    r = subprocess.run([sys.executable, script, "resnet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown model(s): resnet" in r.stderr
