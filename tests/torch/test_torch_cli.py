"""The torch commands as a user runs them: `verify` (exit 0, and exit 1 naming the node
when a static rule is wrong), `export`, `bench` and `train-smoke` (every loss), and the
spec's `loss:` field."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

import archviz  # noqa: E402
from archviz.cli import main  # noqa: E402
from archviz.ops import registry  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEG = """\
archviz: 1
name: seg
params: {classes: 3}
inputs: {image: [3, 16, 16]}
nodes:
  - {id: c1, op: conv2d, out: 8, kernel: 3, padding: 1}
  - {id: r1, op: relu}
  - {id: head, op: conv2d, out: "${classes}", kernel: 1}
"""


def run(*args):
    r = CliRunner().invoke(main, list(args))
    # an error must end in a clean exit (SystemExit with a message), never an exception escaping
    assert r.exception is None or isinstance(r.exception, SystemExit), (r.output, r.exception)
    return r


@pytest.fixture
def seg(tmp_path):
    p = tmp_path / "seg.yaml"
    p.write_text(SEG)
    return str(p)


def test_verify_cli_agrees_and_exits_0(seg):
    r = run("verify", seg)
    assert r.exit_code == 0 and "verified" in r.output


def test_verify_cli_exits_1_naming_the_node(seg, monkeypatch):
    conv = registry["conv2d"]
    real = conv.count_macs
    monkeypatch.setattr(conv, "count_macs", lambda a, ins, outs: real(a, ins, outs) + 1)
    r = run("verify", seg)
    assert r.exit_code == 1, r.output
    assert "head" in r.output and "c1" in r.output     # both conv2d nodes disagree, each named


@pytest.mark.parametrize("loss", ["cross_entropy", "dice", "dice_plain", "cross_entropy+dice", "cross_entropy+dice_plain"])
def test_train_smoke_cli_every_loss_goes_down(seg, loss):
    r = run("train-smoke", seg, "-b", "2", "--steps", "8", "--loss", loss, "--lr", "0.01")
    assert r.exit_code == 0, r.output
    assert f"{loss} over 8 steps" in r.output and "(going down)" in r.output


def test_spec_loss_field(tmp_path):
    p = tmp_path / "l.yaml"
    p.write_text(SEG.replace("params:", 'loss: "cross_entropy + dice"\nparams:'))
    assert archviz.load(str(p)).graph.loss == "cross_entropy+dice"     # spaces around + are allowed
    r = run("train-smoke", str(p), "--steps", "3")
    assert r.exit_code == 0 and "cross_entropy+dice over 3 steps" in r.output
    p.write_text(SEG.replace("params:", "loss: focal\nparams:"))
    r = run("validate", str(p))
    assert r.exit_code == 1 and "unknown loss 'focal'" in r.output and "cross_entropy+dice" in r.output


def test_bench_cli_reports_throughput(seg):
    r = run("bench", seg, "-b", "2", "--warmup", "1", "--iters", "3")
    assert r.exit_code == 0, r.output
    assert "samples/s" in r.output or "/s" in r.output
    r = run("bench", seg, "--iters", "2", "--warmup", "0", "--train", "--channels-last")
    assert r.exit_code == 0, r.output


def test_bench_cli_on_a_missing_gpu_is_a_clear_error(seg):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = run("bench", seg, "--device", "cuda")
    assert r.exit_code != 0 and "cuda" in r.output.lower()


def test_export_cli_py_names_the_outputs(seg, tmp_path):
    out = tmp_path / "seg.py"
    r = run("export", seg, "-o", str(out))
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "import archviz" not in text and "from archviz" not in text
    p = subprocess.run([sys.executable, "-I", str(out)], capture_output=True, text=True, cwd=str(tmp_path),
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert p.returncode == 0, p.stderr
    assert "out (1, 3, 16, 16)" in p.stdout          # no `outputs:`: the default output is named out
    r = run("export", os.path.join(ROOT, "specs", "exam_three_3x3.yaml"), "-o", str(out))
    p = subprocess.run([sys.executable, "-I", str(out)], capture_output=True, text=True, cwd=str(tmp_path))
    assert p.returncode == 0 and "y (1, 64, 56, 56)" in p.stdout, p.stdout + p.stderr
