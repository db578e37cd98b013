"""What a receptive-field index map is (:class:`Map`: output positions → the input indices they
read) and the arithmetic every map shares: torch's float32 rounding, exact fractions, unions
of intervals.  archviz/ops/rfmaps.py holds the maps of each kind of op (windows, transposed
windows, ...) and rfmaps_resample.py those of upsampling; both build on this module."""
from __future__ import annotations

import struct
from fractions import Fraction


def _f32(x: float) -> float:
    """Round a Python float to float32 (torch's float index arithmetic)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _frac(x) -> Fraction:
    """A number as written (2, 1.5, '3/2') as an exact Fraction (1.5 → 3/2, not the binary float)."""
    return Fraction(str(x)) if isinstance(x, float) else Fraction(x)


def _clamp(a, b, n):
    a, b = max(a, 0), min(b, n - 1)
    return (a, b) if a <= b else None


class Map:
    """One axis of one input: output positions → input indices."""
    ratio: Fraction | None = None    # input positions per output position (periodic maps)
    const: bool = False              # the span does not depend on the output position

    def span(self, a: int, b: int, exact: bool = False):
        raise NotImplementedError

    def span_in(self, a: int, b: int, n: int, exact: bool = True):
        """The span restricted to indices [0, n) that are really read (a dilated window clipped
        by the border starts at its first tap inside, not at 0)."""
        s = self.span(a, b, exact)
        return None if s is None else _clamp(s[0], s[1], n)

    def image(self, ivs, n: int) -> list:
        """Exactly read indices in [0, n) of the output positions in the union ``ivs`` of
        intervals, as a union of disjoint intervals (holes kept: a dilated window reads taps,
        not what lies between them)."""
        return union(self.span_in(a, b, n) for a, b in ivs)

    def theory_image(self, ivs) -> list:
        """Theoretical reading (no clipping) of the output positions in the union ``ivs``: the
        union of every position's span.  A position that reads nothing adds nothing, so the
        holes between read positions are kept (the hull of ``ivs``' span is not the field: the
        positions between two read ones may read nothing either) — what the forward pass
        computes, one position at a time."""
        if self.gapless:
            return union(self.span(a, b) for a, b in ivs)
        if sum(b - a + 1 for a, b in ivs) > ENUM_CAP:
            return union(self.span(a, b) for a, b in ivs)
        return union(self.span(o, o) for a, b in ivs for o in range(a, b + 1))

    @property
    def gapless(self) -> bool:
        """span(a, b) is exactly the union of span(o, o) for o in [a, b] (no position reads
        nothing, no gaps between the spans of neighbours)."""
        return False

    @property
    def is_identity(self) -> bool:
        return False

    def describe(self) -> str:
        return type(self).__name__


ENUM_CAP = 1 << 16     # beyond this many index pairs an image is taken as its hull


def union(spans) -> list:
    """Sorted disjoint (lo, hi) intervals covering the given ones (None entries ignored)."""
    out = []
    for lo, hi in sorted(x for x in spans if x is not None):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _points(ps) -> list:
    return union((p, p) for p in ps)


def _per_position(m, ivs, n):
    """Image as the union of each output position's span (for maps whose range images have gaps)."""
    if sum(b - a + 1 for a, b in ivs) > ENUM_CAP:
        return union(m.span_in(a, b, n) for a, b in ivs)
    return union(m.span_in(o, o, n) for a, b in ivs for o in range(a, b + 1))
