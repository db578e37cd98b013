"""The sequence-model specs: every one loads; the exam RNN's numbers derived by hand; T is
a param (-p T=...); and, with torch, every spec verifies, transformer_encoder matches
torch.nn.TransformerEncoder weight for weight, seq2seq models take (src, tgt)."""
from __future__ import annotations

import os

import pytest

import archviz

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEQ_SPECS = ["rnn_exam", "lstm_lm", "gru_lm", "bilstm_tagger", "seq2seq", "seq2seq_bahdanau",
             "seq2seq_luong", "transformer_encoder"]


def spec(name):
    return os.path.join(ROOT, "specs", f"{name}.yaml")


def small(name):
    """Small sizes for the torch runs (every spec's sizes are params)."""
    m = archviz.load(spec(name))
    p = dict(m.graph.params)
    over = {}
    for k, v in {"vocab": 50, "src_vocab": 40, "tgt_vocab": 30, "emb": 8, "hidden": 12, "enc_hidden": 6,
                 "dec_hidden": 10, "attn": 7, "d_model": 16, "heads": 2, "ff": 24, "T": 6, "T_src": 7,
                 "T_tgt": 5, "d_h": 16, "d_y": 20, "classes": 3, "tags": 4}.items():
        if k in p:
            over[k] = v
    return over


@pytest.mark.parametrize("name", SEQ_SPECS)
def test_spec_loads(name):
    m = archviz.load(spec(name))
    assert m.totals["params"] > 0 and m.totals["macs"] > 0
    for layer in m.layers:
        if layer.op in ("rnn", "lstm", "gru", "attention", "multihead_attention", "attention_gru"):
            assert layer.macs > 0


def test_rnn_exam_numbers():
    """x_t ∈ R^300, d_h = 512, y_t ∈ R^10000 at every step; torch's layout has two biases."""
    d_x, d_h, d_y = 300, 512, 10_000
    W_xh, W_hh, W_hy = d_h * d_x, d_h * d_h, d_y * d_h
    assert (W_xh, W_hh, W_hy) == (153_600, 262_144, 5_120_000)
    b_h_torch, b_h_textbook, b_y = 2 * d_h, d_h, d_y
    torch_total = W_xh + W_hh + b_h_torch + W_hy + b_y
    textbook_total = W_xh + W_hh + b_h_textbook + W_hy + b_y
    assert (torch_total, textbook_total) == (5_546_768, 5_546_256)
    macs_per_step = W_xh + W_hh + W_hy       # W_xh x_t, W_hh h_{t−1}, W_hy h_t
    assert macs_per_step == 5_535_744

    for T in (20, 1, 35):
        m = archviz.load(spec("rnn_exam"), T=T) if T != 20 else archviz.load(spec("rnn_exam"))
        assert m.graph.params["T"] == T
        assert m.totals["params"] == torch_total          # shared weights: independent of T
        assert m.totals["macs"] == T * macs_per_step
        rnn, out = m.layer("rnn"), m.layer("output")
        assert rnn.params.total == W_xh + W_hh + b_h_torch
        assert rnn.macs == T * (W_xh + W_hh)
        assert out.params.total == W_hy + b_y and out.macs == T * W_hy
        assert m.output_shapes == {"y": (1, T, d_y), "h_T": (1, 1, d_h)}
    # batch scales MACs, not params
    m8 = archviz.load(spec("rnn_exam"), batch=8)
    assert m8.totals["macs"] == 8 * 20 * macs_per_step and m8.totals["params"] == torch_total
    # explain: the textbook comparison
    from archviz.backends.explain import explain_text
    text = explain_text(archviz.load(spec("rnn_exam")), "rnn")
    assert "416,768" in text and "416,256" in text and "textbook" in text


def test_lstm_lm_params_by_formula():
    V, E, h = 10_000, 650, 650
    lstm = 4 * (h * (E + h) + 2 * h) + 4 * (h * (h + h) + 2 * h)
    m = archviz.load(spec("lstm_lm"))
    assert m.totals["params"] == V * E + lstm + (h * V + V) == 19_780_400
    assert m.layer("lstm").macs == 35 * (4 * h * (E + h) + 4 * h * (2 * h))


def test_bilstm_tagger_params_by_formula():
    V, E, h, tags = 20_000, 100, 128, 17
    layer0 = 2 * 4 * (h * (E + h) + 2 * h)
    layer1 = 2 * 4 * (h * (2 * h + h) + 2 * h)
    m = archviz.load(spec("bilstm_tagger"))
    assert m.layer("bilstm").params.total == layer0 + layer1
    assert m.totals["params"] == V * E + layer0 + layer1 + 2 * h * tags + tags
    assert m.output_shapes == {"tag_logits": (1, 40, tags)}


