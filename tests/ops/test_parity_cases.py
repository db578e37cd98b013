"""The disagreements with torch that fuzzing found (shared/fuzz-repros 06, 14, 14b, 15, 20,
23, and the pad / layernorm classes), each checked against torch itself: a spec goes through
the whole pipeline (load, schema, shapes, costs) and torch runs the same layer on a real
tensor.  Where torch raises, archviz must refuse with a located error (never a traceback);
where torch runs, archviz must give its shape.  Deliberate refusals say so and why."""
from __future__ import annotations

import time
import tracemalloc
import warnings
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from archviz.errors import ShapeError, SpecError  # noqa: E402

from .spec_cases import Raw, outcome  # noqa: E402


def torch_out(fn, shape):
    """torch's output shape (batch included) on a real tensor, or the exception it raises."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tuple(fn()(torch.randn(*shape)).shape)
    except (RuntimeError, ValueError, IndexError, OverflowError) as e:
        return e


def archviz_out(nodes, shape):
    kind, res = outcome(nodes, shape[1:], batch=shape[0])
    return res.output_shapes["out"] if kind == "ok" else res


def _same(a, t):
    """archviz agrees with torch: the same shape, or both refuse."""
    if isinstance(t, Exception):
        return isinstance(a, (ShapeError, SpecError))
    return a == t


# -- upsample (repros 06, 14, 14b, 15) ----------------------------------------------------------
@pytest.mark.parametrize("hw,scale", [
    ((11, 7), Fraction(15, 11)),     # repro 14: exactly 15 in rationals, 14 in torch's doubles
    ((49, 49), Fraction(1, 49)),     # repro 14b: 49 · float(1/49) = 0.999…: torch refuses size 0
    ((10, 10), Fraction(3, 10)),     # 10 · 0.3 = 3.0000000000000004 → 3
    ((7, 7), Fraction(1, 7)),        # 7 · float(1/7) = 1.0 exactly
    ((29, 5), Fraction(100, 29)),
    ((3, 3), Fraction(1, 3)),
    ((8, 9), 2.5),
    ((5, 5), 0.1),
])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_fractional_scale_sizes_like_torch(hw, scale, mode):
    spec_scale = f"${{{scale.numerator}/{scale.denominator}}}" if isinstance(scale, Fraction) else scale
    got = archviz_out([{"op": "upsample", "scale": spec_scale, "mode": mode}], (1, 2, *hw))
    want = torch_out(lambda: nn.Upsample(scale_factor=float(scale), mode=mode), (1, 2, *hw))
    assert _same(got, want), (got, want)


def test_upsample_repro_14_gives_torchs_14():
    got = archviz_out([{"op": "upsample", "scale": "${15/11}"}], (1, 1, 11, 7))
    assert got == (1, 1, 14, 9)


def test_upsample_size_zero_is_a_located_error():
    _, e = outcome([{"op": "upsample", "scale": "${1/49}"}], (1, 49, 49))
    assert isinstance(e, ShapeError) and e.span is not None
    assert "0" in e.message and "greater than 0" in e.message


@pytest.mark.parametrize("scale", [Raw(".inf"), Raw("1e300"), [2, Raw(".inf")], "${10**60 * 10**60 * 10**60 * 10**60 * 10**60 * 10**60}"])
def test_upsample_infinite_or_overflowing_scale_is_a_located_error(scale):
    """repro 06: scale .inf was an OverflowError traceback; torch raises ("value cannot be
    converted to type int64_t without overflow")."""
    want = torch_out(lambda: nn.Upsample(scale_factor=float("inf")), (1, 3, 8, 8))
    assert isinstance(want, RuntimeError)
    kind, e = outcome([{"op": "upsample", "scale": scale}], (3, 8, 8))
    assert kind == "error" and isinstance(e, (ShapeError, SpecError)), e
    assert e.span is not None and "overflow" in e.message


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("align", [None, False, True])
def test_upsample_align_corners_like_torch(mode, align):
    """repro 15: torch refuses align_corners (true or false) in nearest mode."""
    node = {"op": "upsample", "scale": 2, "mode": mode}
    kw = {}
    if align is not None:
        node["align_corners"] = kw["align_corners"] = align
    got = archviz_out([node], (1, 1, 4, 4))
    want = torch_out(lambda: nn.Upsample(scale_factor=2.0, mode=mode, **kw), (1, 1, 4, 4))
    assert _same(got, want), (got, want)
    if isinstance(want, Exception):
        assert "align_corners" in got.message and got.span is not None


# -- count attributes that multiply a rule's work (repro 20) ----------------------------------------
@pytest.mark.parametrize("op", ["rnn", "gru", "lstm"])
def test_num_layers_is_bounded_with_a_located_error(op):
    """repro 20: lstm num_layers 10⁹ took 13 s and 3 GB to die of MemoryError.  archviz bounds
    num_layers (torch has no bound: a deliberate refusal), quickly and in little memory."""
    from archviz.ops.base import MAX_LAYERS
    tracemalloc.start()
    t0 = time.perf_counter()
    kind, e = outcome([{"op": op, "out": 16, "num_layers": 1_000_000_000}], (5, 8))
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert kind == "error" and isinstance(e, SpecError), e
    assert e.span is not None and str(MAX_LAYERS) in e.message and "num_layers" in e.message
    assert elapsed < 2 and peak < 50 * 2 ** 20
    kind, m = outcome([{"op": op, "out": 4, "num_layers": MAX_LAYERS}], (3, 2))   # the limit itself runs
    assert kind == "ok", m
    t = nn.LSTM if op == "lstm" else nn.GRU if op == "gru" else nn.RNN
    assert m.totals["params"] == sum(p.numel() for p in t(2, 4, num_layers=MAX_LAYERS).parameters())


@pytest.mark.parametrize("n,o", [(1, 1), (7, 3), (13, 6), (5, 9), (12, 4), (100, 7), (3, 10)])
def test_adaptive_pool_elementwise_closed_form(n, o):
    """Σ of adaptive-pooling bin sizes = n + o − gcd(n, o), not a loop over o bins (a size of
    10⁹ hung).  Truth: torch's bins, [⌊i·n/o⌋, ⌈(i + 1)·n/o⌉), counted from the gradient of a
    sum-pool: each input element contributes once per bin that holds it."""
    x = torch.ones(1, 1, n, 1, requires_grad=True)
    y = nn.AdaptiveAvgPool2d((o, 1))(x)
    # average → sum: multiply each bin by its size, so the gradient counts bin memberships
    sizes = torch.tensor([-(-((i + 1) * n) // o) - (i * n) // o for i in range(o)], dtype=torch.float32)
    (y[0, 0, :, 0] * sizes).sum().backward()
    want = int(x.grad.sum())
    kind, m = outcome([{"op": "adaptive_avgpool2d", "size": [o, 1]}], (1, n, 1))
    assert kind == "ok"
    assert m.layers[0].elementwise == want


def test_adaptive_pool_huge_size_is_fast():
    t0 = time.perf_counter()
    kind, m = outcome([{"op": "adaptive_avgpool2d", "size": [1_000_000_000, 3]}], (2, 7, 5))
    assert kind == "ok" and time.perf_counter() - t0 < 2


# -- deliberate refusals: the batch axis is never data ---------------------------------------------
def _says_batch(e):
    return isinstance(e, ShapeError) and e.span is not None and "batch axis" in e.message \
        and "--batch" in (e.message + (e.hint or ""))


@pytest.mark.parametrize("shape,dims", [((2, 5), 2), ((1, 3, 4), 3), ((2, 3, 4, 5), 4)])
def test_layernorm_over_the_batch_axis_is_a_deliberate_refusal(shape, dims):
    """torch.nn.LayerNorm may normalise over every axis, batch included; archviz refuses:
    the batch is implicit in a spec (set by --batch), so a layer that mixes examples would
    change its numbers with --batch."""
    want = torch_out(lambda: nn.LayerNorm(shape[-dims:]), shape)
    assert not isinstance(want, Exception)                       # torch runs it
    got = archviz_out([{"op": "layernorm", "dims": dims}], shape)
    assert _says_batch(got), got


@pytest.mark.parametrize("shape,pads", [((2, 3), [1, 1, 1, 1]), ((1, 2, 3), [0, 1, 1, 0, 2, 2]),
                                        ((2, 1, 2, 2), [1, 1, 1, 1, 0, 0, 1, 0]), ((3, 2), [0, 0, -1, 0])])
def test_constant_pad_of_every_axis_like_torch(shape, pads):
    """F.pad in constant mode pads every axis, the batch axis too (34 fuzz cases were refused)."""
    want = torch_out(lambda: (lambda x: torch.nn.functional.pad(x, pads)), shape)
    assert not isinstance(want, Exception)                       # torch runs it
    assert archviz_out([{"op": "pad", "pads": pads}], shape) == want


@pytest.mark.parametrize("shape,pads", [((2, 3), [1, 1, 1]), ((2, 3), [1, 1, 1, 1, 1, 1]), ((1, 2, 3), [1])])
def test_pad_lengths_torch_refuses(shape, pads):
    want = torch_out(lambda: (lambda x: torch.nn.functional.pad(x, pads)), shape)
    assert isinstance(want, Exception)
    got = archviz_out([{"op": "pad", "pads": pads}], shape)
    assert isinstance(got, ShapeError) and got.span is not None


# -- batch norm with one value per channel (repro 23) --------------------------------------------------
BN_CASES = [("batchnorm2d", (3, 1, 1)), ("batchnorm1d", (3,)), ("batchnorm1d", (3, 1)), ("batchnorm2d", (2, 4, 4))]


def _bn_torch(op, shape, track, train):
    cls = nn.BatchNorm2d if op == "batchnorm2d" else nn.BatchNorm1d
    return torch_out(lambda: cls(shape[1], track_running_stats=track).train(train), shape)


@pytest.mark.parametrize("op,shape", BN_CASES)
@pytest.mark.parametrize("batch", [1, 2])
def test_batchnorm_without_running_stats_needs_two_values_per_channel(op, shape, batch):
    """repro 23: without running statistics torch normalises with the batch's statistics at
    inference too, and refuses a channel with one value ("Expected more than 1 value per
    channel when training") in eval mode as well: archviz refuses it, located."""
    full = (batch, *shape)
    want = _bn_torch(op, full, track=False, train=False)
    got = archviz_out([{"op": op, "track_running_stats": False}], full)
    assert _same(got, want), (got, want)
    if isinstance(want, Exception):
        assert "more than 1 value per channel" in got.message and got.span is not None


@pytest.mark.parametrize("op,shape", BN_CASES)
@pytest.mark.parametrize("batch", [1, 2])
def test_batchnorm_with_running_stats_runs_but_says_it_cannot_train(op, shape, batch):
    """With running statistics torch runs it at inference (archviz's analysis) but cannot
    train it at this batch: archviz accepts the spec, and its training checks (train-smoke,
    bench --train, explain) say why, mirroring torch."""
    from archviz.backends.explain import explain_node
    from archviz.backends.torch.bench import check_trainable
    from archviz.errors import LoweringError
    full = (batch, *shape)
    got = archviz_out([{"op": op}], full)
    assert _same(got, _bn_torch(op, full, track=True, train=False))
    trains = not isinstance(_bn_torch(op, full, track=True, train=True), Exception)
    kind, m = outcome([{"op": op}], shape, batch=batch)
    text = "\n".join(explain_node(m, "n0"))
    if trains:
        check_trainable(m)
        assert "cannot train" not in text
    else:
        with pytest.raises(LoweringError, match="more than 1 value per channel") as e:
            check_trainable(m)
        assert e.value.span is not None and "--batch" in (e.value.hint or "")
        assert "cannot train" in text


def test_training_refusals_are_spec_warnings(tmp_path):
    """What torch runs at inference but cannot train at these shapes is a warning (W0703) in
    validate, summary and the JSON, located at the layer; the spec still loads (exit 0)."""
    import json

    from click.testing import CliRunner

    from archviz.cli import main
    p = tmp_path / "bn.yaml"
    p.write_text("archviz: 1\nname: t\ninputs:\n  x: {shape: [3, 4, 4]}\nnodes:\n"
                 "  - {id: g, op: global_avgpool}\n  - {id: bn, op: batchnorm2d}\n")
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 0 and "W0703" in r.output and "more than 1 value per channel" in r.output
    r = CliRunner().invoke(main, ["summary", str(p), "-f", "json"])
    d = json.loads(r.stdout)
    assert [w["code"] for w in d["warnings"]] == ["W0703"] and d["warnings"][0]["at"].endswith(":7:18")
    r = CliRunner().invoke(main, ["validate", str(p), "--batch", "2"])      # two values per channel: trains
    assert r.exit_code == 0 and "W0703" not in r.output
