"""Safe `${...}` expressions: a whitelisting walker over Python's `ast`. Never `eval`.

Allowed: int/float/str/bool/None literals, names bound in the scope, `+ - * / // % **`,
unary `- + not`, comparisons (chains too), `and`/`or`, `x if c else y`, list/tuple
literals, indexing (`widths[s]`, negative indices too), and the calls `min`, `max`,
`abs`, `floor`, `ceil`, `round`, `int`, `len`, `sqrt`, `log`, `log2`, `exp`, `range`-free.
`shape(x)` reads the shape of node `x` (without the batch axis) while a spec is compiled:
the compiler lends the reader (:func:`reading_shapes`); elsewhere it is an error.

`sqrt`, `log`, `log2` are exact where the answer is (sqrt(64) is the int 8, log2(1/8) is −3,
log(1000, 10) is 3) and a float otherwise; `round` rounds half to even, as Python's.

Exactness: `/` on integers gives a :class:`fractions.Fraction` (an int when it divides
evenly), so `${c / 2}` with c = 64 is the int 32, never 32.0.  Sizes are bounded so a
spec cannot ask for a number with a billion digits or a list of a billion items:
exponents (|e| <= 64, |base| <= 2**64), every integer result (at most MAX_INT_BITS bits,
so it can always be printed), every string or list result (at most MAX_LEN items, counted
through nested lists, so `[[0] * 1000] * 1000` holds 10**6; checked before `*` repeats
or `%` formats a string, so nothing too large is ever allocated) and the nesting of the
expression itself. A bound that is hit is an error (E0204) that names it.

A name bound to FAILED (a param whose own expression failed, its error reported) makes
the expression fail with an error marked `follows`: it is not shown, so one mistake gives
one error.
"""
from __future__ import annotations

import ast
import contextvars
import operator
import re
import warnings
from contextlib import contextmanager
from functools import lru_cache
from fractions import Fraction

from archviz.codes import E
from archviz.errors import ExpressionError, Span, did_you_mean, short_repr
from archviz.spec.exprfuncs import FUNCTIONS

MAX_EXPONENT = 64
MAX_INT_BITS = 8192        # about 2,500 decimal digits; far below int->str's 4,300-digit limit
MAX_LEN = 100_000          # items of a string or list an expression may build
# How the syntax the walker refuses is named to a user (ast class names mean little to them)
_SYNTAX_NAMES = {
    "Attribute": "attribute access (a.b)", "ListComp": "a list comprehension", "SetComp": "a set comprehension",
    "DictComp": "a dict comprehension", "GeneratorExp": "a generator expression", "Lambda": "a lambda",
    "Dict": "a dict", "Set": "a set", "Starred": "unpacking (*x)", "NamedExpr": "an assignment (:=)",
    "JoinedStr": "an f-string", "Await": "await", "Yield": "yield", "YieldFrom": "yield",
}
# shape(NAME): a node's shape, read through the compiler (see reading_shapes)
READERS = ("shape",)
_ALLOWED_CALLS = tuple(FUNCTIONS) + READERS
_reader: contextvars.ContextVar = contextvars.ContextVar("archviz_shape_reader", default=None)
_WHOLE = re.compile(r"^\$\{(.*)\}$", re.S)
_PART = re.compile(r"\$\{(.*?)\}", re.S)


class _Failed:
    """The value of a name whose own evaluation failed (that error is reported)."""

    def __repr__(self):
        return "<failed>"


FAILED = _Failed()


class _Bound(ValueError):
    """A size bound was hit (E0204)."""