def test_seq2seq_inputs_and_outputs():
    m = archviz.load(spec("seq2seq_bahdanau"), T_src=11, T_tgt=4)
    assert m.input_shapes == {"src": (1, 11), "tgt": (1, 4)}
    assert m.output_shapes == {"logits": (1, 4, 8000), "attention": (1, 4, 11)}
    # Bahdanau et al. 2015 App. A: the decoder state s_i−1 scores the annotations (M = 2·256),
    # the context enters the GRU with y_i−1 (E = 256): U_a h_j once, then per step W_a s_i−1,
    # v_aᵀ tanh(·), Σ α h and the GRU cell over [y; c]
    dec = m.layer("decoder")
    n, t, tk, E, M, h, A = 1, 4, 11, 256, 512, 512, 256
    assert dec.macs == n * tk * M * A + t * (n * h * A + n * tk * A + n * tk * M + n * 3 * h * (E + M + h))
    assert dec.params.total == A * h + A * M + A + 3 * h * (E + M + h) + 2 * 3 * h
    m = archviz.load(spec("seq2seq_luong"))
    assert m.output_shapes["attention"] == (1, 18, 20)
    assert m.layer("attention").params.total == 512 * 512


def test_cli_param_override():
    from click.testing import CliRunner

    from archviz.cli import main
    r = CliRunner().invoke(main, ["summary", spec("rnn_exam"), "-p", "T=5"])
    assert r.exit_code == 0, r.output
    assert f"{5 * 5_535_744:,}" in r.output


# -- torch -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEQ_SPECS)
def test_spec_verifies(name):
    pytest.importorskip("torch")
    from archviz.backends.torch.verify import verify
    m = archviz.load(spec(name), **small(name))
    v = verify(m)
    assert v.ok, v.problems
    # every recurrent and attention node is counted by torch (meta device) and agrees
    for c in v.nodes:
        if c.op in ("rnn", "lstm", "gru", "attention", "multihead_attention", "attention_gru"):
            assert c.flops_status == "ok" and c.torch_flops > 0, (c.id, c.static_flops, c.torch_flops)


def test_seq2seq_attention_lowering_takes_source_and_target():
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import example_inputs, to_torch
    for name in ("seq2seq_bahdanau", "seq2seq_luong"):
        m = archviz.load(spec(name), **small(name))
        gm = to_torch(m, seed=0).eval()
        src, tgt = example_inputs(m)
        with torch.no_grad():
            out = gm(src=src, tgt=tgt)
        assert set(out) == {"logits", "attention"}
        assert tuple(out["logits"].shape) == m.output_shapes["logits"]
        torch.testing.assert_close(out["attention"].sum(-1), torch.ones(m.output_shapes["attention"][:-1]))
        # the decoder depends on the source (through the state handed over and the attention)
        with torch.no_grad():
            other = gm(src=(src + 1) % 30, tgt=tgt)
        assert not torch.allclose(other["logits"], out["logits"])


def test_seq2seq_state_handover():
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import example_inputs, to_torch
    m = archviz.load(spec("seq2seq"), **small("seq2seq"))
    gm = to_torch(m, seed=0).eval()
    src, tgt = example_inputs(m)
    with torch.no_grad():
        a = gm(src, tgt)
        b = gm((src + 3) % 30, tgt)
    assert not torch.allclose(a, b)   # only the encoder's final (h, c) carries the source


def test_transformer_encoder_is_torchs():
    torch = pytest.importorskip("torch")
    from torch import nn

    from archviz.backends.torch.lower import example_inputs, to_torch
    over = small("transformer_encoder")
    m = archviz.load(spec("transformer_encoder"), **over)
    gm = to_torch(m, seed=0).eval()
    d, heads, ff, layers = over["d_model"], over["heads"], over["ff"], m.graph.params["layers"]
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, batch_first=True),
                                num_layers=layers, enable_nested_tensor=False).eval()
    ours = {k: tuple(v.shape) for k, v in gm.state_dict().items() if k.startswith("layers.")}
    theirs = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert ours == theirs
    enc.load_state_dict({k: v for k, v in gm.state_dict().items() if k.startswith("layers.")})
    (tokens,) = example_inputs(m)
    with torch.no_grad():
        out = gm(tokens)
        ref = gm.classifier(enc(gm.embed(tokens)))
    torch.testing.assert_close(out["logits"], ref, rtol=1e-4, atol=1e-5)
    assert tuple(out["attention_last"].shape) == (1, over["T"], over["T"])
    # the static count equals the torch encoder's parameters plus embedding and classifier
    n_enc = sum(p.numel() for p in enc.parameters())
    assert m.totals["params"] == n_enc + over["vocab"] * d + d * over["classes"] + over["classes"]
