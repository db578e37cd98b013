"""`${...}` expressions (archviz.spec.expr): a whitelisting walker over `ast`, exact
arithmetic, bounded sizes, located errors, and never `eval`."""
from __future__ import annotations

import builtins
import math
from fractions import Fraction

import pytest

from archviz.errors import ExpressionError, Span
from archviz.spec import expr as E
from archviz.spec.expr import evaluate, has_expr, substitute

SPAN = Span("f.yaml", 7, 20)      # where the expression text starts


def fails(text, scope=None, span=SPAN) -> ExpressionError:
    with pytest.raises(ExpressionError) as ei:
        evaluate(text, scope or {}, span)
    return ei.value


# -- exact arithmetic ----------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("64 / 2", 32), ("64 / 3", Fraction(64, 3)), ("c / 4 * 3", 48), ("(c / 3) * 3", 64),
    ("7 // 2", 3), ("-7 // 2", -4), ("7 % 3", 1), ("2 ** 10", 1024), ("2 ** -2", Fraction(1, 4)),
    ("1 / 3 + 2 / 3", 1), ("0.5 * 4", 2.0), ("1.0 / 4", 0.25), ("c - 1", 63), ("-c", -64), ("+c", 64),
])
def test_arithmetic_is_exact(text, value):
    got = evaluate(text, {"c": 64})
    assert got == value and type(got) is type(value)


def test_division_gives_an_int_when_it_divides():
    v = evaluate("c / 2", {"c": 64})
    assert v == 32 and type(v) is int                  # never 32.0
    v = evaluate("w / 3", {"w": Fraction(9, 2)})
    assert v == Fraction(3, 2) and type(v) is Fraction


def test_floor_and_ceil_of_fractions_are_exact_ints():
    assert evaluate("floor(7 / 2)", {}) == 3 and type(evaluate("floor(7 / 2)", {})) is int
    assert evaluate("ceil(7 / 2)", {}) == 4
    assert evaluate("ceil((10**30 + 1) / 10**30)", {}) == 2       # no float rounding


@pytest.mark.parametrize("text,value", [
    ("min(3, 1, 2)", 1), ("max(w)", 5), ("abs(-4)", 4), ("int(7 / 2)", 3), ("len(w)", 3),
    ("min(w[0], n)", 2), ("max(1, min(4, n))", 4),
])
def test_functions(text, value):
    assert evaluate(text, {"w": [2, 5, 3], "n": 9}) == value


def test_comparisons_boolean_logic_and_if_else():
    s = {"x": 3, "w": [1, 2]}
    assert evaluate("1 < x <= 3", s) is True and evaluate("1 < x < 3", s) is False
    assert evaluate("x == 3 and not x != 3", s) is True
    assert evaluate("x > 5 or x", s) == 3
    assert evaluate("'a' if x > 2 else 'b'", s) == "a"
    assert evaluate("true and True and not false and not False", {}) is True
    assert evaluate("None", {}) is None


def test_short_circuit_and_lazy_branches():
    # the unevaluated side would fail (index out of range, division by zero)
    s = {"x": 0, "w": [1]}
    assert evaluate("x > 0 and w[5]", s) is False
    assert evaluate("x == 0 or 1 / x", s) is True
    assert evaluate("w[5] if x else 7", s) == 7


def test_lists_and_indexing():
    s = {"w": [64, 128, 256], "i": 1}
    assert evaluate("w[i]", s) == 128 and evaluate("w[-1]", s) == 256 and evaluate("w[i + 1]", s) == 256
    assert evaluate("[w[0], w[0] * 2]", s) == [64, 128]
    assert evaluate("(1, 2)", s) == [1, 2]
    assert evaluate("[[1, 2], [3]][0][1]", s) == 2
    assert evaluate("'abc'[1]", s) == "b"
    assert evaluate("[0] * 3 + [1]", s) == [0, 0, 0, 1]


# -- errors, located -----------------------------------------------------------------
def test_unknown_name_is_located_with_did_you_mean():
    e = fails("1 + widht * 2", {"width": 8, "depth": 2})
    assert e.code == "E0203" and e.message == "unknown name 'widht' in expression"
    assert (e.span.line, e.span.col, e.span.end_col) == (7, 24, 29)       # under `widht`
    assert "did you mean 'width'" in e.hint


