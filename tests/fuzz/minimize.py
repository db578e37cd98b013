"""Shrink a failing fuzz case to a small reproducer, and save it as a standalone spec.

The predicate is "the same command fails with the same class" (``Result.key()``: the
failure kind, the exception type and the innermost archviz frame). Reduction is greedy,
bounded in runs and seconds: first on the YAML tree (drop top-level keys, chunks of node
lists, keys of mappings, items of lists; shorten long strings), then on lines of the
text (for files that are no longer YAML, and to finish).
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tests.fuzz.mutate import Case, Deep, dump_tree, load_tree
from tests.fuzz.runner import Limits, argv_for, run_one


class Budget:
    def __init__(self, runs: int, seconds: float):
        self.runs, self.deadline = runs, time.monotonic() + seconds

    def spend(self) -> bool:
        self.runs -= 1
        return self.runs >= 0 and time.monotonic() < self.deadline


def reproduce(case: Case, cmd: str, limits: Limits | None = None):
    """Run `cmd` on `case` in a fresh folder; the Result."""
    from tests.fuzz.mutate import write_case
    d = tempfile.mkdtemp(prefix="fuzz-min-")
    try:
        spec = write_case(case, Path(d) / "spec")
        out = os.path.join(d, "run")
        os.makedirs(out)
        return run_one(cmd, argv_for(cmd, spec, out, case.options), out, limits or Limits())
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _with_file(case: Case, rel: str, data: bytes) -> Case:
    files = dict(case.files)
    files[rel] = data
    return replace(case, files=files)


def _tree_candidates(tree):
    """Smaller trees, biggest cuts first."""
    if isinstance(tree, dict):
        for k in list(tree):
            if k in ("archviz",):
                continue
            t = copy.copy(tree)
            del t[k]
            yield t
    # node lists: halves, then single nodes
    for path, lst in _lists(tree):
        n = len(lst)
        size = n // 2
        while size >= 1:
            for start in range(0, n, size):
                yield _set(tree, path, lst[:start] + lst[start + size:])
            size //= 2
    for path, d in _dicts(tree):
        for k in list(d):
            nd = dict(d)
            del nd[k]
            yield _set(tree, path, nd)
    for path, v in _scalars(tree):
        if isinstance(v, str) and len(v) > 20 and "${" not in v:
            yield _set(tree, path, v[:10])


def _walk(v, path=()):
    yield path, v
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _walk(x, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _walk(x, path + (i,))


def _lists(tree):
    return [(p, v) for p, v in _walk(tree) if isinstance(v, list) and v]


def _dicts(tree):
    return [(p, v) for p, v in _walk(tree) if isinstance(v, dict) and v and p]


def _scalars(tree):
    return [(p, v) for p, v in _walk(tree) if not isinstance(v, (dict, list, Deep))]


def _set(tree, path, value):
    if not path:
        return value
    t = copy.deepcopy(tree)
    cur = t
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return t


def _reduce_tree(case, rel, still_fails, budget):
    try:
        tree = load_tree(case.files[rel].decode("utf-8"))
    except Exception:  # noqa: BLE001 - not YAML any more: lines only
        return case
    start = _with_file(case, rel, dump_tree(tree).encode("utf-8", "surrogatepass"))
    if not (budget.spend() and still_fails(start)):
        return case
    case = start
    progress = True
    while progress:
        progress = False
        for cand in _tree_candidates(tree):
            if not budget.spend():
                return case
            c = _with_file(case, rel, dump_tree(cand).encode("utf-8", "surrogatepass"))
            if still_fails(c):
                tree, case, progress = cand, c, True
                break
    return case


def _reduce_lines(case, rel, still_fails, budget):
    lines = case.files[rel].split(b"\n")
    size = max(1, len(lines) // 2)
    while size >= 1:
        i = 0
        while i < len(lines):
            if not budget.spend():
                return case
            cand = lines[:i] + lines[i + size:]
            c = _with_file(case, rel, b"\n".join(cand))
            if still_fails(c):
                lines, case = cand, c
            else:
                i += size
        size //= 2
    return case


def same_class(res, key: str) -> bool:
    """Does a re-run fall in the class `key`? A hang counts as any hang: where a long loop
    was when it was looked at varies from run to run."""
    if key.split()[0] == "hang":
        return "hang" in res.flags
    return res.failed and res.key() == key


def minimize(case: Case, cmd: str, key: str, limits: Limits | None = None, runs: int = 250,
             seconds: float = 90.0) -> Case:
    """The smallest variant of `case` found within the budget on which `cmd` still fails
    with the class `key`."""
    budget = Budget(runs, seconds)
    limits = limits or Limits()
    kind = key.split()[0]
    if kind == "hang":
        # a try needs only to pass the hang threshold; and where a long loop was when it was
        # looked at varies, so any hang of this command counts
        limits = replace(limits, timeout_s=min(limits.timeout_s, limits.hang_s + 1.0))

    def still_fails(c):
        return same_class(reproduce(c, cmd, limits), key)

    rels = [case.mutated] + ([case.target] if case.target != case.mutated else [])
    for rel in rels:
        case = _reduce_tree(case, rel, still_fails, budget)
        case = _reduce_lines(case, rel, still_fails, budget)
    return case


_IMPORT_PATH = re.compile(rb"""(path:\s*['"]?)([^'",}\n]+)""")


def save_repro(case: Case, folder: str | os.PathLike, stem: str) -> tuple[str, list[str]]:
    """Write the case as `stem`.yaml in `folder`, with the files it imports beside it under
    `stem`.NAME; returns (the spec's file name, the other files written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = case.files[case.target]
    written = []

    def local(m):
        p = m.group(2).strip().decode("utf-8", "replace")
        norm = os.path.normpath(os.path.join(os.path.dirname(case.target), p)).replace(os.sep, "/")
        if norm in case.files and norm != case.target:
            name = f"{stem}.{os.path.basename(norm)}"
            (folder / name).write_bytes(case.files[norm])
            written.append(name)
            return m.group(1) + name.encode()
        return m.group(0)

    data = _IMPORT_PATH.sub(local, data)
    (folder / f"{stem}.yaml").write_bytes(data)
    return f"{stem}.yaml", written
