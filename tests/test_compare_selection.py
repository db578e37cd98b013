"""`archviz compare --only/--weights/--pa/--pb`: counts on a selection of layers, exact ratios.
Expected numbers derived from the formulas: torch.nn.GRU / LSTM parameters G·(h·(x + h) + 2h)
per layer (G = 3, 4), conv weights C_out·C_in·k² (bias false), He et al. 2016 Table 1."""
from __future__ import annotations

import json
import os
from fractions import Fraction

from click.testing import CliRunner

from archviz.backends import compare as C
from archviz.cli import main

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")


def spec(name):
    return os.path.join(SPECS, f"{name}.yaml")


def run_json(*args):
    r = CliRunner().invoke(main, ["compare", *args, "-f", "json"])
    assert r.exit_code == 0, r.output
    return {row["quantity"]: row for row in json.loads(r.output)["rows"]}, json.loads(r.output)


def test_gru_vs_lstm_recurrent_layers_are_three_quarters():
    h = x = 650
    rows, d = run_json(spec("gru_lm"), spec("lstm_lm"), "-p", "emb=650", "-p", "hidden=650", "--only", "gru,lstm")
    layer = lambda G, xin: G * (h * (xin + h) + 2 * h)      # noqa: E731
    assert rows["params"]["a"] == layer(3, x) + layer(3, h)
    assert rows["params"]["b"] == layer(4, x) + layer(4, h)
    assert rows["params"]["ratio_exact"] == "3/4" and rows["macs"]["ratio_exact"] == "3/4"
    assert d["layers_a"] == ["gru"] and d["layers_b"] == ["lstm"]


def test_only_recurrent_leaves_out_the_embedding():
    # the ops declare roles (archviz.ops.describe.Role): an embedding is no recurrent layer
    rows, d = run_json(spec("gru_lm"), spec("lstm_lm"), "-p", "emb=650", "-p", "hidden=650", "--only", "recurrent")
    assert d["layers_a"] == ["gru"] and d["layers_b"] == ["lstm"]
    assert rows["params"]["ratio_exact"] == "3/4"
    rows, d = run_json(spec("gru_lm"), spec("lstm_lm"), "--only", "recurrent,embedding")
    assert d["layers_a"] == ["embed", "gru"]


def test_bottleneck_vs_basic_weights_only():
    rows, _ = run_json(spec("exam_bottleneck_block"), spec("exam_basic_block"), "--weights")
    C_, w = 256, 64
    bottleneck = C_ * w + 9 * w * w + w * C_          # 1x1 reduce, 3x3, 1x1 expand
    basic = 2 * 9 * C_ * C_
    assert (rows["params"]["a"], rows["params"]["b"]) == (bottleneck, basic) == (69_632, 1_179_648)
    assert Fraction(rows["params"]["ratio_exact"]) == Fraction(69_632, 1_179_648)
    # with the norms, the exam's question is not what is counted: 70,400 vs 1,180,672
    rows, _ = run_json(spec("exam_bottleneck_block"), spec("exam_basic_block"))
    assert (rows["params"]["a"], rows["params"]["b"]) == (bottleneck + 2 * (w + w + C_), basic + 2 * 2 * C_)


def test_table_prints_the_fraction():
    r = CliRunner().invoke(main, ["compare", spec("exam_bottleneck_block"), spec("exam_basic_block"), "--weights"],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "69,632/1,179,648 = 17/288 (0.05903×)" in r.output
    assert "counted in A: block.conv1" in r.output and "bn" not in r.output.split("counted in A:")[1]


def test_params_for_one_side():
    rows, _ = run_json(spec("resnet50"), spec("resnet50"), "--pa", "v1=true")
    assert rows["macs"]["a"] == 3_857_973_248 and rows["macs"]["b"] == 4_089_184_256
    rows, _ = run_json(spec("resnet18"), spec("resnet18"), "--pb", "conv1_bias=true", "--only", "conv")
    assert rows["params"]["b"] - rows["params"]["a"] == 64          # 9,472 − 9,408


def test_selection_errors():
    r = CliRunner().invoke(main, ["compare", spec("gru_lm"), spec("lstm_lm"), "--only", "recurent"])
    assert r.exit_code == 2 and "recurrent" in r.output
    r = CliRunner().invoke(main, ["compare", spec("gru_lm"), spec("lstm_lm"), "--only", "conv"])
    assert r.exit_code == 1 and "E0173" in r.output and "gru_lm" in r.output
    # an empty selection (a script's empty variable) selects nothing: it never means "all layers"
    for empty in ("", ",,", " "):
        r = CliRunner().invoke(main, ["compare", spec("gru_lm"), spec("lstm_lm"), "--only", empty])
        assert r.exit_code == 2 and "--only" in r.output and "empty" in r.output, r.output


def test_roles_take_precedence_over_families():
    from archviz.ops import registry
    emb, gru = registry["embedding"], registry["gru"]
    roles = C.known_roles()
    assert emb.family == gru.family == "recurrent"          # the family would take both
    assert C.matches(gru, "recurrent", roles) and not C.matches(emb, "recurrent", roles)
    # a token that is no role matches a family, or an op's name
    assert "dense" not in roles and C.matches(registry["linear"], "dense", roles)
    assert C.matches(gru, "gru", roles)
    assert C.is_norm(registry["lrn"]) and not C.is_norm(registry["conv2d"])
