"""What backward keeps and computes, per op sample, against torch (issue 13, oracle 5).

For every op sample, archviz's lowered module runs on CPU in train mode with oneDNN off (as
tests/ops/test_ops_vs_torch.py) under ``torch.autograd.graph.saved_tensors_hooks``: the tensors
autograd keeps, parameters and buffers excluded, deduplicated by storage and counted at their
storage's size, must equal the op's `saved` rule (elements per dtype); and ``FlopCounterMode``
over forward plus backward must equal 2 × (forward MACs + backward MACs) where torch counts the op.
Each sample runs with every input needing a gradient and trainable weights, and for layers with
parameters also with data inputs (no input gradient) and with frozen weights; a layer with several
inputs also with only its first, or only its last, input needing a gradient (weights frozen).

Deliberate exceptions (docs/sizing.md, "What backward keeps"), applied here by name:
- dropout's mask is a bool per element (CUDA's native_dropout); torch on CPU multiplies by a mask
  in the activation dtype, so the CPU sees the activation dtype;
- a grouped convolution's weight gradient costs the forward's MACs; FlopCounterMode counts it as
  if the convolution were not grouped (× groups);
- sdpa's backward MACs are torch's math kernel's (FlopCounterMode on the meta device); on CPU the
  flash kernel runs, which FlopCounterMode does not count, so its FLOPs are checked on meta.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


import archviz.backends.torch.lower  # noqa: E402,F401  (registers how a sub-network lowers: moe)
from archviz.backends.torch.table import module  # noqa: E402
from archviz.ops import registry  # noqa: E402
from archviz.ops.saved import Need  # noqa: E402

from .samples import cases  # noqa: E402
from .torch_ref import FLOP_COUNTED  # noqa: E402
from tests.fuzz.backward import kept_and_flops  # noqa: E402

CPU_KIND = {("dropout", "mask"): "act"}       # the exception above: CPU keeps the mask in the act dtype
# at float32 the statistics' dtype (opmath: float32 for 16-bit activations) is the activation dtype
SAME_AT_FP32 = {"opmath": "act"}

MODES = ("all", "data", "frozen")


def _params(op, a, ins) -> bool:
    return any(k == "param" for _, _, k in op.param_tensors(a, ins))


def _cases():
    for name, i, op, a, ins, outs in cases():
        if name == "input":
            continue
        modes = MODES if _params(op, a, ins) else ("all",)
        if len(ins) > 1:            # one input needing a gradient, the others not
            modes += ("first", "last")
        for mode in modes:
            yield pytest.param(name, i, mode, id=f"{name}-{i}-{mode}")


def _need(op, a, ins, mode) -> Need:
    tok = op.token_vocab(a) is not None
    n = len(ins)
    pick = {"data": (), "first": (0,), "last": (n - 1,)}.get(mode, range(n))
    inputs = tuple(i in pick and not (tok and i == 0) for i in range(n))
    return Need(inputs, mode not in ("frozen", "first", "last") and _params(op, a, ins))


def measure(op, a, ins, outs, need: Need, device="cpu"):
    """(elements kept by dtype kind, forward FLOPs, backward FLOPs) of the lowered module."""
    torch.manual_seed(0)
    m = module(op, a, ins, outs).to(device)
    m.train()
    for p in m.parameters():
        p.requires_grad_(need.weights)
    tok = op.token_vocab(a)
    xs = [torch.randint(0, tok, s, device=device) if tok is not None and i == 0 else
          torch.randn(*s, device=device, requires_grad=need.input(i)) for i, s in enumerate(ins)]
    return kept_and_flops(m, xs, device, onednn=False)


def rule_kinds(name, op, a, ins, outs, need) -> dict:
    """The op's `saved` rule as elements by dtype kind, each input, output or extra once."""
    seen, kinds = set(), {}
    for s in op.saved(a, ins, outs, need):
        key = ("in", s.input) if s.input is not None else ("out", s.port) if s.port is not None else ("x", s.extra)
        if key in seen:
            continue
        seen.add(key)
        k = CPU_KIND.get((name, s.extra), SAME_AT_FP32.get(s.dtype, s.dtype))
        kinds[k] = kinds.get(k, 0) + s.numel
    inner = _inner(op, a, ins, need)
    if inner:                           # a graph of its own (moe's expert), `times` over the tokens
        tc, times = inner
        for k, n in tc.saved_elems.items():
            k = SAME_AT_FP32.get(k, k)
            kinds[k] = kinds.get(k, 0) + times * n
    return kinds


