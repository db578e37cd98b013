"""specs/llama.yaml: Llama-2-7B by default, grouped-query attention a -p away.
Truths: Hugging Face's LlamaForCausalLM built from the Llama-2-7B config on the meta device
(transformers 5.25, scratch venv: tests/benchmarks/llm_functional.py, which also loads a
small config's weights into the lowered module: max |delta| 1.5e-7 in float32), and the
arithmetic below."""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import ArchvizError


def _count(v, d, L, h, kv, f, tie=False):
    hd = d // h
    attn = d * h * hd + 2 * d * kv * hd + h * hd * d          # q, k, v, o projections, no biases
    return v * d * (1 if tie else 2) + L * (attn + 3 * d * f + 2 * d) + d


def test_llama2_7b():
    m = archviz.load("llama", seq=16)
    assert m.totals["params"] == 6_738_415_616 == _count(32000, 4096, 32, 32, 32, 11008)
    assert m.totals["buffers"] == 0


@pytest.mark.parametrize("kv, tie", [(8, False), (1, True), (4, False)])
def test_grouped_query_and_tied_variants(kv, tie):
    m = archviz.load("llama", seq=8, vocab=1000, d_model=256, layers=2, heads=8, kv_heads=kv, ffn=512, tie=tie)
    assert m.totals["params"] == _count(1000, 256, 2, 8, kv, 512, tie)
    # the attention's MACs: q and o at full width, k and v at kv_heads/heads of it; scores and sum dense
    n = m.graph.nodes
    assert n["layers.0.self_attn.k_proj"].attrs["out"] == 256 // 8 * kv
    assert n["layers.0.self_attn.attn"].meta["macs"] == 2 * 8 * 8 * 8 * 32


def test_heads_not_divisible_by_kv_heads_is_a_located_error():
    with pytest.raises(ArchvizError) as ei:
        archviz.load("llama", seq=8, vocab=100, d_model=96, layers=1, heads=6, kv_heads=4, ffn=64)
    e = ei.value
    assert "6 query heads cannot share 4 key/value heads" in e.message
    assert e.span is not None and e.span.file.endswith("llama.yaml") and "multiple" in e.hint
