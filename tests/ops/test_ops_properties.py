"""Property tests (hypothesis) of the op rules against torch.

For random conv2d / maxpool2d / avgpool2d / conv_transpose2d attributes and input sizes
(padding, dilation, ceil_mode, output_padding, groups, 'same'/'valid'), and for most other
ops too: archviz's `check` + `infer_shape` raise :class:`OpError` exactly where torch
raises (at construction or on a real tensor), and otherwise give torch's output shapes.
The only accepted differences are listed in STRICTER (a layer's parameters never depend on
the batch; axis 0 is always the batch).  Also: parameter counts do not depend on the input's spatial size or batch, and
MACs (forward and backward) are linear in the batch size (for random windowed ops and for every op's samples).
"""
from __future__ import annotations

import os
import warnings

import pytest

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from archviz.errors import OpError  # noqa: E402
from archviz.ops import registry  # noqa: E402
from archviz.ops.schema import normalise  # noqa: E402

from .torch_ref import NO_REF, REFS  # noqa: E402

# deterministic by default (same examples every run, ~150 each); for a deeper random
# search: ARCHVIZ_HYPOTHESIS_EXAMPLES=5000 python -m pytest tests/ops/test_ops_properties.py
_DEEP = int(os.environ.get("ARCHVIZ_HYPOTHESIS_EXAMPLES", "0"))
SETTINGS = settings(deadline=None, max_examples=_DEEP or 150, derandomize=not _DEEP,
                    suppress_health_check=[HealthCheck.too_slow])


def norm(name, raw):
    op = registry[name]
    a, errors = normalise(op, raw, {}, None, f"test {name}")
    assert not errors, [str(e) for e in errors]
    return op, a


def _ports(y, shape_of):
    """{port: shape} from a single result or a dict of them; None if any axis is empty
    (torch may return an empty tensor; archviz's shape pass rejects one)."""
    d = {k: tuple(shape_of(v)) for k, v in y.items()} if isinstance(y, dict) else {"out": tuple(shape_of(y))}
    return None if any(n < 1 for s in d.values() for n in s) else d


def archviz_shape(name, raw, ins):
    """archviz's output shapes {port: shape}, or None where its rules raise OpError."""
    op, a = norm(name, raw)
    try:
        out = op.evaluate(a, ins)
    except OpError:
        return None
    return _ports(out, tuple)


def torch_shape(name, raw, ins):
    """torch's output shapes ({port: shape}) on real tensors, or None where torch raises
    (IndexError is torch's "Dimension out of range"; some modules assert their arguments)."""
    op, a = norm(name, raw)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fn, xs = REFS[name](a, ins)
            if isinstance(fn, nn.Module):
                fn.eval()
            y = fn(*xs)
    except (RuntimeError, ValueError, IndexError, AssertionError):   # torch asserts some arguments
        return None
    return _ports(y, lambda t: t.shape)


# Where archviz is deliberately stricter than torch: a layer's parameters never depend on the
# batch, and axis 0 is always the batch (torch also reads unbatched inputs).  For these cases
# archviz must raise; torch may accept.
STRICTER = {
    # torch.nn.LayerNorm may normalise over every axis, batch included
    "layernorm": lambda raw, ins: raw.get("dims", 1) >= len(ins[0]),
    # torch's recurrent modules also take an unbatched (T, F) sequence / (F,) step
    "rnn": lambda raw, ins: len(ins[0]) == 2,
    "gru": lambda raw, ins: len(ins[0]) == 2,
    "lstm": lambda raw, ins: len(ins[0]) == 2,
    "rnn_cell": lambda raw, ins: len(ins[0]) == 1,
    "gru_cell": lambda raw, ins: len(ins[0]) == 1,
    "lstm_cell": lambda raw, ins: len(ins[0]) == 1,
    # torch.select on a 1-D tensor gives a 0-D scalar: no batch axis left
    "select_step": lambda raw, ins: len(ins[0]) < 2,
}


def agree(name, raw, ins):
    got = archviz_shape(name, raw, ins)
    if name in STRICTER and STRICTER[name](raw, ins):
        assert got is None, f"{name} {raw} on {ins}: archviz {got}, expected an error (batch axis)"
        return
    want = torch_shape(name, raw, ins)
    assert got == want, f"{name} {raw} on {ins}: archviz {got}, torch {want}"


size = st.integers(1, 13)


def pair_of(s):
    return st.one_of(s, st.lists(s, min_size=2, max_size=2))


