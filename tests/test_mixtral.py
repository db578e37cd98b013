"""specs/mixtral.yaml: Mixtral-8x7B by default, other configurations a -p away.

Truths: Hugging Face's MixtralForCausalLM(MixtralConfig()) -- the defaults are Mixtral-8x7B --
built on the meta device (transformers 5.25, scratch venv: tests/benchmarks/llm_functional.py,
which also loads a small config's weights into the lowered module: max |delta| 1.3e-7 in
float32): 46,702,792,704 params.  The active params per token, derived from the reference's
module sizes, not from archviz: one expert = the layer's mlp.experts params / 8 = 176,160,768,
and a token skips 8 - 2 of them in each of 32 layers: 46,702,792,704 - 32 * 6 * 176,160,768 =
12,879,925,248.  Both agree with Jiang et al. 2024 ("46.7B total, 12.9B active").
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import ArchvizError

HF_MIXTRAL_8X7B = 46_702_792_704
HF_MIXTRAL_8X7B_ACTIVE = 46_702_792_704 - 32 * (8 - 2) * 176_160_768
SMALL = dict(seq=8, vocab=100, d_model=32, layers=2, heads=4, kv_heads=2, ffn=48, experts=4, top_k=2)


def _count(v, d, L, h, kv, f, E, k, tie=False):
    """(total, active) by hand: Llama's attention and norms, a router E x d and E SwiGLU
    experts of 3 d f each per layer; a token uses the router and k experts."""
    hd = d // h
    attn = d * h * hd + 2 * d * kv * hd + h * hd * d
    total = v * d * (1 if tie else 2) + L * (attn + E * d + E * 3 * d * f + 2 * d) + d
    return total, total - L * (E - k) * 3 * d * f


def test_mixtral_8x7b():
    m = archviz.load("mixtral", seq=16)
    t = m.totals
    assert t["params"] == HF_MIXTRAL_8X7B == _count(32000, 4096, 32, 32, 8, 14336, 8, 2)[0]
    assert t["active_params"] == HF_MIXTRAL_8X7B_ACTIVE == 12_879_925_248 == _count(32000, 4096, 32, 32, 8, 14336, 8, 2)[1]
    assert t["buffers"] == 0


@pytest.mark.parametrize("E, k, kv, tie", [(4, 2, 2, False), (8, 1, 4, True), (3, 3, 1, False), (1, 1, 4, False)])
def test_variants_params_active_and_macs(E, k, kv, tie):
    cfg = {**SMALL, "experts": E, "top_k": k, "kv_heads": kv, "tie": tie}
    m = archviz.load("mixtral", **cfg)
    total, active = _count(100, 32, 2, 4, kv, 48, E, k, tie)
    assert (m.totals["params"], m.totals["active_params"]) == (total, active)
    moe = m.graph.nodes["layers.1.mlp"]
    tokens = 8                                   # batch 1 x seq 8
    # router on every token, then k SwiGLU experts (gate, up, down: 3 d f MACs) per token
    assert moe.meta["macs"] == tokens * 32 * E + k * tokens * 3 * 32 * 48
    assert moe.meta["params"].total == E * 32 + E * 3 * 32 * 48
    assert moe.meta["active_params"] == E * 32 + k * 3 * 32 * 48


def test_a_mixture_counts_less_work_than_the_same_experts_run_dense():
    """The issue's complaint: written dense, a mixture gave 3-3.6x the MACs.  The layer's MLP
    MACs with 8 experts, top 2, equal 2 dense SwiGLU MLPs plus the router."""
    m = archviz.load("mixtral", **{**SMALL, "experts": 8})
    dense = archviz.load("llama", seq=8, vocab=100, d_model=32, layers=2, heads=4, kv_heads=2, ffn=48)
    mlp = dense.graph.nodes
    one = sum(mlp[f"layers.0.mlp.{p}"].meta["macs"] for p in ("gate_proj", "up_proj", "down_proj"))
    assert m.graph.nodes["layers.0.mlp"].meta["macs"] == 2 * one + 8 * 32 * 8


def test_dense_models_have_every_param_active():
    for m in (archviz.load("llama", seq=8, vocab=100, d_model=32, layers=1, heads=4, kv_heads=2, ffn=48),
              archviz.load("resnet18")):
        assert m.totals["active_params"] == m.totals["params"]


def test_summary_and_json_give_the_active_params():
    args = ["mixtral"] + [x for k, v in SMALL.items() for x in ("-p", f"{k}={v}")]
    r = CliRunner().invoke(main, ["summary", *args, "-f", "json"])
    assert r.exit_code == 0, r.output
    t = json.loads(r.stdout)["totals"]
    assert (t["params"], t["active_params"]) == _count(100, 32, 2, 4, 2, 48, 4, 2)
    r = CliRunner().invoke(main, ["summary", *args, "--depth", "1"])
    assert r.exit_code == 0, r.output
    assert f"active params per token        {t['active_params']:,}" in r.stdout


@pytest.mark.parametrize("E, k, message, hint", [
    (4, 5, "top_k=5 experts per token, but there are only experts=4", "top_k is at most experts (4)"),
    (4, 0, "top_k=0: each token must run at least one expert", "1 <= top_k <= experts"),
    (0, 1, "experts=0: a mixture needs at least one expert", "experts: E >= 1"),
    (-2, 1, "experts=-2: a mixture needs at least one expert", "experts: E >= 1"),
])
def test_bad_experts_or_top_k_is_a_located_error(E, k, message, hint):
    with pytest.raises(ArchvizError) as ei:
        archviz.load("mixtral", **{**SMALL, "experts": E, "top_k": k})
    e = ei.value
    assert message in e.message and hint in e.hint
    assert e.span is not None and e.span.file.endswith("mixtral.yaml")
    key = "top_k" if "top_k" in message.split(":")[0] else "experts"
    line = open(e.span.file).read().splitlines()[e.span.line - 1]
    assert "op: moe" in line and line[:e.span.col - 1].rstrip('"').endswith(f"{key}: ")     # the caret under its value
