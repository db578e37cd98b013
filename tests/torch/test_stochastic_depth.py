"""stochastic_depth's lowering in training, against its definition (Huang et al. 2016;
torchvision.ops.stochastic_depth): each example ('row') or the whole batch ('batch') is kept
with probability 1 − p and scaled by 1/(1 − p); the identity at inference."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from archviz.backends.torch.table import module  # noqa: E402
from archviz.ops import registry  # noqa: E402


def _mod(p, mode="row"):
    op = registry["stochastic_depth"]
    a = op.attrs_of({"p": p, "mode": mode})
    return module(op, a, [(64, 3, 4)], {"out": (64, 3, 4)})


def test_identity_at_inference():
    x = torch.randn(64, 3, 4)
    assert torch.equal(_mod(0.5).eval()(x), x)


def test_row_mode_keeps_or_drops_whole_examples_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(64, 3, 4, dtype=torch.float64)
    y = _mod(0.25).train()(x)
    per_example = {round(v, 12) for v in y.reshape(64, -1).unique(dim=0).flatten().tolist()}
    assert per_example <= {0.0, round(1 / 0.75, 12)}                  # 0 or 1/(1 − p), never mixed
    rows = y.reshape(64, -1)
    assert all(len(set(r.tolist())) == 1 for r in rows)               # a whole example at once
    kept = int((rows[:, 0] > 0).sum())
    assert 0 < kept < 64                                              # p = 0.25 over 64 rows


def test_batch_mode_drops_all_or_nothing_and_extremes():
    x = torch.ones(64, 3, 4)
    for seed in range(5):
        torch.manual_seed(seed)
        y = _mod(0.5, "batch").train()(x)
        assert len(set(y.flatten().tolist())) == 1
    assert torch.equal(_mod(0.0).train()(x), x)
    assert torch.count_nonzero(_mod(1.0).train()(x)) == 0
