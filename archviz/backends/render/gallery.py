"""The gallery: every spec drawn with the auto layout into an output folder, and a
Markdown index (gallery.md) showing each picture beside its summary.

The index is rebuilt from its own entries each time one spec is added, so the main job
(which renders one spec at a time) and `archviz gallery` keep the same file: the entries
live in a JSON comment at the end of gallery.md, and an entry whose SVG has gone is
dropped.
"""
from __future__ import annotations

import json
import os
import re

from archviz.backends.png import png_size
from archviz.backends.render.engine import write_file
from archviz.backends.render.common import dims

INDEX = "gallery.md"
_DATA = re.compile(r"<!-- archviz-gallery-data (.*?) -->", re.S)
# a sentence ends at '.', '!' or '?' before a capital, but not after "et al." or "e.g."
_SENTENCE = re.compile(r"(?<!\bal\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bcf\.)(?<!\bvs\.)(?<=[.!?])\s+(?=[A-Z])")


def entry(model, stem: str, layout: str) -> dict:
    t = model.totals
    doc = " ".join((model.graph.doc or "").split())
    first = _SENTENCE.split(doc, maxsplit=1)[0] if doc else ""
    if len(first) > 240:
        first = first[:239].rsplit(" ", 1)[0] + " …"
    return {"stem": stem, "name": model.name, "doc": first, "layout": layout, "batch": model.batch,
            "layers": len(model.layers), "params": t["params"], "macs": t["macs"],
            "inputs": {k: dims(v) for k, v in model.input_shapes.items()},
            "outputs": {k: dims(v) for k, v in model.output_shapes.items()}}


def read_entries(out_dir: str) -> dict:
    path = os.path.join(out_dir, INDEX)
    try:
        with open(path, encoding="utf-8") as f:
            m = _DATA.search(f.read())
        data = json.loads(m.group(1)) if m else []
    except (OSError, ValueError):
        data = []
    return {e["stem"]: e for e in data if isinstance(e, dict) and "stem" in e}


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# the box a picture is fitted into in the index (CSS pixels); a picture is never scaled up
IMG_BOX = (360, 480)


def img_size_attrs(path: str) -> str:
    """width/height for the <img>: the picture fitted into IMG_BOX keeping its aspect ratio
    (a wide strip is bounded by the width, a tall column by the height), never enlarged."""
    size = png_size(path)
    if size is None:
        return f'width="{IMG_BOX[0]}"'
    w, h = size
    scale = min(IMG_BOX[0] / w, IMG_BOX[1] / h, 1.0)
    return f'width="{max(1, round(w * scale))}" height="{max(1, round(h * scale))}"'


def render_index(entries: list, out_dir: str) -> str:
    lines = ["# archviz gallery", "",
             "Every spec drawn with `archviz draw --layout auto`: the layout family (residual, unet, "
             "unrolled, seq2seq, graph) is chosen from the graph's structure. Click a picture for the "
             "full-size SVG. Numbers are exact: parameters as `sum(p.numel())` of the lowered module, "
             "MACs = multiply-accumulates (FLOPs = 2 × MACs).", "",
             "| diagram | summary |", "|:---:|:---|"]
    for e in entries:
        s = e["stem"]
        size = img_size_attrs(os.path.join(out_dir, f"{s}.png"))
        img = f'<a href="{s}.svg"><img src="{s}.png" {size} alt="{_cell(e["name"])}"></a>'
        ins = ", ".join(f"{_cell(k)} {v}" for k, v in e["inputs"].items())
        outs = ", ".join(f"{_cell(k)} {v}" for k, v in e["outputs"].items())
        parts = [f"**{_cell(e['name'])}** · {e['layout']} layout"]
        if e.get("doc"):
            parts.append(_cell(e["doc"]))
        n = e["layers"]
        parts.append(f"{n:,} layer{'' if n == 1 else 's'} · {e['params']:,} params · {e['macs']:,} MACs "
                     f"(batch {e['batch']})")
        parts.append(f"{ins} → {outs}")
        links = [f"[SVG]({s}.svg)", f"[PNG]({s}.png)"]
        if os.path.exists(os.path.join(out_dir, f"{s}.md")):
            links.append(f"[report]({s}.md)")
        parts.append(" · ".join(links))
        lines.append(f"| {img} | " + "<br>".join(parts) + " |")
    data = json.dumps(entries, ensure_ascii=False, sort_keys=True).replace("--", "-\\u002d")
    lines += ["", f"<!-- archviz-gallery-data {data} -->", ""]
    return "\n".join(lines)


def write_index(out_dir: str, new_entries: list) -> str:
    """Merge entries into out_dir/gallery.md (by stem; stems without an SVG are dropped)."""
    entries = read_entries(out_dir)
    for e in new_entries:
        entries[e["stem"]] = e
    keep = [entries[k] for k in sorted(entries) if os.path.exists(os.path.join(out_dir, f"{k}.svg"))]
    path = os.path.join(out_dir, INDEX)
    write_file(path, render_index(keep, out_dir))
    return path


def update_index(out_dir: str, stem: str, model, layout: str) -> str:
    return write_index(out_dir, [entry(model, stem, layout)])
