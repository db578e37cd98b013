#!/usr/bin/env python3
"""Fuzz campaign over mutated specs: archviz must exit 0, 1 (a located message) or 2 (usage),
within 5 s and 1 GB, never with a traceback.

    python scripts/fuzz_specs.py --seed 1 --cases 10000 [--jobs 1] [--out outputs/fuzz]

Case i of seed S is always the same mutated spec (tests/fuzz/mutate.py: make_case(S, i)),
whatever the number of jobs or the order. Each case is written to a temporary folder and
`summary -f json`, `validate`, `explain`, `rf` and `draw -o X.dot` run on it, each in a
forked child with an address-space limit and a hard timeout (tests/fuzz/runner.py): a
crash or a hang is counted, never fatal to the run.

Writes OUT/results.jsonl (one line per command run), OUT/summary.md (counts, failure
classes, hangs, memory), OUT/cases/ (each failing case as it was run) and OUT/repros/ (one minimized reproducer per failure class, with
a README). Exit status: 0 when no failure was found, 1 otherwise.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import pickle
import platform
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz import runner as R  # noqa: E402
from tests.fuzz.mutate import make_case, write_case  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0, help="first case index (to resume or split a campaign)")
    ap.add_argument("--jobs", type=int, default=1, help="cases run at once (each command is its own child)")
    ap.add_argument("--out", default=str(ROOT / "outputs" / "fuzz"))
    ap.add_argument("--commands", default=",".join(R.COMMANDS), help="comma-separated: " + ",".join(R.COMMANDS))
    ap.add_argument("--hang", type=float, default=R.HANG_S, help="seconds over which a run is a hang")
    ap.add_argument("--timeout", type=float, default=R.HARD_TIMEOUT_S, help="seconds after which a child is killed")
    ap.add_argument("--mem-limit", type=float, default=R.MEM_LIMIT / 2 ** 30, help="GiB of address space per child")
    ap.add_argument("--mem-report", type=float, default=R.MEM_REPORT / 2 ** 30, help="GiB of peak RSS reported")
    ap.add_argument("--encoding", default="utf-8", help="encoding of the children's console (e.g. ascii)")
    ap.add_argument("--no-skip", action="store_true",
                    help="run every command even after `validate` hung (default: skip, they hang in the same load)")
    ap.add_argument("--minimize", type=float, default=60.0, metavar="SECONDS",
                    help="time to shrink each failure class's reproducer (0: save it unshrunk)")
    ap.add_argument("--repro-dir", default=None, help="where reproducers go (default OUT/repros)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--summarize-only", action="store_true",
                    help="do not run: count OUT/results.jsonl again, re-run each class's example and minimize it")
    return ap.parse_args(argv)


class Slot:
    """One case in flight: its folder, the commands left, the child running now."""

    def __init__(self, case, work: str, commands, limits, skip):
        self.case, self.work, self.commands, self.limits, self.skip = case, work, list(commands), limits, skip
        self.spec = write_case(case, Path(work) / "spec")
        self.results: list = []
        self.running = None

    def next(self) -> bool:
        if not self.commands:
            return False
        cmd = self.commands.pop(0)
        d = os.path.join(self.work, "run", cmd)
        os.makedirs(d, exist_ok=True)
        self.running = R.Running(cmd, R.argv_for(cmd, self.spec, d, self.case.options), d, self.limits)
        return True

    def done(self, res) -> bool:
        self.results.append(res)
        self.running = None
        if self.skip and res.cmd == "validate" and "hang" in res.flags:
            self.commands = []
        return not self.next()


def run_campaign(args, on_case) -> None:
    limits = R.Limits(args.hang, args.timeout, int(args.mem_limit * 2 ** 30), int(args.mem_report * 2 ** 30),
                      args.encoding)
    commands = [c for c in args.commands.split(",") if c]
    tmp = tempfile.mkdtemp(prefix="archviz-fuzz-")
    todo = iter(range(args.start, args.start + args.cases))
    sel = selectors.DefaultSelector()
    slots = {}
    try:
        def fill():
            while len(slots) < args.jobs:
                i = next(todo, None)
                if i is None:
                    return
                s = Slot(make_case(args.seed, i), os.path.join(tmp, f"case-{i}"), commands, limits,
                         not args.no_skip)
                if s.next():
                    slots[s.running.fd] = s
                    sel.register(s.running.fd, selectors.EVENT_READ)
        fill()
        while slots:
            now = time.monotonic()
            timeout = max(0.0, min(s.running.wake_at() for s in slots.values()) - now)
            events = sel.select(timeout=timeout)
            ready = {key.fd for key, _ in events}
            for fd, s in list(slots.items()):
                r = s.running
                ended = fd in ready and r.read()
                if not ended:
                    ended = r.on_time(time.monotonic())
                if not ended:
                    continue
                sel.unregister(fd)
                del slots[fd]
                res = r.finish()
                if s.done(res):
                    on_case(s.case, s.results)
                    shutil.rmtree(s.work, ignore_errors=True)
                else:
                    slots[s.running.fd] = s
                    sel.register(s.running.fd, selectors.EVENT_READ)
            fill()
    finally:
        sel.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "archviz"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return rev + (" (archviz/ modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _mb(n) -> str:
    return f"{n / 2 ** 20:,.0f} MB"


def new_stats() -> dict:
    return {"cases": set(), "runs": 0, "status": collections.Counter(),
            "by_cmd": collections.defaultdict(collections.Counter), "exit": collections.Counter(), "classes": {},
            "hangs": [], "rss": [], "slow": [], "codes": collections.Counter(), "unlocated": collections.Counter(),
            "located": 0, "exit1": 0, "failed_cases": set()}


def result_of(rec: dict) -> R.Result:
    fields = {k: rec[k] for k in R.Result.__dataclass_fields__ if k in rec}
    return R.Result(**fields)


def record(stats: dict, rec: dict) -> None:
    """Count one command run (a results.jsonl record)."""
    res = result_of(rec)
    i = rec["case"]
    stats["cases"].add(i)
    stats["runs"] += 1
    stats["status"][res.status] += 1
    stats["by_cmd"][res.cmd][res.status] += 1
    stats["exit"][res.exit if res.exit is not None else "uncaught (a traceback, exit 1)" if res.exc_type
                  else "killed (hang)" if "hang" in res.flags else "signal"] += 1
    stats["rss"].append(res.peak_rss)
    stats["slow"].append((res.seconds, i, res.cmd))
    if res.exit == 1:
        stats["exit1"] += 1
        stats["codes"][res.error_code] += 1
        if res.located:
            stats["located"] += 1
        else:
            stats["unlocated"][res.error_code] += 1
    if "hang" in res.flags:
        stats["hangs"].append((i, res.cmd, res.seconds, res.frame))
    if res.failed:
        stats["failed_cases"].add(i)
        k = res.key()
        c = stats["classes"].setdefault(k, {"runs": 0, "cases": set(), "cmds": collections.Counter(),
                                            "example": None})
        c["runs"] += 1
        c["cases"].add(i)
        c["cmds"][res.cmd] += 1
        size = rec.get("size", 0)
        if c["example"] is None or size < c["example"]["size"]:
            c["example"] = {"size": size, "case": i, "cmd": res.cmd, "msg": res.exc_msg, "mutations": rec["mutations"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    args.rev = _git_rev()          # the code the campaign runs (HEAD may move while it runs)
    R.warm()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    repro_dir = Path(args.repro_dir) if args.repro_dir else out / "repros"
    stats = new_stats()
    t0 = time.time()
    if args.summarize_only:
        with open(out / "results.jsonl") as f:
            for line in f:
                record(stats, json.loads(line))
    else:
        run_and_record(args, out, stats)
    wall = time.time() - t0
    repros = save_repros(args, stats, repro_dir) if stats["classes"] else []
    text = summary_markdown(args, stats, wall, repros, repro_dir)
    (out / "summary.md").write_text(text)
    print(text)
    return 1 if stats["classes"] else 0


def run_and_record(args, out: Path, stats: dict) -> None:
    jsonl = open(out / "results.jsonl", "w")
    progress = None
    if not args.no_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn
        progress = Progress(TextColumn("[bold]fuzz[/] seed {task.fields[seed]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[fails]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            auto_refresh=False, transient=False)   # no refresh thread: the children are forked
        progress.start()
        task = progress.add_task("cases", total=args.cases, seed=args.seed, fails="")

    def on_case(case, results):
        digest = hashlib.sha1(case.text).hexdigest()[:12]
        if any(r.failed for r in results):   # kept as run: the repro never depends on regenerating it
            (out / "cases").mkdir(exist_ok=True)
            with open(out / "cases" / f"{case.index}.pickle", "wb") as f:
                pickle.dump(case, f)
        for res in results:
            rec = {"seed": case.seed, "case": case.index, "target": case.target, "mutated": case.mutated,
                   "size": len(case.text), "sha1": digest, "mutations": case.log, "options": case.options}
            rec.update(res.to_json())
            rec["argv"] = [a if not a.startswith("/") else os.path.basename(a) for a in res.argv]
            rec["key"] = res.key() if res.failed else None
            jsonl.write(json.dumps(rec, default=str) + "\n")
            record(stats, rec)
        jsonl.flush()
        if progress is not None:
            n = len(stats["classes"])
            progress.update(task, advance=1, fails=f"{len(stats['failed_cases'])} failing cases, {n} classes")
            progress.refresh()

    try:
        run_campaign(args, on_case)
    finally:
        jsonl.close()
        if progress is not None:
            progress.stop()


def _stem(n: int, key: str) -> str:
    """A file name for a class: 03-recursionerror-yamlload-span, 07-hang-expr."""
    kind, _, where = key.partition(" at ") if " at " in key else key.partition(" in ")
    words = kind.lower().split()
    if words and words[0] == "uncaught":
        words = words[1:]
    if where:
        mod, _, func = where.partition(":")
        words.append(os.path.splitext(os.path.basename(mod))[0])
        if func:
            words.append(func.strip("<>_"))
    slug = "-".join("".join(ch if ch.isalnum() else "-" for ch in w).strip("-") for w in words if w)
    return f"{n:02d}-{slug}"[:60].rstrip("-")


def save_repros(args, stats, repro_dir: Path):
    from tests.fuzz.minimize import minimize, reproduce, same_class, save_repro
    limits = R.Limits(args.hang, args.timeout, int(args.mem_limit * 2 ** 30), int(args.mem_report * 2 ** 30),
                      args.encoding)
    repro_dir.mkdir(parents=True, exist_ok=True)
    out = []
    n = 0
    for key, c in sorted(stats["classes"].items(), key=lambda kv: -kv[1]["runs"]):
        ex = c["example"]
        saved = Path(args.out) / "cases" / f"{ex['case']}.pickle"
        if saved.is_file():
            with open(saved, "rb") as f:
                case = pickle.load(f)
        else:
            case = make_case(args.seed, ex["case"])
        first = reproduce(case, ex["cmd"], limits)
        if not same_class(first, key):
            out.append({"key": key, "reproduced": False, "now": first.key() if first.failed else first.status,
                        "runs": c["runs"], "cases": len(c["cases"]), "cmds": dict(c["cmds"]), "index": ex["case"],
                        "cmd": ex["cmd"], "msg": ex["msg"], "log": ex["mutations"]})
            continue
        n += 1
        small = case
        if args.minimize > 0:
            print(f"minimizing {n}: {key} (case {ex['case']}, {ex['cmd']})", file=sys.stderr)
            small = minimize(case, ex["cmd"], key, limits, seconds=args.minimize)
        res = reproduce(small, ex["cmd"], limits)
        stem = _stem(n, key)
        spec, extra = save_repro(small, repro_dir, stem)
        out.append({"n": n, "key": key, "spec": spec, "extra": extra, "cmd": ex["cmd"], "options": small.options,
                    "runs": c["runs"], "cases": len(c["cases"]), "cmds": dict(c["cmds"]), "index": ex["case"],
                    "msg": res.exc_msg or ex["msg"], "frame": res.frame, "line": res.line,
                    "reproduced": same_class(res, key), "log": ex["mutations"], "seconds": res.seconds,
                    "peak": res.peak_rss, "tb": res.tb, "exc_type": res.exc_type})
    write_repro_readme(args, out, repro_dir)
    index = [{"spec": r["spec"], "files": r["extra"], "cmd": r["cmd"], "options": r["options"], "class": r["key"],
              "found": f"seed {args.seed} case {r['index']}"} for r in out if "n" in r]
    (repro_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return out


def write_repro_readme(args, repros, repro_dir: Path) -> None:
    lines = ["# Fuzz reproducers", "",
             f"Found by `python scripts/fuzz_specs.py --seed {args.seed} --cases {args.cases}"
             f"{f' --start {args.start}' if args.start else ''}` (tests/fuzz/) and minimized. Each file is one",
             "failure class: the failure kind, the exception type and the innermost archviz frame (hangs and",
             "memory: the module the run was in when it was looked at). Run one from this folder:", "",
             "    archviz <command> NN-....yaml", ""]
    for r in repros:
        if not r["reproduced"] and "n" not in r:
            continue
        cmdline = " ".join(R.argv_for(r["cmd"], r["spec"], ".", r["options"]))
        msg = (r["msg"] or "").strip().splitlines()
        lines += [f"## {r['n']:02d}. `{r['key']}`", "",
                  f"- command: `archviz {cmdline}`" + (f" (with {', '.join(r['extra'])} beside it)" if r["extra"] else ""),
                  f"- exception: `{r.get('exc_type') or '-'}: {msg[0][:200] if msg else ''}`",
                  f"- innermost archviz frame: `{r['frame']}` line {r['line']}",
                  f"- seen in {r['runs']} runs of {r['cases']} cases ({', '.join(f'{k} {v}' for k, v in r['cmds'].items())});"
                  f" example: case {r['index']}",
                  f"- the minimized spec reproduces it: {'yes' if r['reproduced'] else 'NO'}"
                  f" ({r['seconds']:.2f} s, peak RSS {_mb(r['peak'])})",
                  f"- mutations of the original case: {'; '.join(r['log'])[:400]}", ""]
    gone = [r for r in repros if "n" not in r]
    if gone:
        lines += ["## Not reproduced on a re-run", ""]
        lines += [f"- `{r['key']}` (case {r['index']}, {r['cmd']}): now {r['now']}" for r in gone]
        lines.append("")
    (repro_dir / "README.md").write_text("\n".join(lines))


def summary_markdown(args, stats, wall, repros, repro_dir) -> str:
    cmds = [c for c in args.commands.split(",") if c]
    statuses = ["ok", "error", "usage"] + list(R.FAILURES)
    rss = sorted(stats["rss"]) or [0]
    cmdline = (f"python scripts/fuzz_specs.py --seed {args.seed} --cases {args.cases}"
               + (f" --start {args.start}" if args.start else "") + f" --jobs {args.jobs}")
    L = [f"# Fuzz campaign: seed {args.seed}, {len(stats['cases']):,} cases", "",
         f"- command: `{cmdline}`",
         f"- archviz commit {getattr(args, 'rev', None) or _git_rev()}, Python {platform.python_version()}, {platform.machine()}",
         f"- commands per case: {', '.join(R.argv_for(c, 'SPEC', '.')[0] + ('' if c not in ('summary', 'draw') else ' ' + ' '.join(R.argv_for(c, 'SPEC', '.')[2:])) for c in cmds)}",
         f"- limits per run: hang > {args.hang:g} s (killed at {args.timeout:g} s), address space {args.mem_limit:g} GiB, "
         f"memory reported > {args.mem_report:g} GiB; console encoding {args.encoding}",
         (f"- counted again from results.jsonl; {stats['runs']:,} command runs" if args.summarize_only else
          f"- wall time {wall / 60:.1f} min; {stats['runs']:,} command runs"), "",
         "## Outcomes per command", "",
         "| command | " + " | ".join(statuses) + " |", "|---|" + "---:|" * len(statuses)]
    for c in cmds:
        row = stats["by_cmd"][c]
        L.append(f"| {c} | " + " | ".join(str(row.get(s, 0)) for s in statuses) + " |")
    tot = stats["status"]
    L.append("| **all** | " + " | ".join(f"**{tot.get(s, 0)}**" for s in statuses) + " |")
    L += ["", "Exit codes: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(stats["exit"].items(), key=str)), "",
          f"Cases with at least one failure: {len(stats['failed_cases']):,} of {len(stats['cases']):,}.", "",
          "## Failure classes (uncaught exceptions grouped by type and innermost archviz frame)", ""]
    if not stats["classes"]:
        L.append("None.")
    else:
        rep = {r["key"]: r for r in repros}
        L += ["| # | class | runs | cases | commands | reproducer |", "|---|---|---:|---:|---|---|"]
        for n, (k, c) in enumerate(sorted(stats["classes"].items(), key=lambda kv: -kv[1]["runs"]), 1):
            r = rep.get(k)
            L.append(f"| {n} | `{k}` | {c['runs']} | {len(c['cases'])} | "
                     f"{', '.join(f'{a} {b}' for a, b in c['cmds'].items())} | {r.get('spec', 'not reproduced') if r else '-'} |")
        L += ["", f"Reproducers: {repro_dir}/ (README.md lists command, exception and frame)."]
    L += ["", f"## Hangs over {args.hang:g} s", ""]
    if stats["hangs"]:
        L += [f"- case {i} `{c}`: {s:.1f} s at {f}" for i, c, s, f in sorted(stats["hangs"])[:30]]
    else:
        L.append("None.")
    slow = sorted(stats["slow"], reverse=True)[:5]
    L += ["", "Slowest runs: " + ", ".join(f"case {i} {c} {s:.2f} s" for s, i, c in slow), "",
          "## Memory (peak RSS of each run's process, forked from a warm parent)", "",
          f"- median {_mb(statistics.median(rss))}, 99th percentile {_mb(rss[int(0.99 * (len(rss) - 1))])}, "
          f"max {_mb(rss[-1])}",
          f"- runs over {args.mem_report:g} GiB: {sum(1 for x in rss if x > args.mem_report * 2 ** 30)}", "",
          "## Spec errors (exit 1)", "",
          f"- {stats['exit1']:,} runs; {stats['located']:,} with a file:line:col location "
          f"({100 * stats['located'] / max(1, stats['exit1']):.1f} %)",
          "- most frequent codes: " + ", ".join(f"{k} {v}" for k, v in stats["codes"].most_common(12)),
          "- codes printed without a location: " + (", ".join(f"{k} {v}" for k, v in stats["unlocated"].most_common(12))
                                                     or "none"), ""]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
