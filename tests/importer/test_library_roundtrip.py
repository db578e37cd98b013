"""The round trip over the bundled library (issue 14): spec → lowered module → archviz import →
a spec with the same numbers (params, buffers, MACs, output shapes: archviz's totals of both
specs, and torch's own counts of the lowered module: parameters(), buffers(), FlopCounterMode on
meta) and the same function (the module lowered from the imported spec, loaded with the first
one's state_dict, gives the same outputs in float64, max |Δ| ≤ 1e-9; state-dict keys equal).

Counts run at the specs' own sizes on the meta device; the function check runs at the small
sizes below (float64 arithmetic on the CPU), the same graph with narrower layers."""
from __future__ import annotations

import glob
import os

import pytest

torch = pytest.importorskip("torch")

import archviz  # noqa: E402
from archviz.backends.torch.importer import from_torch  # noqa: E402
from archviz.backends.torch.importer.check import check  # noqa: E402
from archviz.backends.torch.lower import example_inputs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml")))

# the specs that do not import back yet, with the reason (test_known_gaps_fail_clearly holds each)
KNOWN_GAPS: dict = {}

# the sizes of the function check (the counts above use the specs' own)
SMALL = {
    "alexnet": dict(num_classes=10, size=127), "alexnet_original": dict(num_classes=10),
    "bert_base": dict(vocab=50, positions=16, seq=8, d=32, layers=2, heads=4),
    "bilstm_tagger": dict(T=6, vocab=50, emb=8, hidden=8),
    "convnext_tiny": dict(num_classes=10, size=32, dims=[8, 16, 16, 32], depths=[1, 1, 2, 1]),
    "efficientnet_b0": dict(num_classes=10, size=32, width_mult=0.25), "gpt2": dict(vocab=50, positions=16, seq=8, d=32, layers=2,
                                                                   heads=4),
    "gru_lm": dict(T=5, vocab=50, emb=8, hidden=8), "llama": dict(vocab=50, d_model=32, layers=2, heads=4,
                                                                  kv_heads=2, ffn=48, seq=8),
    "lstm_classifier": dict(T=5, vocab=50, emb=8, hidden=8), "lstm_lm": dict(T=5, vocab=50, emb=8, hidden=8),
    "mixtral": dict(vocab=50, d_model=32, layers=2, heads=4, kv_heads=2, ffn=48, seq=8, experts=4, top_k=2),
    "mobilenet_v2": dict(num_classes=10, size=32), "resnet101": dict(num_classes=10, size=32, widths=[4, 8, 8, 8]),
    "resnet152": dict(num_classes=10, size=32, widths=[4, 8, 8, 8]),
    "resnet18": dict(num_classes=10, size=32), "resnet34": dict(num_classes=10, size=32),
    "resnet50": dict(num_classes=10, size=32, widths=[4, 8, 8, 8]), "rnn_exam": dict(T=5, d_x=6, d_h=8, d_y=10),
    "seq2seq": dict(T_src=5, T_tgt=4, src_vocab=30, tgt_vocab=30, emb=8, hidden=8),
    "seq2seq_bahdanau": dict(T_src=5, T_tgt=4, src_vocab=30, tgt_vocab=30, emb=8),
    "seq2seq_luong": dict(T_src=5, T_tgt=4, src_vocab=30, tgt_vocab=30, emb=8, hidden=8),
    "shufflenet_v2_x1_0": dict(num_classes=10, size=32),
    "transformer_base": dict(vocab=40, d=16, heads=2, ff=32, layers=2, src_len=6, tgt_len=5),
    "transformer_encoder": dict(T=6, vocab=40, d_model=16, heads=2, ff=32),
    "unet": dict(base=4, size=188), "vgg16": dict(num_classes=10, size=32, widths=[4, 8, 8, 8, 8]),
    "vgg19": dict(num_classes=10, size=32, widths=[4, 8, 8, 8, 8]),
    "vit_b_16": dict(num_classes=10, size=32, patch=8, layers=2, heads=2, dim=16, mlp_dim=32),
    "exam_basic_block": dict(c=8, size=8), "exam_bottleneck_block": dict(c=16, size=8),
    "exam_conv_pool": dict(c=4, size=16), "exam_one_5x5": dict(c=4, size=12), "exam_one_7x7": dict(c=4, size=12),
    "exam_pool": dict(c=4), "exam_three_3x3": dict(c=4, size=12), "exam_transposed_conv": dict(c=4, out=3),
    "exam_two_3x3": dict(c=4, size=12),
}


def _lower_and_import(name, device, batch=2, **params):
    m = archviz.load(os.path.join(ROOT, "specs", f"{name}.yaml"), batch=batch, **params)
    if device == "meta":
        with torch.device("meta"):
            gm = archviz.to_torch(m)
    else:
        gm = archviz.to_torch(m, seed=0)
    inputs = dict(zip(m.input_shapes, example_inputs(m, device=device)))
    return m, gm, inputs, from_torch(gm, inputs)


def test_every_spec_is_listed():
    assert set(SMALL) | set(KNOWN_GAPS) == set(SPECS), "a new spec needs small sizes for its function check"


@pytest.mark.parametrize("name", [s for s in SPECS if s not in KNOWN_GAPS])
def test_same_numbers(name):
    m, gm, inputs, imp = _lower_and_import(name, "meta")
    for k in ("params", "trainable_params", "buffers", "macs", "elementwise_ops"):
        assert imp.totals[k] == m.totals[k], k
    assert list(imp.output_shapes.values()) == list(m.output_shapes.values())
    check(gm, inputs, imp, function=False)      # torch's own counts of the lowered module


@pytest.mark.parametrize("name", [s for s in SPECS if s not in KNOWN_GAPS])
def test_same_function(name):
    m, gm, inputs, imp = _lower_and_import(name, "cpu", **SMALL[name])
    assert sorted(archviz.to_torch(imp).state_dict()) == sorted(gm.state_dict())
    c = check(gm, inputs, imp)
    assert c.max_delta is not None and c.max_delta <= 1e-9


@pytest.mark.parametrize("name", sorted(KNOWN_GAPS))
def test_known_gaps_fail_clearly(name):
    from archviz.codes import E
    from archviz.errors import TorchImportError
    with pytest.raises(TorchImportError) as e:
        _lower_and_import(name, "meta")
    assert e.value.code == E.IMPORT_UNMAPPED
