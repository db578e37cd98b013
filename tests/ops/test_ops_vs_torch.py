"""Registry-driven tests: every registered op, every one of its `samples`, against torch.

For each sample: archviz's static output shape, parameter count, buffer count, parameter
tensor names/shapes and MACs must equal what torch reports for an independently built
reference layer (tests/ops/torch_ref.py) run on a real tensor.  An op with no samples or no
torch reference fails by name, so a new op cannot slip through untested.
"""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archviz.ops import registry  # noqa: E402
from archviz.ops.schema import normalise  # noqa: E402

from .samples import evaluate_sample  # noqa: E402
from .torch_ref import FLOP_COUNTED, NO_REF, REFS  # noqa: E402

OPS = sorted(n for n in registry if n not in NO_REF)


def _cases():
    for name in OPS:
        samples = registry[name].samples
        if not samples:
            yield pytest.param(name, None, id=f"{name}-NO-SAMPLES")
        for i, _ in enumerate(samples):
            yield pytest.param(name, i, id=f"{name}-{i}")


def static(name, sample):
    """Normalise the sample's attributes and run archviz's rules: (op, attrs, ins, outs)."""
    op = registry[name]
    a, ins, outs = evaluate_sample(op, sample)
    assert op.min_inputs <= len(ins) and (op.max_inputs is None or len(ins) <= op.max_inputs)
    return op, a, ins, outs


def run_torch(fn, xs):
    """Run the reference under FlopCounterMode: (outputs as {port: shape}, total flops).

    Grad stays enabled and oneDNN is off so that nn.MultiheadAttention and nn.LSTM take
    torch's decomposed paths (matmuls the counter sees) rather than fused kernels.
    """
    if isinstance(fn, torch.nn.Module):
        fn.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as fc:
            y = fn(*xs)
    shapes = {k: tuple(v.shape) for k, v in y.items()} if isinstance(y, dict) else {"out": tuple(y.shape)}
    return shapes, fc.get_total_flops()


def test_registry_is_not_empty():
    assert len(OPS) >= 30


@pytest.mark.parametrize("name", OPS)
def test_every_op_has_a_torch_reference(name):
    assert name in REFS, f"op '{name}' has no torch reference in tests/ops/torch_ref.py"


def test_no_stale_references():
    assert set(REFS) <= set(registry), sorted(set(REFS) - set(registry))


@pytest.mark.parametrize("name,idx", list(_cases()))
def test_op_sample_vs_torch(name, idx):
    assert idx is not None, f"op '{name}' has no `samples`: add sample cases to its class"
    assert name in REFS, f"op '{name}' has no torch reference in tests/ops/torch_ref.py"
    sample = registry[name].samples[idx]
    op, a, ins, outs = static(name, sample)

    torch.manual_seed(0)
    fn, xs = REFS[name](a, ins)
    assert [tuple(x.shape) for x in xs] == ins
    got_shapes, flops = run_torch(fn, xs)

    # shapes
    assert outs == got_shapes

    # parameters, buffers, tensor names and shapes
    tensors = op.param_tensors(a, ins)
    p = op.count_params(a, ins)
    if isinstance(fn, torch.nn.Module):
        n_params = sum(t.numel() for t in fn.parameters())
        n_bufs = sum(t.numel() for t in fn.buffers())
        state = [(k, tuple(v.shape)) for k, v in fn.state_dict().items()]
        param_names = {k for k, _ in fn.named_parameters()}
    else:
        n_params = n_bufs = 0
        state, param_names = [], set()
    assert p.total == n_params
    assert p.buffers == n_bufs
    assert [(n, tuple(s)) for n, s, _ in tensors] == state
    assert {n for n, _, kind in tensors if kind == "param"} == param_names
    assert all(kind in ("param", "buffer") for _, _, kind in tensors)

    # MACs: torch counts 2 FLOPs per multiply-accumulate for the ops it counts
    macs = op.count_macs(a, ins, outs)
    assert isinstance(macs, int)
    if name in FLOP_COUNTED:
        assert macs > 0
        assert 2 * macs == flops
    else:
        assert macs == 0
        assert flops == 0


@pytest.mark.parametrize("name,idx", [c for c in _cases() if c.values[1] is not None])
def test_op_sample_explains(name, idx):
    """Every sample runs through every static rule without a missing rule."""
    op, a, ins, outs = static(name, registry[name].samples[idx])
    assert op.count_elementwise(a, ins, outs) >= 0
    lines = op.explain(a, ins, outs)
    assert lines
