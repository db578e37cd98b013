"""archviz's MoE module (the lowering of the `moe` op) imports back as the op: experts, top_k and
renormalize read off the module, the expert written as a block of the imported spec (the first
expert's own graph) and referenced as `expert: {op: BLOCK}`; state-dict keys 1:1
(mlp.experts.3.gate_proj.weight). The truth of the function is torch: the original module and
the one lowered from the imported spec, same state_dict, same outputs (float64)."""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archviz  # noqa: E402
from archviz.backends.torch.importer import from_torch  # noqa: E402
from archviz.backends.torch.importer.check import check  # noqa: E402
from archviz.backends.torch.lower import example_inputs  # noqa: E402
from archviz.backends.torch.moe_module import MoE  # noqa: E402
from archviz.codes import E  # noqa: E402
from archviz.errors import TorchImportError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mixtral_expert_is_a_block():
    m = archviz.load(os.path.join(ROOT, "specs", "mixtral.yaml"), batch=2, vocab=50, d_model=32, layers=2,
                     heads=4, kv_heads=2, ffn=48, seq=8, experts=4, top_k=2)
    gm = archviz.to_torch(m, seed=0)
    inputs = dict(zip(m.input_shapes, example_inputs(m)))
    imp = from_torch(gm, inputs)
    text = imp.spec_text
    assert "op: moe, experts: 4, top_k: 2, expert: {op: expert}" in text, text
    assert "  expert:\n" in text and "{id: gate_proj, op: linear, in: x, out: 48, bias: false}" in text, text
    keys = sorted(archviz.to_torch(imp).state_dict())
    assert "layers.1.mlp.experts.3.gate_proj.weight" in keys and keys == sorted(gm.state_dict())
    assert imp.totals["params"] == m.totals["params"] and imp.totals["macs"] == m.totals["macs"]


class Wrap(nn.Module):
    def __init__(self, moe):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.moe = moe

    def forward(self, x):
        return self.moe(self.proj(x))


def _expert():
    return nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))


def test_switch_style_moe_round_trips():
    """top_k 1, no renormalisation (Switch), a torch Sequential as the expert."""
    torch.manual_seed(0)
    model = Wrap(MoE(8, 3, 1, renormalize=False, expert=_expert)).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    imp = from_torch(model, (x,))
    assert "op: moe, experts: 3, top_k: 1, renormalize: false, expert: {op: sequential}" in imp.spec_text, \
        imp.spec_text
    assert sorted(archviz.to_torch(imp).state_dict()) == sorted(model.state_dict())
    assert imp.totals["params"] == sum(p.numel() for p in model.parameters())
    c = check(model, {"x": x}, imp)
    assert c.max_delta is not None and c.max_delta <= 1e-9


def test_experts_of_different_structure_are_refused():
    moe = MoE(8, 3, 2, expert=_expert)
    moe.experts[2] = nn.Sequential(nn.Linear(8, 12), nn.GELU(), nn.Linear(12, 8))
    with pytest.raises(TorchImportError) as e:
        from_torch(Wrap(moe), (torch.randn(2, 5, 8),))
    assert e.value.code == E.IMPORT_UNMAPPED
    assert any("experts.2" in n and "differs from experts.0" in n for n in e.value.notes), e.value.notes


def test_an_expert_with_an_unmapped_layer_is_named():
    moe = MoE(8, 2, 1, expert=lambda: nn.Sequential(nn.Linear(8, 8), nn.Softsign()))
    with pytest.raises(TorchImportError) as e:
        from_torch(Wrap(moe), (torch.randn(2, 5, 8),))
    assert e.value.code == E.IMPORT_UNMAPPED
    assert any("its expert (experts.0)" in n and "Softsign" in n for n in e.value.notes), e.value.notes
