"""attention (dot, scaled_dot, general/Luong, additive/concat/Bahdanau) and
multihead_attention (torch.nn.MultiheadAttention): shapes, parameters, MACs per part
against formulas written out here and against torch.utils.flop_counter, explain lines."""
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
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")


def run_static(op, ins, **kw):
    o = registry[op]
    a, errs = normalise(o, kw, {}, None, op)
    assert not errs, [str(e) for e in errs]
    return o, a, o.evaluate(a, ins)


def attention_macs(score, n, tq, tk, dq, dk, dv, dim=None):
    """Written out per part: projections, scores, weighted sum."""
    A = dim or dk
    proj = {"dot": 0, "scaled_dot": 0, "general": n * tq * dq * dk,
            "additive": n * tq * dq * A + n * tk * dk * A}[score]
    scores = n * tq * tk * (A if score == "additive" else dk)
    weighted = n * tq * tk * dv
    return proj + scores + weighted


def mha_macs(n, tq, tk, e, kdim, vdim):
    return n * tq * e * e + n * tk * kdim * e + n * tk * vdim * e + 2 * n * tq * tk * e + n * tq * e * e


ATT_CASES = [
    ("dot", (2, 5, 16), (2, 7, 16), None),
    ("scaled_dot", (3, 4, 8), (3, 6, 8), (3, 6, 10)),
    ("general", (2, 5, 12), (2, 9, 20), None),
    ("additive", (2, 5, 12), (2, 9, 20), (2, 9, 6)),
    ("general", (4, 12), (4, 9, 20), None),          # one query per example (a decoder step)
    ("additive", (4, 12), (4, 9, 20), None),
]


@pytest.mark.parametrize("score,q,k,v", ATT_CASES)
def test_attention_shapes_params_macs(score, q, k, v):
    ins = [q, k] + ([v] if v else [])
    dv = (v or k)[-1]
    op, a, outs = run_static("attention", ins, score=score)
    tq = q[1] if len(q) == 3 else 1
    if len(q) == 3:
        assert outs == {"out": (q[0], q[1], dv), "weights": (q[0], q[1], k[1])}
    else:
        assert outs == {"out": (q[0], dv), "weights": (q[0], k[1])}
    macs = op.count_macs(a, ins, outs)
    assert macs == attention_macs(score, q[0], tq, k[1], q[-1], k[-1], dv)
    n_params = {"dot": 0, "scaled_dot": 0, "general": q[-1] * k[-1],
                "additive": k[-1] * q[-1] + k[-1] * k[-1] + k[-1]}[score]
    assert op.count_params(a, ins).total == n_params
    # explain: one line per part, then the total
    lines = op.explain_macs(a, ins, outs)
    parts = [ln for ln in lines if ln.what.startswith("MACs: ")]
    whats = [ln.what for ln in parts]
    assert whats[-1] == "MACs: weighted sum α·V"
    assert any("scores" in w for w in whats)
    if score in ("general", "additive"):
        assert "MACs: query projection W_a q" in whats
    if score == "additive":
        assert "MACs: key projection U_a k" in whats
    assert sum(ln.value for ln in parts) == lines[-1].value == macs


