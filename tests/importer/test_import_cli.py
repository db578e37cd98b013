"""`archviz import TARGET -o SPEC.yaml --input NAME=SHAPE[:DTYPE] [--kwargs JSON] [--batch N] [--check]`
as a user runs it: a file or a package target, the round trip check, and a clear error (never a
traceback, never a half-written file) for each way it can go wrong."""
from __future__ import annotations

import os
import textwrap

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

import archviz  # noqa: E402
from archviz.cli import main  # noqa: E402

NET = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
            self.fc = nn.Linear(8 * 13 * 13, classes)

        def forward(self, x):
            return self.fc(self.features(x).flatten(1))


    def broken(**kw):
        raise ValueError("no such config")


    class Odd(nn.Module):
        def forward(self, x):
            return torch.erf(x) - x


    class Branchy(nn.Module):
        def forward(self, x):
            if x.mean() > 0:
                return x
            return torch.relu(x)
''')


@pytest.fixture
def net(tmp_path):
    p = tmp_path / "net.py"
    p.write_text(NET)
    return str(p)


def run(*args):
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), (r.output, r.exception)
    assert "Traceback" not in r.output
    return r


def test_import_a_file_target_with_check(net, tmp_path):
    out = str(tmp_path / "net.yaml")
    r = run("import", f"{net}:Net", "-o", out, "--input", "x=1x28x28", "--kwargs", '{"classes": 7}', "--check")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "DIFF" not in r.output and "same function" in r.output
    m = archviz.load(out)
    # torch's own count of Net(classes=7): conv 8·9 + 8, BN 2·8, fc 1352·7 + 7
    assert m.totals["params"] == 8 * 9 + 8 + 16 + 1352 * 7 + 7
    text = open(out).read()
    assert "params: {num_classes: 7}" in text and "{id: features__1, op: batchnorm2d}" in text


def test_import_a_package_target_prints_the_spec():
    r = run("import", "torch.nn:Conv2d", "--input", "x=3x9x9",
            "--kwargs", '{"in_channels": 3, "out_channels": 4, "kernel_size": 3}')
    assert r.exit_code == 0, r.output
    assert "{id: conv2d, op: conv2d, in: x, out: 4, kernel: 3}" in r.output


def test_tokens_take_a_dtype(tmp_path):
    r = run("import", "torch.nn:Embedding", "--input", "tokens=12:int64",
            "--kwargs", '{"num_embeddings": 50, "embedding_dim": 8}')
    assert r.exit_code == 0, r.output
    assert "tokens: {shape: [12], dtype: int64}" in r.output


@pytest.mark.parametrize("target, inp, code", [
    (":Nett", "x=1x28x28", "E0611"),          # no such callable (did you mean Net?)
    (":broken", "x=1x28x28", "E0612"),        # the callable raises
    (":Net", "x=3x28x28", "E0613"),           # inputs that do not fit the model
    (":Odd", "x=4", "E0615"),                 # unmapped: every one listed
    (":Branchy", "x=4", "E0614"),             # data-dependent control flow, with its line
])
def test_errors_are_clear_and_leave_no_file(net, tmp_path, target, inp, code):
    out = tmp_path / "o.yaml"
    out.write_text("before\n")
    r = run("import", net + target, "-o", str(out), "--input", inp)
    assert r.exit_code == 1 and f"error[{code}]" in r.output, r.output
    assert out.read_text() == "before\n"
    if code == "E0614":
        assert "net.py:" in r.output
    if code == "E0615":
        assert "erf" in r.output and "sub" in r.output
    if code == "E0611":
        assert "did you mean 'Net'" in r.output


def test_missing_module_and_file():
    r = run("import", "no_such_package_xyz:Net", "--input", "x=3")
    assert r.exit_code == 1 and "error[E0611]" in r.output
    r = run("import", "/no/such/file.py:Net", "--input", "x=3")
    assert r.exit_code == 1 and "error[E0611]" in r.output


@pytest.mark.parametrize("args", [
    ["import", "torch.nn:Conv2d"],                                  # no --input
    ["import", "torch.nn:Conv2d", "--input", "x=3xAx4"],           # bad shape
    ["import", "torch.nn:Conv2d", "--input", "x=3x4:int8"],        # unknown dtype
    ["import", "torch.nn.Conv2d", "--input", "x=3x4"],             # no callable
    ["import", "torch.nn:Conv2d", "--input", "x=3", "--kwargs", "[1]"],
    ["import", "torch.nn:Conv2d", "--input", "x=3", "-o", "x.txt"],
])
def test_usage_errors_before_any_work(args):
    r = run(*args)
    assert r.exit_code == 2, r.output


def test_help_has_examples():
    r = run("import", "--help")
    assert r.exit_code == 0 and "Examples:" in r.output and "--input image=3x224x224" in r.output
    assert os.path.basename(__file__)


def test_analysis_commands_take_a_torch_target(net, tmp_path):
    # summary, explain, rf and draw import on the fly: no file written, the same numbers
    r = run("summary", f"{net}:Net", "--input", "x=1x28x28", "--kwargs", '{"classes": 7}', "-f", "json")
    assert r.exit_code == 0, r.output
    import json
    doc = json.loads(r.output)
    assert doc["totals"]["params"] == 8 * 9 + 8 + 16 + 1352 * 7 + 7
    r = run("explain", f"{net}:Net", "fc", "--input", "x=1x28x28")
    assert r.exit_code == 0 and "weight (10, 1352)" in r.output, r.output
    r = run("rf", f"{net}:Net", "--torch-input", "x=1x28x28")       # rf's own --input names an input
    assert r.exit_code == 0 and "features__2" in r.output, r.output
    out = str(tmp_path / "net.svg")
    r = run("draw", f"{net}:Net", "--input", "x=1x28x28", "-o", out)
    assert r.exit_code == 0 and os.path.getsize(out) > 0, r.output
    r = run("summary", f"{net}:Net")
    assert r.exit_code == 2 and "--input" in r.output
    # size and compare too (compare: a torch target on either side, the inputs shared)
    r = run("size", f"{net}:Net", "--input", "x=1x28x28", "-f", "json")
    assert r.exit_code == 0 and json.loads(r.output)["params"]["total"] == 8 * 9 + 8 + 16 + 1352 * 10 + 10, r.output
    r = run("compare", f"{net}:Net", f"{net}:Net", "--input", "x=1x28x28", "--kwargs", '{"classes": 7}', "-f", "json")
    assert r.exit_code == 0, r.output
    rows = {row["quantity"]: row for row in json.loads(r.output)["rows"]}
    assert rows["params"]["a"] == rows["params"]["b"] == 8 * 9 + 8 + 16 + 1352 * 7 + 7


SPEC = textwrap.dedent('''
    archviz: 1
    name: handwritten
    params: {classes: 7}
    inputs: {image: {shape: [1, 28, 28]}}
    nodes:
      - {id: conv, op: conv2d, out: 8, kernel: 3}
      - {id: bn, op: batchnorm2d}
      - {id: act, op: relu}
      - {id: pool, op: maxpool2d, kernel: 2}
      - {id: flat, op: flatten}
      - {id: head, op: linear, out: "${classes}"}
''')


def test_verify_against_a_torch_model(net, tmp_path):
    # a hand-written spec (its own ids) against the model it stands for: counts, then the same
    # outputs with the model's weights paired in the order the forward uses them
    spec = tmp_path / "hand.yaml"
    spec.write_text(SPEC)
    r = run("verify", str(spec), "--against", f"{net}:Net", "--kwargs", '{"classes": 7}')
    assert r.exit_code == 0, r.output
    assert "ok   same function" in r.output and "DIFF" not in r.output
    # the same spec with another activation has the same counts, not the same function
    spec.write_text(SPEC.replace("op: relu", "op: tanh"))
    r = run("verify", str(spec), "--against", f"{net}:Net", "--kwargs", '{"classes": 7}')
    assert r.exit_code == 1 and "DIFF same function" in r.output and "ok   params" in r.output
    assert "error[E0616]" in r.output
    r = run("verify", str(spec), "--against", f"{net}:Net")        # classes 10: the counts differ
    assert r.exit_code == 1 and "DIFF params" in r.output
    r = run("verify", str(tmp_path / "none.yaml"), "--against", f"{net}:Net")
    assert r.exit_code == 1 and "error[E0106]" in r.output
