#!/usr/bin/env python
"""Benchmark (a script, not a test): the same whole-process archviz commands on two
checkouts, as ratios measured in one run, interleaved (A B, then B A, ...) so that load on
the machine falls on both alike.

    git worktree add /tmp/before <commit>        # or: git archive <commit> | tar -x -C /tmp/before
    python tests/benchmarks/bench_versions.py /tmp/before . --runs 5
    python tests/benchmarks/bench_versions.py /tmp/before . --cases dag10000,resnet50 --runs 9

Cases (issue 17): `summary SPEC -f json` of generated specs (gen_specs.py: a conv/relu
chain and a DAG of residual adds, 1,000, 10,000 and 100,000 layers, written out flat), of
specs/resnet50.yaml and specs/resnet152.yaml; `summary` and `rf` as tables and as JSON
(resnet152, the 10,000-layer DAG: item 5 asks the tables within 1.2x of the JSON), and
`report` over the bundled specs (--no-diagrams: Graphviz is not archviz's cost). Each
figure is the median over --runs of the wall time and of the peak RSS of the whole process
(os.wait4's ru_maxrss), and of its CPU time (user +
system: on a busy machine the wall time waits for a core, the CPU time much less); B/A is
the ratio of the medians.
Output goes to /dev/null (tables: COLUMNS=160, as in a pipe). Both checkouts are
byte-compiled first and run with their bytecode caches, as an installed package is
(PYTHONDONTWRITEBYTECODE, where set, would make every run compile ~100 modules: 0.1-0.3 s
that is not archviz's). The load average is printed before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_specs  # noqa: E402

GENERATED = [(k, n) for n in (1000, 10_000, 100_000) for k in ("chain", "dag")]


def cases(tmp: str, out_dir: str) -> dict:
    c = {}
    for kind, n in GENERATED:
        path = os.path.join(tmp, f"{kind}{n}.yaml")
        c[f"{kind}{n}"] = lambda p=path, kind=kind, n=n: (gen_specs.write(kind, n, p),
                                                          ["summary", p, "-f", "json"])[1]
    for net in ("resnet50", "resnet152"):
        c[net] = lambda net=net: ["summary", f"specs/{net}.yaml", "-f", "json"]
    for fmt in ("table", "json"):
        c[f"resnet152-summary-{fmt}"] = lambda fmt=fmt: ["summary", "specs/resnet152.yaml", "-f", fmt]
        c[f"resnet152-rf-{fmt}"] = lambda fmt=fmt: ["rf", "specs/resnet152.yaml"] + (["-f", "json"] if fmt == "json" else [])
        c[f"dag10000-rf-{fmt}"] = lambda fmt=fmt: ["rf", os.path.join(tmp, "dag10000.yaml")] + (
            ["-f", "json"] if fmt == "json" else [])
        c[f"dag10000-summary-{fmt}"] = lambda fmt=fmt: ["summary", os.path.join(tmp, "dag10000.yaml"), "-f", fmt]
    c["report"] = lambda: ["report", "specs", "-o", out_dir, "--no-diagrams"]
    return c


def run_once(root: str, args: list) -> tuple[float, int, float]:
    """(seconds, peak RSS in MB, CPU seconds: user + system) of one whole process."""
    env = {**os.environ, "PYTHONPATH": root, "COLUMNS": "160"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "archviz", *args], cwd=root, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{root}: archviz {' '.join(args)} failed:\n{err.decode()[-2000:]}")
    return dt, ru.ru_maxrss // 1024, ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="checkout A (the baseline)")
    ap.add_argument("b", help="checkout B")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    ap.add_argument("--runs-100k", type=int, default=None, help="runs of the 100,000-layer cases (default: --runs)")
    args = ap.parse_args()
    a, b = os.path.abspath(args.a), os.path.abspath(args.b)
    for root in (a, b):
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(root, "archviz")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        table = cases(tmp, os.path.join(tmp, "out"))
        gen_specs.write("dag", 10_000, os.path.join(tmp, "dag10000.yaml"))
        names = args.cases.split(",") if args.cases else list(table)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; one of {', '.join(table)}")
        print(f"A = {a}\nB = {b}\npython {sys.version.split()[0]}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.2f}; medians of whole processes, interleaved")
        print(f"{'case':>24} {'runs':>4} {'A s':>8} {'B s':>8} {'B/A':>6} {'A MB':>7} {'B MB':>7} {'B/A':>6}"
              f" {'A cpu':>7} {'B cpu':>7} {'B/A':>6}")
        for name in names:
            cmd = table[name]()
            runs = args.runs_100k if args.runs_100k and "100000" in name else args.runs
            ta, tb, ma, mb, ca, cb = [], [], [], [], [], []
            for i in range(runs):
                order = [(a, ta, ma, ca), (b, tb, mb, cb)] if i % 2 == 0 else [(b, tb, mb, cb), (a, ta, ma, ca)]
                for root, ts, ms, cs in order:
                    t, m, c = run_once(root, cmd)
                    ts.append(t)
                    ms.append(m)
                    cs.append(c)
            t_a, t_b = statistics.median(ta), statistics.median(tb)
            m_a, m_b = statistics.median(ma), statistics.median(mb)
            c_a, c_b = statistics.median(ca), statistics.median(cb)
            print(f"{name:>24} {runs:>4} {t_a:8.3f} {t_b:8.3f} {t_b / t_a:6.3f} {m_a:7.0f} {m_b:7.0f} {m_b / m_a:6.3f}"
                  f" {c_a:7.3f} {c_b:7.3f} {c_b / c_a:6.3f}", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