def _weight(v, limit: int = MAX_LEN, memo: dict | None = None) -> int:
    """The size of a value as it would be printed, in items: a string counts its length, a
    long integer one per 64 bits, a list the weights of its items (shared items each time
    they occur, as printing would). Counting stops once past `limit`, so it is fast for any
    value (`[[0] * 10**5] * 10**5` is refused after 10**5 steps, not 10**10)."""
    if isinstance(v, str):
        return max(1, len(v))
    if isinstance(v, bool) or v is None:
        return 1
    if isinstance(v, int):
        return 1 + v.bit_length() // 64
    if isinstance(v, Fraction):
        return 1 + (v.numerator.bit_length() + v.denominator.bit_length()) // 64
    if isinstance(v, (list, tuple, dict)):
        memo = {} if memo is None else memo
        got = memo.get(id(v))
        if got is not None and got[0] is v:
            return got[1]
        total = 0
        for x in ([*v.keys(), *v.values()] if isinstance(v, dict) else v):
            total += _weight(x, limit, memo)
            if total > limit:
                break
        total = max(1, total)
        memo[id(v)] = (v, total)
        return total
    return 1


def _too_long(what: str) -> _Bound:
    return _Bound(f"{what} is too long (at most {MAX_LEN:,} items)")


def _norm(v):
    if isinstance(v, Fraction) and v.denominator == 1:
        return int(v.numerator)
    return v


def _div(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        raise TypeError("cannot divide booleans")
    if isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction)):
        return _norm(Fraction(a) / Fraction(b))
    return a / b


def _pow(a, b):
    if not isinstance(b, (int, float, Fraction)):
        raise TypeError(f"an exponent is a number, not {type(b).__name__}")
    if abs(b) > MAX_EXPONENT:
        raise _Bound(f"exponent {short_repr(b)} is out of bounds (|exponent| <= {MAX_EXPONENT})")
    if isinstance(a, (int, float, Fraction)) and abs(a) > 2 ** 64:
        raise _Bound("base of ** is too large (|base| <= 2**64)")
    if isinstance(b, int) and b < 0 and isinstance(a, (int, Fraction)):
        return _norm(Fraction(a) ** b)
    return a ** b


def _mul(a, b, memo=None):
    """a * b; repeating a string or a list is checked before it is done."""
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and not isinstance(n, bool) and n > 0:
            w = _weight(seq, MAX_LEN, memo)
            if w * n > MAX_LEN:
                raise _too_long(f"repeating a {type(seq).__name__} of {w:,} item(s) {n:,} times")
    return a * b


# a printf conversion: %[(key)][flags][width][.precision][length]type
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)?", re.S)


def _mod(a, b, memo=None):
    """a % b; `text % values` (printf formatting) is checked before it is done: its widths
    and precisions are literal numbers, and the result cannot pass MAX_LEN items."""
    if not isinstance(a, str):
        return operator.mod(a, b)
    size = len(a) + _weight(b, MAX_LEN, memo)
    for m in _CONVERSION.finditer(a):
        for n in (m.group(1), m.group(2)):
            if n == "*":
                raise _Bound("a '*' width or precision is not allowed in string formatting; write the number")
            if n:
                if len(n) > 7 or int(n) > MAX_LEN:
                    raise _too_long(f"formatting '%{n}...' (a width or precision of {short_repr(int(n))})")
                size += int(n)
        if m.group(3) and m.group(3) in "eEfFgG":
            size += 310         # a float's digits (%f of 1e308)
    if size > MAX_LEN:
        raise _too_long("the formatted string")
    return a % b


def _check_size(v, memo=None):
    """A result within the bounds (see the module docstring), else _Bound."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > MAX_INT_BITS:
        raise _Bound(f"the result is too large (more than {MAX_INT_BITS} bits)")
    if isinstance(v, Fraction) and max(v.numerator.bit_length(), v.denominator.bit_length()) > MAX_INT_BITS:
        raise _Bound(f"the result is too large (more than {MAX_INT_BITS} bits)")
    if isinstance(v, (str, list, tuple)) and _weight(v, MAX_LEN, memo) > MAX_LEN:
        raise _too_long("the result")
    return v


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: _mul,
           ast.Div: _div, ast.FloorDiv: operator.floordiv, ast.Mod: _mod, ast.Pow: _pow}
_SIZED = (_mul, _mod)       # the operations that take the walker's weight memo
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge}


@lru_cache(maxsize=4096)
def _checked(stripped: str):
    """The parsed tree of an expression that passed the whitelist check, or None where it
    fails (then `evaluate` parses it again to report the error at its place). A repeat or
    a block evaluates the same text once per copy: parsing and checking it once is most of
    the saving."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(stripped, mode="eval")
        _Walker({}, None, 0).check(tree.body)       # the check reads the tree only, no scope
        return tree
    except (SyntaxError, ValueError, MemoryError, RecursionError, ExpressionError):
        return None


