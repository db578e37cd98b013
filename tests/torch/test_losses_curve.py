"""Segmentation losses in both named Dice forms, and train-smoke's loss curve.

Truths: `archviz eval dice` (exact Fractions, itself checked against torch in tests/test_eval.py)
for the class-averaged soft Dice of the lowered loss; Milletari et al. 2016 eq. 1 (V-Net) for
the squared denominator; hand-made curves for the spike rule."""
from __future__ import annotations

import os
import random
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from archviz.backends import losscurve  # noqa: E402
from archviz.backends.evaluate_grid import dice  # noqa: E402
from archviz.backends.torch.bench import loss_fn, segmentation_targets, soft_dice_loss  # noqa: E402
from archviz.cli import main  # noqa: E402
from archviz.spec.losses import LOSSES, resolve  # noqa: E402


@pytest.mark.parametrize("form", ["vnet", "plain"])
def test_soft_dice_equals_the_exact_worked_example(form):
    rng = random.Random(1)
    C, H, W = 3, 3, 4
    logits = torch.tensor([[[[rng.uniform(-2, 2) for _ in range(W)] for _ in range(H)] for _ in range(C)]],
                          dtype=torch.float64)
    target = torch.tensor([[[rng.randrange(C) for _ in range(W)] for _ in range(H)]])
    p = torch.softmax(logits, 1)[0]
    per_class = []
    for c in range(C):
        ev = dice({"p": [Fraction(float(v)) for v in p[c].flatten()],
                   "g": [Fraction(int(t == c)) for t in target.flatten()], "eps": Fraction(1)})
        per_class.append(float(ev.values[form]))
    got = soft_dice_loss(logits, target, form=form)
    assert abs(float(got) - sum(per_class) / C) < 1e-12


def test_dice_names():
    assert resolve("dice") == "dice_vnet" and resolve("cross_entropy+dice") == "cross_entropy+dice_vnet"
    logits = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 5, 5))
    assert torch.equal(loss_fn("dice")(logits, target), soft_dice_loss(logits, target, form="vnet"))
    assert torch.equal(loss_fn("dice_plain")(logits, target), soft_dice_loss(logits, target, form="plain"))
    # soft masks: the two forms differ (p² < p for 0 < p < 1 makes V-Net's denominator smaller)
    assert not torch.isclose(loss_fn("dice_vnet")(logits, target), loss_fn("dice_plain")(logits, target))
    for name in LOSSES:
        assert torch.isfinite(loss_fn(name)(logits, target))


def test_spikes_and_sparkline():
    # the run: down to ~0, then 6.57 at step 18
    curve = [1.1764, 0.9, 0.6, 0.3, 0.1, 0.05] + [0.02] * 11 + [6.57, 0.01, 0.0]
    assert losscurve.spikes(curve) == [(18, 6.57, 0.02)]
    s = losscurve.sparkline(curve)
    assert len(s) == 20 and s[17] == "█" and s[-1] == "▁"
    # noise near zero is no spike: 0.002 is twice 0.001, but far below a tenth of the first loss
    assert losscurve.spikes([1.0, 0.001, 0.002, 0.0005]) == []
    assert losscurve.spikes([1.0, 1.0, 1.0]) == [] and losscurve.sparkline([1.0, 1.0]) == "▁▁"


def test_segmentation_targets_are_balanced_blobs():
    x = torch.randn(2, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    t = segmentation_targets(x, (2, 2, 24, 24))
    assert t.shape == (2, 24, 24) and set(t.unique().tolist()) == {0, 1}
    assert abs(t.float().mean().item() - 0.5) < 0.05          # cut at the median
    # blobs: most pixels share their right neighbour's class (independent noise would give ~50 %)
    assert (t[..., 1:] == t[..., :-1]).float().mean() > 0.8


SEG = """\
archviz: 1
name: seg
inputs: {image: [1, 20, 20]}
nodes:
  - {id: c1, op: conv2d, out: 8, kernel: 3, padding: 1}
  - {id: r1, op: relu}
  - {id: head, op: conv2d, out: 2, kernel: 1}
"""


def test_train_smoke_shows_the_curve_and_plots(tmp_path):
    p = tmp_path / "seg.yaml"
    p.write_text(SEG)
    r = CliRunner().invoke(main, ["train-smoke", str(p), "--steps", "6", "--lr", "0.01", "--loss", "dice",
                                  "--plot", str(tmp_path / "c.svg")])
    assert r.exit_code == 0, r.output
    assert "curve  " in r.output and "spikes " in r.output and "V-Net" in r.output
    assert "over 20×20 pixels — too small" in r.output
    svg = (tmp_path / "c.svg").read_text()
    assert svg.startswith("<?xml") and "step" in svg and "loss" in svg
    bad = CliRunner().invoke(main, ["train-smoke", str(p), "--plot", str(tmp_path / "c.jpg")])
    assert bad.exit_code == 2 and not os.path.exists(tmp_path / "c.jpg")
