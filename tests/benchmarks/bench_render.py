"""Diagram speed (a script, not a test): `python tests/benchmarks/bench_render.py`.

Times DOT generation plus Graphviz layout and SVG output for

    resnet152 collapsed   (default: residual layout, identical blocks drawn once ×N)   goal < 3 s
    resnet152 expanded    (--expand: every block drawn)                               goal < 10 s
    an Elman RNN unrolled for T = 200 steps                                           goal < 10 s

and the generic graph layout of resnet152 (collapsed and --expand) for comparison.
ResNet-152 is specs/resnet152.yaml when that exists, else the bottleneck network below
(He et al. 2016, Table 1: depths 3, 8, 36, 3).  Graphviz's layout limits (nslimit,
nslimit1, mclimit, searchsize) are set by the layouts for graphs of more than 250 boxes.

Figures measured on the development machine (Graphviz 2.43.0, Python 3.11; seconds for
DOT generation + `dot -Tsvg`, best of 3; the layout limits never had to bite):

    case                           edges  seconds   goal
    resnet152 residual collapsed      66     0.02   < 3 s
    resnet152 residual --expand      360     0.05   < 10 s
    resnet152 graph collapsed         64     0.02   < 3 s
    resnet152 graph --expand         566     0.07   < 10 s
    rnn unrolled T=200               605     0.09   < 10 s

Analysing the spec (archviz.load) takes 0.13 s for resnet152 on top. The script exits 1
when a case misses its goal.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

RESNET152 = """
archviz: 1
name: resnet152
doc: ResNet-152 (bottleneck blocks), for the diagram benchmark.
params: {num_classes: 1000, widths: [64, 128, 256, 512], depths: [3, 8, 36, 3]}
inputs:
  image: {shape: [3, 224, 224]}
blocks:
  bottleneck:
    params: {out: {type: int}, stride: {type: int, default: 1}, proj: {type: bool, default: false}}
    inputs: [x]
    nodes:
      - {id: conv1, op: conv2d, out: "${out}", kernel: 1, bias: false}
      - {id: bn1, op: batchnorm2d}
      - {id: relu1, op: relu}
      - {id: conv2, op: conv2d, out: "${out}", kernel: 3, stride: "${stride}", padding: 1, bias: false}
      - {id: bn2, op: batchnorm2d}
      - {id: relu2, op: relu}
      - {id: conv3, op: conv2d, out: "${out * 4}", kernel: 1, bias: false}
      - {id: bn3, op: batchnorm2d}
      - {id: down, op: conv2d, in: x, out: "${out * 4}", kernel: 1, stride: "${stride}", bias: false, when: "${proj}"}
      - {id: down_bn, op: batchnorm2d, when: "${proj}"}
      - {id: add, op: add, in: [bn3, down_bn]}
      - {id: relu3, op: relu}
  stage:
    params: {out: {type: int}, n: {type: int}, stride: {type: int, default: 1}}
    inputs: [x]
    nodes:
      - {id: first, op: bottleneck, out: "${out}", stride: "${stride}", proj: true}
      - {id: rest, op: bottleneck, repeat: "${n - 1}", out: "${out}"}
nodes:
  - {id: conv1, op: conv2d, in: image, out: 64, kernel: 7, stride: 2, padding: 3, bias: false}
  - {id: bn1, op: batchnorm2d}
  - {id: relu, op: relu}
  - {id: maxpool, op: maxpool2d, kernel: 3, stride: 2, padding: 1}
  - {id: layer, op: stage, repeat: {n: 4, var: s}, out: "${widths[s]}", n: "${depths[s]}",
     stride: "${1 if s == 0 else 2}"}
  - {id: avgpool, op: global_avgpool}
  - {id: flatten, op: flatten}
  - {id: fc, op: linear, out: "${num_classes}"}
outputs:
  logits: {from: fc, expect: ["${num_classes}"]}
"""

RNN = """
archviz: 1
name: rnn200
params: {T: 200}
inputs:
  x: {shape: ["${T}", 32]}
nodes:
  - {id: rnn, op: rnn, out: 64}
  - {id: out, op: linear, out: 10}
outputs:
  y: {from: out}
"""


def _spec(text: str, name: str, tmp: str) -> str:
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def timed(model, layout, repeat=3, **kw):
    from archviz.backends.render import to_dot
    from archviz.backends.render.engine import render_bytes
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        text = to_dot(model, layout, **kw)
        render_bytes(text, "svg")
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, text.count("->")


def main() -> int:
    import archviz
    with tempfile.TemporaryDirectory() as tmp:
        r152 = os.path.join(ROOT, "specs", "resnet152.yaml")
        if not os.path.exists(r152):
            r152 = _spec(RESNET152, "resnet152", tmp)
        t0 = time.perf_counter()
        m = archviz.load(r152)
        t1 = time.perf_counter()
        rnn = archviz.load(_spec(RNN, "rnn200", tmp))
        t2 = time.perf_counter()
        print(f"analysis (archviz.load, not included below): resnet152 {t1 - t0:.2f} s, rnn T=200 {t2 - t1:.2f} s")
        cases = [
            ("resnet152 residual collapsed", m, "residual", {}, 3.0),
            ("resnet152 residual --expand", m, "residual", {"expand": True}, 10.0),
            ("resnet152 graph collapsed", m, "graph", {}, 3.0),
            ("resnet152 graph --expand", m, "graph", {"expand": True}, 10.0),
            ("rnn unrolled T=200", rnn, "unrolled", {}, 10.0),
        ]
        print(f"{'case':34} {'edges':>6} {'seconds':>8}  goal")
        ok = True
        for name, model, layout, kw, goal in cases:
            dt, edges = timed(model, layout, **kw)
            flag = "ok" if dt < goal else "SLOW"
            ok &= dt < goal
            print(f"{name:34} {edges:6d} {dt:8.2f}  < {goal:g} s {flag}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