def evaluate(text: str, scope: dict, span: Span | None = None):
    """Evaluate one expression (without the `${ }`). `span` points at its first char."""
    lead = len(text) - len(text.lstrip())
    tree = _checked(text.strip()) if len(text) <= 1000 else None
    if tree is not None:
        try:
            return _Walker(scope, span, lead).visit(tree.body)
        except RecursionError:
            raise _too_deep(text, span, lead) from None
    try:
        with warnings.catch_warnings():     # "invalid decimal literal" and the like: not for a spec's user
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1) - 1 + lead
        raise ExpressionError(f"malformed expression '{_short(text.strip())}': {e.msg}",
                              span.shifted(col, 1) if span else None, code=E.EXPR_SYNTAX,
                              hint="an expression is a small piece of Python, e.g. ${2 * c}, ${widths[i]}, "
                                   "${2 if i == 0 else 1}") from None
    except (MemoryError, RecursionError):   # the parser's own nesting limit
        raise _too_deep(text, span, lead) from None
    try:
        w = _Walker(scope, span, lead)
        w.check(tree.body)      # the whole tree, also the branches that will not be evaluated
        return w.visit(tree.body)
    except RecursionError:
        raise _too_deep(text, span, lead) from None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _too_deep(text, span, lead) -> ExpressionError:
    return ExpressionError(f"expression '{_short(text.strip())}' is nested too deeply",
                           span.shifted(lead, 1) if span else None, code=E.EXPR_SYNTAX)


