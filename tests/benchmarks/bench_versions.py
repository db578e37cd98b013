#!/usr/bin/env python
"""Benchmark (a script, not a test): the same `archviz summary` runs on two checkouts, as a
ratio measured in one run, interleaved (A, B, A, B, ...) so that load on the machine falls
on both alike.

    git worktree add /tmp/before <commit>
    python tests/benchmarks/bench_versions.py /tmp/before . --runs 7

Cases: resnet152 (the largest bundled spec), and a generated 5,000-node conv/relu chain.
Each figure is the median of --runs whole processes (`python -m archviz summary SPEC -f json`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def chain_spec(n: int) -> str:
    lines = ["archviz: 1", "name: chain", "inputs: {x: {shape: [8, 32, 32]}}", "nodes:"]
    for i in range(n):
        lines.append(f"  - {{id: c{i}, op: conv2d, out: 8, kernel: 3, padding: 1}}" if i % 2 == 0
                     else f"  - {{id: r{i}, op: relu}}")
    return "\n".join(lines) + "\n"


def run_once(root: str, spec: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", spec, "-f", "json"], cwd=root,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "PYTHONPATH": root})
    if r.returncode:
        raise SystemExit(f"{root}: {r.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="checkout A (the baseline)")
    ap.add_argument("b", help="checkout B")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chain", type=int, default=5000)
    args = ap.parse_args()
    a, b = os.path.abspath(args.a), os.path.abspath(args.b)
    with tempfile.TemporaryDirectory() as tmp:
        chain = os.path.join(tmp, "chain.yaml")
        with open(chain, "w") as f:
            f.write(chain_spec(args.chain))
        cases = {"resnet152": "specs/resnet152.yaml", f"chain {args.chain}": chain}
        for name, spec in cases.items():
            ta, tb = [], []
            for _ in range(args.runs):
                ta.append(run_once(a, spec))
                tb.append(run_once(b, spec))
            ma, mb = statistics.median(ta), statistics.median(tb)
            print(f"{name:>12}: A {ma:.3f} s   B {mb:.3f} s   B/A = {mb / ma:.3f}")


if __name__ == "__main__":
    main()
