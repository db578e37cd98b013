"""The CLI's success paths and the JSON contract. Expected numbers are derived in the
tests from the conv/pool formulas (torch.nn.Conv2d docs), not copied from anywhere."""
from __future__ import annotations

import csv
import io
import json
import os

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main

SPEC = """archviz: 1
name: tiny
doc: conv(64, 3x3, s1, p1) + maxpool(2x2, s2) on 224x224x3
params: {c: 64, size: 224}
inputs:
  image: {shape: [3, "${size}", "${size}"]}
nodes:
  - {id: conv, op: conv2d, out: "${c}", kernel: 3, padding: 1}
  - {id: relu, op: relu}
  - {id: pool, op: maxpool2d, kernel: 2, stride: 2, expect: ["${c}", "${size // 2}", "${size // 2}"]}
"""

# Derivation: conv 3x3, 3 -> 64, bias: 64·3·3·3 + 64 = 1,792 params.
# Output 224x224 (p=1 keeps the size): MACs = 64·224·224·(3·3·3) = 86,704,128.
PARAMS = 64 * 3 * 3 * 3 + 64
MACS = 64 * 224 * 224 * 27

BLOCKS = """archviz: 1
name: blocky
inputs: {x: {shape: [8, 16, 16]}}
blocks:
  pair:
    params: {out: {type: int}}
    nodes:
      - {id: a, op: conv2d, out: "${out}", kernel: 3, padding: 1, bias: false}
      - {id: b, op: relu}
nodes:
  - {id: stage, op: pair, repeat: 3, out: 8}
  - {id: head, op: conv2d, out: 4, kernel: 1}
"""


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(SPEC)
    return str(p)


def run(*args):
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r


def test_summary_table(spec):
    r = run("summary", spec)
    assert r.exit_code == 0, r.output
    assert "conv2d" in r.output and f"{PARAMS:,}" in r.output and f"{MACS:,}" in r.output


def test_json_contract(spec):
    r = run("summary", spec, "--format", "json", "--batch", "2")
    assert r.exit_code == 0
    d = json.loads(r.output)
    assert set(d) >= {"name", "inputs", "outputs", "totals", "layers"}
    assert d["inputs"] == {"image": [2, 3, 224, 224]}
    assert d["outputs"] == {"out": [2, 64, 112, 112]}
    t = d["totals"]
    assert set(t) == {"params", "active_params", "trainable_params", "non_trainable_params", "buffers", "macs",
                      "flops", "elementwise_ops", "param_bytes", "activation_bytes"}
    assert t["params"] == PARAMS and t["macs"] == 2 * MACS and t["flops"] == 4 * MACS
    assert t["active_params"] == PARAMS         # a dense model: a token uses every param
    assert all(isinstance(v, int) for v in t.values())
    assert [l["id"] for l in d["layers"]] == ["conv", "relu", "pool"]
    for l in d["layers"]:
        assert set(l) >= {"id", "op", "inputs", "output_shape", "params", "macs", "flops"}
    assert d["layers"][0]["inputs"] == ["image"]
    assert sum(l["params"] for l in d["layers"]) == t["params"]
    assert sum(l["macs"] for l in d["layers"]) == t["macs"]
    # relu: 2·64·224·224 elements; maxpool 2x2: 3 comparisons per output of 2·64·112·112
    assert t["elementwise_ops"] == 2 * 64 * 224 * 224 + 3 * 2 * 64 * 112 * 112
    # float32: 4 bytes per parameter; activations: all three layers' outputs
    assert t["param_bytes"] == 4 * PARAMS
    assert t["activation_bytes"] == 4 * (2 * 64 * 224 * 224 * 2 + 2 * 64 * 112 * 112)


