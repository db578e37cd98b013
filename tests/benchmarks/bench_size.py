#!/usr/bin/env python
"""Benchmark (a script, not a test): whole-process time of `archviz size` on a 70B-class
config (Llama-2-70B: 80 layers, d_model 8,192, 64 heads, 8 key/value heads, ffn 28,672),
as a ratio against `archviz summary` of the same spec in the same run (the analysis both
share), and against `import archviz` (the floor every command pays).

Each figure is the median of --runs whole processes, output discarded, interleaved so that
a busy machine slows all of them alike.  Run: python tests/benchmarks/bench_size.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LLAMA_70B = ["-p", "d_model=8192", "-p", "layers=80", "-p", "heads=64", "-p", "kv_heads=8", "-p", "ffn=28672"]


def once(cmd) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    cases = {
        "import archviz": [py, "-c", "import archviz.spec, archviz.passes"],
        "summary llama-70B -f json": [py, "-m", "archviz", "summary", "llama", *LLAMA_70B, "-f", "json"],
        "size llama-70B -f json": [py, "-m", "archviz", "size", "llama", *LLAMA_70B, "-f", "json",
                                   "--dtype", "bfloat16", "--mixed-precision", "--devices", "64",
                                   "--strategy", "zero3", "--device-memory", "80GiB"],
        "size llama-70B table, checkpointing": [py, "-m", "archviz", "size", "llama", *LLAMA_70B,
                                                "--dtype", "bfloat16", "--checkpointing"],
    }
    times = {k: [] for k in cases}
    for _ in range(args.runs):
        for k, cmd in cases.items():
            times[k].append(once(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["summary llama-70B -f json"]
    print(f"load average {os.getloadavg()[0]:.2f}; median of {args.runs} whole processes")
    print(f"{'case':40s} {'seconds':>8s} {'/ summary':>10s}")
    for k, v in med.items():
        print(f"{k:40s} {v:8.3f} {v / base:10.2f}")


if __name__ == "__main__":
    main()
