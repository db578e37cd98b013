"""What backward keeps and computes for whole models, against torch (issue 13, oracle 5).

Each spec is lowered (archviz.to_torch, train mode, in-place ReLU and residual adds as the
lowering chooses them) and run once on CPU (oneDNN off for recurrent layers): every tensor autograd saves, seen
by ``torch.autograd.graph.saved_tensors_hooks``, parameters and buffers excluded, deduplicated by
storage and counted at its storage's size, must equal archviz.passes.backward.train_costs's
elements; ``FlopCounterMode`` over forward plus backward (meta device) must equal
2 × (forward MACs + backward MACs).  The graph inputs (images, token ids) need no gradient.

Exceptions (docs/sizing.md "What backward keeps", and tests/ops/test_backward.py): a dropout
mask is one bool per element in archviz (CUDA's kernel) but the activation dtype on CPU, so the
CPU figure reads those masks at the activation dtype; statistics kept in opmath are float32 here;
FlopCounterMode counts a grouped convolution's weight gradient × groups (grouped_extra).
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


import archviz  # noqa: E402
from archviz.backends.torch.lower import example_inputs, to_torch  # noqa: E402
from archviz.ir import meta as M  # noqa: E402
from archviz.passes.backward import train_costs  # noqa: E402
from tests.fuzz.backward import expected_on_cpu as cpu_expected  # noqa: E402
from tests.fuzz.backward import kept_and_flops  # noqa: E402


MODELS = {
    "exam_conv_pool": dict(size=32),
    "exam_basic_block": dict(c=16, size=14),
    "exam_bottleneck_block": dict(c=32, size=14),
    "exam_pool": dict(c=8),
    "exam_transposed_conv": dict(c=8, out=4),
    "resnet18": dict(size=64),
    "gpt2": dict(vocab=101, positions=16, seq=12, d=32, layers=2, heads=4),
    "lstm_lm": dict(T=6, vocab=50, emb=12, hidden=12, layers=2, dropout=0.25),
    "lstm_classifier": dict(T=7, vocab=40, emb=10, hidden=8, classes=3),
    "bert_base": dict(vocab=60, positions=16, seq=10, d=32, layers=2, heads=4),
    "mobilenet_v2": dict(size=32),
    "shufflenet_v2_x1_0": dict(size=32),
    "efficientnet_b0": dict(size=32),
    "convnext_tiny": dict(size=32),
    "unet": dict(base=4, size=188),
    "vit_b_16": dict(size=32, layers=2, heads=2, dim=16, mlp_dim=32),
    "transformer_base": dict(vocab=50, d=16, heads=2, ff=32, layers=2, src_len=7, tgt_len=5),
    "seq2seq": dict(T_src=5, T_tgt=4, src_vocab=30, tgt_vocab=30, emb=6, hidden=8, layers=2),
    "seq2seq_luong": dict(T_src=5, T_tgt=4, src_vocab=30, tgt_vocab=30, emb=6, hidden=8, layers=2),
    "bilstm_tagger": dict(T=6, vocab=30, emb=5, hidden=4, tags=3),
    "gru_lm": dict(T=5, vocab=30, emb=6, hidden=8, layers=2, dropout=0.2),
    "rnn_exam": dict(T=4, d_x=5, d_h=6, d_y=7),
    "llama": dict(vocab=50, d_model=16, layers=2, heads=4, kv_heads=2, ffn=24, seq=6),
    "mixtral": dict(vocab=50, d_model=16, layers=2, heads=4, kv_heads=2, ffn=24, seq=6, experts=4, top_k=2),
    "seq2seq_bahdanau": dict(T_src=5, T_tgt=4, src_vocab=30, tgt_vocab=30, emb=6, enc_hidden=5, dec_hidden=7, attn=4),
}


def measure(model, device="cpu"):
    torch.manual_seed(0)
    m = to_torch(model, seed=0, train=True, device=device)
    xs = example_inputs(model, device=device)
    # oneDNN off where a recurrent layer would take its fused LSTM kernel (a workspace of its own
    # layout, invisible to FlopCounterMode); on elsewhere (the same tensors, faster)
    from archviz.ops import registry
    recurrent = any(registry[n.op].recurrence(n.attrs) for n in model.graph.topo_order() if not n.is_input)
    return kept_and_flops(m, xs, device, onednn=not recurrent)


@pytest.mark.parametrize("spec", sorted(MODELS))
def test_model_saved_bytes_match_torch(spec):
    model = archviz.load(spec, batch=2, **MODELS[spec])
    tc = train_costs(model.graph)
    got, _, _ = measure(model)
    assert cpu_expected(model.graph) == got
    assert sum(tc.saved_elems.values()) == sum(got.values())


@pytest.mark.parametrize("spec", sorted(MODELS))
def test_model_train_flops_match_flop_counter(spec):
    model = archviz.load(spec, batch=2, **MODELS[spec])
    tc = train_costs(model.graph)
    _, fwd, bwd = measure(model, device="meta")
    assert 2 * model.totals["macs"] == fwd
    assert 2 * (tc.backward_macs + grouped_extra(model.graph)) == bwd


def grouped_extra(g) -> int:
    """FlopCounterMode counts a grouped convolution's weight gradient as if ungrouped: (groups − 1)
    × its forward MACs more than the kernel computes (the exception above)."""
    return sum((n.attrs["groups"] - 1) * n.meta[M.MACS] for n in g.topo_order()
               if n.op.startswith("conv") and n.attrs.get("groups", 1) > 1 and n.meta[M.BACKWARD].need.weights)


def test_frozen_layers_match_torch(tmp_path):
    """Frozen convolutions on the data input run no backward (tests/test_backward_pass.py's spec)."""
    from tests.test_backward_pass import INLINE_FROZEN_B1, SPEC
    p = tmp_path / "frozen.yaml"
    p.write_text(SPEC.replace("  - {id: b1, op: b, in: x}\n", INLINE_FROZEN_B1))
    model = archviz.load(p, batch=2)
    tc = train_costs(model.graph)
    got, _, _ = measure(model)
    assert cpu_expected(model.graph) == got == tc.saved_elems
    _, _, bwd = measure(model, device="meta")
    assert 2 * tc.backward_macs == bwd