@needs_torch
@pytest.mark.parametrize("score,q,k,v", ATT_CASES)
def test_attention_lowering_flops_and_numbers(score, q, k, v):
    ins = [q, k] + ([v] if v else [])
    op, a, outs = run_static("attention", ins, score=score)
    from archviz.backends.torch.table import module
    mod = module(op, a, ins, outs).double().eval()
    xs = [torch.randn(s, dtype=torch.float64) for s in ins]
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        y = mod(*xs)
    assert {p: tuple(t.shape) for p, t in y.items()} == outs
    assert 2 * op.count_macs(a, ins, outs) == fc.get_total_flops()
    assert {n: tuple(s) for n, s, _ in op.param_tensors(a, ins)} == \
        {n: tuple(p.shape) for n, p in mod.named_parameters()}
    torch.testing.assert_close(y["weights"].sum(-1), torch.ones(outs["weights"][:-1], dtype=torch.float64))
    # the score written out for one query/key pair, in plain loops
    qv = xs[0] if len(q) == 3 else xs[0][:, None, :]
    kv = xs[1]
    i, j = 0, k[1] - 1
    qi, kj = qv[0, i], kv[0, j]
    if score == "dot":
        s_ij = (qi * kj).sum()
    elif score == "scaled_dot":
        s_ij = (qi * kj).sum() / k[-1] ** 0.5
    elif score == "general":  # qᵀ W_a k with W_a (d_q, d_k) = W_a.weight transposed
        s_ij = qi @ mod.W_a.weight.T @ kj
    else:
        s_ij = mod.v_a.weight[0] @ torch.tanh(mod.W_a.weight @ qi + mod.U_a.weight @ kj)
    s_all = []
    for jj in range(k[1]):
        kk = kv[0, jj]
        if score == "dot":
            s_all.append((qi * kk).sum())
        elif score == "scaled_dot":
            s_all.append((qi * kk).sum() / k[-1] ** 0.5)
        elif score == "general":
            s_all.append(qi @ mod.W_a.weight.T @ kk)
        else:
            s_all.append(mod.v_a.weight[0] @ torch.tanh(mod.W_a.weight @ qi + mod.U_a.weight @ kk))
    s_all = torch.stack(s_all)
    alpha = torch.exp(s_all) / torch.exp(s_all).sum()
    w = y["weights"] if len(q) == 3 else y["weights"][:, None, :]
    torch.testing.assert_close(w[0, i, j], alpha[j])
    assert s_ij == s_all[j]
    vals = xs[2] if v else xs[1]
    ctx = sum(alpha[jj] * vals[0, jj] for jj in range(k[1]))
    o = y["out"] if len(q) == 3 else y["out"][:, None, :]
    torch.testing.assert_close(o[0, i], ctx)


def test_attention_errors():
    with pytest.raises(OpError, match="d_q == d_k"):
        run_static("attention", [(2, 3, 4), (2, 5, 6)], score="dot")
    with pytest.raises(OpError, match="value"):
        run_static("attention", [(2, 3, 4), (2, 5, 4), (2, 6, 4)], score="dot")
    with pytest.raises(OpError, match="'dim'"):
        run_static("attention", [(2, 3, 4), (2, 5, 4)], score="dot", dim=8)
    with pytest.raises(OpError, match="divisible"):
        run_static("multihead_attention", [(2, 3, 10)], heads=3)


def test_attention_elementwise():
    op, a, outs = run_static("attention", [(2, 3, 4), (2, 5, 4)], score="scaled_dot")
    assert op.count_elementwise(a, [(2, 3, 4), (2, 5, 4)], outs) == 4 * 2 * 3 * 5
    op, a, outs = run_static("attention", [(2, 3, 4), (2, 5, 6)], score="additive", dim=7)
    assert op.count_elementwise(a, [(2, 3, 4), (2, 5, 6)], outs) == 3 * 30 + 2 * 30 * 7


MHA_CASES = [
    # N, Tq, Tk, E, heads, kdim, vdim, self-attention
    (2, 6, 6, 32, 4, 32, 32, True),
    (2, 5, 9, 16, 2, 16, 16, False),
    (3, 4, 7, 12, 3, 5, 9, False),
]