def test_csv_and_markdown(spec):
    r = run("summary", spec, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert rows[0]["id"] == "conv" and int(rows[0]["params"]) == PARAMS
    assert rows[-1]["id"] == "TOTAL" and int(rows[-1]["macs"]) == MACS
    r = run("summary", spec, "-f", "markdown")
    assert "| `conv` | conv2d | (1, 64, 224, 224) | 1,792 |" in r.output


def test_param_override_and_batch_linearity(spec):
    a = archviz.load(spec)
    b = archviz.load(spec, batch=3)
    assert b.totals["macs"] == 3 * a.totals["macs"] and b.totals["params"] == a.totals["params"]
    r = run("summary", spec, "-p", "c=32", "-p", "size=64", "-f", "json")
    d = json.loads(r.output)
    assert d["outputs"]["out"] == [1, 32, 32, 32]
    assert d["totals"]["params"] == 32 * 27 + 32


def test_depth_collapses_blocks(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(BLOCKS)
    m = archviz.load(str(p))
    assert [l.id for l in m.layers][:2] == ["stage.0.a", "stage.0.b"]
    d = json.loads(run("summary", str(p), "--depth", "1", "-f", "json").output)
    assert [l["id"] for l in d["layers"]] == ["stage", "head"]
    assert d["layers"][0]["op"] == "pair" and d["layers"][0]["repeat"] == 3    # data, not a display string
    assert "repeat" not in d["layers"][1]
    assert "pair ×3" in run("summary", str(p), "--depth", "1").output             # the table shows it so
    assert d["layers"][0]["params"] == 3 * 8 * 8 * 9
    assert d["layers"][0]["output_shape"] == [1, 8, 16, 16]
    d2 = json.loads(run("summary", str(p), "--depth", "2", "-f", "json").output)
    assert [l["id"] for l in d2["layers"]] == ["stage.0", "stage.1", "stage.2", "head"]


def test_explain_shows_formula_with_numbers(spec):
    r = run("explain", spec, "conv")
    assert r.exit_code == 0
    assert "⌊(224 + 2·1 − 1·(3 − 1) − 1) / 1⌋ + 1 = 224" in r.output
    assert "64 × 3 × 3 × 3 = 1,728" in r.output
    assert f"= 1 · 64 · 224 · 224 · 3 · 3 · 3 = {MACS:,}" in r.output
    r = run("explain", spec)
    assert "pool" in r.output and "totals" in r.output
    r = run("explain", spec, "conv9")
    assert r.exit_code == 1 and "did you mean 'conv'" in r.output


def test_compare_ratios(tmp_path, spec):
    other = tmp_path / "o.yaml"
    other.write_text(SPEC.replace("kernel: 3, padding: 1", "kernel: 7, padding: 3"))
    r = run("compare", spec, str(other), "-f", "json")
    d = json.loads(r.output)
    row = {x["quantity"]: x for x in d["rows"]}
    # params: (27·64 + 64) / (147·64 + 64) = 1792 / 9472
    assert row["params"]["a"] == 1792 and row["params"]["b"] == 147 * 64 + 64
    assert row["params"]["ratio_exact"] == "7/37" and row["params"]["ratio"] == 1792 / 9472    # 1792/9472 = 7/37
    assert row["elementwise_ops"]["ratio"] is not None
    r = run("compare", spec, str(other))
    assert r.exit_code == 0 and f"{1792 / 9472:.4g}×" in r.output
    # an override only one of the two specs has: the error names that spec
    r = run("compare", spec, "specs/alexnet.yaml" if os.path.exists("specs/alexnet.yaml") else str(other),
            "-p", "nosuch=1")
    assert r.exit_code == 1 and "spec: " in r.output and "Traceback" not in r.output


def test_ops_reference_is_generated_from_the_registry():
    from archviz.ops import registry
    r = run("ops", "-f", "markdown")
    for name in registry:
        if name != "input":
            assert f"## `{name}`" in r.output
    r = run("ops", "conv2d")
    assert "dilation" in r.output and "[h, w]" in r.output
    assert run("ops", "conv2").exit_code == 2


def test_validate_ok(spec):
    r = run("validate", spec)
    assert r.exit_code == 0 and "ok" in r.output


def test_report_writes_every_file_and_a_table(tmp_path, spec):
    out = tmp_path / "out"
    r = run("report", spec, "-o", str(out), "--no-diagrams")
    assert r.exit_code == 0, r.output
    names = sorted(os.listdir(out))
    assert names == ["index.html", "tiny.csv", "tiny.explain.txt", "tiny.html", "tiny.json", "tiny.md",
                     "tiny.summary.txt"]
    assert json.loads((out / "tiny.json").read_text())["totals"]["params"] == PARAMS
    assert "tiny" in r.output


def test_summary_output_file_is_atomic(tmp_path, spec):
    target = tmp_path / "s.json"
    target.write_text("previous")
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("kernel: 3,", "kernal: 3,"))
    r = CliRunner().invoke(main, ["summary", str(bad), "-f", "json", "-o", str(target)])
    assert r.exit_code == 1
    assert target.read_text() == "previous"       # a failed run leaves the old file alone
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    r = run("summary", spec, "-f", "json", "-o", str(target))
    assert json.loads(target.read_text())["totals"]["params"] == PARAMS


def test_python_m_archviz(spec):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", spec, "-f", "json"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["totals"]["macs"] == MACS


def test_docs_ops_reference_is_current():
    """docs/ops.md is generated from the registry (`make docs`); it must not drift."""
    from archviz.backends.opsdoc import ops_markdown
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "ops.md")
    with open(path, encoding="utf-8") as f:
        assert f.read() == ops_markdown(), "docs/ops.md is stale: run `make docs`"


def test_depth_groups_list_every_outside_input():
    """U-Net at depth 1: each decoder level reads the level below and the encoder's skip."""
    spec = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs", "unet.yaml")
    d = json.loads(run("summary", spec, "--depth", "1", "-f", "json").output)
    layers = {l["id"]: l for l in d["layers"]}
    assert layers["dec4"]["inputs"] == ["bottom", "enc"]
    assert layers["enc"]["inputs"] == ["image"] and layers["enc"]["op"] == "down" and layers["enc"]["repeat"] == 4
    assert sum(l["params"] for l in d["layers"]) == d["totals"]["params"]


def test_explain_a_block_call_explains_its_layers():
    spec = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs", "resnet18.yaml")
    r = run("explain", spec, "layer1.0")
    assert r.exit_code == 0 and r.output.startswith("layer1.0: basic, 7 layers")
    assert "layer1.0.conv1  (conv2d)" in r.output and "bias=false" in r.output
