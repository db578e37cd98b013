"""The index maps of archviz.ops.rfmaps against brute force (their definitions written
out), and the period rule.  Pure Python: no torch."""
from __future__ import annotations

import itertools
from fractions import Fraction
from math import floor

import pytest

from archviz.ops import rfmaps as R


def bbox(s):
    return (min(s), max(s)) if s else None


def test_window_is_the_conv_window():
    # output o of a conv (k, s, p, d) reads o·s − p + m·d for m in [0, k)
    for k, s, p, d in itertools.product(range(1, 5), range(1, 4), range(-2, 3), range(1, 4)):
        m = R.Window(k, s, p, d)
        assert m.k_eff == d * (k - 1) + 1
        for a in range(-3, 5):
            for b in range(a, a + 4):
                want = bbox({o * s - p + t * d for o in range(a, b + 1) for t in range(k)})
                assert m.span(a, b) == want


@pytest.mark.parametrize("k,s,p,d", [(k, s, p, d) for k in range(1, 6) for s in range(1, 4)
                                     for p in range(0, 4) for d in (1, 2, 3)])
def test_transposed_is_the_scatter_of_conv_transpose(k, s, p, d):
    # conv_transpose: input i writes output o = i·s − p + m·d for m in [0, k)
    m = R.Transposed(k, s, p, d)
    for a in range(-4, 12):
        for b in range(a, a + 5):
            want = bbox({i for i in range(-40, 40) for t in range(k) if a <= i * s - p + t * d <= b})
            assert m.span(a, b) == want, (a, b)