# -- conv2d ------------------------------------------------------------------------------
@st.composite
def conv2d_case(draw):
    groups = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3)) * groups if draw(st.booleans()) else draw(st.integers(1, 6))
    raw = {"out": draw(st.integers(1, 3)) * groups if draw(st.booleans()) else draw(st.integers(1, 6)),
           "kernel": draw(pair_of(st.integers(1, 5))),
           "stride": draw(pair_of(st.integers(1, 3))),
           "padding": draw(st.one_of(pair_of(st.integers(0, 3)), st.sampled_from(["same", "valid"]))),
           "dilation": draw(pair_of(st.integers(1, 3))),
           "groups": groups, "bias": draw(st.booleans())}
    ins = [(draw(st.integers(1, 2)), c, draw(size), draw(size))]
    return raw, ins


@SETTINGS
@given(conv2d_case())
def test_conv2d_raises_and_shapes_like_torch(case):
    agree("conv2d", *case)


# -- pooling -------------------------------------------------------------------------------
@st.composite
def pool_case(draw, dilation: bool):
    raw = {"kernel": draw(pair_of(st.integers(1, 5))),
           "padding": draw(pair_of(st.integers(0, 3))),
           "ceil_mode": draw(st.booleans())}
    stride = draw(st.one_of(st.none(), pair_of(st.integers(1, 4))))
    if stride is not None:
        raw["stride"] = stride
    if dilation:
        raw["dilation"] = draw(pair_of(st.integers(1, 3)))
    else:
        raw["count_include_pad"] = draw(st.booleans())
    ins = [(1, draw(st.integers(1, 3)), draw(size), draw(size))]
    return raw, ins


@SETTINGS
@given(pool_case(dilation=True))
def test_maxpool2d_raises_and_shapes_like_torch(case):
    agree("maxpool2d", *case)


@SETTINGS
@given(pool_case(dilation=False))
def test_avgpool2d_raises_and_shapes_like_torch(case):
    agree("avgpool2d", *case)


# -- conv_transpose2d -------------------------------------------------------------------------
@st.composite
def conv_t_case(draw):
    groups = draw(st.integers(1, 3))
    raw = {"out": draw(st.integers(1, 3)) * groups if draw(st.integers(0, 5)) else draw(st.integers(1, 5)),
           "kernel": draw(pair_of(st.integers(1, 4))),
           "stride": draw(pair_of(st.integers(1, 3))),
           "padding": draw(pair_of(st.integers(0, 3))),
           "output_padding": draw(pair_of(st.integers(0, 3))),
           "dilation": draw(pair_of(st.integers(1, 3))),
           "groups": groups, "bias": draw(st.booleans())}
    c = draw(st.integers(1, 3)) * groups if draw(st.integers(0, 5)) else draw(st.integers(1, 5))
    ins = [(draw(st.integers(1, 2)), c, draw(st.integers(1, 8)), draw(st.integers(1, 8)))]
    return raw, ins


@SETTINGS
@given(conv_t_case())
def test_conv_transpose2d_raises_and_shapes_like_torch(case):
    agree("conv_transpose2d", *case)


# -- invariants: params vs input size, MACs vs batch ----------------------------------------------
@SETTINGS
@given(conv2d_case(), size, size)
def test_conv2d_params_do_not_depend_on_spatial_size(case, h, w):
    raw, (x,) = case
    op, a = norm("conv2d", raw)
    p1 = op.param_tensors(a, [x])
    p2 = op.param_tensors(a, [(x[0], x[1], h, w)])
    assert p1 == p2


@SETTINGS
@given(conv_t_case(), size, size)
def test_conv_transpose2d_params_do_not_depend_on_spatial_size(case, h, w):
    raw, (x,) = case
    op, a = norm("conv_transpose2d", raw)
    assert op.param_tensors(a, [x]) == op.param_tensors(a, [(x[0], x[1], h, w)])


@SETTINGS
@given(st.sampled_from(["rnn", "gru", "lstm"]), st.data(), st.integers(1, 5), st.integers(1, 9))
def test_recurrent_params_do_not_depend_on_batch_or_length(kind, data, n, t):
    raw, ins = data.draw(rnn_case(kind))
    x = ins[0]
    if len(x) != 3:
        return
    op, a = norm(kind, raw)
    try:
        op.check(a, [x])
    except OpError:
        return
    assert op.param_tensors(a, [x]) == op.param_tensors(a, [(n, t, x[2])])
    m = op.count_macs(a, [(1, 1, x[2])], {})
    assert op.count_macs(a, [(n, t, x[2])], {}) == n * t * m     # one step's work, N·T times