def test_unknown_name_lists_the_names_in_scope():
    e = fails("zzz", {"b": 1, "a": 2})
    assert e.hint == "names in scope: a, b"
    assert fails("zzz", {}).hint == "no names are in scope here"


def test_function_name_without_a_call():
    e = fails("max")
    assert e.code == "E0202" and "is a function" in e.message


def test_malformed_expression_points_into_it():
    e = fails("8 *")
    assert e.code == "E0201" and e.message.startswith("malformed expression '8 *'")
    assert e.span.line == 7 and 20 <= e.span.col <= 23
    e = fails("  (1 + ")
    assert e.code == "E0201" and e.span.col >= 22


def test_leading_spaces_keep_columns():
    e = fails("   nope")
    assert (e.span.col, e.span.end_col) == (23, 27)


@pytest.mark.parametrize("text,what", [
    ("w[3]", "index 3 out of range for a list of 3"),
    ("w[-4]", "index -4 out of range"),
    ("w['a']", "index must be an int"),
    ("w[True]", "index must be an int"),
    ("x[0]", "cannot index a int"),
    ("1 / 0", "division by zero"),
    ("7 // 0", "division by zero"),
    ("7 % 0", "division by zero"),
    ("[1] < 'a'", "cannot evaluate"),
    ("'a' + 1", "cannot evaluate"),
    ("min()", "cannot evaluate"),
    ("int('x')", "cannot evaluate"),
    ("int(1e308 * 10)", "cannot evaluate"),
    ("True / 2", "cannot evaluate"),
])
def test_evaluation_errors(text, what):
    e = fails(text, {"w": [1, 2, 3], "x": 5})
    assert e.code == "E0202" and what in e.message and e.span.line == 7


@pytest.mark.parametrize("text", [
    "__import__('os')", "__import__('os').system('true')", "open('/etc/passwd')", "eval('1')",
    "exec('x = 1')", "getattr(x, 'real')", "globals()", "type(x)", "print(1)", "compile('1', 'f', 'eval')",
    "x.real", "().__class__", "w.__class__.__bases__", "(1).__class__",
    "lambda: 1", "(lambda: 1)()", "[i for i in w]", "{i for i in w}", "{1: 2}", "{1, 2}", "(i for i in w)",
    "w[0:1]", "w[::2]", "x @ x", "~x", "x & 1", "x | 1", "x ^ 1", "x << 1", "x >> 1",
    "x is None", "1 in w", "1 not in w", "(y := 1)", "f'{x}'", "*w", "b'x'", "1j", "...",
    "max(w, key=abs)", "w.append(1)",
    # in a branch that is never taken: refused all the same (checked before evaluating)
    "x if x else y.z", "1 if true else __import__('os')", "false and open('f')", "true or w[0:1]",
])
def test_everything_else_is_rejected(text):
    e = fails(text, {"x": 1, "w": [1, 2]})
    assert e.code in ("E0201", "E0202", "E0203")


def test_forbidden_call_names_the_function_and_the_allowed_ones():
    e = fails("__import__('os')")
    assert e.message == "function '__import__' is not allowed" and "min" in e.hint
    assert (e.span.col, e.span.end_col) == (20, 30)
    e = fails("x.real", {"x": 1})
    assert e.message == "attribute access (a.b) is not allowed in an expression"
    e = fails("min(1, 2).real")
    assert e.message == "attribute access (a.b) is not allowed in an expression"
    e = fails("abs(1)(2)")
    assert e.message.startswith("calling a method or a computed function is not allowed") and "min" in e.hint


