"""docs/first-spec.md: every YAML block of the walk-through, run as a reader would, with
the numbers the page quotes derived here by hand (LeNet-5, LeCun et al. 1998, modern
reading: conv 5x5 without padding, 2x2 max-pooling, full C3, linear output)."""
from __future__ import annotations

import os
import re

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import ArchvizError, MultipleErrors

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "first-spec.md")


def blocks():
    return re.findall(r"```yaml\n(.*?)```", open(DOC, encoding="utf-8").read(), re.S)


def _write(tmp_path, text):
    p = tmp_path / "lenet5.yaml"
    p.write_text(text)
    return str(p)


def test_the_empty_file(tmp_path):
    r = CliRunner().invoke(main, ["validate", _write(tmp_path, "")])
    assert r.exit_code == 1 and "error[E0107]" in r.output and "got an empty file" in r.output


def test_step1_lists_what_is_missing(tmp_path):
    with pytest.raises(MultipleErrors) as e:
        archviz.load(_write(tmp_path, blocks()[0]))
    assert {x.code for x in e.value.errors} == {"E0119", "E0122"}


def test_step2_first_layer(tmp_path):
    m = archviz.load(_write(tmp_path, blocks()[1]))
    assert m.totals["params"] == 6 * (5 * 5 * 1 + 1) == 156
    assert m.output_shapes["out"] == (1, 6, 32 - 5 + 1, 32 - 5 + 1)


def test_step2_batch_in_shape_trap(tmp_path):
    with pytest.raises(ArchvizError) as e:
        archviz.load(_write(tmp_path, blocks()[1].replace("[1, 32, 32]", "[1, 1, 32, 32]")))
    assert "write shape: [1, 32, 32]" in e.value.hint


def test_step3_lenet5_numbers(tmp_path):
    m = archviz.load(_write(tmp_path, blocks()[2]))
    # (params, MACs) per weight layer: conv = out·(in·k² + 1), MACs = out·H·W·in·k²
    want = {"c1": (6 * (1 * 25 + 1), 6 * 28 * 28 * 25), "c3": (16 * (6 * 25 + 1), 16 * 10 * 10 * 150),
            "c5": (120 * (16 * 25 + 1), 120 * 400), "f6": (84 * (120 + 1), 120 * 84), "out": (10 * (84 + 1), 84 * 10)}
    for nid, (p, macs) in want.items():
        assert (m.layer(nid).params.total, m.layer(nid).macs) == (p, macs), nid
    assert m.totals["params"] == sum(p for p, _ in want.values()) == 61_706
    assert m.totals["macs"] == sum(x for _, x in want.values()) == 416_520
    assert m.output_shapes["logits"] == (1, 10) and m.warnings == []
    doc = open(DOC, encoding="utf-8").read()
    for n in ("156", "2,416", "48,120", "10,164", "850", "61,706", "117,600", "240,000", "48,000", "416,520"):
        assert n in doc
    # the summary the page shows is the one archviz prints
    r = CliRunner().invoke(main, ["summary", _write(tmp_path, blocks()[2])], env={"COLUMNS": "160"})
    table = [l.rstrip() for l in r.stdout.splitlines() if l.startswith("│")]
    shown = [l.rstrip() for l in doc.split("$ archviz summary lenet5.yaml", 1)[1].splitlines() if l.startswith("│")]
    assert table == shown


def test_step3_with_another_param(tmp_path):
    m = archviz.load(_write(tmp_path, blocks()[2]), classes=26)
    assert m.layer("out").params.total == 26 * (84 + 1)


def test_linear_without_flatten_trap(tmp_path):
    text = blocks()[2].replace("  - {id: flat, op: flatten}\n", "")
    m = archviz.load(_write(tmp_path, text.replace('expect: ["${classes}"]', 'expect: [120, 1, "${classes}"]')))
    assert [w.code for w in m.warnings] == ["W0704", "W0704"]     # f6 and out, each on (N, 120, 1, 1)


def test_flow_trap(tmp_path):
    text = blocks()[2].replace("  - {id: relu3, op: relu}", "  - {id: relu3, op: relu, in: [c3[0]]}")
    with pytest.raises(ArchvizError) as e:
        archviz.load(_write(tmp_path, text))
    assert e.value.code == "E0101" and '"c3[0]"' in e.value.hint
