"""What every op tells its consumers (archviz.ops.describe), checked op by op, sample by
sample, so that a new op cannot leave a backend guessing:

- a role, a label, what its backward keeps, and a caption for any subset of its attributes;
- its resampling factor is one Fraction per spatial axis and agrees with its own
  receptive-field maps (the two rules cannot drift);
- a recurrence exactly for recurrent roles, naming ports the op has;
- passthrough ops are the identity; `selects` names an axis that disappears;
- with torch: where archviz lets a consumer overwrite an op's output in place, torch's
  backward runs and gives the out-of-place gradients; where an op says its backward keeps
  its output, torch's autograd refuses the overwrite.
"""
from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest

from archviz.ir.graph import Node
from archviz.ir import meta as M
from archviz.ops import registry
from archviz.ops.describe import RECURRENT_ROLES, Keeps, Recurrence, Role

from .samples import cases


CASES = [pytest.param(op, a, ins, outs, id=f"{name}-{i}") for name, i, op, a, ins, outs in cases()]


@pytest.mark.parametrize("name", sorted(registry))
def test_every_op_declares_what_consumers_ask(name):
    op = registry[name]
    assert isinstance(op.role, Role), f"op '{name}' declares no role"
    assert isinstance(op.title, str) and op.title
    assert isinstance(op.backward_keeps({}), Keeps)
    assert set(op.size_inputs) <= set(range(op.max_inputs if op.max_inputs is not None else 99))
    if op.passthrough:
        assert op.aliases and op.backward_keeps({}) is Keeps.NOTHING


@pytest.mark.parametrize("op, a, ins, outs", CASES)
def test_caption_for_every_attribute_subset(op, a, ins, outs):
    keys = list(a)
    for r in range(min(len(keys), 2) + 1):
        for sub in combinations(keys, r):
            assert isinstance(op.caption({k: a[k] for k in sub}), str)
    assert isinstance(op.caption(a), str)


def _spatial_maps(rf, rank):
    """The receptive-field maps of input 0's spatial axes (dims 2..), if the rule gives them."""
    first = rf["out"][0]
    if hasattr(first, "dims"):
        return [m for _, m in first.dims[2:]]
    if isinstance(first, (list, tuple)) and len(first) == rank - 2:
        return list(first)
    return None


@pytest.mark.parametrize("op, a, ins, outs", CASES)
def test_resample_is_exact_and_agrees_with_the_receptive_field(op, a, ins, outs):
    f = op.resample(a, ins, outs)
    if f is None:
        return
    x = ins[0]
    assert len(f) == len(x) - 2 and all(isinstance(v, Fraction) and v > 0 for v in f)
    maps = _spatial_maps(op.receptive_field(a, ins, outs), len(x))
    assert maps is not None, f"{op.name}: resamples but its receptive field has no spatial maps"
    for v, m in zip(f, maps):
        if getattr(m, "ratio", None) is not None:      # periodic: input positions per output position
            assert v == 1 / m.ratio, (op.name, v, m)


@pytest.mark.parametrize("op, a, ins, outs", CASES)
def test_recurrence_exactly_for_recurrent_roles(op, a, ins, outs):
    rec = op.recurrence(a)
    assert (rec is not None) == (op.role in RECURRENT_ROLES), op.name
    if rec is None:
        return
    assert isinstance(rec, Recurrence)
    ports = set(op.input_ports or ())
    assert set(rec.state_in) <= ports and (rec.memory is None or rec.memory in ports)
    assert set(rec.state_out) <= set(op.output_ports(a))
    assert rec.kind.gates in (1, 3, 4) and rec.layers >= 1 and rec.directions in (1, 2)
    # the emitted features: D · h_out per step (a cell: h)
    assert outs["out"][-1] == rec.directions * rec.h_out


@pytest.mark.parametrize("op, a, ins, outs", CASES)
def test_passthrough_and_selects(op, a, ins, outs):
    if op.passthrough:
        assert outs == {"out": ins[0]} and op.count_elementwise(a, ins, outs) == 0
    sel = op.selects(a, ins)
    if sel is not None:
        axis, index = sel
        x = ins[0]
        assert 0 <= axis < len(x) and 0 <= index < x[axis]
        assert outs["out"] == x[:axis] + x[axis + 1:]
    tv = op.token_vocab(a)
    assert tv is None or (op.role is Role.EMBEDDING and tv == a.num)


# -- the in-place contract, against torch's autograd ------------------------------------------
def _node(op, a, ins, outs):
    n = Node(id="p", op=op.name, attrs=a)
    n.meta[M.SHAPES], n.meta[M.IN_SHAPES] = outs, ins
    return n


def _grads(mod, ins, inplace: bool):
    import torch
    torch.manual_seed(0)
    xs = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in ins]
    y = mod(*xs)
    y = y["out"] if isinstance(y, dict) else y
    y = torch.relu_(y) if inplace else torch.relu(y)
    (y * torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    return [x.grad for x in xs]


@pytest.mark.parametrize("op, a, ins, outs", [c for c in CASES if c.values[0].token_vocab(c.values[1]) is None
                                              and c.values[0].role is not Role.INPUT
                                              and len(c.values[3]) == 1])
def test_overwriting_the_output_in_place_is_safe_exactly_as_declared(op, a, ins, outs):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import overwritable
    from archviz.backends.torch.table import module
    mod = module(op, a, ins, outs).double()
    mod.train()
    if hasattr(mod, "p"):             # dropout: the identity, as archviz analyses it
        mod.eval()
    if overwritable(_node(op, a, ins, outs)):
        want = _grads(mod, ins, inplace=False)
        got = _grads(mod, ins, inplace=True)
        for w, g in zip(want, got):     # an input read for its size only has no gradient either way
            assert (w is None and g is None) or torch.equal(w, g), op.name
    elif op.backward_keeps(a) is Keeps.OUTPUT:
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            _grads(mod, ins, inplace=True)


def test_recurrent_caption_names_bidirectional():
    """A bidirectional recurrence says so in a figure (it was dropped: True == 1 in Python,
    so `bidirectional not in (None, False, 1)` was never true)."""
    lstm = registry["lstm"]
    assert lstm.caption({"out": 128, "num_layers": 2, "bidirectional": True}) == "128, 2 layers, bidirectional"
    assert lstm.caption({"out": 128, "num_layers": 1, "bidirectional": False}) == "128"
    assert registry["gru_cell"].caption({"out": 6}) == "6"
