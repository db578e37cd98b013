"""One formula, printed from itself.

A count is built once, from small terms, and the same object gives its exact value, the
symbolic formula and the formula with the numbers put in — so `explain` cannot drift from
the number it explains:

    >>> t = V("N", 1) * V("C_out", 64) * Fold(V("C_in", 6) / V("groups", 2)) * V("k", 3)
    >>> t.value(), t.sym(), t.num()
    (576, 'N · C_out · (C_in / groups) · k', '1 · 64 · 3 · 3')

Terms: :class:`V` (a named quantity), :class:`C` (a constant), products, sums, differences
and exact quotients by the operators, :class:`Fold` (shown by its value once the numbers
are put in), :class:`Numel` (an element count, '2·8·5·5'), :class:`Tag` (a term with a
gloss: 'G·h·x (W_ih x_t)'); :func:`line` makes an explain Line and :class:`Parts` the lines of
a count made of named parts and their total.  Values are exact: ints, or Fractions where
a quotient is not whole.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any

ATOM, PRODUCT, SUM = 3, 2, 1


@dataclass(frozen=True)
class Line:
    """One explained number: what, the formula, the formula with numbers, the value."""
    what: str
    formula: str
    numbers: str
    value: Any


def _exact(v):
    return int(v) if isinstance(v, Fraction) and v.denominator == 1 else v


def _show(v, commas: bool = False) -> str:
    """A value as printed in a numbers line: '1024' (or '1,024'), a fraction as '(1/2)'."""
    if isinstance(v, Fraction):
        return f"({v.numerator}/{v.denominator})"
    return f"{v:,}" if commas and isinstance(v, int) else str(v)


class Term:
    prec = ATOM

    def value(self):
        raise NotImplementedError

    def sym(self) -> str:
        raise NotImplementedError

    def num(self) -> str:
        raise NotImplementedError

    def __mul__(self, o):
        return Prod(self, _t(o))

    def __rmul__(self, o):
        return Prod(_t(o), self)

    def __add__(self, o):
        return Sum(self, _t(o))

    def __radd__(self, o):
        return Sum(_t(o), self)

    def __sub__(self, o):
        return Diff(self, _t(o))

    def __truediv__(self, o):
        return Div(self, _t(o))

    def __int__(self):
        v = self.value()
        if isinstance(v, Fraction) and v.denominator != 1:
            raise ValueError(f"{self.sym()} = {v} is not whole")
        return int(v)


def _t(x) -> Term:
    return x if isinstance(x, Term) else C(x)


def _wrap(t: Term, text: str, prec: int) -> str:
    return f"({text})" if t.prec < prec else text


class V(Term):
    """A named quantity: 'C_out' in the formula, '64' with the numbers put in."""

    def __init__(self, name: str, value):
        self.name, self.v = name, _exact(value)

    def value(self):
        return self.v

    def sym(self):
        return self.name

    def num(self):
        return _show(self.v)


class C(V):
    """A constant: printed the same in both lines."""

    def __init__(self, value):
        super().__init__(str(_exact(value)), value)


class Prod(Term):
    prec = PRODUCT

    def __init__(self, *factors, sep: str = " · "):
        self.factors = []
        for f in factors:      # flatten nested products with the same separator
            self.factors += f.factors if isinstance(f, Prod) and f.sep == sep else [f]
        self.sep = sep

    def value(self):
        return _exact(prod(f.value() for f in self.factors))

    def sym(self):
        return self.sep.join(_wrap(f, f.sym(), PRODUCT) for f in self.factors)

    def num(self):
        return self.sep.join(_wrap(f, f.num(), PRODUCT) for f in self.factors)


def tight(*factors) -> Prod:
    """A product written without spaces: 'G·h·x'."""
    return Prod(*map(_t, factors), sep="·")


class Sum(Term):
    prec = SUM

    def __init__(self, *parts):
        self.parts = []
        for p in parts:
            self.parts += p.parts if isinstance(p, Sum) else [p]

    def value(self):
        return _exact(sum(p.value() for p in self.parts))

    def sym(self):
        return " + ".join(p.sym() for p in self.parts)

    def num(self):
        return " + ".join(p.num() for p in self.parts)


class Diff(Term):
    prec = SUM

    def __init__(self, a: Term, b: Term):
        self.a, self.b = a, b

    def value(self):
        return _exact(self.a.value() - self.b.value())

    def sym(self):
        return f"{self.a.sym()} − {_wrap(self.b, self.b.sym(), PRODUCT)}"

    def num(self):
        return f"{self.a.num()} − {_wrap(self.b, self.b.num(), PRODUCT)}"


class Div(Term):
    """An exact quotient (a Fraction unless it is whole)."""
    prec = PRODUCT

    def __init__(self, a: Term, b: Term):
        self.a, self.b = a, b

    def value(self):
        return _exact(Fraction(self.a.value()) / Fraction(self.b.value()))

    def sym(self):
        return f"{_wrap(self.a, self.a.sym(), PRODUCT)} / {_wrap(self.b, self.b.sym(), ATOM)}"

    def num(self):
        return f"{_wrap(self.a, self.a.num(), PRODUCT)} / {_wrap(self.b, self.b.num(), ATOM)}"


class Fold(Term):
    """`t`, shown by its formula (or `name`) and, with the numbers put in, by its value
    (with thousands separators when `result`: a worked-out intermediate)."""

    def __init__(self, t: Term, name: str | None = None, result: bool = False):
        self.t, self.name, self.result = t, name, result

    def value(self):
        return self.t.value()

    def sym(self):
        return self.name if self.name is not None else _wrap(self.t, self.t.sym(), ATOM)

    def num(self):
        return _show(self.value(), commas=self.result)


class Numel(Term):
    """The elements of a tensor: 'numel' (or `name`), '2·8·5·5' with the numbers put in."""

    def __init__(self, shape, name: str = "numel"):
        self.shape, self.name = tuple(shape), name

    def value(self):
        return prod(self.shape)

    def sym(self):
        return self.name

    def num(self):
        return "·".join(map(str, self.shape)) if len(self.shape) > 1 else str(self.value())


class Tag(Term):
    """`t` with a gloss after it in the formula: 'G·h·x (W_ih x_t)'."""

    def __init__(self, t: Term, gloss: str):
        self.t, self.gloss = t, gloss
        self.prec = t.prec

    def value(self):
        return self.t.value()

    def sym(self):
        return f"{self.t.sym()} ({self.gloss})"

    def num(self):
        return self.t.num()


def _total(v) -> str:
    return _show(v, commas=True)


def line(what: str, t: Term, note: str = "", stages: tuple = ()) -> Line:
    """The Line of one count: its formula (+ `note`), the numbers put in, then each of
    `stages` (the same count partly worked out), then the value."""
    v = t.value()
    steps = [t.num()] + [s.num() for s in stages]
    steps = [s for s in steps if s != str(v)]
    return Line(what, t.sym() + note, " = ".join(steps + [_total(v)]), v)


class Parts:
    """A count made of named parts: one line per part, then the total.  A part is
    (name, term) or (name, term, note, stages) as for :func:`line`; `total` names the sum
    in the total's formula (default: the parts' names joined by +)."""

    def __init__(self, parts: list, note: str = "", what: str = "MACs", total: str | None = None):
        self.parts = [tuple(p) + ("", ())[len(p) - 2:] for p in parts]
        self.note, self.what, self.total = note, what, total

    def value(self):
        return _exact(sum(t.value() for _, t, *_ in self.parts))

    def lines(self) -> list:
        out = [line(f"{self.what}: {name}", t, note, stages) for name, t, note, stages in self.parts]
        v = self.value()
        vals = [_total(t.value()) for _, t, *_ in self.parts]
        sym = self.total if self.total is not None else " + ".join(n for n, *_ in self.parts)
        out.append(Line(self.what, sym + self.note, (" + ".join(vals) + " = " if len(vals) > 1 else "") + _total(v), v))
        return out