def test_eval_and_exec_are_never_used():
    """Only ast.parse compiles (to an AST, never to code); nothing is eval'd or exec'd."""
    import ast
    real = {n: getattr(builtins, n) for n in ("eval", "exec", "compile")}
    calls = []

    def trap(name):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} called")
        return f

    def compile_ast_only(src, filename, mode, flags=0, *a, **k):
        if not flags & ast.PyCF_ONLY_AST:
            calls.append("compile")
            raise AssertionError("compile to code called")
        return real["compile"](src, filename, mode, flags, *a, **k)

    builtins.eval, builtins.exec, builtins.compile = trap("eval"), trap("exec"), compile_ast_only
    try:
        v1 = evaluate("max(w) * 2 if n > 1 else 0", {"w": [1, 4], "n": 2})
        v2 = substitute("c${n}", {"n": 3})
    finally:
        for n, f in real.items():
            setattr(builtins, n, f)
    assert (v1, v2, calls) == (8, "c3", [])


# -- bounded sizes -------------------------------------------------------------------
def test_bounded_exponents():
    assert evaluate("2 ** 64", {}) == 2 ** 64
    assert evaluate("(2 ** 64) ** 64", {}) == 2 ** 4096
    e = fails("2 ** 65")
    assert "exponent 65 is out of bounds" in e.message
    assert "out of bounds" in fails("2 ** 1000").message
    assert "out of bounds" in fails("2 ** -65").message
    assert "base of ** is too large" in fails("(2 ** 64 + 1) ** 2").message


def test_results_are_bounded():
    big = "(2 ** 64) ** 64"                                           # 4,097 bits: allowed
    assert "too large" in fails(f"{big} * {big} * {big}").message  # > MAX_INT_BITS
    assert "too long" in fails("'a' * 2 ** 62").message             # checked before repeating
    assert "too long" in fails("[0] * 10 ** 8").message
    assert "too long" in fails("[0] * 60000 + [0] * 60000").message
    assert evaluate("len([0] * 1000)", {}) == 1000
    assert E.MAX_LEN >= 10_000 and E.MAX_INT_BITS >= 4097


def test_deep_nesting_is_an_error_not_a_crash():
    e = fails("-" * 50_000 + "1")
    assert e.code == "E0201" and "nested too deeply" in e.message
    e = fails("(" * 300 + "1" + ")" * 300)
    assert e.code == "E0201"


# -- substitute ----------------------------------------------------------------------
def test_whole_string_expression_keeps_its_type():
    s = {"w": [1, 2], "n": 3, "f": Fraction(1, 2), "b": False}
    assert substitute("${w}", s) == [1, 2]
    assert substitute("${n * 2}", s) == 6
    assert substitute("${f}", s) == Fraction(1, 2)
    assert substitute("${b}", s) is False
    assert substitute("${ n }", s) == 3


def test_embedded_expressions_are_formatted():
    s = {"i": 0, "n": 3}
    assert substitute("conv${i + 1}", s) == "conv1"
    assert substitute("${i}x${n}", s) == "0x3"
    assert substitute("a ${n / 2} b", s) == "a 3/2 b"


def test_embedded_expression_errors_are_located():
    with pytest.raises(ExpressionError) as ei:
        substitute("ab${nope}", {}, Span("f.yaml", 2, 10))
    assert ei.value.code == "E0203" and (ei.value.span.line, ei.value.span.col) == (2, 14)
    with pytest.raises(ExpressionError) as ei:
        substitute("${nope}", {}, Span("f.yaml", 2, 10))
    assert (ei.value.span.col, ei.value.span.end_col) == (12, 16)


def test_unterminated_expression():
    with pytest.raises(ExpressionError) as ei:
        substitute("a${b", {"b": 1}, SPAN)
    assert ei.value.code == "E0201" and "unterminated" in ei.value.message


def test_has_expr():
    assert has_expr("${a}") and has_expr("x${a}y")
    assert not has_expr("$a") and not has_expr("{a}") and not has_expr(3) and not has_expr(None)


