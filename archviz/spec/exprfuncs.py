"""The functions a `${...}` expression may call: `min max abs floor ceil round int len sqrt
log log2 exp`.  `sqrt`, `log` and `log2` are exact where the answer is (sqrt(64) is the int 8,
log2(1/8) is -3, log(1000, 10) is 3) and a float otherwise; `round` rounds half to even, as
Python's.  A function raises ValueError where its value is not defined; the walker turns that
into a located error."""
from __future__ import annotations

import math
from fractions import Fraction


def _floor(x):
    return math.floor(x)


def _ceil(x):
    return math.ceil(x)


def _exact_root(q):
    """The exact square root of a non-negative int or Fraction, or None."""
    q = Fraction(q)
    a, b = math.isqrt(q.numerator), math.isqrt(q.denominator)
    return Fraction(a, b) if a * a == q.numerator and b * b == q.denominator else None


def _sqrt(x):
    if x < 0:
        raise ValueError(f"sqrt of a negative number ({x})")
    if isinstance(x, (int, Fraction)):
        r = _exact_root(x)
        if r is not None:
            return r
    return math.sqrt(x)


def _exact_log(x, base: int):
    """k with base**k == x exactly (x an int or a Fraction, base an int >= 2), or None."""
    x = Fraction(x)
    if x <= 0:
        return None
    sign, x = (1, x) if x >= 1 else (-1, 1 / x)
    if x.denominator != 1:
        return None
    n, k = x.numerator, 0
    while n % base == 0:
        n //= base
        k += 1
    return sign * k if n == 1 else None


def _log(x, base=None):
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ValueError(f"log of {x}" + (f" in base {base}" if base is not None else "") + " is not defined")
    if base is not None and isinstance(x, (int, Fraction)) and isinstance(base, (int, Fraction)):
        b = Fraction(base)
        # log(x, b) for an int b >= 2; log(x, 1/b) = -log(x, b)
        k = _exact_log(x, b.numerator) if b.denominator == 1 else \
            (None if b.numerator != 1 else _exact_log(1 / Fraction(x), b.denominator))
        if k is not None:
            return k
    if x == 1:
        return 0
    return math.log(x) if base is None else math.log(x, base)


def _log2(x):
    return _log(x, 2)


def _exp(x):
    if x == 0:
        return 1
    try:
        return math.exp(x)
    except OverflowError:
        raise ValueError(f"exp({x}) is beyond a float's range") from None


# Python's round(q, n) of an int or a Fraction computes 10**|n| first: round(1, 10**9) never
# ends. An expression's ints and Fractions have at most MAX_INT_BITS (8,192) bits, or the
# 4,300 digits of a literal, so |q| < 10**4300 and its denominator is below 2**8192. Hence
# n < -_ROUND_DIGITS rounds q to 0, as n = -_ROUND_DIGITS does; and for n > _ROUND_DIGITS,
# q is its own rounding if its decimal digits end (they end within 8,192 places), else the
# exact answer's denominator passes 2**8192 at both n -- the same answer, or the same error.
_ROUND_DIGITS = 10_000


def _round(x, ndigits=None):
    if ndigits is None:
        return round(x)
    if isinstance(x, (int, Fraction)):
        if isinstance(ndigits, int):
            ndigits = max(-_ROUND_DIGITS, min(_ROUND_DIGITS, ndigits))
        return round(Fraction(x), ndigits)
    return round(x, ndigits)


FUNCTIONS = {"min": min, "max": max, "abs": abs, "floor": _floor, "ceil": _ceil, "round": _round,
             "int": int, "len": len, "sqrt": _sqrt, "log": _log, "log2": _log2, "exp": _exp}

for _name, _fn in FUNCTIONS.items():     # "round() takes ... arguments", not "_round() ..."
    if _fn.__name__.startswith("_"):
        _fn.__qualname__ = _name
