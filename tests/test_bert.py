"""specs/bert_base.yaml: Hugging Face's BertModel() on the meta device has 109,482,240 params
(transformers 5.25, scratch venv: tests/benchmarks/llm_functional.py, where a small config's
weights loaded into the lowered module agree to 8.9e-16 in float64); the arithmetic below."""
from __future__ import annotations

import archviz


def test_bert_base_count():
    v, t, d, L = 30522, 512, 768, 12
    embeddings = (v + t + 2) * d + 2 * d
    layer = (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d) + 2 * d
    assert embeddings + L * layer + d * d + d == 109_482_240
    m = archviz.load("bert_base", seq=16)
    assert m.totals["params"] == 109_482_240
    assert m.output_shapes == {"last_hidden_state": (1, 16, 768), "pooler_output": (1, 768)}