# -- math functions: exact where the answer is exact (checked against math / the definitions)
@pytest.mark.parametrize("text, want", [
    ("sqrt(64)", 8), ("sqrt(9/4)", Fraction(3, 2)), ("log2(1024)", 10), ("log2(1/8)", -3),
    ("log(1000, 10)", 3), ("log(1)", 0), ("exp(0)", 1), ("round(5/2)", 2), ("round(7/2)", 4),
    ("round(2.5)", 2), ("int(round(1.5 * 64 / 8) * 8)", 96),
    # a base 1/b: (1/2)**-3 == 8, (1/10)**2 == 1/100 (log(8, 1/2) was the float -3.0)
    ("log(8, 1/2)", -3), ("log(1/100, 1/10)", 2), ("log(1, 1/3)", 0),
])
def test_math_functions_exact(text, want):
    got = evaluate(text, {})
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("text, want", [
    ("sqrt(2)", math.sqrt(2)), ("log(10)", math.log(10)), ("log2(48)", math.log2(48)), ("exp(1)", math.e),
    ("round(3.14159, 2)", 3.14),
])
def test_math_functions_inexact_are_floats(text, want):
    got = evaluate(text, {})
    assert isinstance(got, float) and got == pytest.approx(want, rel=1e-15)


def test_a_wrong_number_of_arguments_names_the_function_as_written():
    for text, name in (("round(1, 2, 3)", "round()"), ("sqrt()", "sqrt()"), ("log(8, 2, 3)", "log()")):
        with pytest.raises(ExpressionError) as ei:
            evaluate(text, {})
        assert name in ei.value.message and "_" not in ei.value.message.split("(")[0], ei.value.message


@pytest.mark.parametrize("text, words", [
    ("sqrt(-1)", "negative"), ("log(0)", "not defined"), ("log(8, 1)", "base 1"), ("exp(100000)", "beyond"),
])
def test_math_function_domain_errors(text, words):
    with pytest.raises(ExpressionError, match=words):
        evaluate(text, {})


@pytest.mark.parametrize("text, want", [
    # round(q, n) is the multiple of 10**-n nearest q (ties to even): an int rounds to itself at
    # n >= 0, and to 0 once 10**-n / 2 exceeds it; a terminating decimal rounds to itself once n
    # covers its digits. Python computes 10**|n| first, so these took minutes (fuzz, issue 10).
    ("round(1, 10 ** 9)", 1), ("round(3, -10 ** 9)", 0), ("round(-7, -10 ** 8)", 0),
    ("round(1 / 2, 10 ** 9)", Fraction(1, 2)), ("round(-3 / 8, 2 ** 62)", Fraction(-3, 8)),
    ("round(10 ** 64, -10 ** 9)", 0), ("round(1.5, 10 ** 9)", 1.5), ("round(1.5, -10 ** 9)", 0.0),
])
def test_round_with_a_huge_ndigits_is_immediate(text, want):
    import time
    t = time.perf_counter()
    got = evaluate(text, {})
    assert got == want and type(got) is type(want)
    assert time.perf_counter() - t < 1.0


def test_round_with_a_huge_ndigits_of_a_non_terminating_fraction_is_too_large():
    with pytest.raises(ExpressionError, match="too large") as ei:
        evaluate("round(1 / 3, 10 ** 9)", {})
    assert ei.value.code == "E0204"


@pytest.mark.parametrize("x", [Fraction(1, 3), Fraction(-2, 7), Fraction(5, 2 ** 40), Fraction(10 ** 40 + 1, 4),
                               7, -10 ** 30, 0])
@pytest.mark.parametrize("n", [-10 ** 4 - 7, -45, -3, 0, 1, 2, 17, 60, 10 ** 4 + 3, 12_000])
def test_round_agrees_with_pythons_fraction_round(x, n):
    """Python's own Fraction/int round is the truth wherever it finishes."""
    want = round(Fraction(x), n)
    try:
        got = evaluate(f"round(x, {n})", {"x": x})
    except ExpressionError as e:        # only where the exact answer passes the integer bound
        assert e.code == "E0204" and max(want.numerator.bit_length(), want.denominator.bit_length()) > 8192
        return
    assert got == want


def test_a_non_integer_width_is_a_located_error_not_truncated(tmp_path):
    import archviz
    from archviz.errors import ArchvizError
    p = tmp_path / "s.yaml"
    p.write_text("archviz: 1\nname: s\ninputs: {x: {shape: [3, 8, 8]}}\nnodes:\n"
                 "  - {id: c, op: conv2d, out: '${sqrt(2) * 10}', kernel: 3}\n")
    with pytest.raises(ArchvizError) as ei:
        archviz.load(str(p))
    assert ei.value.span is not None and ei.value.span.line == 5 and "integer" in str(ei.value)
