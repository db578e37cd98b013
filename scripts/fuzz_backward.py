#!/usr/bin/env python
"""A campaign for what backward keeps: the parity fuzzer's random ops and op chains, archviz's
train_costs against torch's saved_tensors_hooks (tests/fuzz/backward.py).

    python scripts/fuzz_backward.py --seed 1 --cases 2000

Prints each disagreeing case's spec (the first of each op chain) and a summary."""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cases", type=int, default=1000)
    o = p.parse_args()
    sys.path.insert(0, ROOT)
    import torch
    torch.set_num_threads(1)
    from tests.fuzz.backward import judge_backward
    from tests.fuzz.parity import case_for
    agree = refused = 0
    bad: collections.Counter = collections.Counter()
    for i in range(o.cases):
        case = case_for(o.seed, i)
        verdict = judge_backward(case, tempfile.mkdtemp())
        if verdict is None:
            refused += 1
        elif verdict[0] == verdict[1]:
            agree += 1
        else:
            ops = "+".join(n.op for n in case.nodes)
            bad[ops] += 1
            if bad[ops] == 1:
                print(f"case {i}: torch {verdict[0]}, archviz {verdict[1]}\n{case.spec()}", flush=True)
    print(f"seed {o.seed}: {o.cases} cases, {agree} agree, {refused} refused (archviz or torch), "
          f"{sum(bad.values())} disagree {dict(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
