#!/usr/bin/env python
"""Generated specs for the scale benchmarks (a script and a module, not a test).

    python tests/benchmarks/gen_specs.py chain 100000 > /tmp/chain100k.yaml
    python tests/benchmarks/gen_specs.py dag 10000 > /tmp/dag10k.yaml

* chain N: N layers written out one per line, conv2d (3x3, padding 1) and relu alternating,
  on an 8x32x32 input, so every layer has the same shape and the same cost.
* dag N: N layers in residual units of three, conv2d -> relu -> add(relu, unit input),
  every add a merge of two branches (the shape of a ResNet written out flat).

Both are flat (no blocks, no repeat): the size of the graph is the size of the file, the
case of imported, unrolled or expanded graphs.
"""
from __future__ import annotations

import sys

HEAD = "archviz: 1\nname: {name}\ninputs: {{x: {{shape: [8, 32, 32]}}}}\nnodes:\n"


def chain_spec(n: int) -> str:
    out = [HEAD.format(name=f"chain{n}")]
    for i in range(n):
        out.append(f"  - {{id: c{i}, op: conv2d, out: 8, kernel: 3, padding: 1}}\n" if i % 2 == 0
                   else f"  - {{id: r{i}, op: relu}}\n")
    return "".join(out)


def dag_spec(n: int) -> str:
    out = [HEAD.format(name=f"dag{n}")]
    prev = "x"
    for i in range(n):
        k = i % 3
        if k == 0:
            unit_in = prev
            out.append(f"  - {{id: c{i}, op: conv2d, in: {prev}, out: 8, kernel: 3, padding: 1}}\n")
            prev = f"c{i}"
        elif k == 1:
            out.append(f"  - {{id: r{i}, op: relu}}\n")
            prev = f"r{i}"
        else:
            out.append(f"  - {{id: a{i}, op: add, in: [{prev}, {unit_in}]}}\n")
            prev = f"a{i}"
    return "".join(out)


KINDS = {"chain": chain_spec, "dag": dag_spec}


def write(kind: str, n: int, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(KINDS[kind](n))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        sys.exit(__doc__)
    sys.stdout.write(KINDS[sys.argv[1]](int(sys.argv[2])))