def _macs(name, raw, ins):
    op, a = norm(name, raw)
    try:
        outs = op.evaluate(a, ins)
    except OpError:
        return None
    return op.count_macs(a, ins, outs)


@SETTINGS
@given(st.sampled_from(["conv2d", "conv_transpose2d", "maxpool2d", "avgpool2d"]), st.data(),
       st.integers(2, 7))
def test_macs_linear_in_batch(name, data, n):
    strat = {"conv2d": conv2d_case(), "conv_transpose2d": conv_t_case(),
             "maxpool2d": pool_case(True), "avgpool2d": pool_case(False)}[name]
    raw, (x,) = data.draw(strat)
    one = _macs(name, raw, [(1, *x[1:])])
    many = _macs(name, raw, [(n, *x[1:])])
    assert (one is None) == (many is None)     # validity does not depend on the batch
    if one is not None:
        assert many == n * one


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 64), st.integers(1, 64), st.booleans(), st.integers(2, 9))
def test_linear_macs_linear_in_batch_and_params_fixed(rows, fin, fout, bias, n):
    op, a = norm("linear", {"out": fout, "bias": bias})
    ins1, insn = [(1, rows, fin)], [(n, rows, fin)]
    m1 = op.count_macs(a, ins1, op.evaluate(a, ins1))
    mn = op.count_macs(a, insn, op.evaluate(a, insn))
    assert mn == n * m1 == n * rows * fin * fout
    assert op.param_tensors(a, ins1) == op.param_tensors(a, insn)
    assert op.count_params(a, ins1).total == fin * fout + (fout if bias else 0)


def _sample_cases():
    for name in sorted(registry):
        if name in NO_REF:
            continue
        for i, s in enumerate(registry[name].samples):
            yield pytest.param(name, i, id=f"{name}-{i}")


def _with_batch(op, a, inputs, n):
    """The sample's inputs with batch n: axis 0 of every input, or, for the recurrent
    states (L·D, N, h) that follow the sequence, axis 1 (torch's layout)."""
    for state_axis in (0, 1):
        ins = [(n, *x[1:]) if i == 0 or state_axis == 0 or len(x) != 3 else (x[0], n, *x[2:])
               for i, x in enumerate(inputs)]
        try:
            op.evaluate(a, ins)
        except OpError:
            continue
        return ins
    return None


@pytest.mark.parametrize("name,idx", list(_sample_cases()))
def test_samples_params_fixed_and_macs_linear_in_batch(name, idx):
    from archviz.ops.saved import all_need
    op = registry[name]
    s = op.samples[idx]
    a, errors = normalise(op, dict(s["attrs"]), {}, None, name)
    assert not errors
    if len({x[0] for x in s["inputs"]}) > 1 and name not in ("rnn", "gru", "lstm"):
        pytest.skip("inputs broadcast over the batch axis")
    base = _with_batch(op, a, s["inputs"], 1)
    if base is None:      # e.g. select_step along axis 0 of a recurrent state (layers, not batch)
        pytest.skip("the sample indexes its axis 0: it does not type-check with batch 1")
    outs = op.evaluate(a, base)
    m1 = op.count_macs(a, base, outs)
    b1 = op.count_backward_macs(a, base, outs, all_need(base))
    p1 = op.param_tensors(a, base)
    for n in (2, 3, 8):
        ins = _with_batch(op, a, s["inputs"], n)
        assert ins is not None, f"the sample does not type-check with batch {n}"
        outs = op.evaluate(a, ins)
        assert op.param_tensors(a, ins) == p1
        assert op.count_macs(a, ins, outs) == n * m1
        assert op.count_backward_macs(a, ins, outs, all_need(ins)) == n * b1


# -- the other ops: raise parity and shapes on random attributes and inputs -----------------------
def shape_of(rank_lo, rank_hi, lo=1, hi=6):
    return st.lists(st.integers(lo, hi), min_size=rank_lo, max_size=rank_hi).map(tuple)