@pytest.mark.parametrize("s,d", [(s, d) for s in range(1, 6) for d in range(2, 8)])
def test_dilated_transposed_span_is_exact_and_does_not_scan_the_kernel(s, d):
    """With dilation the first and last input that reach [a, b] are found in at most one period
    d / gcd(s, d) of steps (a kernel of 10⁹ taps scanned for minutes); brute force agrees."""
    for k in (1, 2, 7, 23):
        for p in (0, 1, 5):
            m = R.Transposed(k, s, p, d)
            for a in range(-6, 30, 3):
                for b in (a, a + 1, a + d):
                    # every (o, tap t) with o = i·s − p + t·d in [a, b]: i = (o + p − t·d) / s
                    want = bbox({(o + p - t * d) // s for o in range(a, b + 1) for t in range(k)
                                 if (o + p - t * d) % s == 0})
                    assert m.span(a, b) == want, (k, p, a, b)
    import time
    t0 = time.perf_counter()
    for k, dd in ((10 ** 9, d), (3, 10 ** 9 + d), (10 ** 6, 10 ** 6 + d)):
        m = R.Transposed(k, s, 1, dd)
        for o in range(0, 40):
            got = m.span(o, o)
            if got is not None:             # the ends found are inputs that really reach o
                for i in got:
                    assert (o + 1 - i * s) % dd == 0 and 0 <= (o + 1 - i * s) // dd < k
            if k == 3:                      # few taps: the exact answer by enumerating them
                assert got == bbox({(o + 1 - t * dd) // s for t in range(k) if (o + 1 - t * dd) % s == 0})
    assert time.perf_counter() - t0 < 1


def test_first_mod_hit_is_brute_force():
    import random
    rng = random.Random(0)
    for _ in range(20000):
        m, a, c = rng.randint(1, 30), rng.randint(0, 50), rng.randint(0, 50)
        lo = rng.randint(0, m - 1)
        hi = rng.randint(lo, m - 1)
        want = next((j for j in range(3 * m + 2) if lo <= (a * j + c) % m <= hi), None)
        assert R.first_mod_hit(a, c, m, lo, hi) == want


def test_nearest_theory_and_torch_index():
    m = R.Nearest(5, 10, 2.0)                       # out = 2·in: torch shifts (o >> 1)
    assert [m.span(o, o, exact=True)[0] for o in range(10)] == [o // 2 for o in range(10)]
    assert m.ratio == Fraction(1, 2)
    m = R.Nearest(7, 5)                             # size-based: ρ = 7/5
    assert [m.span(o, o)[0] for o in range(5)] == [floor(Fraction(7 * o, 5)) for o in range(5)]
    assert [m.span(o, o, exact=True)[0] for o in range(5)] == [0, 1, 2, 4, 5]
    m = R.Nearest(4, 12, 3.0)
    assert m.ratio == Fraction(1, 3)
    assert [m.span(o, o, exact=True)[0] for o in range(12)] == [o // 3 for o in range(12)]


def test_bilinear_reads_two_neighbours_unless_the_weight_is_zero():
    # ×2, align_corners=False: src = (o + ½)/2 − ½ = o/2 − ¼: never an integer → two reads
    m = R.Bilinear(6, 12, False, 2.0)
    for o in range(1, 11):
        i0 = floor(Fraction(2 * o - 1, 4))
        assert m.span(o, o) == (i0, i0 + 1)
        assert m.span(o, o, exact=True) == (max(i0, 0), min(i0 + 1, 5))
    assert m.span(0, 0, exact=True) == (0, 0)        # src clamped at 0, weight 0 on i1
    assert m.span(11, 11, exact=True) == (5, 5)      # last index: i1 = i0
    # align_corners, 5 → 9: src = o·4/8 = o/2: integer at even o → only i0
    m = R.Bilinear(5, 9, True)
    for o in range(9):
        want = (o // 2, o // 2) if o % 2 == 0 else (o // 2, o // 2 + 1)
        assert m.span(o, o) == want == m.span(o, o, exact=True)
    # ×3 (scale given: ρ = 1/3): src = (o + ½)/3 − ½ is an integer when o ≡ 1 (mod 3)
    m = R.Bilinear(4, 12, False, 3.0)
    for o in range(1, 11):
        src = Fraction(2 * o + 1, 6) - Fraction(1, 2)
        want = (floor(src), floor(src)) if src.denominator == 1 else (floor(src), floor(src) + 1)
        assert m.span(o, o) == want


def test_adaptive_bins_are_torchs():
    for n, out in [(7, 3), (10, 4), (5, 5), (6, 4), (13, 6)]:
        m = R.AdaptiveWindow(n, out)
        for o in range(out):
            start = (o * n) // out
            end = -(-((o + 1) * n) // out)             # ceil
            assert m.span(o, o) == (start, end - 1)


def test_reflect_and_replicate_padding():
    n, left = 5, 3
    refl = R.Reflect(n, left, "reflect")
    repl = R.Reflect(n, left, "replicate")
    src = list(range(n))
    padded_reflect = [src[abs(i)] if i < n else src[2 * (n - 1) - i] for i in range(-left, n + left)]
    padded_replicate = [src[min(max(i, 0), n - 1)] for i in range(-left, n + left)]
    for a in range(0, n + 2 * left):
        for b in range(a, n + 2 * left):
            assert refl.span(a, b, exact=True) == bbox(padded_reflect[a:b + 1])
            assert repl.span(a, b, exact=True) == bbox(padded_replicate[a:b + 1])
            assert refl.span(a, b) == (a - left, b - left)      # theory: like zero padding


def test_unravel_is_the_digits_bbox():
    sizes = (3, 2, 4)
    flat = list(itertools.product(*[range(s) for s in sizes]))
    for i in range(3):
        m = R.Unravel(sizes, i)
        for a in range(len(flat)):
            for b in range(a, len(flat)):
                assert m.span(a, b) == bbox({f[i] for f in flat[a:b + 1]})


def test_irregular_maps():
    assert R.Flip(5).span(0, 1) == (3, 4)
    assert R.Prefix(6).span(2, 3) == (0, 3)
    assert R.Prefix(6).span(-3, -1) is None
    assert R.Suffix(6).span(2, 3) == (2, 5)
    seg = R.Segment(4, 3, 10)
    assert seg.span(0, 3) is None and seg.span(3, 5) == (0, 1) and seg.span(6, 9) == (2, 2)
    g = R.Groups(8, 4, 2)                     # 2 groups: out 0-1 read in 0-3, out 2-3 read in 4-7
    assert g.span(0, 1) == (0, 3) and g.span(2, 2) == (4, 7) and g.span(1, 2) == (0, 7)
    assert R.Const(3).span(7, 9) == (3, 3) and R.All(5).span(0, 0) == (0, 4)


@pytest.mark.parametrize("P,J,ratio", [(1, 1, Fraction(2)), (2, 16, Fraction(1)), (1, 8, Fraction(1, 2)),
                                       (4, 3, Fraction(2)), (6, 5, Fraction(3, 2)), (3, 7, Fraction(2, 3)),
                                       (2, 1, Fraction(5, 4))])
def test_period_rule(P, J, ratio):
    """After a map with ratio a/b, a field repeating every P positions (shift J) repeats every
    P' = b·P/gcd(P, a) positions with shift J' = J·a/gcd(P, a) — and no fewer."""
    a, b = ratio.numerator, ratio.denominator
    P2, J2 = R.periodic_compose(P, J, ratio)
    # a field with P distinct phases: phase t at J·⌊o/P⌋ + 10·t (not periodic in fewer steps)
    field = lambda o: J * (o // P) + 10 * (o % P)                       # noqa: E731
    comp = lambda o: field(floor(Fraction(o * a, b)))                    # the map o ↦ ⌊o·a/b⌋ # noqa: E731
    for o in range(-30, 30):
        assert comp(o + P2) == comp(o) + J2
    for q in range(1, P2):                      # and no shorter period
        assert len({comp(o + q) - comp(o) for o in range(-30, 30)}) > 1


def test_clipped_spans_land_on_taps():
    """Exactly read indices inside [0, n): a dilated window clipped by the border starts at
    its first tap inside (the others read padding)."""
    n = 9
    for k, s, p, d in itertools.product(range(1, 5), range(1, 4), range(0, 5), range(1, 4)):
        w, t = R.Window(k, s, p, d), R.Transposed(k, s, p, d)
        for a in range(-3, 8):
            for b in range(a, a + 4):
                taps = {o * s - p + m * d for o in range(a, b + 1) for m in range(k)}
                assert w.span_in(a, b, n) == bbox({i for i in taps if 0 <= i < n}), (k, s, p, d, a, b)
                ins = {i for i in range(n) for m in range(k) if a <= i * s - p + m * d <= b}
                assert t.span_in(a, b, n) == bbox(ins), (k, s, p, d, a, b)
