"""Drawing options shared by every layout."""
from __future__ import annotations

from dataclasses import dataclass

from archviz.codes import E

LAYOUTS = ("auto", "graph", "residual", "unet", "unrolled", "cell", "seq2seq")

# The most time steps --unroll draws: each step is a column of boxes, and beyond a few
# dozen columns the picture is no longer readable (a longer sequence is drawn
# 1, 2, 3, ..., T without --unroll). Also what keeps --unroll 10**9 from exhausting memory.
MAX_UNROLL = 64

# A network of at most this many layers draws expanded by default (a teaching example: three
# stacked 3×3 convolutions are the point of the figure, not one "conv ×3" box).
SMALL = 16


def teaching_expand(model, layout: str) -> bool:
    """The default of --expand/--collapse: expanded for a small network in a layout that
    collapses repeats (graph, residual)."""
    return layout in ("graph", "residual") and len(model.layers) <= SMALL


@dataclass(frozen=True)
class DrawOptions:
    layout: str = "auto"
    depth: int | None = None        # cut ids to D parts (like `summary --depth`)
    expand: bool = False            # every layer a box, every block a cluster
    unroll: int | None = None       # time steps for the unrolled RNN (default: spec param T)
    rankdir: str | None = None      # TB or LR (graph and residual layouts)
    shapes: bool = True             # print output shapes in the boxes

    def __post_init__(self):
        u = self.unroll
        if u is not None and (isinstance(u, bool) or not isinstance(u, int) or not 1 <= u <= MAX_UNROLL):
            from archviz.errors import UnsupportedError
            raise UnsupportedError(f"cannot unroll {u!r} time steps: a diagram shows 1 to {MAX_UNROLL}",
                                   code=E.BAD_UNROLL, hint=f"give --unroll between 1 and {MAX_UNROLL}, or leave it "
                                                      "out to draw steps 1, 2, 3, ..., T")

    @property
    def view_mode(self) -> str:
        if self.expand:
            return "expand"
        if self.depth is not None:
            return "depth"
        return "collapse"


# the options each layout reads (the others have no effect on it)
USES = {"graph": {"depth", "expand", "rankdir", "shapes"}, "residual": {"depth", "expand", "rankdir", "shapes"},
        "unet": {"depth"}, "unrolled": {"unroll"}, "cell": set(), "seq2seq": {"unroll"}}
FLAGS = {"depth": "--depth", "expand": "--expand", "unroll": "--unroll", "rankdir": "--rankdir",
         "shapes": "--no-shapes"}


def ignored_options(layout: str, opts: DrawOptions) -> list:
    """The command-line flags that were given but do nothing for `layout`."""
    given = {"depth": opts.depth is not None, "expand": opts.expand, "unroll": opts.unroll is not None,
             "rankdir": opts.rankdir is not None, "shapes": not opts.shapes}
    return [FLAGS[k] for k, on in given.items() if on and k not in USES.get(layout, set(FLAGS))]
