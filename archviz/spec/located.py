"""The containers a spec loads as: mappings as :class:`LocDict`, sequences as
:class:`LocList`, plain ``dict`` / ``list`` subclasses that carry ``span`` (of the
container), ``spans`` (of each value) and, for mappings, ``key_spans``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from archviz.errors import Span


class LocDict(dict):
    __slots__ = ("span", "spans", "key_spans")      # no __dict__ per mapping of a large spec

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.span: Span | None = None
        self.spans: dict = {}
        self.key_spans: dict = {}

    def span_of(self, key, default: Span | None = None) -> Span | None:
        return self.spans.get(key) or self.key_spans.get(key) or default or self.span

    def key_span(self, key) -> Span | None:
        return self.key_spans.get(key) or self.span


class LocList(list):
    __slots__ = ("span", "spans")

    def __init__(self, *a):
        super().__init__(*a)
        self.span: Span | None = None
        self.spans: list = []

    def span_of(self, i: int) -> Span | None:
        return self.spans[i] if 0 <= i < len(self.spans) else self.span


def located_dict(items, span, spans, key_spans) -> LocDict:
    """A LocDict made whole (what a fast-path mapping pickles as)."""
    d = LocDict(items)
    d.span, d.spans, d.key_spans = span, dict(spans), dict(key_spans)
    return d


def located_list(items, span, spans) -> LocList:
    out = LocList(items)
    out.span, out.spans = span, list(spans)
    return out


def span_of(container, key, fallback: Span | None = None) -> Span | None:
    """Best-known span of `container[key]` (works for plain containers too)."""
    if isinstance(container, (LocDict, LocList)):
        return container.span_of(key) or fallback
    return fallback


class WrittenSpans(Mapping):
    """The spans of the attributes written in a node mapping (every key but the node keys:
    id, op, in), read from it when asked: a graph node's `attr_spans` without a dict and a
    span object per attribute (archviz.spec.plainnodes; issue 17)."""

    __slots__ = ("_nd",)
    NODE_KEYS = frozenset(("id", "op", "in"))

    def __init__(self, nd: LocDict):
        self._nd = nd

    def __getitem__(self, key) -> Span | None:
        if key in self._nd and key not in self.NODE_KEYS:
            return self._nd.span_of(key)
        raise KeyError(key)

    def __iter__(self):
        return (k for k in self._nd if k not in self.NODE_KEYS)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self):       # pickled as the dict it reads (not with the whole spec behind it)
        return dict, (dict(self),)


class InputSpans(Sequence):
    """The spans of the references a node mapping's `in:` writes (a name or a list of
    names), read from it when asked: a graph node's `input_spans` (archviz.spec.plainnodes)."""

    __slots__ = ("_nd",)

    def __init__(self, nd: LocDict):
        self._nd = nd

    def __len__(self) -> int:
        written = self._nd["in"]
        return 1 if isinstance(written, str) else len(written)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        written = self._nd["in"]
        return self._nd.span_of("in") if isinstance(written, str) else written.span_of(i % len(self))

    def __repr__(self) -> str:
        return repr(list(self))

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, InputSpans)) else NotImplemented

    __hash__ = None

    def __reduce__(self):       # pickled as the list it reads (not with the whole spec behind it)
        return list, (list(self),)
