"""Counts are built once, from terms (archviz.ops.terms), and explain prints them from the
same object, so the number and its explanation cannot drift.

- For random term trees, the line with the numbers put in evaluates (as printed, with the
  arithmetic reader of tests/test_explain_arithmetic.py) to exactly the term's value, and
  the symbolic line has the same shape (one symbol per number).
- No op overrides count_macs / explain_macs / count_elementwise / explain_elementwise: each
  declares macs_terms and elementwise_terms, and for every sample the count equals the
  value its explain lines end with.
"""
from __future__ import annotations

import re
from fractions import Fraction

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from archviz.ops import registry  # noqa: E402
from archviz.ops.base import NoMacs, Op  # noqa: E402
from archviz.ops.terms import C, Div, Fold, Numel, Parts, Prod, Sum, Tag, V, line, tight  # noqa: E402
from tests.test_explain_arithmetic import value  # noqa: E402

from .samples import cases  # noqa: E402

NAMES = ["N", "C_in", "C_out", "kh", "kw", "T", "h", "x"]


def _leaf():
    return st.one_of(st.builds(V, st.sampled_from(NAMES), st.integers(1, 999)),
                     st.builds(C, st.integers(0, 50)),
                     st.builds(Numel, st.lists(st.integers(1, 40), min_size=1, max_size=4)))


def _tree(children):
    return st.one_of(
        st.builds(lambda a, b: a * b, children, children),
        st.builds(lambda a, b: a + b, children, children),
        st.builds(lambda a, b: a - b, children, children),
        st.builds(lambda a, b: tight(a, b), children, children),
        st.builds(lambda a: Fold(a), children),
        st.builds(lambda a: Tag(a, "gloss"), children),
        st.builds(lambda a, b: Div(a, Fold(b)) if b.value() else a, children, children),
    )


TERMS = st.recursive(_leaf(), _tree, max_leaves=12)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(TERMS)
def test_numbers_line_evaluates_to_the_value(t):
    num = re.sub(r" \([^()]*gloss\)", "", t.num())          # glosses are text, not arithmetic
    got = value(num)
    assert got is not None, num
    assert got == Fraction(t.value()), (t.sym(), num, t.value())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(TERMS)
def test_line_prints_formula_numbers_and_value(t):
    ln = line("x", t)
    assert ln.formula == t.sym() and ln.value == t.value()
    last = ln.numbers.split(" = ")[-1]
    assert value(last) == Fraction(t.value())


def test_a_conv_formula_reads_like_the_textbook():
    t = Prod(V("N", 1), V("C_out", 64), V("H_out", 112), V("W_out", 112), Fold(V("C_in", 3) / V("groups", 1)),
             V("kh", 7), V("kw", 7))
    assert t.sym() == "N · C_out · H_out · W_out · (C_in / groups) · kh · kw"
    assert line("MACs", t).numbers == "1 · 64 · 112 · 112 · 3 · 7 · 7 = 118,013,952"


def test_parts_sum_their_lines():
    p = Parts([("a", V("x", 2) * V("y", 3)), ("b", C(4))], " (note)")
    lines = p.lines()
    assert [ln.value for ln in lines] == [6, 4, 10] and lines[-1].numbers == "6 + 4 = 10"
    assert lines[-1].formula == "a + b (note)"


def test_sums_inside_products_get_parentheses():
    t = V("N", 2) * Sum(tight(V("G", 3), V("h", 4)), V("x", 5))
    assert t.sym() == "N · (G·h + x)" and t.num() == "2 · (3·4 + 5)" and t.value() == 34


RULES = ("count_macs", "explain_macs", "count_elementwise", "explain_elementwise")


def test_no_op_writes_a_count_twice():
    """Every op states its counts once, as terms; none overrides the derived rules."""
    offenders = []
    for name, op in sorted(registry.items()):
        for rule in RULES:
            owner = next(k for k in type(op).__mro__ if rule in vars(k))
            if owner not in (Op, NoMacs):
                offenders.append(f"{name}.{rule} ({owner.__name__})")
    assert not offenders, offenders


@pytest.mark.parametrize("name, i, op, a, ins, outs", list(cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_explained_counts_are_the_counts(name, i, op, a, ins, outs):
    macs = op.explain_macs(a, ins, outs)
    assert macs[-1].value == op.count_macs(a, ins, outs)
    ew = op.explain_elementwise(a, ins, outs)
    assert (ew[-1].value if ew else 0) == op.count_elementwise(a, ins, outs)