@pytest.mark.parametrize("n,tq,tk,e,heads,kdim,vdim,self_attn", MHA_CASES)
def test_mha_static(n, tq, tk, e, heads, kdim, vdim, self_attn):
    ins = [(n, tq, e)] if self_attn else [(n, tq, e), (n, tk, kdim), (n, tk, vdim)]
    op, a, outs = run_static("multihead_attention", ins, heads=heads)
    assert outs == {"out": (n, tq, e), "weights": (n, tq, tk)}
    assert op.count_macs(a, ins, outs) == mha_macs(n, tq, tk, e, kdim, vdim)
    assert op.count_params(a, ins).total == e * (e + kdim + vdim) + 3 * e + e * e + e
    lines = op.explain_macs(a, ins, outs)
    assert [ln.what for ln in lines] == ["MACs: query projection", "MACs: key projection", "MACs: value projection",
                                         "MACs: scores QKᵀ", "MACs: weighted sum α·V", "MACs: output projection",
                                         "MACs"]
    _, a2, outs2 = run_static("multihead_attention", ins, heads=heads, average_weights=False)
    assert outs2["weights"] == (n, heads, tq, tk)


@needs_torch
@pytest.mark.parametrize("n,tq,tk,e,heads,kdim,vdim,self_attn", MHA_CASES)
def test_mha_against_torch(n, tq, tk, e, heads, kdim, vdim, self_attn):
    ins = [(n, tq, e)] if self_attn else [(n, tq, e), (n, tk, kdim), (n, tk, vdim)]
    op, a, outs = run_static("multihead_attention", ins, heads=heads)
    kw = {} if kdim == vdim == e else dict(kdim=kdim, vdim=vdim)
    ref = nn.MultiheadAttention(e, heads, batch_first=True, **kw).eval()
    assert [(k, tuple(v.shape)) for k, v in ref.state_dict().items()] == \
        [(nm, tuple(s)) for nm, s, _ in op.param_tensors(a, ins)]
    assert op.count_params(a, ins).total == sum(p.numel() for p in ref.parameters())
    q = torch.randn(n, tq, e)
    k, v = (q, q) if self_attn else (torch.randn(n, tk, kdim), torch.randn(n, tk, vdim))
    # torch's counter: the reference path (grad enabled; the no-grad fast path is a fused kernel)
    with FlopCounterMode(display=False) as fc:
        out, w = ref(q, k, v)
    macs = op.count_macs(a, ins, outs)
    assert 2 * macs == fc.get_total_flops()
    assert outs == {"out": tuple(out.shape), "weights": tuple(w.shape)}
    # the lowering: same parameter names, same numbers, counted even under no_grad
    from archviz.backends.torch.table import module
    mod = module(op, a, ins, outs).eval()
    mod.load_state_dict(ref.state_dict(), strict=True)
    args = [q] if self_attn else [q, k, v]
    with torch.no_grad(), FlopCounterMode(display=False) as fc2:
        got = mod(*args)
    assert 2 * macs == fc2.get_total_flops()
    with torch.no_grad():
        out, w = ref(q, k, v)
    torch.testing.assert_close(got["out"], out)
    torch.testing.assert_close(got["weights"], w)


@needs_torch
def test_mha_fast_path_is_not_counted_by_torch():
    """What torch does not count: nn.MultiheadAttention's fused inference path (eval + no_grad)."""
    m = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(x, x, x)
    assert fc.get_total_flops() == 0


@settings(max_examples=30, deadline=None)
@given(score=st.sampled_from(["dot", "scaled_dot", "general", "additive", "concat"]),
       n=st.integers(1, 4), tq=st.integers(1, 9), tk=st.integers(1, 9), d=st.integers(1, 16),
       dv=st.integers(1, 16))
def test_attention_macs_linear_in_batch_params_independent(score, n, tq, tk, d, dv):
    ins = [(n, tq, d), (n, tk, d), (n, tk, dv)]
    op, a, outs = run_static("attention", ins, score=score)
    ins2 = [(3 * n, tq, d), (3 * n, tk, d), (3 * n, tk, dv)]
    _, _, outs2 = run_static("attention", ins2, score=score)
    assert op.count_macs(a, ins2, outs2) == 3 * op.count_macs(a, ins, outs)
    assert op.count_params(a, ins2).total == op.count_params(a, [(1, 2, d), (1, 5, d), (1, 5, dv)]).total
    base = "additive" if score == "concat" else score
    assert op.count_macs(a, ins, outs) == attention_macs(base, n, tq, tk, d, d, dv)


