"""specs/gpt2.yaml: GPT-2 small with its LM head tied to the token embedding, causal.
Truths: Hugging Face's GPT2LMHeadModel built from GPT2Config() on the meta device (transformers
5.25 in a scratch venv, tests/benchmarks/llm_functional.py): 124,439,808 parameters; the
same count by arithmetic below; the function checked there with the reference's weights."""
from __future__ import annotations

import pytest

import archviz


def test_tied_count_is_gpt2_small():
    v, t, d, L = 50257, 1024, 768, 12
    per_layer = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    assert v * d + t * d + L * per_layer + 2 * d == 124_439_808
    m = archviz.load("gpt2")
    assert m.totals["params"] == 124_439_808
    untied = archviz.load("gpt2").totals["params"] + v * d     # the head's own (vocab, d) weight
    assert untied == 163_037_184           # the measurement of GPT-2 written untied


def test_causal_prefix_and_one_tensor(tmp_path):
    from archviz.passes import rf as RF
    from archviz.passes import run
    m = archviz.load("gpt2", layers=1, seq=8, vocab=50, positions=16, d=16, heads=2)
    run(m.graph, "rf")
    f = m.graph.nodes["h.0.attn"].meta["rf"].fields["out"][0]
    assert f.kind == "table" and [f.at(t) for t in range(8)] == [(0, t) for t in range(8)]    # 0..t
    from click.testing import CliRunner

    from archviz.cli import main
    out = CliRunner().invoke(main, ["rf", "gpt2", "-p", "layers=1", "-p", "seq=8", "--node", "h.0.attn"]).output
    assert "causal prefix 0..t" in out          # what `archviz rf` says of a decoder's attention
    rows = RF.layer_rf(m.graph.nodes["ln_f"])[0]
    assert (rows[0]["size_min"], rows[0]["size_max"]) == (1, 8)      # position t sees tokens 0..t
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    gm = to_torch(m)
    assert gm.get_submodule("lm_head").weight is gm.get_submodule("wte").weight
    assert sum(p.numel() for p in gm.parameters()) == m.totals["params"]
    # causality: changing the last token changes no earlier logit
    x = torch.randint(0, 50, (1, 8))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 50
    with torch.no_grad():
        a, b = gm.eval()(x), gm(y)
    assert torch.equal(a[:, :-1], b[:, :-1]) and not torch.equal(a[:, -1], b[:, -1])
