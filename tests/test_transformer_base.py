"""specs/transformer_base.yaml: Vaswani et al. 2017's base model with one shared embedding.
Truths: torch.nn.Transformer's own parameter count (on the meta device) plus the one table,
and its function: nn.Transformer's weights loaded into the lowered module, the embedding
scaled by sqrt(d) plus the paper's sinusoidal table (§3.5), the decoder causal, the output
projection the embedding's transpose (§3.4) — all written here."""
from __future__ import annotations

import math

import pytest

import archviz

torch = pytest.importorskip("torch")


def test_the_papers_count():
    with torch.device("meta"):
        body = sum(p.numel() for p in torch.nn.Transformer(512, 8, 6, 6, 2048, batch_first=True).parameters())
    assert body == 44_140_544
    assert archviz.load("transformer_base", src_len=8, tgt_len=8).totals["params"] == body + 37000 * 512 == 63_084_544
    assert archviz.load("transformer_base", src_len=8, tgt_len=8, tie=False).totals["params"] == 100_972_544


def _sinusoid(t, d):
    pe = torch.zeros(t, d, dtype=torch.float64)
    for pos in range(t):
        for i in range(0, d, 2):
            pe[pos, i] = math.sin(pos / 10000 ** (i / d))
            pe[pos, i + 1] = math.cos(pos / 10000 ** (i / d))
    return pe


def test_the_same_function_as_nn_transformer():
    from archviz.backends.torch.lower import to_torch
    d, h, ff, n, v, s, t = 32, 4, 64, 2, 50, 7, 6
    m = archviz.load("transformer_base", batch=2, vocab=v, d=d, heads=h, ff=ff, layers=n, src_len=s, tgt_len=t,
                     dropout=0.0)
    gm = to_torch(m, seed=0).double().eval()
    torch.manual_seed(1)
    ref = torch.nn.Transformer(d, h, n, n, ff, dropout=0.0, batch_first=True).double().eval()
    emb = torch.randn(v, d, dtype=torch.float64)
    state = dict(ref.state_dict())
    for k in ("src_embed.weight", "tgt_embed.weight", "generator.weight"):    # one tensor under three names
        state[k] = emb
    state["src_pe.table"] = gm.state_dict()["src_pe.table"]
    state["tgt_pe.table"] = gm.state_dict()["tgt_pe.table"]
    gm.load_state_dict(state, strict=True)
    assert gm.get_submodule("generator").weight is gm.get_submodule("src_embed").weight
    src, tgt = torch.randint(0, v, (2, s)), torch.randint(0, v, (2, t))
    x = emb[src] * math.sqrt(d) + _sinusoid(s, d)
    y = emb[tgt] * math.sqrt(d) + _sinusoid(t, d)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(t, dtype=torch.float64)
    with torch.no_grad():
        want = ref(x, y, tgt_mask=mask, tgt_is_causal=True) @ emb.T
        got = gm(src, tgt)
    assert torch.allclose(got, want, atol=1e-10), (got - want).abs().max()
