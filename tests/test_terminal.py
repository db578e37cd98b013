"""Consoles that cannot print Unicode (issue 10, item 3): with PYTHONIOENCODING=ascii or
cp1252 every command works, prints no traceback, writes only bytes of that encoding, and
spells the characters it lacks in ASCII (× → x, → → ->) rather than '?'.

Each encoding runs every command in a real subprocess (its own stdout and stderr with that
encoding). To pay torch's import once, one driver process per encoding runs the commands
one after another through `main`, as `python -m archviz` does; `summary` and `explain`,
the reported cases, also run each in a process of their own."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from archviz.terminal import ascii_text, spell

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")
CONV = os.path.join(SPECS, "exam_conv_pool.yaml")
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_DOT = shutil.which("dot") is not None
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("PYTHONUTF8", None)

# an error whose source line, shown under the message, holds characters cp1252 lacks
BAD = """archviz: 1
name: bad
doc: "3×3 conv → pool, σ² ⌊x⌋"
inputs: {x: {shape: [3, 8, 8]}}
nodes:
  - {id: conv, op: conv2d, out: 4, kernel: 9}   # 9 > 8 → error
"""

DRIVER = r"""
import sys
from archviz.cli import main
SEP = "\n@@archviz-test rc=%s@@\n"
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    args = line.split("\t")
    try:
        main(args, prog_name="archviz")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write(SEP % code)
    sys.stdout.flush()
