"""Every sample case of every sequence op against an independent torch reference
(tests/seq/torch_ref_seq.py): output shapes per port, parameter names/shapes (state-dict
order), counts, and 2 × MACs == torch.utils.flop_counter where torch counts the op —
nn.LSTM on the meta device (its CPU kernel is invisible to the counter)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archviz.ops import registry  # noqa: E402
from tests.ops.samples import evaluate_sample  # noqa: E402

from .torch_ref_seq import FLOP_COUNTED_CPU, FLOP_COUNTED_META, REFS  # noqa: E402

SEQ_OPS = sorted(REFS)
CASES = [(n, i) for n in SEQ_OPS for i in range(len(registry[n].samples))]


def static(name, sample):
    op = registry[name]
    a, ins, outs = evaluate_sample(op, sample)
    assert op.min_inputs <= len(ins) <= op.max_inputs
    return op, a, ins, outs


def _flops(fn, xs):
    # grad enabled on purpose: nn.MultiheadAttention's inference fast path hides its matmuls
    with FlopCounterMode(display=False) as fc:
        y = fn(*xs)
    return y, fc.get_total_flops()


def test_every_sequence_op_has_samples_and_a_reference():
    for name in ("embedding", "rnn", "lstm", "gru", "rnn_cell", "lstm_cell", "gru_cell", "select_step",
                 "last_step", "reverse", "attention", "multihead_attention"):
        assert name in registry and registry[name].samples and name in REFS
        assert registry[name].family in ("recurrent", "sequence", "attention")


@pytest.mark.parametrize("name,idx", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_sample_vs_torch(name, idx):
    op, a, ins, outs = static(name, registry[name].samples[idx])
    torch.manual_seed(0)
    fn, xs = REFS[name](a, ins)
    if isinstance(fn, torch.nn.Module):
        fn.eval()
    y, flops = _flops(fn, xs)
    got = {k: tuple(v.shape) for k, v in y.items()} if isinstance(y, dict) else {"out": tuple(y.shape)}
    assert got == outs
    assert set(outs) == set(op.output_ports())

    tensors = op.param_tensors(a, ins)
    p = op.count_params(a, ins)
    if isinstance(fn, torch.nn.Module):
        assert [(n, tuple(s)) for n, s, _ in tensors] == [(k, tuple(v.shape)) for k, v in fn.state_dict().items()]
        assert p.total == sum(t.numel() for t in fn.parameters())
    else:
        assert tensors == [] and p.total == 0
    assert p.buffers == 0

    macs = op.count_macs(a, ins, outs)
    assert isinstance(macs, int)
    if name in FLOP_COUNTED_CPU:
        assert macs > 0 and 2 * macs == flops
    elif name in FLOP_COUNTED_META:
        # the oneDNN CPU kernel is invisible to the counter (torch's default kernel, used e.g.
        # with proj_size, is counted) ...
        assert flops in (0, 2 * macs)
        with torch.device("meta"):
            torch.manual_seed(0)
            mfn, _ = REFS[name](a, ins)
        _, mflops = _flops(mfn.eval(), [x.to("meta") for x in xs])
        assert macs > 0 and 2 * macs == mflops  # ... its decomposition on the meta device is
    else:
        assert macs == 0 and flops == 0


@pytest.mark.parametrize("name,idx", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_sample_lowering_agrees(name, idx):
    """The op's own torch_spec: same shapes, same parameter names as param_tensors, and
    the same numbers as the reference once the reference's weights are loaded."""
    op, a, ins, outs = static(name, registry[name].samples[idx])
    torch.manual_seed(0)
    ref, xs = REFS[name](a, ins)
    from archviz.backends.torch.table import module
    mod = module(op, a, ins, outs)
    assert {n: tuple(s) for n, s, _ in op.param_tensors(a, ins)} == \
        {k: tuple(v.shape) for k, v in mod.named_parameters()}
    if isinstance(ref, torch.nn.Module):
        mod.load_state_dict(ref.state_dict(), strict=True)
        ref.eval()
    mod.eval()
    with torch.no_grad():
        want, got = ref(*xs), mod(*xs)
    want = want if isinstance(want, dict) else {"out": want}
    got = got if isinstance(got, dict) else {"out": got}
    assert set(got) == set(outs)
    for k in outs:
        assert tuple(got[k].shape) == outs[k]
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-5)
