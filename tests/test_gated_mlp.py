"""specs/blocks/gated_mlp.yaml: SwiGLU and GeGLU (Shazeer 2020, "GLU Variants Improve
Transformer", eq. 5-6 without biases): FFN(x) = (act(x W) ⊙ x V) W₂, act = Swish₁ (SiLU) or
GELU.  The reference is that equation written with torch.nn.functional, not archviz."""
from __future__ import annotations

from pathlib import Path

import pytest

import archviz

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _spec(tmp_path, block, extra=""):
    (tmp_path / "blocks").mkdir(exist_ok=True)
    (tmp_path / "blocks" / "gated_mlp.yaml").write_text((SPECS / "blocks" / "gated_mlp.yaml").read_text())
    (tmp_path / "s.yaml").write_text(f"""\
archviz: 1
name: mlp
imports: [{{path: blocks/gated_mlp.yaml, as: g}}]
inputs: {{x: {{shape: [5, 12]}}}}
nodes:
  - {{id: mlp, op: g.{block}, ffn: 20{extra}}}
""")
    return str(tmp_path / "s.yaml")


@pytest.mark.parametrize("block, extra", [("swiglu", ""), ("geglu", ""), ("geglu", ", approximate: tanh")])
def test_params_macs_and_the_function(tmp_path, block, extra):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from archviz.backends.torch.lower import to_torch
    m = archviz.load(_spec(tmp_path, block, extra), batch=3)
    d, f, tokens = 12, 20, 3 * 5
    assert m.totals["params"] == 3 * d * f
    assert m.totals["macs"] == tokens * 3 * d * f
    gm = to_torch(m, seed=0).double()
    sd = gm.state_dict()
    W, V, W2 = (sd[f"mlp.{n}.weight"] for n in ("gate_proj", "up_proj", "down_proj"))
    act = {"swiglu": F.silu, "geglu": lambda t: F.gelu(t, approximate="tanh" if "tanh" in extra else "none")}[block]
    x = torch.randn(3, 5, d, dtype=torch.float64)
    want = F.linear(act(F.linear(x, W)) * F.linear(x, V), W2)
    with torch.no_grad():
        assert torch.allclose(gm(x), want, atol=1e-12, rtol=0)


def test_llama_mlp_is_the_swiglu_block():
    """specs/blocks/llama.yaml's mlp and gated_mlp's swiglu are the same layers."""
    a = archviz.load("llama", seq=4, vocab=50, d_model=16, layers=1, heads=2, kv_heads=2, ffn=24)
    mlp = [l for l in a.layers if ".mlp." in l.id]
    assert [l.op for l in mlp] == ["linear", "silu", "linear", "mul", "linear"]
    assert sum(l.params.total for l in mlp) == 3 * 16 * 24
