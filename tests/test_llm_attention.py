"""Decoder attention (issue 13, part 1): causal and sliding-window masks, grouped-query
attention (`sdpa`), rotary embeddings (`rope`) and `rmsnorm` — the lowered modules against
references written here from the definitions, and the receptive field a mask implies."""
from __future__ import annotations

import math

import pytest

import archviz
from archviz.errors import ArchvizError

torch = pytest.importorskip("torch")

from archviz.backends.torch.table import module  # noqa: E402
from archviz.ops import registry  # noqa: E402
from tests.ops.samples import evaluate_sample  # noqa: E402


def _module(name, attrs, ins):
    op = registry[name]
    a, ins, outs = evaluate_sample(op, {"attrs": attrs, "inputs": ins})
    return module(op, a, ins, outs).double().eval()


def _attend(q, k, v, keep, scale=None):
    """softmax(q kᵀ · scale, masked) v — Vaswani et al. 2017, eq. 1, with -inf where not kept."""
    s = q @ k.transpose(-1, -2) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if keep is not None:
        s = s.masked_fill(~keep, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def _keep(t, s, window=None):
    i, j = torch.arange(t)[:, None], torch.arange(s)[None, :]
    keep = j <= i
    return keep & (j > i - window) if window else keep


@pytest.mark.parametrize("hq, hkv, window", [(4, 4, None), (6, 2, None), (4, 1, 3), (8, 2, 2)])
def test_sdpa_grouped_query_and_masks(hq, hkv, window):
    torch.manual_seed(0)
    n, t, d = 2, 7, 4
    attrs = {"mask": "causal"} | ({"window": window} if window else {})
    mod = _module("sdpa", attrs, [(n, hq, t, d), (n, hkv, t, d), (n, hkv, t, d)])
    q, k, v = (torch.randn(n, h, t, d, dtype=torch.float64) for h in (hq, hkv, hkv))
    g = hq // hkv       # Ainslie et al. 2023: query head h reads key/value head h // g
    want = torch.stack([_attend(q[:, h], k[:, h // g], v[:, h // g], _keep(t, t, window)) for h in range(hq)], 1)
    assert torch.allclose(mod(q, k, v), want, atol=1e-12)


def test_multihead_attention_causal_is_torchs_decoder_mask():
    torch.manual_seed(0)
    mod = _module("multihead_attention", {"heads": 2, "mask": "causal"}, [(3, 5, 8)])
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).double().eval()
    ref.load_state_dict(mod.state_dict())
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    want, w = ref(x, x, x, attn_mask=mask)
    got = mod(x)
    assert torch.allclose(got["out"], want, atol=1e-12) and torch.allclose(got["weights"], w, atol=1e-12)
    assert torch.all(got["weights"].triu(1) == 0)        # no weight on a later position


def _rotate_half_reference(x, base, r):
    """Hugging Face's Llama apply_rotary_pos_emb (rotate_half layout), written out."""
    t = x.shape[-2]
    inv = 1.0 / (base ** (torch.arange(0, r, 2, dtype=torch.float64) / r))
    freqs = torch.outer(torch.arange(t, dtype=torch.float64), inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    xr, rest = x[..., :r], x[..., r:]
    rot = torch.cat([-xr[..., r // 2:], xr[..., :r // 2]], dim=-1)
    return torch.cat([xr * emb.cos() + rot * emb.sin(), rest], dim=-1)


@pytest.mark.parametrize("fraction, base", [(1.0, 10000.0), (0.25, 10000.0), (0.5, 500000.0)])
def test_rope_is_the_rotate_half_rotation(fraction, base):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 16, dtype=torch.float64)
    mod = _module("rope", {"fraction": fraction, "base": base}, [tuple(x.shape)])
    want = _rotate_half_reference(x, base, int(16 * fraction))
    assert torch.allclose(mod(x), want, atol=1e-6)      # angles in float32, as Hugging Face's Llama
    # a rotation keeps each pair's length
    assert torch.allclose(mod(x).norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_rmsnorm_is_the_definition():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mod = _module("rmsnorm", {"eps": 1e-6}, [tuple(x.shape)])
    with torch.no_grad():
        mod.weight.copy_(torch.rand(8, dtype=torch.float64) + 0.5)
    want = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * mod.weight     # Zhang & Sennrich 2019
    assert torch.allclose(mod(x), want, atol=1e-12)


GPT_LIKE = """\
archviz: 1
name: tiny_decoder
inputs: {x: {shape: [12, 8]}}
nodes:
  - {id: attn, op: multihead_attention, heads: 2, mask: causal}
  - {id: attn2, op: multihead_attention, in: attn.out, heads: 2, mask: causal, window: 3}
"""


def test_a_causal_decoder_sees_a_prefix(tmp_path):
    from archviz.passes import run
    p = tmp_path / "s.yaml"
    p.write_text(GPT_LIKE)
    m = archviz.load(str(p))
    run(m.graph, "rf")
    f = m.graph.nodes["attn"].meta["rf"].fields["out"][0]
    assert f.kind != "global"
    # position t sees 0..t after one causal layer; a window of 3 after it adds 2 more steps back
    from archviz.passes import rf as RF
    rows = RF.layer_rf(m.graph.nodes["attn2"])[0]
    assert rows[0]["size_min"] == 1 and rows[0]["size_max"] == 12


@pytest.mark.parametrize("node, message", [
    ("{id: a, op: sdpa, in: [x, k, k]}", "query must be (N, heads, T, d)"),
    ("{id: a, op: multihead_attention, heads: 2, window: 3}", "add mask: causal"),
    ("{id: a, op: rope, in: q, fraction: 0.3}", "must be a positive even number"),
    ("{id: a, op: sdpa, in: [q, k3, k3]}", "4 query heads cannot share 3 key/value heads"),
])
def test_bad_attention_is_a_located_error(tmp_path, node, message):
    text = ("archviz: 1\nname: bad\ninputs:\n  x: {shape: [5, 8]}\n  q: {shape: [4, 5, 8]}\n"
            f"  k: {{shape: [2, 5, 8]}}\n  k3: {{shape: [3, 5, 8]}}\nnodes:\n  - {node}\n")
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ArchvizError) as ei:
        archviz.load(str(p))
    assert message in ei.value.message and ei.value.span is not None and ei.value.span.line == 9
