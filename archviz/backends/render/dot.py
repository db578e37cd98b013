"""A tiny deterministic DOT writer.

Statements come out in the order they are added, attributes in the order they are given,
every id is quoted, and numbers are formatted without platform-dependent float noise, so
the same graph always yields byte-identical DOT text (the golden files depend on it).
HTML-like labels are passed as :class:`Html` and written between ``<`` and ``>``.
"""
from __future__ import annotations

from contextlib import contextmanager


class Html(str):
    """An HTML-like label (Graphviz 'shape=plain' tables, <SUB>, <FONT>, ...)."""


def html_escape(s) -> str:
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def fmt_num(v: float) -> str:
    """Short, stable number text: 0.35, 2, 1.5 (never 0.35000000000000003)."""
    if isinstance(v, int):
        return str(v)
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def quote(v) -> str:
    if isinstance(v, Html):
        # Graphviz 2.43 drops a literal ']' that ends an HTML label; the entity survives
        return "<" + v.replace("]", "&#93;") + ">"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return fmt_num(v)
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def attr_list(attrs: dict) -> str:
    items = [f"{k}={quote(v)}" for k, v in attrs.items() if v is not None]
    return f" [{' '.join(items)}]" if items else ""


def endpoint(e) -> str:
    """'id', ('id', 'port') or ('id', 'port', 'compass') / ('id', None, 'compass')."""
    if isinstance(e, tuple):
        return ":".join([quote(e[0])] + [quote(p) if i == 0 else p for i, p in enumerate(e[1:]) if p])
    return quote(e)


class Dot:
    def __init__(self, name: str, comment: str | None = None, **graph_attrs):
        self.lines: list[str] = []
        self._depth = 1
        self._n_sub = 0
        head = []
        if comment:
            head.append("/* " + comment.replace("*/", "* /") + " */")
        head.append(f"digraph {quote(name)} {{")
        self.head = head
        if graph_attrs:
            self.attrs("graph", **graph_attrs)

    def _emit(self, s: str) -> None:
        self.lines.append("\t" * self._depth + s)

    def attrs(self, kind: str, **attrs) -> None:
        """Default attributes: kind is 'graph', 'node' or 'edge'."""
        self._emit(kind + attr_list(attrs))

    def set(self, **attrs) -> None:
        """Graph attributes as statements (inside a subgraph they apply to it)."""
        for k, v in attrs.items():
            if v is not None:
                self._emit(f"{k}={quote(v)}")

    def node(self, nid: str, **attrs) -> None:
        self._emit(quote(nid) + attr_list(attrs))

    def edge(self, a, b, **attrs) -> None:
        self._emit(f"{endpoint(a)} -> {endpoint(b)}" + attr_list(attrs))

    def comment(self, text: str) -> None:
        self._emit("// " + text.replace("\n", " "))

    @contextmanager
    def subgraph(self, name: str | None = None, **attrs):
        if name is None:
            self._n_sub += 1
            name = f"s{self._n_sub}"
        self._emit(f"subgraph {quote(name)} {{")
        self._depth += 1
        self.set(**attrs)
        try:
            yield self
        finally:
            self._depth -= 1
            self._emit("}")

    def rank_same(self, ids, rank: str = "same") -> None:
        ids = list(ids)
        if ids:
            self._emit("{rank=" + rank + "; " + " ".join(quote(i) + ";" for i in ids) + "}")

    def source(self) -> str:
        return "\n".join(self.head + self.lines + ["}"]) + "\n"
