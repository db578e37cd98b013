"""Receptive-field index maps: the shared formulas every op's ``receptive_field`` rule uses.

A *map* says, for one axis of one op input, which input indices an interval of output
positions [a, b] reads: ``span(a, b, exact)`` → (lo, hi) (the bounding box), or None when
those positions read nothing of that input.  Two readings:

* theoretical (``exact=False``): the textbook model — tensors extend past their borders,
  so padding moves a field but never shrinks it (Araujo et al., "Computing Receptive
  Fields of Convolutional Neural Networks", Distill 2019).  Periodic maps (``ratio`` set)
  satisfy span(o + b) = span(o) + a with ratio = a/b, which is what makes one period of
  positions enough after upsampling (Odena et al., "Deconvolution and Checkerboard
  Artifacts", Distill 2016).
* exact (``exact=True``): what PyTorch computes (its index arithmetic, float rounding and
  clamps included); the caller clips every interval to its tensor.  This is what the
  gradient of one output position with respect to the input shows.

An op's rule returns, per input: None (the output does not depend on this input's
values), "global" (every output element reads every element), a list of maps for the
spatial dims 2.. (dims 0 and 1 pass through), or a :class:`Deps` naming a map for every
input dim.  Pure Python with exact Fractions; no torch.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import gcd

from archviz.ops.rfmaps_core import ENUM_CAP, Map, _clamp, _per_position, _points, union  # noqa: F401 (union)
# the resampling maps (nearest, bilinear) are kept in a module of their own; they are maps like these
from archviz.ops.rfmaps_resample import Bilinear, Nearest  # noqa: F401

GLOBAL = "global"


class Window(Map):
    """Convolution / pooling / crop / pad window: output o reads [o·s − p, o·s − p + d·(k − 1)].

    k' = d·(k − 1) + 1 is the effective (dilated) kernel; ``p`` the left padding (negative:
    a crop of c leading positions is Window(1, 1, −c)); pointwise is Window(1, 1, 0).
    """

    def __init__(self, k: int, s: int = 1, p: int = 0, d: int = 1):
        self.k, self.s, self.p, self.d = int(k), int(s), int(p), int(d)
        self.ratio = Fraction(self.s)

    @property
    def k_eff(self) -> int:
        return self.d * (self.k - 1) + 1

    @property
    def is_identity(self) -> bool:
        return self.k == 1 and self.s == 1 and self.p == 0

    @property
    def gapless(self) -> bool:
        return self.k_eff >= self.s            # the hulls of neighbouring windows touch

    def span(self, a, b, exact=False):
        return a * self.s - self.p, b * self.s - self.p + self.k_eff - 1

    def span_in(self, a, b, n, exact=True):
        if self.d == 1 and (self.k >= self.s or a == b):    # no holes between or inside windows
            return Map.span_in(self, a, b, n, exact)
        k, s, p, d = self.k, self.s, self.p, self.d
        # the taps o·s − p + m·d (m < k) of the outputs a..b that fall in [0, n): the first and last
        lo = None
        for o in range(max(a, -(-(p - d * (k - 1)) // s)), b + 1):
            base = o * s - p
            if base > n - 1 or (lo is not None and base >= lo):
                break
            m = max(0, -(-(-base) // d))
            if m < k and base + m * d <= n - 1:
                lo = base + m * d if lo is None else min(lo, base + m * d)
        hi = None
        for o in range(min(b, (n - 1 + p) // s), a - 1, -1):
            base = o * s - p
            top = base + d * (k - 1)
            if top < 0 or (hi is not None and top <= hi):
                break
            m = min(k - 1, (n - 1 - base) // d)
            if m >= 0 and base + m * d >= 0:
                hi = base + m * d if hi is None else max(hi, base + m * d)
        return None if lo is None or hi is None or lo > hi else (lo, hi)

    def image(self, ivs, n):
        if self.d == 1 and self.k >= self.s:                  # windows touch or overlap: no holes
            return Map.image(self, ivs, n)
        if sum(b - a + 1 for a, b in ivs) * self.k > ENUM_CAP:
            return Map.image(self, ivs, n)
        return _points(i for a, b in ivs for o in range(a, b + 1)
                       for i in range(o * self.s - self.p, o * self.s - self.p + self.k_eff, self.d) if 0 <= i < n)

    def describe(self):
        parts = [f"k={self.k}"] + [f"{n}={v}" for n, v, dflt in
                                   (("s", self.s, 1), ("p", self.p, 0), ("d", self.d, 1)) if v != dflt]
        return "window(" + ", ".join(parts) + ")"

    def __repr__(self):
        return f"Window({self.k}, {self.s}, {self.p}, {self.d})"


IDENTITY = Window(1)


def first_mod_hit(a: int, c: int, m: int, lo: int, hi: int):
    """The least j ≥ 0 with lo ≤ (a·j + c) mod m ≤ hi (0 ≤ lo ≤ hi < m), or None: O(log m)."""
    lo_c, hi_c = (lo - c) % m, (hi - c) % m          # where a·j mod m must land
    if lo_c <= hi_c:
        return _first_mult_hit(a % m, m, lo_c, hi_c)
    hits = [j for j in (_first_mult_hit(a % m, m, lo_c, m - 1), _first_mult_hit(a % m, m, 0, hi_c))
            if j is not None]
    return min(hits) if hits else None


def _first_mult_hit(a: int, m: int, lo: int, hi: int):
    """The least x ≥ 0 with lo ≤ a·x mod m ≤ hi (0 ≤ a < m, 0 ≤ lo ≤ hi < m), or None.

    Without a wrap the first x with a·x ≥ lo decides; otherwise [lo, hi] holds no multiple of
    a and a hit needs y wraps: a·x − m·y ∈ [lo, hi] ⇔ (−m·y) mod a ∈ [lo mod a, hi mod a], the
    same problem modulo a < m (the least y gives the least x).  A multiplier above m/2 is
    reflected (−v mod m = m − v), so the moduli at least halve: Euclid's O(log m) steps."""
    if lo == 0:
        return 0
    if a == 0:
        return None
    if 2 * a > m:                                    # reflect: a·x ∈ [lo, hi] ⇔ (m − a)·x ∈ [m − hi, m − lo]
        return _first_mult_hit(m - a, m, m - hi, m - lo)
    x = -(-lo // a)
    if a * x <= hi:
        return x
    y = _first_mult_hit((-m) % a, a, lo % a, hi % a)
    return None if y is None else -(-(m * y + lo) // a)


class Transposed(Map):
    """Transposed convolution (k, s, p, d): output o reads the inputs i with o = i·s − p + m·d
    for some m in [0, k): ⌈(o + p − d(k − 1)) / s⌉ ≤ i ≤ ⌊(o + p) / s⌋ (torch ConvTranspose
    docs; Dumoulin & Visin 2016, §4).  With d > 1 only the i with (o + p − i·s) ≡ 0 (mod d)."""

    def __init__(self, k, s=1, p=0, d=1):
        self.k, self.s, self.p, self.d = int(k), int(s), int(p), int(d)
        self.ratio = Fraction(1, self.s)

    @property
    def gapless(self) -> bool:
        # d = 1: the inputs whose output window [i·s − p, i·s − p + k − 1] meets [a, b], a
        # contiguous range (and empty exactly when no position of [a, b] reads anything)
        return self.d == 1

    def _ok(self, i, a, b):
        # some m in [0, k) with a ≤ i·s − p + m·d ≤ b
        lo = max(0, -(-(a - i * self.s + self.p) // self.d))
        hi = min(self.k - 1, (b - i * self.s + self.p) // self.d)
        return lo <= hi

    def span_in(self, a, b, n, exact=True):
        return self.span(a, b, exact, n)

    def span(self, a, b, exact=False, n=None):
        lo = -(-(a + self.p - self.d * (self.k - 1)) // self.s)
        hi = (b + self.p) // self.s
        if n is not None:
            lo, hi = max(lo, 0), min(hi, n - 1)
        if self.d > 1 and lo <= hi:     # dilated: the first and last i that a tap reaches
            lo, hi = self._reached(lo, hi, a, b, 1), self._reached(lo, hi, a, b, -1)
            if lo is None or hi is None:
                return None
        return (lo, hi) if lo <= hi else None

    def _reached(self, lo, hi, a, b, step):
        """The first (step 1) or last (step −1) i in [lo, hi] that reaches [a, b] with some tap m.

        i reaches when [a + p − i·s, b + p − i·s] holds some m·d with 0 ≤ m < k.  An i whose
        interval sticks out above d(k − 1) (i < i1) reaches with m = k − 1, one that sticks out
        below 0 (i > i2) with m = 0 (from lo and hi's definitions); in between it reaches
        exactly when (i·s − a − p) mod d ≤ b − a — the first such i is a modular search
        (:func:`first_mod_hit`, O(log d)), never a scan over the kernel or the dilation."""
        s, d, u, width = self.s, self.d, a + self.p, b - a
        i1 = -(-(b + self.p - d * (self.k - 1)) // s)          # first i inside [0, d(k − 1)] at the top
        i2 = u // s                                            # last i with a + p − i·s ≥ 0
        i = lo if step > 0 else hi
        if self._ok(i, a, b):
            return i
        if width >= d - 1:                                     # every i in between reaches
            return None
        if step > 0:                                           # i = lo + j, i1 ≤ lo ≤ i2 here
            j = first_mod_hit(s % d, (s * lo - u) % d, d, 0, width)
            if j is not None and lo + j <= min(hi, i2):
                return lo + j
            return i2 + 1 if i2 + 1 <= hi else None
        j = first_mod_hit((-s) % d, (s * hi - u) % d, d, 0, width)   # i = hi − j
        if j is not None and hi - j >= max(lo, i1):
            return hi - j
        return i1 - 1 if i1 - 1 >= lo else None

    def image(self, ivs, n):
        if self.d == 1:
            return Map.image(self, ivs, n)
        return _per_position(self, ivs, n)

    def describe(self):
        return f"transposed(k={self.k}, s={self.s}, p={self.p}" + (f", d={self.d})" if self.d != 1 else ")")


class AdaptiveWindow(Map):
    """Adaptive pooling bin o: [⌊o·in/out⌋, ⌈(o + 1)·in/out⌉ − 1] (torch AdaptiveAvgPool2d,
    aten AdaptivePooling.h start_index / end_index).  Periodic with ratio in/out."""
    gapless = True                 # the bins cover the input

    def __init__(self, n_in: int, n_out: int):
        self.n_in, self.n_out = n_in, n_out
        self.ratio = Fraction(n_in, n_out)

    def span(self, a, b, exact=False):
        return (a * self.n_in) // self.n_out, -(-((b + 1) * self.n_in) // self.n_out) - 1

    def describe(self):
        return f"adaptive({self.n_in}→{self.n_out})"


class Reflect(Map):
    """Reflect / replicate padding of ``left`` positions (torch F.pad modes).  Theoretical:
    like zero padding, Window(1, 1, left) (the field reaches into the padding).  Exact: the
    padded position reads the reflected (or clamped) index."""
    gapless = True                 # theoretical span: a shift

    def __init__(self, n_in: int, left: int, mode: str = "reflect"):
        self.n_in, self.left, self.mode = n_in, left, mode
        self.ratio = Fraction(1)

    def _f(self, o):
        i = o - self.left
        n = self.n_in
        if self.mode == "replicate":
            return min(max(i, 0), n - 1)
        if i < 0:
            return -i
        if i >= n:
            return 2 * (n - 1) - i
        return i

    def span(self, a, b, exact=False):
        if not exact:
            return a - self.left, b - self.left
        pts = [a, b] + [o for o in (self.left, self.left + self.n_in - 1) if a < o < b]
        vals = [self._f(o) for o in pts]
        return min(vals), max(vals)

    def describe(self):
        return f"{self.mode}-pad({self.left})"


class _Irregular(Map):
    """A map with no periodic extension: output positions outside [0, n_out) read nothing."""
    n_out: int = 0
    gapless = True                 # (not Unravel: the digits of an index range have gaps)

    def span(self, a, b, exact=False):
        c = _clamp(a, b, self.n_out)
        return None if c is None else self._span(*c)

    def _span(self, a, b):
        raise NotImplementedError


class Flip(_Irregular):
    """Reverse along the axis: o reads n − 1 − o."""

    def __init__(self, n: int):
        self.n_out = n

    def _span(self, a, b):
        return self.n_out - 1 - b, self.n_out - 1 - a

    def describe(self):
        return "reverse"


class Prefix(_Irregular):
    """Causal recurrence (unidirectional RNN/LSTM/GRU): step t reads steps 0..t; with a lag
    L, steps 0..t − L (nothing for t < L: what the previous state computes, e.g. an
    attention decoder's context at step t)."""

    def __init__(self, n: int, lag: int = 0):
        self.n_out, self.lag = n, lag

    def _span(self, a, b):
        return None if b < self.lag else (0, b - self.lag)

    def describe(self):
        return f"causal prefix 0..t − {self.lag}" if self.lag else "causal prefix 0..t"


class Suffix(_Irregular):
    """Anti-causal recurrence: step t reads steps t..n − 1."""

    def __init__(self, n: int):
        self.n_out = n

    def _span(self, a, b):
        return a, self.n_out - 1

    def describe(self):
        return "suffix t..T−1"


class Segment(_Irregular):
    """Concatenation along the axis: output [off, off + n) is this input's [0, n)."""

    def __init__(self, off: int, n: int, n_out: int):
        self.off, self.n, self.n_out = off, n, n_out

    def _span(self, a, b):
        a, b = max(a, self.off), min(b, self.off + self.n - 1)
        return (a - self.off, b - self.off) if a <= b else None

    def describe(self):
        return f"segment [{self.off}, {self.off + self.n})"


class Groups(_Irregular):
    """Channel groups of a convolution: output channel c reads the input channels of its group."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        self.c_in, self.n_out, self.g = c_in, c_out, groups

    def _span(self, a, b):
        gi, go = self.c_in // self.g, self.n_out // self.g
        return (a // go) * gi, (b // go + 1) * gi - 1


class Unravel(_Irregular):
    """Flatten: input dim ``i`` of the merged dims ``sizes`` seen from a flat index interval
    (the bounding box of the digits)."""

    def __init__(self, sizes, i: int):
        self.sizes, self.i = tuple(sizes), i
        n = 1
        for s in self.sizes:
            n *= s
        self.n_out = n
        inner = 1
        for s in self.sizes[i + 1:]:
            inner *= s
        self.inner = inner

    gapless = False

    def _span(self, a, b):
        m, n = self.inner, self.sizes[self.i]
        qa, qb = a // m, b // m
        if qb - qa >= n or qa // n != qb // n:
            return 0, n - 1
        return qa % n, qb % n

    def image(self, ivs, n):
        return _per_position(self, ivs, n)

    def describe(self):
        return "flatten"


class Const(Map):
    """Every output position reads index c (a selected step; a broadcast size-1 dim)."""
    const = True
    gapless = True

    def __init__(self, c: int):
        self.c = c

    def span(self, a, b, exact=False):
        return self.c, self.c

    def describe(self):
        return f"index {self.c}"


class All(Map):
    """Every output element reads the whole dim (global pooling, a linear layer's features,
    attention over keys, a bidirectional recurrence over time)."""
    const = True
    gapless = True

    def __init__(self, n: int):
        self.n = n

    def span(self, a, b, exact=False):
        return 0, self.n - 1

    def describe(self):
        return "all"


# -- per-input dependencies ---------------------------------------------------------
class Deps:
    """One input's dependence: for each input dim, (output dim or None, Map)."""
    __slots__ = ("dims",)       # one per input of every layer

    def __init__(self, dims):
        self.dims = tuple(dims)

    def __repr__(self):
        return f"Deps({list(self.dims)})"


def pointwise(shape) -> Deps:
    """Element-wise: every dim passes through. (Deps are never changed once made: layers of
    the same rank share one, as they share IDENTITY; a 100,000-layer graph keeps one, not
    100,000.)"""
    return _pointwise(len(shape))


@lru_cache(maxsize=64)
def _pointwise(rank: int) -> Deps:
    return Deps([(i, IDENTITY) for i in range(rank)])


def spatial(shape, maps, channels: Map | None = None) -> Deps:
    """Channel-first (N, C, *spatial): ``maps`` for dims 2..; batch passes through; channels
    pass through, or ``channels`` (e.g. All(C) when the op mixes channels)."""
    maps = list(maps)
    if len(maps) != len(shape) - 2:
        raise ValueError(f"{len(maps)} spatial maps for a {len(shape)}-D input")
    ch = (1, IDENTITY) if channels is None else (None if channels.const else 1, channels)
    return Deps([(0, IDENTITY), ch] + [(None if m.const else 2 + i, m) for i, m in enumerate(maps)])


def along(shape, changes: dict) -> Deps:
    """Every dim passes through except those in ``changes``: dim → Map (same output dim)."""
    r = len(shape)
    dims = []
    for i in range(r):
        m = changes.get(i, changes.get(i - r, IDENTITY))
        dims.append((None if m.const else i, m))
    return Deps(dims)


def everything(shape) -> Deps:
    """Every output element reads every element of the input."""
    return Deps([(None, All(n)) for n in shape])


def broadcast(shape, out_shape) -> Deps:
    """numpy/torch broadcasting: trailing dims align; a size-1 dim broadcast reads index 0.
    Shared between the layers of the same shapes (see pointwise)."""
    return _broadcast(tuple(shape), tuple(out_shape))


@lru_cache(maxsize=1024)
def _broadcast(shape: tuple, out_shape: tuple) -> Deps:
    off = len(out_shape) - len(shape)
    dims = []
    for i, n in enumerate(shape):
        if n == 1 and out_shape[off + i] != 1:
            dims.append((off + i, Const(0)))
        else:
            dims.append((off + i, IDENTITY))
    return Deps(dims)


def normalize(value, shape) -> Deps | None:
    """A rule's per-input answer as Deps (None stays None: no dependence)."""
    if value is None or isinstance(value, Deps):
        return value
    if value == GLOBAL:
        return everything(shape)
    if isinstance(value, (list, tuple)):
        return spatial(shape, value)
    raise TypeError(f"a receptive_field rule returned {value!r}; expected None, 'global', "
                    f"a list of maps or Deps")


# -- one-axis composition, shared by the pass and `explain` ---------------------------------
def periodic_compose(P: int, J: int, ratio: Fraction) -> tuple[int, int]:
    """Period and shift after a periodic map of ratio a/b, given the input's field repeats
    every P positions shifted by J: field(o + P) = field(o) + J.

    The output repeats every P' = b·P / gcd(P, a) positions (the smallest multiple of b whose
    image, P'·a/b input positions, is a multiple of P), shifted by J' = J·a / gcd(P, a)."""
    a, b = ratio.numerator, ratio.denominator
    g = gcd(P, a)
    return b * P // g, J * a // g


def erf_variance_step(j_in: int, m: Window) -> int:
    """12 × the effective-RF variance one window adds (uniform weights): j_{l−1}² · d² · (k² − 1)
    (Luo et al., NeurIPS 2016: σ² = Σ_l j_{l−1}² · d_l² · (k_l² − 1) / 12, the variance of a
    uniform window of k taps spaced d·j apart).  Kept ×12 so the sum stays an exact int."""
    return j_in * j_in * m.d * m.d * (m.k * m.k - 1)