# -- attention_gru: the decoder with the context fed back (Bahdanau et al. 2015) -----------
@pytest.mark.parametrize("n,t,e,tk,m,h,A", [(2, 5, 4, 7, 6, 8, 3), (1, 1, 3, 2, 5, 4, 4), (3, 4, 6, 3, 2, 5, 9)])
def test_attention_gru_static(n, t, e, tk, m, h, A):
    o, a, outs = run_static("attention_gru", [(n, t, e), (n, tk, m)], out=h, dim=A)
    assert outs == {"out": (n, t, h), "context": (n, t, m), "weights": (n, t, tk)}
    # W_a (A·h), U_a (A·M), v_a (A); GRUCell(E + M → h): 3h·(E + M) + 3h·h + 2·3h
    assert o.count_params(a, [(n, t, e), (n, tk, m)]).total == A * h + A * m + A + 3 * h * (e + m + h) + 6 * h
    # U_a h_j once; per step W_a s, v_aᵀ tanh, α·h, the GRU cell
    once = n * tk * m * A
    step = n * h * A + n * tk * A + n * tk * m + n * 3 * h * (e + m + h)
    assert o.count_macs(a, [(n, t, e), (n, tk, m)], outs) == once + t * step


@needs_torch
def test_attention_gru_lowering_equals_the_papers_equations():
    """archviz's module against the equations computed here step by step (float64, same weights)."""
    from archviz.backends.torch.seq_modules import AttentionGRU
    torch.manual_seed(0)
    n, t, e, tk, m, h, A = 2, 4, 3, 5, 6, 7, 4
    mod = AttentionGRU(e, m, h, dim=A, score_bias=True).double()
    y, ann, s0 = torch.randn(n, t, e).double(), torch.randn(n, tk, m).double(), torch.randn(n, h).double()
    with torch.no_grad():
        got = mod(y, ann, s0)
        W_a, b_a = mod.attn.W_a.weight, mod.attn.W_a.bias
        U_a, v_a = mod.attn.U_a.weight, mod.attn.v_a.weight[0]
        c = mod.cell
        s = s0
        for i in range(t):
            ee = torch.stack([torch.tanh(s @ W_a.T + b_a + ann[:, j] @ U_a.T) @ v_a for j in range(tk)], 1)
            alpha = torch.exp(ee) / torch.exp(ee).sum(1, keepdim=True)
            ctx = (alpha[:, :, None] * ann).sum(1)
            x = torch.cat([y[:, i], ctx], 1)
            gi, gh = x @ c.weight_ih.T + c.bias_ih, s @ c.weight_hh.T + c.bias_hh
            r = torch.sigmoid(gi[:, :h] + gh[:, :h])
            z = torch.sigmoid(gi[:, h:2 * h] + gh[:, h:2 * h])
            nn_ = torch.tanh(gi[:, 2 * h:] + r * gh[:, 2 * h:])      # torch's GRU: r ⊙ (W_hn h + b_hn)
            s = (1 - z) * nn_ + z * s
            torch.testing.assert_close(got["out"][:, i], s)
            torch.testing.assert_close(got["context"][:, i], ctx)
            torch.testing.assert_close(got["weights"][:, i], alpha)


def test_attention_gru_errors():
    o = registry["attention_gru"]
    a, _ = normalise(o, {"out": 4}, {}, None, "d")
    with pytest.raises(OpError, match="x must be a sequence"):
        o.check(a, [(2, 3), (2, 5, 6)])
    with pytest.raises(OpError, match="memory batch 3 differs"):
        o.check(a, [(2, 3, 4), (3, 5, 6)])
    with pytest.raises(OpError, match=r"h0 must be \(N, out\) = \(2, 4\)"):
        o.check(a, [(2, 3, 4), (2, 5, 6), (2, 5)])