@st.composite
def conv1d_case(draw):
    groups = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3)) * groups if draw(st.booleans()) else draw(st.integers(1, 6))
    raw = {"out": draw(st.integers(1, 3)) * groups, "kernel": draw(st.integers(1, 5)),
           "stride": draw(st.integers(1, 3)),
           "padding": draw(st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"]))),
           "dilation": draw(st.integers(1, 3)), "groups": groups, "bias": draw(st.booleans())}
    return raw, [(draw(st.integers(1, 2)), c, draw(size))]


@st.composite
def flatten_case(draw):
    x = draw(shape_of(1, 5))
    return {"start_dim": draw(st.integers(-6, 5)), "end_dim": draw(st.integers(-6, 5))}, [x]


@st.composite
def concat_case(draw):
    x = draw(shape_of(1, 4))
    n = draw(st.integers(2, 3))
    ins = [tuple(d if draw(st.integers(0, 4)) else draw(st.integers(1, 4)) for d in x)
           if draw(st.booleans()) else x for _ in range(n)]
    if draw(st.integers(0, 5)) == 0:
        ins[-1] = draw(shape_of(1, 4))     # occasionally a different rank
    return {"axis": draw(st.integers(-5, 4))}, ins


@st.composite
def broadcast_case(draw):
    x = draw(shape_of(1, 4, 1, 3))
    ins = [x]
    for _ in range(draw(st.integers(1, 2))):
        r = draw(st.integers(1, len(x)))
        ins.append(tuple(draw(st.sampled_from([d, 1, 1, 2])) for d in x[len(x) - r:]))
    return {}, ins


@st.composite
def pad_case(draw):
    x = draw(shape_of(2, 5, 1, 5))
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["constant", "reflect", "replicate"]))
    pads = [draw(st.integers(-3, 4)) for _ in range(2 * n)]
    return {"pads": pads, "mode": mode}, [x]


@st.composite
def upsample_case(draw):
    x = (1, draw(st.integers(1, 3)), draw(size), draw(size))
    raw = {"mode": draw(st.sampled_from(["nearest", "bilinear"]))}
    if draw(st.booleans()):
        raw["size"] = draw(pair_of(st.integers(1, 20)))
    else:
        raw["scale"] = draw(pair_of(st.sampled_from([0.5, 1, 1.5, 2, 2.25, 3, 4])))
    if raw["mode"] == "bilinear":
        raw["align_corners"] = draw(st.booleans())
    return raw, [x]


@st.composite
def layernorm_case(draw):
    return {"dims": draw(st.integers(1, 4))}, [draw(shape_of(1, 4))]


@st.composite
def softmax_case(draw):
    return {"dim": draw(st.integers(-5, 4))}, [draw(shape_of(1, 4))]


@st.composite
def batchnorm_case(draw):
    return {"affine": draw(st.booleans())}, [draw(shape_of(1, 5, 1, 4))]


@st.composite
def center_crop_case(draw):
    x = draw(shape_of(3, 5, 1, 8))
    ref = (x[0], draw(st.integers(1, 4)), *(draw(st.integers(1, 9)) for _ in x[2:]))
    return {}, [x, ref]


@st.composite
def adaptive_case(draw):
    return {"size": draw(pair_of(st.integers(1, 9)))}, [(1, 2, draw(size), draw(size))]


@st.composite
def linear_case(draw):
    return {"out": draw(st.integers(1, 5))}, [draw(shape_of(2, 4))]


@st.composite
def lrn_case(draw):
    return {"size": draw(st.integers(1, 6))}, [draw(shape_of(2, 5, 1, 5))]


@st.composite
def dropout_case(draw):
    return {"p": draw(st.sampled_from([-0.5, 0, 0.3, 1, 1.5]))}, [draw(shape_of(1, 3))]


@st.composite
def gap_case(draw):
    return {}, [draw(shape_of(3, 5, 1, 5))]


@st.composite
def select_step_case(draw):
    return {"index": draw(st.integers(-6, 5)), "axis": draw(st.integers(-4, 3))}, [draw(shape_of(1, 4, 1, 5))]


@st.composite
def reverse_case(draw):
    return {"axis": draw(st.integers(-4, 3))}, [draw(shape_of(1, 4, 1, 5))]


@st.composite
def last_step_case(draw):
    return {}, [draw(shape_of(1, 4, 1, 5))]


@st.composite
def embedding_case(draw):
    raw = {"num": draw(st.integers(1, 9)), "dim": draw(st.integers(1, 5))}
    if draw(st.booleans()):
        raw["padding_idx"] = draw(st.integers(-10, 9))
    return raw, [draw(shape_of(1, 3, 1, 4))]


