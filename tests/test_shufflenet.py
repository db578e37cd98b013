"""ShuffleNetV2 1.0x (specs/shufflenet_v2_x1_0.yaml): torchvision's counts, and its two units
against a torch reference written here from the paper (Ma et al. 2018, Fig. 3c/3d) and
torchvision.models.shufflenetv2.InvertedResidual (no torchvision import: CI has none; the
whole network against torchvision itself is tests/benchmarks/zoo_functional.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import archviz
from archviz.library import library_dir

SPECS = Path(library_dir())

SPEC = str(SPECS / "shufflenet_v2_x1_0.yaml")


def test_torchvision_counts():
    # torchvision 0.29.1 (torch 2.14.1), shufflenet_v2_x1_0(): sum(p.numel()) over parameters() and
    # buffers() (num_batches_tracked included); MACs = conv + linear, bias excluded, at 224x224
    m = archviz.load(SPEC)
    assert m.totals["params"] == 2_278_604
    assert m.totals["buffers"] == 16_236
    assert m.totals["macs"] == 144_907_992
    assert m.output_shapes == {"logits": (1, 1000)}


def _unit(torch, inp, oup, stride):
    nn = torch.nn
    bf = oup // 2

    class Unit(nn.Module):
        def __init__(self):
            super().__init__()
            if stride > 1:
                self.branch1 = nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                                             nn.BatchNorm2d(inp), nn.Conv2d(inp, bf, 1, bias=False),
                                             nn.BatchNorm2d(bf), nn.ReLU())
            self.branch2 = nn.Sequential(nn.Conv2d(inp if stride > 1 else bf, bf, 1, bias=False), nn.BatchNorm2d(bf),
                                         nn.ReLU(), nn.Conv2d(bf, bf, 3, stride, 1, groups=bf, bias=False),
                                         nn.BatchNorm2d(bf), nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf),
                                         nn.ReLU())

        def forward(self, x):
            if stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            n, c, h, w = out.shape          # channel_shuffle(out, 2)
            return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
    return Unit()


@pytest.mark.parametrize("stride", [2, 1])
def test_a_unit_is_the_same_function_as_the_reference(tmp_path, stride):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "shufflenet.yaml").write_text((SPECS / "blocks" / "shufflenet.yaml").read_text())
    inp = 24 if stride == 2 else 58
    (tmp_path / "s.yaml").write_text(f"""\
archviz: 1
name: unit
imports: [{{path: blocks/shufflenet.yaml, as: sn}}]
inputs: {{x: {{shape: [{inp}, 8, 8]}}}}
nodes:
  - {{id: pre, op: relu}}
  - {{id: u, op: sn.unit, out: 58, stride: {stride}}}
""")
    m = archviz.load(str(tmp_path / "s.yaml"), batch=2)
    gm = to_torch(m, seed=0).double().eval()
    ref = _unit(torch, inp, 58, stride).double().eval()
    torch.manual_seed(1)
    for mod in ref.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    # the spec's ids are torchvision's module names with "_" for "."
    ours = {re.sub(r"_(\d+)(?=\.|$)", r".\1", k.removeprefix("u.")): k for k in gm.state_dict()}
    sd = ref.state_dict()
    assert set(ours) == set(sd)
    gm.load_state_dict({ours[k]: v for k, v in sd.items()})
    x = torch.randn(2, inp, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(gm(x), ref(torch.relu(x)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("widths, params, buffers", [
    # torchvision 0.29.1: shufflenet_v2_x0_5, _x1_5, _x2_0 (params, buffers), measured in a scratch venv
    ([24, 48, 96, 192, 1024], 1_366_792, 8_008),
    ([24, 176, 352, 704, 1024], 3_503_624, 23_496),
    ([24, 244, 488, 976, 2048], 7_393_996, 33_772),
])
def test_the_other_widths_of_the_paper(widths, params, buffers):
    m = archviz.load(SPEC, widths=widths)
    assert (m.totals["params"], m.totals["buffers"]) == (params, buffers)
