"""select_step, last_step, reverse: shapes, no cost, errors; lowering against torch."""
from __future__ import annotations

import pytest

from archviz.errors import OpError
from archviz.ops import registry
from archviz.ops.schema import normalise


def run_static(op, ins, **kw):
    o = registry[op]
    a, errs = normalise(o, kw, {}, None, op)
    assert not errs
    return o, a, o.evaluate(a, ins)


def test_shapes_and_no_cost():
    x = (2, 7, 5)
    cases = [("select_step", {"index": 3}, (2, 5)), ("select_step", {"index": -7}, (2, 5)),
             ("select_step", {"index": 1, "axis": 0}, (7, 5)), ("last_step", {}, (2, 5)),
             ("reverse", {}, (2, 7, 5)), ("reverse", {"axis": -1}, (2, 7, 5))]
    for name, kw, want in cases:
        op, a, outs = run_static(name, [x], **kw)
        assert outs["out"] == want
        assert op.count_params(a, [x]).total == 0
        assert op.count_macs(a, [x], outs) == 0 == op.count_elementwise(a, [x], outs)
        assert op.explain(a, [x], outs)


def test_errors():
    with pytest.raises(OpError, match="out of range"):
        run_static("select_step", [(2, 7, 5)], index=7)
    with pytest.raises(OpError, match="axis 3"):
        run_static("select_step", [(2, 7, 5)], index=0, axis=3)
    with pytest.raises(OpError, match="axis"):
        run_static("reverse", [(2, 7)], axis=2)


def test_lowering():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 7, 5)
    for name, kw, want in [("select_step", {"index": 3}, x[:, 3]), ("last_step", {}, x[:, -1]),
                           ("reverse", {}, x.flip(1)), ("select_step", {"index": -2, "axis": 0}, x[-2])]:
        op, a, outs = run_static(name, [tuple(x.shape)], **kw)
        from archviz.backends.torch.table import module
        mod = module(op, a, [tuple(x.shape)], outs)
        assert torch.equal(mod(x), want)
