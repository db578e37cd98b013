#!/usr/bin/env python
"""Benchmark (a script, not a test): whole-process time of `archviz summary`.

1. resnet50 at 224×224 and at 4096×4096 — static analysis never allocates a tensor, so
   the two must cost the same (the ratio is printed; ~1.0 expected).
2. a generated 10,000-node chain (conv2d/relu alternating, written out as 10,000 nodes),
   compared with resnet50 in the same run.
3. `import archviz` alone, the floor every command pays.

Each figure is the median of --runs whole processes (`python -m archviz summary ...
--format json`, output discarded).  Run: python tests/benchmarks/bench_summary.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(cmd, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        ts.append(time.perf_counter() - t0)
        if r.returncode:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return statistics.median(ts)


def chain_spec(n: int, tmp: str) -> str:
    lines = ["archviz: 1", "name: chain", "inputs: {x: {shape: [16, 32, 32]}}", "nodes:"]
    for i in range(n):
        if i % 2 == 0:
            lines.append(f"  - {{id: c{i}, op: conv2d, out: 16, kernel: 3, padding: 1}}")
        else:
            lines.append(f"  - {{id: r{i}, op: relu}}")
    path = os.path.join(tmp, "chain.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=10_000)
    args = ap.parse_args()
    py = sys.executable
    summary = [py, "-m", "archviz", "summary", "--format", "json"]
    spec = os.path.join(ROOT, "specs", "resnet50.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        chain = chain_spec(args.nodes, tmp)
        t_import = timed([py, "-c", "import archviz.spec, archviz.passes"], args.runs)
        t224 = timed(summary + [spec, "-p", "size=224"], args.runs)
        t4096 = timed(summary + [spec, "-p", "size=4096"], args.runs)
        tchain = timed(summary + [chain], max(1, args.runs // 2))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {args.runs} runs (whole process)")
    print(f"import archviz core                     {t_import:7.3f} s")
    print(f"summary resnet50 @ 224x224              {t224:7.3f} s")
    print(f"summary resnet50 @ 4096x4096            {t4096:7.3f} s   ratio 4096/224 = {t4096 / t224:.3f}")
    print(f"summary {args.nodes:,}-node chain            {tchain:7.3f} s   ratio chain/resnet50 = {tchain / t224:.2f}")


if __name__ == "__main__":
    main()