@st.composite
def rnn_case(draw, kind):
    raw = {"out": draw(st.integers(1, 5)), "num_layers": draw(st.integers(1, 3)),
           "bidirectional": draw(st.booleans()), "bias": draw(st.booleans()),
           "dropout": draw(st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.5, -0.1]))}
    if kind == "lstm" and draw(st.booleans()):
        raw["proj_size"] = draw(st.integers(0, 6))
    x = draw(shape_of(2, 4, 1, 4)) if draw(st.integers(0, 4)) == 0 else draw(shape_of(3, 3, 1, 4))
    ins = [x]
    if draw(st.booleans()) and len(x) == 3:
        d = 2 if raw["bidirectional"] else 1
        ho = raw.get("proj_size") or raw["out"]
        good = (raw["num_layers"] * d, x[0], ho)
        shape = draw(st.sampled_from([good, good[1:], (good[0], good[1] + 1, good[2]), (good[0] + 1, *good[1:])]))
        ins.append(shape)
        if kind == "lstm":
            cgood = (good[0], good[1], raw["out"])
            ins.append(draw(st.sampled_from([cgood, cgood[1:], (cgood[0], cgood[1], cgood[2] + 1)])))
    return raw, ins


@st.composite
def cell_case(draw, kind):
    raw = {"out": draw(st.integers(1, 5)), "bias": draw(st.booleans())}
    x = draw(shape_of(2, 2, 1, 4)) if draw(st.integers(0, 5)) else draw(shape_of(1, 3, 1, 4))
    ins = [x]
    if draw(st.booleans()):
        good = (x[0], raw["out"])
        for _ in range(2 if kind == "lstm" else 1):
            ins.append(draw(st.sampled_from([good, good, (x[0] + 1, raw["out"]), (x[0], raw["out"] + 1)])))
    return raw, ins


@st.composite
def attention_case(draw):
    score = draw(st.sampled_from(["dot", "scaled_dot", "general", "additive", "concat"]))
    raw = {"score": score}
    if score in ("additive", "concat") and draw(st.booleans()):
        raw["dim"] = draw(st.integers(1, 6))
    if score in ("general", "additive", "concat"):
        raw["bias"] = draw(st.booleans())
    n, tk = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dk = draw(st.integers(1, 5))
    dq = dk if draw(st.booleans()) else draw(st.integers(1, 5))
    q = (n, dq) if draw(st.booleans()) else (n, draw(st.integers(1, 4)), dq)
    k = (n, tk, dk)
    ins = [q, k]
    if draw(st.booleans()):
        ins.append((n, tk if draw(st.integers(0, 4)) else tk + 1, draw(st.integers(1, 5))))
    return raw, ins


@st.composite
def mha_case(draw):
    heads = draw(st.integers(1, 3))
    e = heads * draw(st.integers(1, 3)) if draw(st.integers(0, 4)) else draw(st.integers(1, 7))
    n, tq, tk = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    raw = {"heads": heads, "bias": draw(st.booleans()), "average_weights": draw(st.booleans())}
    ins = [(n, tq, e)]
    if draw(st.booleans()):
        kd = draw(st.sampled_from([e, draw(st.integers(1, 6))]))
        ins.append((n if draw(st.integers(0, 5)) else n + 1, tk, kd))
        if draw(st.booleans()):
            ins.append((n, tk, draw(st.integers(1, 6))))
    return raw, ins


OTHER = {
    "conv1d": conv1d_case(), "flatten": flatten_case(), "concat": concat_case(),
    "add": broadcast_case(), "mul": broadcast_case(), "pad": pad_case(), "upsample": upsample_case(),
    "layernorm": layernorm_case(), "softmax": softmax_case(), "batchnorm1d": batchnorm_case(),
    "batchnorm2d": batchnorm_case(), "center_crop": center_crop_case(),
    "adaptive_avgpool2d": adaptive_case(), "linear": linear_case(), "lrn": lrn_case(),
    "dropout": dropout_case(), "global_avgpool": gap_case(),
    "select_step": select_step_case(), "reverse": reverse_case(), "last_step": last_step_case(),
    "embedding": embedding_case(), "rnn": rnn_case("rnn"), "gru": rnn_case("gru"), "lstm": rnn_case("lstm"),
    "rnn_cell": cell_case("rnn"), "gru_cell": cell_case("gru"), "lstm_cell": cell_case("lstm"),
    "attention": attention_case(), "multihead_attention": mha_case(),
}


@pytest.mark.parametrize("name", sorted(OTHER))
def test_other_ops_raise_and_shape_like_torch(name):
    @settings(deadline=None, max_examples=_DEEP or 60, derandomize=not _DEEP,
              suppress_health_check=[HealthCheck.too_slow])
    @given(OTHER[name])
    def check(case):
        agree(name, *case)
    check()