class _Walker:
    def __init__(self, scope, span, lead):
        self.scope, self.span, self.lead = scope, span, lead
        self.memo: dict = {}        # id -> (value, weight) of the lists met in this evaluation

    def err(self, node, msg, code=E.BAD_EXPRESSION, hint=None):
        sp = None
        if self.span is not None:
            c = getattr(node, "col_offset", 0) + self.lead
            e = getattr(node, "end_col_offset", None)
            sp = self.span.shifted(c, (e + self.lead - c) if e is not None else 1)
        return ExpressionError(msg, sp, code=code, hint=hint)

    def check(self, root):
        """Refuse a forbidden construct anywhere in the tree, before evaluating anything, so an
        expression does not pass only because its forbidden part sits in an untaken branch."""
        for node in ast.walk(root):
            if isinstance(node, (ast.operator, ast.cmpop, ast.unaryop, ast.boolop, ast.expr_context)):
                continue        # checked with the node that holds them
            if getattr(self, "v_" + type(node).__name__, None) is None:
                raise self._not_allowed(node)
            if isinstance(node, ast.Constant):
                self.v_Constant(node)
            elif isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
                raise self.err(node, f"operator {type(node.op).__name__} is not allowed")
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
                raise self.err(node, "operator ~ is not allowed")
            elif isinstance(node, ast.Compare) and any(type(o) not in _CMP for o in node.ops):
                bad = next(o for o in node.ops if type(o) not in _CMP)
                raise self.err(node, f"comparison {type(bad).__name__} is not allowed")
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
                raise self.err(node, "slices are not allowed; index one element")
            elif isinstance(node, ast.Call):
                self._check_call(node)

    def _not_allowed(self, node):
        what = _SYNTAX_NAMES.get(type(node).__name__, f"'{type(node).__name__}'")
        return self.err(node, f"{what} is not allowed in an expression",
                        hint="expressions allow arithmetic, comparisons, if-else, "
                             "indexing and " + "/".join(_ALLOWED_CALLS))

    def _check_call(self, n):
        if not isinstance(n.func, ast.Name):    # obj.method(...), f(x)(y), ...: only plain names are called
            raise self.err(n.func, "calling a method or a computed function is not allowed: only a function named directly",
                           hint="allowed functions: " + ", ".join(_ALLOWED_CALLS))
        if n.func.id not in _ALLOWED_CALLS:
            raise self.err(n.func, f"function '{n.func.id}' is not allowed",
                           hint="allowed functions: " + ", ".join(_ALLOWED_CALLS))
        if n.keywords:
            raise self.err(n, "keyword arguments are not allowed")
        if n.func.id in READERS and (len(n.args) != 1 or not (
                isinstance(n.args[0], ast.Name) or
                (isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)))):
            raise self.err(n, f"{n.func.id}() takes one node: a name, shape(x), or a reference in quotes, "
                              "shape('enc[2].skip')", hint="index the result for one axis: ${shape(x)[0]}")

    def visit(self, node):
        meth = getattr(self, "v_" + type(node).__name__, None)
        if meth is None:
            raise self._not_allowed(node)
        return meth(node)

    def v_Constant(self, n):
        if isinstance(n.value, (int, float, str, bool)) or n.value is None:
            if isinstance(n.value, int) and n.value.bit_length() > MAX_INT_BITS:
                raise self.err(n, f"the integer literal is too large (more than {MAX_INT_BITS} bits)",
                               code=E.EXPR_TOO_LARGE)
            return n.value
        raise self.err(n, f"literal {short_repr(n.value)} is not allowed")

    def v_Name(self, n):
        if n.id in self.scope:
            v = self.scope[n.id]
            if v is FAILED:     # its own error is reported: this one only follows from it
                e = self.err(n, f"'{n.id}' has no value (its definition failed)")
                e.follows = True
                raise e
            return v
        if n.id in ("true", "True"):
            return True
        if n.id in ("false", "False"):
            return False
        if n.id in _ALLOWED_CALLS:
            raise self.err(n, f"'{n.id}' is a function; call it: {n.id}(...)")
        raise self.err(n, f"unknown name '{n.id}' in expression", code=E.UNKNOWN_NAME,
                       hint=did_you_mean(n.id, self.scope) or
                       ("names in scope: " + ", ".join(sorted(map(str, self.scope))) if self.scope
                        else "no names are in scope here"))

    def _apply(self, n, fn, *args):
        try:
            v = fn(*args, self.memo) if fn in _SIZED else fn(*args)
            return _check_size(_norm(v), self.memo)
        except ZeroDivisionError:
            raise self.err(n, "division by zero") from None
        except _Bound as e:
            raise self.err(n, f"cannot evaluate: {e}", code=E.EXPR_TOO_LARGE) from None
        except (TypeError, ValueError, OverflowError) as e:
            raise self.err(n, f"cannot evaluate: {e}") from None

    def v_BinOp(self, n):
        op = _BINOPS.get(type(n.op))
        if op is None:
            raise self.err(n, f"operator {type(n.op).__name__} is not allowed")
        return self._apply(n, op, self.visit(n.left), self.visit(n.right))

    def v_UnaryOp(self, n):
        v = self.visit(n.operand)
        if isinstance(n.op, ast.USub):
            return self._apply(n, operator.neg, v)
        if isinstance(n.op, ast.UAdd):
            return self._apply(n, operator.pos, v)
        if isinstance(n.op, ast.Not):
            return not v
        raise self.err(n, "operator ~ is not allowed")

    def v_BoolOp(self, n):
        if isinstance(n.op, ast.And):
            v = True
            for x in n.values:
                v = self.visit(x)
                if not v:
                    return v
            return v
        v = False
        for x in n.values:
            v = self.visit(x)
            if v:
                return v
        return v

    def v_Compare(self, n):
        left = self.visit(n.left)
        for op, right_node in zip(n.ops, n.comparators):
            fn = _CMP.get(type(op))
            if fn is None:
                raise self.err(n, f"comparison {type(op).__name__} is not allowed")
            right = self.visit(right_node)
            if not self._apply(n, fn, left, right):
                return False
            left = right
        return True

    def v_IfExp(self, n):
        return self.visit(n.body) if self.visit(n.test) else self.visit(n.orelse)

    def v_List(self, n):
        v = [self.visit(e) for e in n.elts]
        if _weight(v, MAX_LEN, self.memo) > MAX_LEN:
            raise self.err(n, f"cannot evaluate: {_too_long('the list')}", code=E.EXPR_TOO_LARGE)
        return v

    v_Tuple = v_List

    def v_Subscript(self, n):
        seq = self.visit(n.value)
        if isinstance(n.slice, ast.Slice):
            raise self.err(n, "slices are not allowed; index one element")
        idx = self.visit(n.slice)
        if not isinstance(seq, (list, tuple, str)):
            raise self.err(n.value, f"cannot index a {type(seq).__name__}")
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise self.err(n.slice, f"index must be an int, not {type(idx).__name__}")
        if not -len(seq) <= idx < len(seq):
            raise self.err(n.slice, f"index {idx} out of range for a list of {len(seq)}")
        return seq[idx]

    def v_Call(self, n):
        self._check_call(n)
        if n.func.id in READERS:
            return self._read_shape(n)
        args = [self.visit(a) for a in n.args]
        return self._apply(n, FUNCTIONS[n.func.id], *args)


    def _read_shape(self, n):
        reader = _reader.get()
        arg = n.args[0]
        ref = arg.id if isinstance(arg, ast.Name) else arg.value
        if reader is None:
            raise self.err(n, "shape() reads a node's shape while a spec is compiled: in a node's attributes, "
                              "a block call's params, `when:` or `repeat:`")
        return _check_size(list(reader(ref, self.err(arg, "").span)), self.memo)


