"""Teaching pictures by default (issue 16): a small network draws every layer (three stacked
3×3 convolutions are the point of the figure, not one "conv ×3" box), a large one collapses
its repeats; the GRU cell says which convention its z follows."""
from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner

from archviz.cli import main

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "specs")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def draw(tmp_path, name, *args):
    out = tmp_path / f"{name}.dot"
    r = CliRunner().invoke(main, ["draw", os.path.join(SPECS, f"{name}.yaml"), "-o", str(out), *args])
    assert r.exit_code == 0, r.output
    assert "no effect" not in r.output
    return out.read_text()


def test_small_exam_spec_draws_every_layer(tmp_path):
    text = draw(tmp_path, "exam_three_3x3")
    for i in range(3):
        assert f'"conv.{i}.conv"' in text
    assert '"conv.2.relu"' in text
    collapsed = draw(tmp_path, "exam_three_3x3", "--collapse")
    assert '"conv.1.conv"' not in collapsed and "×3" in collapsed


def test_large_network_stays_collapsed(tmp_path):
    text = draw(tmp_path, "resnet18", "--layout", "graph")
    assert '"layer1.1.conv1"' not in text
    assert '"layer1.1.conv1"' in draw(tmp_path, "resnet18", "--layout", "graph", "--expand")


def test_gru_cell_names_its_z_convention(tmp_path):
    text = draw(tmp_path, "gru_lm", "--layout", "cell")
    assert "z as in torch (Cho et al. 2014): z = 1 keeps h" in text and "their z is 1 − this z" in text
    assert "z as in torch" not in draw(tmp_path, "lstm_lm", "--layout", "cell")
