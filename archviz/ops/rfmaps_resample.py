"""Receptive-field index maps of resampling: nearest and bilinear upsampling (see
archviz/ops/rfmaps_core.py for what a map is; archviz.ops.rfmaps offers these two with the others)."""
from __future__ import annotations

from fractions import Fraction
from math import floor

from archviz.ops.rfmaps_core import Map, _f32, _frac, _per_position


class Nearest(Map):
    """Nearest upsampling (torch 'nearest'): i = ⌊o · scale_in/out⌋.

    Theoretical: ρ = in/out (or 1/scale_factor when given), exact rational.  Exact: torch's
    ``nearest_idx`` (aten/src/ATen/native/UpSample.h): identity when out = in, o >> 1 when
    out = 2·in, else min(⌊o · float32(ρ)⌋, in − 1) in float32."""

    def __init__(self, n_in: int, n_out: int, scale=None):
        self.n_in, self.n_out, self.scale = n_in, n_out, scale
        if n_out == n_in:
            self.ratio = Fraction(1)
        elif n_out == 2 * n_in:
            self.ratio = Fraction(1, 2)
        else:
            self.ratio = 1 / _frac(scale) if scale else Fraction(n_in, n_out)
        if scale:
            self._sc = _f32(1.0 / float(scale))
        else:
            self._sc = _f32(_f32(float(n_in)) / _f32(float(n_out)))

    def _exact(self, o):
        if self.n_out == self.n_in:
            return o
        if self.n_out == 2 * self.n_in:
            return o >> 1
        return min(floor(_f32(_f32(float(o)) * self._sc)), self.n_in - 1)

    def span(self, a, b, exact=False):
        if exact:
            return self._exact(a), self._exact(b)
        return floor(a * self.ratio), floor(b * self.ratio)

    @property
    def gapless(self) -> bool:
        return self.ratio <= 1

    def image(self, ivs, n):
        return Map.image(self, ivs, n) if self.ratio <= 1 else _per_position(self, ivs, n)

    def describe(self):
        return f"nearest(×{1 / self.ratio})"


class Bilinear(Map):
    """Bilinear upsampling along one axis.  Source index (torch area_pixel_compute_source_index):
    src = ρ·(o + ½) − ½ (clamped at 0), or ρ·o with align_corners, ρ = in/out or 1/scale
    ((in − 1)/(out − 1) with align_corners); it reads i0 = ⌊src⌋ and i1 = i0 + 1 (i1 = i0 at the
    last index).  A weight that is exactly 0 (src an integer) reads only i0.

    Exact: torch's compute_source_index_and_lambda (UpSample.h) — identity when out = in,
    ratio in double, ⌊·⌋ of the float32 value, i0 ≤ in − 1.  Theoretical: exact rationals, no
    clamps (so the map is periodic) — except that a zero weight is kept at the phases where
    torch's rounding makes it non-zero (:meth:`_rounded_phases`), so the theoretical field
    always contains the exact one."""

    def __init__(self, n_in: int, n_out: int, align_corners: bool = False, scale=None):
        self.n_in, self.n_out, self.align, self.scale = n_in, n_out, bool(align_corners), scale
        if n_out == n_in:
            self.ratio = Fraction(1)
        elif self.align:
            self.ratio = Fraction(n_in - 1, n_out - 1) if n_out > 1 else None
        else:
            self.ratio = 1 / _frac(scale) if scale else Fraction(n_in, n_out)
        if self.align:
            self._r = (float(n_in - 1) / (n_out - 1)) if n_out > 1 else 0.0
        else:
            self._r = (1.0 / float(scale)) if scale else float(n_in) / n_out
        self.const = self.ratio is None

    def _exact(self, o):
        if self.n_out == self.n_in:
            return o, o
        real = self._r * o if self.align else self._r * (o + 0.5) - 0.5
        if not self.align and real < 0:
            real = 0.0
        i0 = min(floor(_f32(real)), self.n_in - 1)
        lam = min(max(real - i0, 0.0), 1.0)
        i1 = i0 + 1 if i0 < self.n_in - 1 else i0
        lo = i0 if 1.0 - lam != 0 else i1
        hi = i1 if lam != 0 else i0
        return lo, hi

    def _src(self, o) -> Fraction:
        return self.ratio * o if self.align else self.ratio * (o + Fraction(1, 2)) - Fraction(1, 2)

    def _theory(self, o):
        if self.n_out == self.n_in:
            return o, o
        if self.ratio is None:
            return 0, 0
        real = self._src(o)
        i0 = floor(real)
        if real != i0:
            return i0, i0 + 1
        return i0, i0 + (1 if o % self.ratio.denominator in self._rounded_phases() else 0)

    def _rounded_phases(self) -> frozenset:
        """The phases o mod b (ρ = a/b; src(o + b) = src(o) + a) where i1's weight is 0 in exact
        arithmetic but torch's double arithmetic leaves a rounding error's worth (ρ·o a hair
        above the integer, e.g. 29 → 87 with align_corners: (28/86)·43 = 14.000000000000002),
        so torch reads i1 at some position of that phase in the tensor.  The theory reads i1
        at every position of such a phase: the field stays periodic and contains what torch
        reads.  Only the positions where src is an integer are checked (elsewhere both read
        i0 and i0 + 1, or torch's float32 ⌊·⌋ rounds onto one of them)."""
        fp = getattr(self, "_fp", None)
        if fp is None:
            a, b = self.ratio.numerator, self.ratio.denominator
            found = set()
            for t in range(min(b, self.n_out)):
                # src(t) = a·t/b (align_corners) or (a·(2t + 1) − b) / 2b: an integer?
                if (a * t) % b if self.align else (a * (2 * t + 1) - b) % (2 * b):
                    continue
                for o in range(t, self.n_out, b):
                    i0 = floor(self._src(o))
                    if i0 + 1 < self.n_in and self._exact(o)[1] > i0:
                        found.add(t)
                        break
            fp = self._fp = frozenset(found)
        return fp

    def span(self, a, b, exact=False):
        f = self._exact if exact else self._theory
        return f(a)[0], f(b)[1]

    @property
    def gapless(self) -> bool:
        return self.ratio is None or self.ratio <= 1

    def image(self, ivs, n):
        if self.ratio is not None and self.ratio <= 1:
            return Map.image(self, ivs, n)
        return _per_position(self, ivs, n)

    def describe(self):
        return f"bilinear(×{1 / self.ratio}" + (", align_corners)" if self.align else ")") \
            if self.ratio else "bilinear"
