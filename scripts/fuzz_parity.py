#!/usr/bin/env python
"""A parity campaign: random single ops and small op chains, archviz against torch.

    python scripts/fuzz_parity.py --seed 1 --cases 5000 [--out docs/reliability_parity.md]

The generator and the judge are tests/fuzz/parity.py's (the CI test runs the same ones
under hypothesis with a small fixed budget).  Case i of seed s is reproducible alone:

    python scripts/fuzz_parity.py --seed 1 --case 1234        # print its spec and verdict

Cases run in worker subprocesses, a batch each, under an address-space limit
(RLIMIT_AS); the parent gives every case a timeout.  A case that crashes its worker
(a segmentation fault, a MemoryError that escapes, a signal) or runs past the timeout is
counted, the worker is replaced, and the campaign goes on.  The summary (markdown, on
stdout and in --out) gives the cases, agreements and disagreements by class, uncaught
exceptions, crashes, hangs, the slowest case and the workers' peak memory.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import queue
import resource
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- worker --------------------------------------------------------------------------------
def worker(seed: int, start: int, count: int, inject: dict | None = None) -> None:
    sys.path.insert(0, ROOT)
    import torch
    torch.set_num_threads(1)
    from tests.fuzz.parity import Case, Node, case_for, judge
    from tests.scratch import scratch_dir
    directory = scratch_dir("archviz-parity-")
    # warm up (lazy imports of the lowering, verify, explain), so a case's time is its own
    judge(Case(2, {"x0": [3, 6, 6], "x1": [4, 3]}, [Node("n0", "conv2d", ["x0"], {"out": 2, "kernel": 3}),
                                                     Node("n1", "lstm", ["x1"], {"out": 2})]), directory)
    out = sys.stdout
    for i in range(start, start + count):
        out.write(json.dumps({"start": i}) + "\n")
        out.flush()
        if inject and inject.get(i) == "crash":     # the harness's own test: a worker that dies
            os.abort()
        if inject and inject.get(i) == "hang":
            time.sleep(10 ** 6)
        if inject and inject.get(i) == "memory":
            bytearray(2 ** 40)                       # far past RLIMIT_AS: a MemoryError escapes
        case = case_for(seed, i)
        try:
            v = judge(case, directory)
            rec = {"i": i, "agree": v.agree, "klass": v.klass, "detail": v.detail, "uncaught": v.uncaught,
                   "seconds": v.seconds}
        except Exception as e:      # noqa: BLE001 — a failure of the harness itself is counted too
            rec = {"i": i, "agree": False, "klass": "harness error", "detail": f"{type(e).__name__}: {e}",
                   "uncaught": None, "seconds": 0.0}
        rec["short"] = case.short()
        rec["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out.write(json.dumps(rec) + "\n")
        out.flush()


# -- parent ----------------------------------------------------------------------------------
def _limits(mem_mb: int):
    def apply():
        lim = mem_mb * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    return apply


def _reader(stream, q):
    for line in stream:
        q.put(line)
    q.put(None)


def run_campaign(seed: int, cases: int, batch: int, timeout: float, mem_mb: int, progress=None,
                 inject: str = "") -> list[dict]:
    """Every case's record (see worker); crashes and hangs become records of their own."""
    records: list[dict] = []
    i = 0
    while i < cases:
        count = min(batch, cases - i)
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(seed),
                                 "--start", str(i), "--count", str(count)] + (["--inject", inject] if inject else []),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_limits(mem_mb), cwd=ROOT)
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
        err_lines: list[str] = []
        threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True).start()
        current, started = None, time.monotonic()
        startup = 60.0                      # importing torch under a loaded machine
        end = i + count
        while True:
            limit = (timeout if current is not None else startup) - (time.monotonic() - started)
            try:
                line = q.get(timeout=max(limit, 0.01))
            except queue.Empty:             # a hang: kill the worker, count the case, go on
                proc.kill()
                proc.wait()
                if current is not None:
                    records.append({"i": current, "agree": False, "klass": "hang",
                                    "detail": f"no verdict within {timeout} s", "uncaught": None,
                                    "seconds": timeout, "short": ""})
                    i = current + 1
                else:
                    raise SystemExit(f"a worker did not start within {startup} s: {''.join(err_lines)[-2000:]}")
                break
            if line is None:                # the worker ended
                proc.wait()
                if current is not None:     # it died during a case
                    tail = "".join(err_lines)[-600:].strip().splitlines()
                    records.append({"i": current, "agree": False, "klass": "crash",
                                    "detail": f"worker exit {proc.returncode}: " + (tail[-1] if tail else ""),
                                    "uncaught": f"crash (exit {proc.returncode})", "seconds": 0.0, "short": ""})
                    i = current + 1
                elif proc.returncode != 0:
                    raise SystemExit(f"worker failed: {''.join(err_lines)[-2000:]}")
                else:
                    i = end
                break
            rec = json.loads(line)
            if "start" in rec:
                current, started = rec["start"], time.monotonic()
                continue
            records.append(rec)
            current = None
            if progress:
                progress(len(records), cases)
    return records


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def summary(records: list[dict], seed: int, cases: int, timeout: float, mem_mb: int, wall: float) -> str:
    from tests.fuzz.parity import DELIBERATE, EMPTY, TORCH_CRASHES
    import torch
    klass = collections.Counter(r["klass"] for r in records)
    agree = [r for r in records if r["agree"]]
    bad = [r for r in records if not r["agree"]]
    uncaught = [r for r in records if r.get("uncaught")]
    hangs = [r for r in records if r["klass"] == "hang"]
    crashes = [r for r in records if r["klass"] == "crash"]
    slow = max(records, key=lambda r: r["seconds"]) if records else None
    peak = max((r.get("rss_kb", 0) for r in records), default=0)
    over5 = sum(1 for r in records if r["seconds"] > 5)
    lines = [
        "# Parity campaign: archviz against torch",
        "",
        f"`python scripts/fuzz_parity.py --seed {seed} --cases {cases}` — torch {torch.__version__}, "
        f"Python {platform.python_version()}; each batch of cases in a subprocess limited to {mem_mb} MB of "
        f"address space (RLIMIT_AS), {timeout:g} s per case. Wall time {wall:.0f} s.",
        "",
        "Random single ops and small chains (every op of the registry, valid and invalid attributes, random "
        "input shapes), compiled from spec text by archviz and run node by node through independent torch "
        "references (tests/ops/torch_ref.py) under FlopCounterMode. Compared: accept/refuse (at the same "
        "node), every node's output shapes, params and buffers, 2 × MACs against torch's FLOP count, where "
        "torch's training mode raises, archviz's own lowering (`verify` on the CPU), and that `explain` and "
        "the receptive-field pass run.",
        "",
        "| cases | agreements | disagreements | uncaught exceptions | crashes | hangs (> %g s) | cases over 5 s "
        "| slowest case | peak memory (worker RSS) |" % timeout,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(records)} | {len(agree)} | {len(bad)} | {len(uncaught)} | {len(crashes)} | {len(hangs)} | {over5} "
        f"| {slow['seconds']:.2f} s (case {slow['i']}) | {_mb(peak)} |" if slow else "| 0 | | | | | | | | |",
        "",
        "## Agreements by class",
        "",
        "| class | cases |",
        "|---|---:|",
    ]
    for k, n in sorted(((k, n) for k, n in klass.items() if any(r["agree"] for r in records if r["klass"] == k)),
                       key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {n} |")
    lines += ["", "## Disagreements by class", ""]
    if not bad:
        lines.append("None.")
    else:
        lines += ["| class | cases | examples (case: spec, detail) |", "|---|---:|---|"]
        by = collections.defaultdict(list)
        for r in bad:
            by[r["klass"]].append(r)
        for k, rs in sorted(by.items(), key=lambda kv: -len(kv[1])):
            ex = "<br>".join(f"{r['i']}: `{r.get('short', '')}` — {r['detail'][:300]}".replace("|", "\\|")
                             for r in rs[:3])
            lines.append(f"| {k} | {len(rs)} | {ex} |")
    lines += ["", "## Deliberate refusals (archviz refuses on purpose what torch runs; the error says why)", ""]
    for name, _, marker in DELIBERATE:
        says = " or ".join(f"“{m}”" for m in ((marker,) if isinstance(marker, str) else marker))
        lines.append(f"- {name} (the error says {says}): {klass.get('deliberate: ' + name, 0)} cases")
    lines.append(f"- {EMPTY}: {klass.get('deliberate: ' + EMPTY, 0)} cases")
    lines += ["", "Not compared (torch itself crashes the process on these inputs; archviz's answer is "
                  "still checked):", ""]
    for why, _ in TORCH_CRASHES:
        lines.append(f"- {why}: {klass.get('not compared: ' + why, 0)} cases")
    lines += ["", f"Reproduce one case: `python scripts/fuzz_parity.py --seed {seed} --case N`.", ""]
    return "\n".join(lines)


def show_case(seed: int, index: int) -> None:
    sys.path.insert(0, ROOT)
    from tests.fuzz.parity import case_for, judge
    case = case_for(seed, index)
    print(case.spec())
    from tests.scratch import scratch_dir
    v = judge(case, scratch_dir("archviz-parity-"))
    print(f"{'agree' if v.agree else 'DISAGREE'}: {v.klass}" + (f" — {v.detail}" if v.detail else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=250, help="cases per worker subprocess")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    ap.add_argument("--mem-mb", type=int, default=4096, help="address-space limit per worker (RLIMIT_AS)")
    ap.add_argument("--out", help="also write the markdown summary to this file")
    ap.add_argument("--records", help="write every case's record (JSON lines) to this file")
    ap.add_argument("--case", type=int, help="show one case (its spec and verdict) and stop")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--inject", default="", help=argparse.SUPPRESS)   # "3:crash,5:hang" (tests)
    args = ap.parse_args(argv)
    if args.worker:
        inject = {int(k): v for k, v in (x.split(":") for x in args.inject.split(",") if x)}
        worker(args.seed, args.start, args.count, inject)
        return 0
    if args.case is not None:
        show_case(args.seed, args.case)
        return 0
    sys.path.insert(0, ROOT)
    t0 = time.monotonic()

    def progress(done, total):
        if done % 100 == 0 or done == total:
            print(f"  {done}/{total} cases", file=sys.stderr, flush=True)
    records = run_campaign(args.seed, args.cases, args.batch, args.timeout, args.mem_mb, progress, args.inject)
    text = summary(records, args.seed, args.cases, args.timeout, args.mem_mb, time.monotonic() - t0)
    print(text)
    if args.records:
        with open(args.records, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if all(r["agree"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