"""


def _commands(tmp):
    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w", encoding="utf-8") as f:
        f.write(BAD)
    cmds = [
        (["summary", CONV], 0), (["summary", CONV, "-f", "markdown"], 0), (["summary", CONV, "-f", "csv"], 0),
        (["summary", CONV, "-o", os.path.join(tmp, "s.txt")], 0),
        (["validate", CONV], 0), (["explain", CONV], 0), (["explain", CONV, "conv"], 0),
        (["rf", CONV], 0), (["rf", CONV, "--node", "pool", "--position", "3,3"], 0),
        (["rf", CONV, "-f", "json"], 0),
        (["compare", os.path.join(SPECS, "exam_three_3x3.yaml"), os.path.join(SPECS, "exam_one_7x7.yaml")], 0),
        (["ops"], 0), (["ops", "conv2d"], 0), (["ops", "--format", "markdown"], 0),
        (["draw", CONV, "-o", os.path.join(tmp, "d.dot")], 0),
        (["report", CONV, "-o", os.path.join(tmp, "rep"), "--no-diagrams"], 0),
        (["zoo"], 0), (["summary", "seq2seq_bahdanau"], 0), (["explain", "rnn_exam"], 0),
        # errors: a spec error with its source line, a missing file, usage errors
        (["summary", bad], 1), (["validate", bad], 1), (["explain", bad], 1), (["rf", bad], 1),
        (["validate", os.path.join(tmp, "missing.yaml")], 1),
        (["draw", CONV, "-o", os.path.join(tmp, "x.dot"), "--unroll", "1000"], 2),
        (["explain", CONV, "nope"], 1), (["ops", "conv2"], 2),
        (["--help"], 0),
    ]
    for c in ("summary", "validate", "explain", "compare", "ops", "report", "draw", "gallery", "rf",
              "export", "verify", "bench", "train-smoke", "zoo"):
        cmds.append(([c, "--help"], 0))
    if HAS_DOT:
        cmds.append((["gallery", CONV, "-o", os.path.join(tmp, "gal")], 0))
    if HAS_TORCH:
        cmds += [(["verify", CONV], 0), (["export", CONV, "-o", os.path.join(tmp, "m.py")], 0),
                 (["bench", CONV, "--warmup", "0", "--iters", "1"], 0),
                 (["train-smoke", CONV, "--steps", "2"], None)]    # the loss may or may not go down in 2 steps
    return cmds


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_every_command_on_a_limited_console(tmp_path, encoding):
    cmds = _commands(str(tmp_path))
    r = subprocess.run([sys.executable, "-c", DRIVER], input="\n".join("\t".join(a) for a, _ in cmds).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                       env=dict(ENV, PYTHONIOENCODING=encoding, COLUMNS="100"))
    out = r.stdout
    assert r.returncode == 0, out[-3000:]
    parts = out.split(b"\n@@archviz-test rc=")
    assert len(parts) == len(cmds) + 1, out[-3000:]
    text = out.decode(encoding)            # every byte is of the console's encoding
    assert "Traceback" not in text and "UnicodeEncodeError" not in text, text[-3000:]
    if encoding == "ascii":
        assert out.isascii()
    for (args, want), part, nxt in zip(cmds, parts, parts[1:]):
        rc = int(nxt.split(b"@@", 1)[0])
        if want is not None:
            assert rc == want, (args, rc, part[-2000:].decode(encoding))
    by_cmd = {" ".join(a): p.decode(encoding) for (a, _), p in zip(cmds, parts)}
    # spelled, not '?': × is 'x' where the console lacks it, → is '->' on both
    expl = by_cmd[f"explain {CONV} conv"]
    assert ("= 64 x 3 x 3 x 3 = 1,728" if encoding == "ascii" else "= 64 × 3 × 3 × 3 = 1,728") in expl
    assert "floor((224 + 2" in expl and "?" not in expl
    assert "layer1.0.conv1 -> layer1" in by_cmd["summary --help"]
    err = by_cmd[f"summary {tmp_path / 'bad.yaml'}"]
    assert "bad.yaml:6:" in err and "error[" in err
    assert "# 9 > 8 -> error" in err                 # the source line under the message, spelled
    rf_text = by_cmd[f"rf {CONV}"]
    assert "sigma (estimate)" in rf_text
    lines = [l for l in rf_text.splitlines() if l.startswith("|")]
    assert len({len(l) for l in lines}) == 1, lines   # spelled before layout: columns stay aligned


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
@pytest.mark.parametrize("cmd", ["summary", "explain"])
def test_the_reported_commands_each_in_a_process_of_their_own(encoding, cmd):
    r = subprocess.run([sys.executable, "-m", "archviz", cmd, CONV], capture_output=True, timeout=120,
                       env=dict(ENV, PYTHONIOENCODING=encoding))
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode(encoding, "replace")
    r.stdout.decode(encoding)
    if encoding == "ascii":
        assert r.stdout.isascii()


def test_spellings():
    assert [spell(c) for c in "×→—·σ²⌊⌋…ᵀ₂ŷ½Σ≤─│┃╋█"] == \
        ["x", "->", "-", "*", "sigma", "^2", "floor(", ")", "...", "^T", "_2", "y", "1/2", "sum", "<=",
         "-", "|", "|", "+", "#"]
    assert spell("a") == "a" and spell("\u4e2d") == "?"


def test_ascii_text_keeps_what_the_encoding_has():
    class S:
        encoding = "cp1252"
    assert ascii_text("3 × 3 → 9", S()) == "3 × 3 -> 9"
    S.encoding = "utf-8"
    assert ascii_text("3 × 3 → 9", S()) == "3 × 3 → 9"
    S.encoding = "ascii"
    assert ascii_text("3 × 3 → 9", S()) == "3 x 3 -> 9"


def test_a_signal_inside_a_critical_section_is_raised_when_it_ends():
    """A SIGTERM that arrives while a temporary file is being created (and recorded) is held
    back until the section ends, then raised as Terminated; exit code 143."""
    import os
    import signal

    from archviz.terminal import Terminated, deferred, exit_code, signals_handled
    before = signal.getsignal(signal.SIGTERM)
    steps = []
    with signals_handled():
        with pytest.raises(Terminated) as e:
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):           # the handler runs between bytecodes here
                    pass
                steps.append("section finished")
        assert steps == ["section finished"] and exit_code(e.value) == 143
    assert signal.getsignal(signal.SIGTERM) == before      # restored for the caller
