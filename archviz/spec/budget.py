"""The layer budget of a compiled graph: MAX_LAYERS, and the lower bound on the layers a
`repeat` will have that refuses one that cannot fit after a few copies.

MAX_LAYERS is read as `budget.MAX_LAYERS` wherever it is checked, so a test may lower it
in this one place.
"""
from __future__ import annotations

import re
from collections import ChainMap, Counter

from archviz.errors import ArchvizError
from archviz.ir.graph import INPUT_OP
from archviz.ops import registry
from archviz.spec.expr import expression_budget
from archviz.spec.files import NODE_KEYS

# Bound on a compiled graph, as expressions bound their exponents: a typo such as
# `repeat: 100000000` is an error in milliseconds, not minutes of expansion and GBs of memory.
MAX_LAYERS = 100_000


class CopyBudget:
    """A lower bound on the layers a repeat will have, from the copies expanded so far, so a
    repeat that cannot fit the layer budget is refused after a few copies, never wrongly.

    Copies whose `when:` and attribute values are equal expand to the same number of
    layers (a block sees only its params) unless the spec reads shapes, so once the first copies show the repeat may not
    fit, every copy's values are evaluated (cheap: no expansion) and the copies still to
    come are counted at the sizes of the equal copies already expanded (unknown: 0)."""

    def __init__(self, compiler, nd, scope, var, n, rows=None):
        self.c, self.nd, self.scope, self.var, self.n, self.rows = compiler, nd, scope, var, n, rows
        self.grown: list = []           # layers added by each copy so far
        self.fewest = None              # their minimum, kept as they come (min() of the list was quadratic)
        self.keys = None                # per copy, what decides its size (None: unknown)
        self.sizes: dict = {}           # key -> layers of a copy with that key
        self.left = None                # key -> copies still to expand
        self.least = 0                  # layers each copy has whatever it reads (with shape reads)

    def expanded(self, k: int, grew: int, now: int) -> int:
        self.grown.append(grew)
        self.fewest = grew if self.fewest is None else min(self.fewest, grew)
        if self.keys is None:
            if not k or now + self.fewest * (self.n - k - 1) <= MAX_LAYERS:
                return now          # fits even if the rest are like the smallest so far
            if _reads_shapes(self.scope.file, set()):
                # equal values, and still a copy's size may follow its input's shape (a block
                # that reads it): the copies to come count only their unconditional layers
                self.keys, self.least = [None] * self.n, self._least()
            else:
                self.keys = self._keys()
            self.sizes = {self.keys[j]: g for j, g in enumerate(self.grown) if self.keys[j] is not None}
            self.left = Counter(key for key in self.keys[k + 1:] if key is not None)
        else:
            key = self.keys[k]
            if key is not None:
                self.sizes[key] = grew
                self.left[key] -= 1
        return now + sum(self.sizes[key] * m for key, m in self.left.items() if key in self.sizes) \
            + self.least * (self.n - k - 1)

    def _least(self) -> int:
        """The layers every copy has: 1 for an op, a block's unconditional layers."""
        if "when" in self.nd:
            return 0
        kind, target = self.c._lookup_op(self.nd.get("op"), self.scope)
        return 1 if kind == "op" else _least_of(target.nodes, target.file, {id(target)}) if kind else 0

    def _own(self, k: int) -> dict:
        """The names copy k sees of its own: its row of the table, its index (as nodes.py)."""
        return {**(self.rows[k] if self.rows else {}), **({self.var: k} if self.var else {})}

    def _keys(self) -> list:
        names = ({self.var} if self.var else set()) | {n for r in self.rows or () for n in r}
        # only a value whose text names one of the copy's own names can differ between copies
        # (expressions reach names only by writing them): the others need no evaluation
        word = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b") if names else None
        items = [(a, v) for a, v in self.nd.items()
                 if (a not in NODE_KEYS or a == "when") and word and _mentions(v, word)]
        if not items:
            return [0] * self.n         # every copy has the same values
        keys = []
        with expression_budget(None):   # not charged: these values are computed again when used
            for k in range(self.n):
                vars_k = ChainMap(self._own(k), self.scope.vars)
                try:
                    keys.append(repr([(a, self.c._eval(v, vars_k, None)) for a, v in items]))
                except ArchvizError:
                    keys.append(None)
        return keys


def _mentions(v, word) -> bool:
    """Whether an expression in v (a text, or lists and mappings of them) names a word."""
    if isinstance(v, str):
        return "${" in v and word.search(v) is not None
    if isinstance(v, dict):
        return any(_mentions(x, word) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_mentions(x, word) for x in v)
    return False


_SHAPE = re.compile(r"\bshape\s*\(")


def _reads_shapes(sf, seen: set) -> bool:
    """Whether a spec file or one it imports reads a shape (`${shape(x)}`): then copies with
    equal values may differ in size (a block that reads its input's shape), and the copies
    to come have no known size."""
    if id(sf) in seen:
        return False
    seen.add(id(sf))
    return _mentions(sf.data, _SHAPE) or any(_reads_shapes(f, seen) for f in sf.imports.values())


def _least_of(nodes, sf, seen: set) -> int:
    """Layers a block's node list has whatever its params and input shapes: its ops and the
    blocks it calls without a `repeat` or a `when` (either may leave a node out)."""
    total = 0
    for nd in nodes if isinstance(nodes, list) else ():
        op = nd.get("op") if isinstance(nd, dict) and "repeat" not in nd and "when" not in nd else None
        if not isinstance(op, str):
            continue
        if op in registry and op != INPUT_OP:
            total += 1
            continue
        ns, _, name = op.rpartition(".")
        blk = sf.blocks.get(op) if not ns else getattr(sf.imports.get(ns), "blocks", {}).get(name)
        if blk is not None and id(blk) not in seen:
            total += _least_of(blk.nodes, blk.file, seen | {id(blk)})
    return total
