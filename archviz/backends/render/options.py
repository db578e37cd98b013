"""Drawing options shared by every layout."""
from __future__ import annotations

from dataclasses import dataclass

LAYOUTS = ("auto", "graph", "residual", "unet", "unrolled", "cell", "seq2seq")


@dataclass(frozen=True)
class DrawOptions:
    layout: str = "auto"
    depth: int | None = None        # cut ids to D parts (like `summary --depth`)
    expand: bool = False            # every layer a box, every block a cluster
    unroll: int | None = None       # time steps for the unrolled RNN (default: spec param T)
    rankdir: str | None = None      # TB or LR (graph and residual layouts)
    shapes: bool = True             # print output shapes in the boxes

    @property
    def view_mode(self) -> str:
        if self.expand:
            return "expand"
        if self.depth is not None:
            return "depth"
        return "collapse"
