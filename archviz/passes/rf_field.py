"""The receptive field of one axis of one tensor (:class:`Field`), the axes it is measured
along (:class:`Axis`, :class:`Context`), what the pass stores per node (:class:`NodeRF`) and
the summary a report shows (:func:`summarize`).  The pass (archviz.passes.rf), the exact
engine (rf_exact) and the explain text (rf_explain) read these types from here."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from fractions import Fraction

from archviz.ir.frozen import EMPTY_DICT as _NO_DEPS, EMPTY_LIST as _NO_WARNINGS


@dataclass
class Axis:
    name: str
    dim: int     # dim in the primary input
    size: int    # its length


@dataclass
class Context:
    input: str | None            # the primary input's name (and node id)
    axes: list
    layout: str = ""             # "channels-first" or "sequence"
    note: str = ""               # why there are no axes


class Field:
    """The receptive field of one axis of one tensor (its kinds: archviz.passes.rf's docstring)."""
    __slots__ = ("kind", "dim", "n", "P", "J", "lo", "hi", "src", "map", "reason", "var12", "_rmq")

    def __init__(self, kind, dim=None, n=0, P=1, J=0, lo=None, hi=None, src=None, map=None,
                 reason=None, var12=None):
        self.kind, self.dim, self.n, self.P, self.J = kind, dim, n, P, J
        # var12: 12 × the effective-RF variance (single-path linear stacks), an exact int
        self.lo, self.hi, self.src, self.map, self.reason, self.var12 = lo, hi, src, map, reason, var12
        self._rmq = None

    @classmethod
    def new_affine(cls, dim, n, J, lo, hi, var12=None) -> "Field":
        """Field("periodic", dim=dim, n=n, P=1, J=J, lo=[lo], hi=[hi], var12=var12), made in a
        third of its time (the pass makes one or two per layer, issue 17)."""
        f = cls.__new__(cls)
        f.kind, f.dim, f.n, f.P, f.J, f.lo, f.hi, f.var12 = "periodic", dim, n, 1, J, lo, hi, var12
        f.src = f.map = f.reason = f._rmq = None
        return f

    # -- queries (theoretical fields) --------------------------------------------
    @property
    def affine(self) -> bool:
        return self.kind == "periodic" and self.P == 1 and self.lo[0] is not None

    @property
    def jump(self):
        return Fraction(self.J, self.P) if self.kind == "periodic" else None

    def at(self, o: int):
        k = self.kind
        if k == "periodic":
            q, t = divmod(o, self.P)
            lo = self.lo[t]
            return None if lo is None else (lo + self.J * q, self.hi[t] + self.J * q)
        if k == "table":
            if 0 <= o < self.n and self.lo[o] is not None:
                return self.lo[o], self.hi[o]
            return None
        if k == "flat":
            s = self.map.span(o, o)
            return None if s is None else self.src.span(*s)
        if k == "fixed":
            return self.lo, self.hi
        return None

    def span(self, a: int, b: int):
        """Hull of the fields of positions a..b."""
        k = self.kind
        if k == "periodic":
            if self.P == 1:
                if self.lo[0] is None:
                    return None
                return self.lo[0] + self.J * a, self.hi[0] + self.J * b
            # each phase's field only moves right (J ≥ 0), so its leftmost start lies in the first
            # period of [a, b] and its rightmost end in the last (fields need not be monotone:
            # a dilated transposed convolution interleaves them)
            n = min(b - a + 1, self.P)
            los = [f[0] for f in map(self.at, range(a, a + n)) if f is not None]
            his = [f[1] for f in map(self.at, range(b - n + 1, b + 1)) if f is not None]
            return (min(los), max(his)) if los else None
        if k == "table":
            a, b = max(a, 0), min(b, self.n - 1)
            if a > b:                # wholly outside the tensor (not a negative slice index)
                return None
            return self._table_span(a, b)
        if k == "flat":
            s = self.map.span(a, b)
            return None if s is None else self.src.span(*s)
        if k == "fixed":
            return self.lo, self.hi
        return None

    def _table_span(self, a: int, b: int):
        """min(lo[a..b]), max(hi[a..b]) over the positions that read something, or None: a
        sparse table built once (n log n), so each query is O(1) — a causal prefix composed
        with a table asks for every prefix, which scanning made quadratic in the length."""
        if self._rmq is None:
            inf = float("inf")
            lo = [inf if x is None else x for x in self.lo]
            hi = [-inf if x is None else x for x in self.hi]
            los, his = [lo], [hi]
            w = 1
            while 2 * w <= len(lo):
                pl, ph = los[-1], his[-1]
                los.append([min(pl[i], pl[i + w]) for i in range(len(pl) - w)])
                his.append([max(ph[i], ph[i + w]) for i in range(len(ph) - w)])
                w *= 2
            self._rmq = (los, his)
        los, his = self._rmq
        j = (b - a + 1).bit_length() - 1
        lo = min(los[j][a], los[j][b - (1 << j) + 1])
        if lo == float("inf"):
            return None
        return lo, max(his[j][a], his[j][b - (1 << j) + 1])

    def positions(self):
        """The positions whose sizes are reported: one period (periodic), every position."""
        if self.kind == "periodic":
            return range(min(self.P, self.n) if self.n else self.P)
        return range(self.n)

    def __repr__(self):
        if self.kind == "periodic":
            return f"Field(periodic dim={self.dim} P={self.P} J={self.J} lo={self.lo} hi={self.hi})"
        return f"Field({self.kind} dim={self.dim}{' ' + self.reason if self.reason else ''})"


def _global():
    return Field("global")


@dataclass(slots=True)
class NodeRF:
    """What the pass stores in ``node.meta["rf"]``."""
    ctx: Context
    fields: dict = dc_field(default_factory=dict)   # port -> [Field per axis] | None (no dependence)
    # deps and warnings: one shared empty until the pass gives the node its own (it assigns
    # them, never writes into these): most layers share their Deps and warn of nothing
    deps: dict = dc_field(default_factory=lambda: _NO_DEPS)     # port -> [Deps | None per input]
    reason: str | None = None                       # why the rule could not be applied
    warnings: list = dc_field(default_factory=lambda: _NO_WARNINGS)


def _num(x):
    """An exact number as text: 3, −1, 7/2, −1/2 (the minus sign explain uses)."""
    x = Fraction(x)
    t = str(abs(x.numerator)) if x.denominator == 1 else f"{abs(x.numerator)}/{x.denominator}"
    return ("−" if x < 0 else "") + t


def summarize(f: Field | None, ax: Axis) -> dict:
    """size_min, size_max, jump, start, centre, global of one axis (theoretical field).
    Made when asked, not kept: kept, the summaries of a 100,000-layer graph took 100 MB."""
    if f is None:
        return None
    out = {"axis": ax.name, "size_min": None, "size_max": None, "jump": None, "start": None,
           "centre": None, "global": False, "kind": f.kind}
    if f.kind == "global":
        out.update(size_min=ax.size, size_max=ax.size, start=0, centre=Fraction(ax.size - 1, 2), **{"global": True})
    elif f.kind == "unavailable":
        out["reason"] = f.reason
    elif f.kind == "flat":
        src = summarize(f.src, ax)
        out.update(size_min=src["size_min"], size_max=src["size_max"])
        _start(out, f.at(0))
    else:
        if f.kind == "fixed":
            sizes = [f.hi - f.lo + 1]
        else:
            sizes = [iv[1] - iv[0] + 1 for iv in (f.at(o) for o in f.positions()) if iv is not None]
        # an int where it is one (the jump of an affine field, an even centre): Fractions cost
        # more to make than the rest of a row (issue 17); equal as numbers either way
        jump = None if f.kind != "periodic" else f.J if f.P == 1 else Fraction(f.J, f.P)
        out.update(size_min=min(sizes), size_max=max(sizes), jump=jump)
        _start(out, f.at(0))
        if f.var12 is not None and f.affine:
            out["erf_sigma"] = (f.var12 / 12) ** 0.5
    return out


def _start(out, iv):
    if iv is not None:
        out["start"] = iv[0]
        c = iv[0] + iv[1]
        out["centre"] = c // 2 if c % 2 == 0 else Fraction(c, 2)