@contextmanager
def reading_shapes(reader):
    """Lend `shape(NAME)` a reader inside the block: `reader(ref_text, span)` returns the shape
    (without the batch axis) of the node `ref_text` names, or raises a located error."""
    token = _reader.set(reader)
    try:
        yield
    finally:
        _reader.reset(token)


def has_expr(value) -> bool:
    return isinstance(value, str) and "${" in value


# Every string and list that expressions build, counted over one compile (see
# `expression_budget`): each result is bounded by MAX_LEN, but 100,000 params of 100,000
# characters each fit in a 4 MiB spec and would fill 10 GB.
MAX_TOTAL = 5_000_000
_budget: contextvars.ContextVar = contextvars.ContextVar("archviz_expression_budget", default=None)


@contextmanager
def expression_budget(total: int | None = MAX_TOTAL):
    """Bound the items of all strings and lists built by expressions inside the block
    (None: not counted inside it)."""
    token = _budget.set(None if total is None else [total])
    try:
        yield
    finally:
        _budget.reset(token)


def _charge(v, span: Span | None):
    box = _budget.get()
    if box is None or not isinstance(v, (str, list)):
        return v
    box[0] -= _weight(v)
    if box[0] < 0:
        e = ExpressionError(f"the spec's expressions build too much text and too many list items (more "
                            f"than {MAX_TOTAL:,} items in all)", span, code=E.EXPR_TOO_LARGE,
                            hint="a spec's expressions compute sizes and names; check for long strings")
        e.follows = box[0] + _weight(v) < 0     # reported once: the next ones only follow from it
        raise e
    return v


def substitute(value: str, scope: dict, span: Span | None = None):
    """Evaluate a string holding `${...}`: a whole-string expression keeps its type,
    expressions embedded in text are formatted into the string (at most MAX_LEN characters
    in all)."""
    m = _WHOLE.match(value)
    if m and "${" not in m.group(1):
        return _charge(evaluate(m.group(1), scope, span.shifted(2) if span else None), span)
    room = [MAX_LEN - len(_PART.sub("", value))]

    def rep(mm):
        v = str(evaluate(mm.group(1), scope, span.shifted(mm.start() + 2) if span else None))
        room[0] -= len(v)
        if room[0] < 0:
            raise ExpressionError(f"cannot evaluate: {_too_long('the text')}", span, code=E.EXPR_TOO_LARGE)
        return v
    if value.count("${") != len(_PART.findall(value)):
        raise ExpressionError(f"unterminated '${{' in '{_short(value)}'", span, code=E.EXPR_SYNTAX)
    return _charge(_PART.sub(rep, value), span)