def _inner(op, a, ins, need):
    """(train_costs of the op's own graph, times) as archviz.passes.backward adds it, or None."""
    from archviz.passes.backward import train_costs
    inner = op.inner_graph(a, ins)
    if inner is None:
        return None
    return train_costs(inner[0], inputs_need_grad=need.input(0), frozen=not need.weights), inner[1]


def backward_macs(op, a, ins, outs, need) -> int:
    inner = _inner(op, a, ins, need)
    return op.count_backward_macs(a, ins, outs, need) + (inner[1] * inner[0].backward_macs if inner else 0)


@pytest.mark.parametrize("name,idx,mode", list(_cases()))
def test_saved_matches_torch(name, idx, mode):
    op = registry[name]
    _, _, _, a, ins, outs = next(c for c in cases() if c[0] == name and c[1] == idx)
    need = _need(op, a, ins, mode)
    got, _, _ = measure(op, a, ins, outs, need)
    assert rule_kinds(name, op, a, ins, outs, need) == got


def _groups_extra(name, a, ins, outs, need) -> int:
    """FlopCounterMode's extra MACs for a grouped convolution's weight gradient: (groups − 1) × forward."""
    if name.startswith("conv") and need.weights and a.groups > 1:
        return (a.groups - 1) * registry[name].count_macs(a, ins, outs)
    return 0


@pytest.mark.parametrize("name,idx,mode", [c for c in _cases() if c.values[0] in FLOP_COUNTED])
def test_backward_macs_match_flop_counter(name, idx, mode):
    op = registry[name]
    _, _, _, a, ins, outs = next(c for c in cases() if c[0] == name and c[1] == idx)
    need = _need(op, a, ins, mode)
    _, fwd, bwd = measure(op, a, ins, outs, need, device="meta" if name == "sdpa" else "cpu")
    macs = op.count_macs(a, ins, outs)
    back = backward_macs(op, a, ins, outs, need)
    assert 2 * macs == fwd
    assert 2 * (back + _groups_extra(name, a, ins, outs, need)) == bwd


@pytest.mark.parametrize("name,idx,mode", [c for c in _cases() if c.values[0] not in FLOP_COUNTED])
def test_uncounted_ops_have_no_backward_macs(name, idx, mode):
    op = registry[name]
    _, _, _, a, ins, outs = next(c for c in cases() if c[0] == name and c[1] == idx)
    need = _need(op, a, ins, mode)
    assert op.count_backward_macs(a, ins, outs, need) == 0
    _, fwd, bwd = measure(op, a, ins, outs, need)
    assert fwd == bwd == 0


@pytest.mark.parametrize("name,idx,mode", [c for c in _cases() if c.values[2] == "all"])
def test_a_kept_output_is_never_overwritten_in_place(name, idx, mode):
    """The lowering lets a consumer overwrite a one-port layer's output unless `keeps` says the
    backward reads it (archviz.backends.torch.lower.overwritable): a `saved` rule that keeps the
    output must agree."""
    from archviz.ops.describe import Keeps
    op = registry[name]
    _, _, _, a, ins, outs = next(c for c in cases() if c[0] == name and c[1] == idx)
    kept_out = any(s.port is not None for s in op.saved(a, ins, outs, _need(op, a, ins, mode)))
    overwritable = list(outs) == ["out"] and op.backward_keeps(a) not in (Keeps.OUTPUT, Keeps.BOTH)
    assert not (kept_out and overwritable)


@pytest.mark.parametrize("a,b", [((2, 3, 2, 2, 2), (2, 1, 1, 2, 1)), ((1, 3, 2, 2, 2), (1, 1, 1, 2, 1)),
                                 ((2, 1, 4, 3), (2, 5, 3, 2)), ((3, 2, 1, 2, 2), (1, 2, 4, 2, 2))])
def test_matmul_keeps_broadcast_inputs_as_torch(a, b):
    """A batch axis expanded from 1 folds into bmm's batch as a view only where the expanded
    axes merge with the others (stride 0 next to stride 0); else torch copies the input."""
    op = registry["matmul"]
    at = op.attrs_of({})
    outs = op.evaluate(at, [a, b])
    need = Need((True, True))
    got, _, _ = measure(op, at, [a, b], outs, need)
    assert rule_kinds("matmul", op, at, [a, b], outs, need) == got
