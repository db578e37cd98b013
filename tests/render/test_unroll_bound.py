"""`--unroll` is bounded (issue 10, repros 12 and 22): 10**9 steps was a MemoryError
traceback, 10**6 steps of seq2seq ran past 20 s and 1 GB. Now a usage error (exit 2) that
names the limit, at once; the API refuses it the same way."""
from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

import archviz
from archviz.backends.render import to_dot
from archviz.backends.render.options import MAX_UNROLL, DrawOptions
from archviz.cli import main
from archviz.errors import UnsupportedError

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "specs")


@pytest.mark.parametrize("spec, steps", [("lstm_lm", 10**9), ("seq2seq", 10**6), ("lstm_lm", MAX_UNROLL + 1)])
def test_too_many_steps_is_a_usage_error_naming_the_limit(tmp_path, spec, steps):
    out = tmp_path / "x.dot"
    t0 = time.monotonic()
    r = CliRunner().invoke(main, ["draw", os.path.join(SPECS, f"{spec}.yaml"), "-o", str(out),
                                  "--unroll", str(steps)])
    assert time.monotonic() - t0 < 5
    assert r.exit_code == 2 and f"1<=x<={MAX_UNROLL}" in r.output and "Traceback" not in r.output, r.output
    assert not out.exists()


@pytest.mark.parametrize("spec, layout", [("lstm_lm", "unrolled"), ("seq2seq", "seq2seq")])
def test_the_limit_itself_draws(tmp_path, spec, layout):
    out = tmp_path / "x.dot"
    r = CliRunner().invoke(main, ["draw", os.path.join(SPECS, f"{spec}.yaml"), "-o", str(out),
                                  "--layout", layout, "--unroll", str(MAX_UNROLL)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert f"<SUB>{MAX_UNROLL}</SUB>" in text and f"<SUB>{MAX_UNROLL + 1}</SUB>" not in text  # step labels


def test_the_api_refuses_it_too():
    m = archviz.load(os.path.join(SPECS, "lstm_lm.yaml"))
    for bad in (0, MAX_UNROLL + 1, 10**9, 2.5, True):
        with pytest.raises(UnsupportedError, match=f"1 to {MAX_UNROLL}"):
            to_dot(m, "unrolled", unroll=bad)
    assert DrawOptions(unroll=MAX_UNROLL).unroll == MAX_UNROLL
