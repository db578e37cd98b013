"""What a Model's notebook methods return: objects that display themselves in Jupyter
(`_repr_svg_`, `_repr_html_`) and print as text elsewhere.

    m = archviz.load("resnet18")
    m                        # the summary, blocks folded (Model._repr_html_)
    m.draw()                 # the diagram, as SVG
    m.rf()                   # receptive fields per layer
    m.compare(archviz.load("resnet34"))
    m.explain("conv1")       # the derivation (a str that also shows as HTML)

Only reads the analysed model; every number comes from the passes.
"""
from __future__ import annotations

from html import escape

from archviz.backends.html import CSS

_STYLE = f"<style>{CSS}</style>"


def _table(heads, rows, right=()) -> str:
    th = "".join(f"<th style='text-align:{'right' if i in right else 'left'}'>{escape(h)}</th>"
                 for i, h in enumerate(heads))
    body = "".join("<tr>" + "".join(f"<td style='text-align:{'right' if i in right else 'left'}'>{escape(str(c))}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table class='av-totals'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _text_table(heads, rows, right=()) -> str:
    w = [max(len(str(x)) for x in col) for col in zip(heads, *rows)]
    line = (lambda r: "  ".join(str(c).rjust(w[i]) if i in right else str(c).ljust(w[i])    # noqa: E731
                                for i, c in enumerate(r)).rstrip())
    return "\n".join([line(heads), "  ".join("-" * x for x in w)] + [line(r) for r in rows])


class Diagram:
    """A model's diagram: DOT text, rendered to SVG by Graphviz's `dot` when first shown."""

    def __init__(self, dot: str, layout: str, name: str):
        self.dot, self.layout, self.name = dot, layout, name
        self._svg = None

    @property
    def svg(self) -> str:
        if self._svg is None:
            from archviz.backends.render.engine import render_bytes
            self._svg = render_bytes(self.dot, "svg").decode("utf-8")
        return self._svg

    def _repr_svg_(self) -> str:
        from archviz.backends.html import strip_svg
        return strip_svg(self.svg)

    def save(self, path: str) -> str:
        """Write .svg, .png, .pdf or .dot (by the extension)."""
        from archviz.backends.render.engine import format_of, write_diagram
        return write_diagram(self.dot, path, format_of(path))

    def __repr__(self) -> str:
        return f"<archviz.Diagram {self.name} ({self.layout} layout); .svg, .dot, .save(path)>"


class ReceptiveFields:
    """Per layer: output shape, RF size, jump, start, centre, σ (see `archviz rf`)."""

    HEADS = ("id", "op", "output shape", "size", "jump", "start", "centre", "σ (estimate)", "note")

    def __init__(self, model):
        from archviz.backends.rf_table import rf_rows
        self.name = model.name
        self.rows = rf_rows(model)

    def _repr_html_(self) -> str:
        return (f"<div class='av'>{_STYLE}<b>{escape(self.name)}: receptive fields</b>"
                f"{_table(self.HEADS, self.rows, right=(3, 4, 5, 6, 7))}</div>")

    def __str__(self) -> str:
        return f"{self.name}: receptive fields\n" + _text_table(self.HEADS, self.rows, right=(3, 4, 5, 6, 7))

    __repr__ = __str__


class Comparison:
    """Totals of two models side by side, with A / B as an exact fraction and a number."""

    def __init__(self, a, b):
        from archviz.backends.report import compare_rows
        self.a, self.b = a.name, b.name
        self.rows = compare_rows(a, b)

    def _cells(self):
        from archviz.backends.report import fmt_ratio
        return [(k, f"{va:,}", f"{vb:,}", fmt_ratio(r), "—" if r is None else str(r)) for k, va, vb, r in self.rows]

    def _heads(self):
        return ("quantity", self.a, self.b, "A / B", "exact")

    def _repr_html_(self) -> str:
        return (f"<div class='av'>{_STYLE}<b>{escape(self.a)} vs {escape(self.b)}</b>"
                f"{_table(self._heads(), self._cells(), right=(1, 2, 3, 4))}</div>")

    def __str__(self) -> str:
        return _text_table(self._heads(), self._cells(), right=(1, 2, 3, 4))

    __repr__ = __str__


class Explanation(str):
    """explain()'s text (a str, as before), shown in a notebook as a preformatted block."""

    def _repr_html_(self) -> str:
        return f"<pre style='white-space:pre-wrap;font-size:12px'>{escape(str(self))}</pre>"
