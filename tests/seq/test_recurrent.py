"""rnn / lstm / gru and the cells: shapes and parameters against torch's modules, MACs
against the formula written out here and against torch.utils.flop_counter (RNN and GRU on
the CPU, LSTM on the meta device), element-wise counts, explain lines, and errors."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archviz.errors import OpError
from archviz.ops import registry
from archviz.ops.schema import normalise

try:
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # the static rules are tested without torch too
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
TORCH = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}


def attrs(op, **kw):
    a, errs = normalise(registry[op], kw, {}, None, op)
    assert not errs, [str(e) for e in errs]
    return a


def run_static(op, ins, **kw):
    a = attrs(op, **kw)
    o = registry[op]
    return o, a, o.evaluate(a, ins)


def expected_params(kind, f, h, layers, bidirectional, bias=True, proj=0):
    """torch: per layer and direction G·(h·(x + h_out) + 2h) (+ p·h with a projection)."""
    g, d = GATES[kind], 2 if bidirectional else 1
    ho = proj or h
    total = 0
    for layer in range(layers):
        x = f if layer == 0 else d * ho
        total += d * (g * (h * (x + ho) + (2 * h if bias else 0)) + proj * h)
    return total


def expected_macs(kind, n, t, f, h, layers, bidirectional, proj=0):
    """Per step, layer and direction: W_ih x_t (G·h·x) + W_hh h_{t−1} (G·h·h_out) (+ W_hr: p·h); × N·T."""
    g, d = GATES[kind], 2 if bidirectional else 1
    ho = proj or h
    per_step = 0
    for layer in range(layers):
        x = f if layer == 0 else d * ho
        per_step += d * (g * h * x + g * h * ho + proj * h)
    return n * t * per_step


CONFIGS = [
    # kind, N, T, F, h, layers, bidirectional, bias, proj
    ("rnn", 2, 7, 300, 512, 1, False, True, 0),
    ("rnn", 3, 4, 10, 6, 3, True, False, 0),
    ("gru", 2, 5, 16, 32, 2, False, True, 0),
    ("gru", 1, 9, 8, 12, 2, True, True, 0),
    ("lstm", 2, 6, 20, 24, 1, False, True, 0),
    ("lstm", 3, 5, 12, 10, 2, True, True, 0),
    ("lstm", 2, 4, 7, 9, 2, True, False, 5),
]


@needs_torch
@pytest.mark.parametrize("kind,n,t,f,h,layers,bi,bias,proj", CONFIGS)
def test_against_torch_module(kind, n, t, f, h, layers, bi, bias, proj):
    kw = dict(out=h, num_layers=layers, bidirectional=bi, bias=bias)
    if proj:
        kw["proj_size"] = proj
    op, a, outs = run_static(kind, [(n, t, f)], **kw)
    tkw = dict(num_layers=layers, bidirectional=bi, bias=bias, batch_first=True)
    if proj:
        tkw["proj_size"] = proj
    m = getattr(nn, TORCH[kind])(f, h, **tkw).eval()
    x = torch.randn(n, t, f)
    with torch.no_grad():
        y, hn = m(x)
    assert outs["out"] == tuple(y.shape)
    if kind == "lstm":
        assert outs["h"] == tuple(hn[0].shape) and outs["c"] == tuple(hn[1].shape)
    else:
        assert outs["h"] == tuple(hn.shape)
    # parameter tensors: torch's names, shapes and order
    assert [(nm, tuple(s)) for nm, s, _ in op.param_tensors(a, [(n, t, f)])] == \
        [(k, tuple(v.shape)) for k, v in m.named_parameters()]
    p = op.count_params(a, [(n, t, f)])
    assert p.total == sum(v.numel() for v in m.parameters())
    assert p.total == expected_params(kind, f, h, layers, bi, bias, proj)
    # MACs: the written-out formula, and torch's counter where it sees the op
    macs = op.count_macs(a, [(n, t, f)], outs)
    assert macs == expected_macs(kind, n, t, f, h, layers, bi, proj)
    if kind == "lstm":
        with torch.device("meta"):
            mm = nn.LSTM(f, h, **tkw)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            mm(x.to("meta"))
    else:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            m(x)
    assert 2 * macs == fc.get_total_flops()


@needs_torch
def test_lstm_on_cpu_is_not_counted_by_torch():
    """What torch does not count: the oneDNN CPU LSTM kernel (the reason for the meta device)."""
    m = nn.LSTM(8, 16, batch_first=True).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(torch.randn(2, 5, 8))
    assert fc.get_total_flops() == 0


@needs_torch
@pytest.mark.parametrize("kind,cls", [("rnn_cell", "RNNCell"), ("gru_cell", "GRUCell"), ("lstm_cell", "LSTMCell")])
def test_cells_against_torch(kind, cls):
    cls = getattr(nn, cls)
    n, f, h = 3, 11, 7
    g = GATES[kind.split("_")[0]]
    op, a, outs = run_static(kind, [(n, f)], out=h)
    m = cls(f, h)
    assert [(k, tuple(v.shape)) for k, v in m.named_parameters()] == \
        [(nm, tuple(s)) for nm, s, _ in op.param_tensors(a, [(n, f)])]
    assert op.count_params(a, [(n, f)]).total == g * (h * (f + h) + 2 * h)
    macs = op.count_macs(a, [(n, f)], outs)
    assert macs == n * (g * h * f + g * h * h)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        y = m(torch.randn(n, f))
    assert 2 * macs == fc.get_total_flops()
    y = y[0] if isinstance(y, tuple) else y
    assert outs["out"] == tuple(y.shape)
    assert op.count_elementwise(a, [(n, f)], outs) == {"rnn_cell": 2, "gru_cell": 11, "lstm_cell": 13}[kind] * n * h


def test_elementwise_counts_are_per_unit_step_layer_direction():
    n, t, f, h = 2, 5, 4, 6
    for kind, k in (("rnn", 2), ("gru", 11), ("lstm", 13)):
        op, a, outs = run_static(kind, [(n, t, f)], out=h, num_layers=3, bidirectional=True)
        assert op.count_elementwise(a, [(n, t, f)], outs) == k * n * t * 2 * 3 * h


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["rnn", "gru", "lstm"]), n=st.integers(1, 8), t=st.integers(1, 50),
       f=st.integers(1, 64), h=st.integers(1, 64), layers=st.integers(1, 3), bi=st.booleans())
def test_params_do_not_depend_on_n_or_t_and_macs_are_linear(kind, n, t, f, h, layers, bi):
    op, a, outs = run_static(kind, [(n, t, f)], out=h, num_layers=layers, bidirectional=bi)
    p = op.count_params(a, [(n, t, f)]).total
    assert p == op.count_params(a, [(n + 3, 2 * t, f)]).total == expected_params(kind, f, h, layers, bi)
    m1 = op.count_macs(a, [(n, t, f)], outs)
    assert m1 == expected_macs(kind, n, t, f, h, layers, bi)
    _, _, outs2 = run_static(kind, [(2 * n, 3 * t, f)], out=h, num_layers=layers, bidirectional=bi)
    assert op.count_macs(a, [(2 * n, 3 * t, f)], outs2) == 6 * m1


def test_explain_shows_two_biases_vs_textbook():
    for kind, g in GATES.items():
        op, a, outs = run_static(kind, [(1, 10, 300)], out=512)
        lines = op.explain(a, [(1, 10, 300)], outs)
        cmp = [ln for ln in lines if ln.what == "params: torch vs textbook"]
        assert len(cmp) == 1
        torch_n = g * (512 * (300 + 512) + 2 * 512)
        textbook = g * (512 * (300 + 512) + 512)
        assert f"{torch_n:,}" in cmp[0].numbers and f"{textbook:,}" in cmp[0].numbers
        assert cmp[0].value == textbook
        assert "2h" in cmp[0].formula and "bias_ih" in cmp[0].formula
        total = [ln for ln in lines if ln.what == "params"]
        assert total[0].value == torch_n == op.count_params(a, [(1, 10, 300)]).total
        mac_lines = [ln for ln in lines if ln.what.startswith("MACs")]
        assert mac_lines[-1].value == op.count_macs(a, [(1, 10, 300)], outs) == 10 * g * 512 * (300 + 512)
        assert "per step × T" in mac_lines[0].formula
    # no bias: nothing to compare
    op, a, outs = run_static("lstm", [(1, 3, 4)], out=5, bias=False)
    assert not [ln for ln in op.explain(a, [(1, 3, 4)], outs) if "textbook" in ln.what]


@needs_torch
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_explain_says_which_second_bias_is_redundant(kind):
    """The claim the explain line makes, checked on torch itself: fold bias_hh into bias_ih
    (b_ih + b_hh, b_hh = 0). RNN and LSTM compute the same function; GRU does not, since its
    b_hn is multiplied by the reset gate."""
    torch.manual_seed(0)
    m = getattr(nn, TORCH[kind])(4, 6, batch_first=True).double()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    with torch.no_grad():
        y = m(x)[0]
        m.bias_ih_l0 += m.bias_hh_l0
        m.bias_hh_l0.zero_()
        same = torch.allclose(m(x)[0], y, atol=1e-12)
    op, a, outs = run_static(kind, [(1, 5, 4)], out=6)
    cmp = [ln for ln in op.explain(a, [(1, 5, 4)], outs) if ln.what == "params: torch vs textbook"][0]
    assert same == (kind != "gru")
    if same:
        assert "one of them is redundant" in cmp.formula
    else:
        assert "r⊙(W_hn h + b_hn)" in cmp.formula and "not the one-bias GRU" in cmp.formula


def test_explain_cell_bias_line():
    op, a, outs = run_static("lstm_cell", [(2, 300)], out=512)
    lines = op.explain(a, [(2, 300)], outs)
    cmp = [ln for ln in lines if "textbook" in ln.what]
    assert cmp and cmp[0].value == 4 * (512 * 812 + 512)


def test_initial_states():
    # LSTM: both or neither
    op, a, outs = run_static("lstm", [(2, 5, 4), (1, 2, 6), (1, 2, 6)], out=6)
    assert outs["c"] == (1, 2, 6)
    with pytest.raises(OpError, match="both"):
        registry["lstm"].check(attrs("lstm", out=6), [(2, 5, 4), (1, 2, 6)])
    with pytest.raises(OpError, match="initial state 'h0'"):
        registry["gru"].check(attrs("gru", out=6, num_layers=2), [(2, 5, 4), (1, 2, 6)])
    with pytest.raises(OpError, match=r"\(2, 2, 6\)"):
        registry["gru"].check(attrs("gru", out=6, bidirectional=True), [(2, 5, 4), (2, 6)])
    # a (N, h) state is accepted for one layer and direction
    run_static("gru", [(2, 5, 4), (2, 6)], out=6)
    with pytest.raises(OpError, match="state 'h'"):
        registry["gru_cell"].check(attrs("gru_cell", out=6), [(2, 4), (3, 6)])


def test_rank_and_attribute_errors():
    with pytest.raises(OpError, match=r"\(N, T, F\)"):
        registry["rnn"].check(attrs("rnn", out=4), [(2, 5)])
    with pytest.raises(OpError, match="proj_size"):
        registry["lstm"].check(attrs("lstm", out=4, proj_size=4), [(2, 5, 3)])
    with pytest.raises(OpError, match="dropout"):
        registry["gru"].check(attrs("gru", out=4, dropout=1.5), [(2, 5, 3)])  # torch raises above 1
    with pytest.raises(OpError, match="one time step"):
        registry["lstm_cell"].check(attrs("lstm_cell", out=4), [(2, 5, 3)])
    _, errs = normalise(registry["rnn"], {"out": 4, "nonlinearity": "sigmoid"}, {}, None, "rnn")
    assert errs


def test_embedding():
    op, a, outs = run_static("embedding", [(2, 7)], num=100, dim=16)
    assert outs == {"out": (2, 7, 16)}
    assert op.count_params(a, [(2, 7)]).total == 100 * 16
    assert op.count_macs(a, [(2, 7)], outs) == 0
    with pytest.raises(OpError, match="padding_idx"):
        registry["embedding"].check(attrs("embedding", num=10, dim=4, padding_idx=10), [(1, 3)])


@needs_torch
def test_embedding_against_torch():
    op, a, outs = run_static("embedding", [(2, 7)], num=100, dim=16)
    m = nn.Embedding(100, 16)
    assert op.count_params(a, [(2, 7)]).total == m.weight.numel() == 1600
    assert op.count_macs(a, [(2, 7)], outs) == 0
    with FlopCounterMode(display=False) as fc:
        m(torch.randint(0, 100, (2, 7)))
    assert fc.get_total_flops() == 0


@needs_torch
def test_lowered_lstm_state_dict_is_torchs():
    """The lowering subclasses nn.LSTM: its state dict loads into a plain nn.LSTM and back."""
    op, a, outs = run_static("lstm", [(2, 4, 5)], out=6, num_layers=2, bidirectional=True)
    from archviz.backends.torch.table import module
    mod = module(op, a, [(2, 4, 5)], outs)
    plain = nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True)
    plain.load_state_dict(mod.state_dict(), strict=True)
    x = torch.randn(2, 4, 5)
    h0, c0 = torch.randn(4, 2, 6), torch.randn(4, 2, 6)
    with torch.no_grad():
        got = mod(x, h0, c0)
        out, (h, c) = plain(x, (h0, c0))
    assert set(got) == {"out", "h", "c"}
    torch.testing.assert_close(got["out"], out)
    torch.testing.assert_close(got["h"], h)
    torch.testing.assert_close(got["c"], c)
