"""Snapshot of everything archviz prints for the bundled and test specs, for refactors
that must change nothing: `python scripts/snapshot.py DIR` writes, for every spec in
specs/ and tests/render/specs/, its JSON summary, its explain text, and the DOT of every
layout (collapsed and --expand), plus the explain lines of every op's registry samples.

    python scripts/snapshot.py /tmp/snap-before
    ... refactor ...
    python scripts/snapshot.py /tmp/snap-after && diff -r /tmp/snap-before /tmp/snap-after

A layout that refuses a spec writes its error text instead of DOT, so a change in what
is refused shows up too.
"""
from __future__ import annotations

import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from archviz import _load  # noqa: E402
from archviz.backends.explain import explain_node  # noqa: E402
from archviz.backends.render import LAYOUTS, to_dot  # noqa: E402
from archviz.errors import ArchvizError  # noqa: E402
from archviz.ops import registry  # noqa: E402

VARIANTS = [dict(), dict(expand=True), dict(depth=1)]


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def snap_spec(path: str, out: str) -> None:
    stem = path.replace(os.sep, "__").removesuffix(".yaml")
    try:
        m = _load(path)
    except ArchvizError as e:
        _write(os.path.join(out, stem + ".error.txt"), str(e))
        return
    _write(os.path.join(out, stem + ".json"), m.to_json())
    lines = []
    for l in m.layers:
        lines += explain_node(m, l.id)
    _write(os.path.join(out, stem + ".explain.txt"), "\n".join(lines))
    for layout in LAYOUTS:
        for kw in VARIANTS:
            tag = layout + "".join(f".{k}" for k in kw)
            try:
                text = to_dot(m, layout=layout, **kw)
            except ArchvizError as e:
                text = f"refused: {e.code} {e.message}"
            _write(os.path.join(out, f"{stem}.{tag}.dot"), text)


def snap_samples(out: str) -> None:
    lines = []
    for name in sorted(registry):
        op = registry[name]
        for i, case in enumerate(op.samples):
            ins = [tuple(s) for s in case["inputs"]]
            lines.append(f"== {name} #{i} {case['attrs']} {ins}")
            try:
                a = op.attrs_of(case["attrs"])
                outs = op.evaluate(a, ins)
                lines.append(f"   outs {outs}")
                for ln in op.explain(a, ins, outs):
                    lines.append(f"   {ln.what} | {ln.formula} | {ln.numbers} | {ln.value!r}")
                lines.append(f"   params {op.count_params(a, ins)} macs {op.count_macs(a, ins, outs)} "
                             f"ew {op.count_elementwise(a, ins, outs)}")
            except ArchvizError as e:
                lines.append(f"   error {e.code} {e.message}")
    _write(os.path.join(out, "op_samples.txt"), "\n".join(lines))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = os.path.abspath(argv[0])
    os.makedirs(out, exist_ok=True)
    os.chdir(ROOT)      # spec paths relative to the checkout: snapshots of two worktrees compare
    specs = sorted(glob.glob(os.path.join("specs", "*.yaml")) + glob.glob(os.path.join("tests", "render", "specs", "*.yaml")))
    for p in specs:
        snap_spec(p, out)
    snap_samples(out)
    print(f"{len(specs)} specs and {len(registry)} ops snapshotted into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
