#!/usr/bin/env python
"""Benchmark (a script, not a test): whole-process time of `archviz import` against
`torchinfo.summary`, both on the meta device, in the same run (issue 14's acceptance).

1. torchvision's resnet50 at 3×224×224.
2. Llama-2-7B (specs/llama.yaml at its defaults, d 4096, 32 layers, 32,000 tokens, lowered by
   archviz on the meta device: 6.7 B parameters, no storage) on 512 tokens.

Each figure is the median of --runs whole processes (python -c / python -m, output discarded).
torchvision and torchinfo are reference libraries, never archviz dependencies: run it with a
Python that has them, e.g. PYTHONPATH=$PWD /work/scratch/tv/bin/python tests/benchmarks/bench_import.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGETS = textwrap.dedent('''
    import torch
    import archviz
    from archviz.backends.torch.importer.target import weights_on_meta


    def llama7b():
        with torch.device("meta"):
            return archviz.to_torch(archviz.load("llama", seq=512))


    def resnet50():
        import torchvision
        with weights_on_meta():
            return torchvision.models.resnet50()
''')

TORCHINFO = textwrap.dedent('''
    import sys, torch, torchinfo
    sys.path.insert(0, {folder!r})
    import targets
    m = getattr(targets, {fn!r})()
    x = torch.empty({shape}, dtype={dtype}, device="meta")
    torchinfo.summary(m, input_data=[x], device="meta", verbose=0)
''')


def timed(cmd, runs, env):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        ts.append(time.perf_counter() - t0)
        if r.returncode:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "targets.py"), "w") as f:
            f.write(TARGETS)
        cases = [("resnet50", "image=3x224x224", "(1, 3, 224, 224)", "torch.float32"),
                 ("llama7b", "tokens=512:int64", "(1, 512)", "torch.int64")]
        print(f"{'model':<10} {'archviz import':>15} {'torchinfo.summary':>18} {'ratio':>6}")
        for fn, inp, shape, dtype in cases:
            ours = timed([sys.executable, "-m", "archviz", "import", f"{d}/targets.py:{fn}", "--input", inp,
                          "-o", os.path.join(d, f"{fn}.yaml")], args.runs, env)
            theirs = timed([sys.executable, "-c", TORCHINFO.format(folder=d, fn=fn, shape=shape, dtype=dtype)],
                           args.runs, env)
            print(f"{fn:<10} {ours:>14.2f}s {theirs:>17.2f}s {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
