"""`explain` shows each number the way a worked answer does: a formula, then the numbers put
in, then the result. This checks the arithmetic it prints: every `A = B` step whose both
sides are plain arithmetic (digits, + − · × /, parentheses, ⌊⌋ ⌈⌉, ²) is evaluated here,
exactly with Fractions, and must hold — over every layer of every bundled spec and every
op's sample cases. A shown derivation that does not add up is a bug even where the final
number is right."""
from __future__ import annotations

import glob
import math
import os
import re
import textwrap
from fractions import Fraction

import pytest

import archviz
from archviz.ops import registry
from tests.ops.samples import evaluate_sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")))

_SYMBOLS = {"·": "*", "×": "*", "−": "-", ",": "", "²": "**2",
            "⌈": " _ceil(", "⌉": ") ", "⌊": " _floor(", "⌋": ") "}
_ARITH = re.compile(r"^[0-9+\-*/() .]*$")


def value(expr: str):
    """The exact value of a printed arithmetic expression, or None if it is not one."""
    e = expr.strip()
    for k, v in _SYMBOLS.items():
        e = e.replace(k, v)
    if not e or not _ARITH.match(e.replace("_ceil", "").replace("_floor", "")):
        return None
    e = re.sub(r"\d+(?:\.\d+)?", lambda m: f"Fraction('{m.group(0)}')", e)    # 0.25 exactly, not 0 . 25
    try:   # only digits, operators and the two rounding functions reach eval
        return eval(e, {"__builtins__": {}}, {"Fraction": Fraction, "_ceil": math.ceil, "_floor": math.floor})
    except (SyntaxError, ZeroDivisionError, TypeError):
        return None


def steps(numbers: str):
    """Consecutive (lhs, rhs) pairs of `a = b = c` chains whose both sides are arithmetic."""
    for seg in re.split(r"[;:]", numbers):
        parts = seg.split(" = ")
        for a, b in zip(parts, parts[1:]):
            va, vb = value(a), value(b)
            if va is not None and vb is not None:
                yield a.strip(), b.strip(), va, vb


def bad_steps(text: str, where: str) -> tuple[int, list]:
    n, bad = 0, []
    for line in text.splitlines():
        t = line.strip()
        if t.startswith("= "):
            for a, b, va, vb in steps(t[2:]):
                n += 1
                if va != vb:
                    bad.append(f"{where}: {a} = {b}   ({va} ≠ {vb})")
    return n, bad


def test_the_checker_catches_a_wrong_step():
    assert value("⌈(5 + 2·1 − 1·(2 − 1) − 1) / 2⌉ + 1") == 4
    assert value("3·3·64·64") == 36864 and value("conv1") is None
    n, bad = bad_steps("  = ⌈(5 + 2·1 − 1·(2 − 1) − 1) / 2⌉ + 1 = 3\n  = 2·3 = 6", "x")
    assert n == 2 and len(bad) == 1


@pytest.mark.parametrize("path", SPECS, ids=[os.path.basename(p)[:-5] for p in SPECS])
def test_explain_of_every_spec_adds_up(path):
    m = archviz.load(path)
    n, bad = 0, []
    for layer in m.layers:
        k, b = bad_steps(m.explain(layer.id), layer.id)
        n, bad = n + k, bad + b
    assert n >= len(m.layers), "too few arithmetic steps found: the check would be vacuous"
    assert not bad, "\n".join(bad[:20])


def test_explain_of_every_op_sample_adds_up():
    n, bad = 0, []
    for name, op in sorted(registry.items()):
        for i, smp in enumerate(op.samples):
            a, ins, outs = evaluate_sample(op, smp)
            for ln in op.explain(a, ins, outs):
                k, b = bad_steps("= " + str(ln.numbers), f"{name}[{i}] {ln.what}")
                n, bad = n + k, bad + b
    assert n > 100 and not bad, "\n".join(bad[:20])


def test_pooling_in_ceil_mode_shows_the_dropped_window(tmp_path):
    # torch (aten Pool.h, pooling_output_shape): ⌈(5 + 2 − 1 − 1)/2⌉ + 1 = 4 windows, but the
    # 4th would start at 3·2 = 6, past the input and its left padding (5 + 1): dropped, 3.
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent("""\
        archviz: 1
        inputs: {x: [3, 5, 5]}
        nodes:
          - {id: p, op: maxpool2d, kernel: 2, stride: 2, padding: 1, ceil_mode: true}
    """))
    m = archviz.load(str(p))
    assert m.layer("p").output_shape == (1, 3, 3, 3)
    text = m.explain("p")
    n, bad = bad_steps(text, "p")
    assert n >= 2 and not bad, bad
    assert "dropped" in text
