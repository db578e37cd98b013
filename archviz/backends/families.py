"""Architecture families, for a reader: the diagram family `draw --layout auto` picks from
the graph's structure (archviz.backends.render.detect_layout), named as people say them."""
from __future__ import annotations

FAMILY = {"graph": "feed-forward", "residual": "residual", "unet": "u-net", "unrolled": "recurrent",
          "cell": "recurrent", "seq2seq": "seq2seq"}


def family_name(layout: str | None) -> str:
    return FAMILY.get(layout or "", layout or "")
