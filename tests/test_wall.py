"""The wall between ops and their consumers, held by tests (issue "ops describe themselves").

- Nothing under archviz/backends/ or archviz/passes/ decides by an op's name.
- Nothing under archviz/ops/ imports archviz.backends; archviz/ir/ imports nothing from ops.
- No import cycle among archviz's modules.
- No function over 80 lines, no module over 500.

While the refactor is under way each check is a ratchet: the known offenders are listed
with their counts, a count may only go down (and must then be lowered here, so it cannot
creep back), and a new offender fails at once with what it found.  The checker itself is
tested on snippets, so a guard that finds nothing is not vacuous.
"""
from __future__ import annotations

import pytest

from tests import wall

# findings of wall.name_findings per file (rules a-e): 137 in 17 files before the refactor
NAME_ALLOWED: dict = {}
# import statements under archviz/ops/ that import archviz.backends, per file (43 before the refactor)
OPS_TO_BACKENDS_ALLOWED: dict = {}
IR_TO_OPS_ALLOWED: dict = {}
CYCLES_ALLOWED: list = []      # 8 before the refactor
FUNCTIONS_ALLOWED: dict = {}
MODULES_ALLOWED: dict = {}


def _ratchet(found: dict, allowed: dict, what: str, details: dict | None = None):
    """Every count in `found` at most its allowance (new keys allowed 0); a count that went
    down must be lowered in `allowed` too."""
    worse = {k: (v, allowed.get(k, 0)) for k, v in found.items() if v > allowed.get(k, 0)}
    better = {k: (found.get(k, 0), v) for k, v in allowed.items() if found.get(k, 0) < v}
    msg = []
    for k, (v, a) in sorted(worse.items()):
        msg.append(f"{what}: {k} has {v} (allowed {a})" + (f": {details[k]}" if details and k in details else ""))
    assert not worse, "\n".join(msg)
    assert not better, f"{what} went down (good): lower the allowance in tests/test_wall.py to " + \
        ", ".join(f"{k}: {v}" for k, (v, _a) in sorted(better.items()))


def test_backends_and_passes_never_decide_by_op_name():
    names = wall.op_names()
    found, details = {}, {}
    for p in wall.py_files("backends", "passes"):
        f = wall.name_findings(wall.read(p), names)
        if f:
            found[wall.rel(p)] = len(f)
            details[wall.rel(p)] = ", ".join(f"line {ln} ({rule})" for ln, rule in f)
    _ratchet(found, NAME_ALLOWED, "decides by an op's name (ask the op instead)", details)


def _count(edges, src: str, dst: str) -> dict:
    out = {}
    for a, b, _line in edges:
        if (a == src or a.startswith(src + ".")) and (b == dst or b.startswith(dst + ".")):
            out[a] = out.get(a, 0) + 1
    return out


def test_ops_never_import_backends():
    _ratchet(_count(wall.import_edges(), "archviz.ops", "archviz.backends"), OPS_TO_BACKENDS_ALLOWED,
             "imports archviz.backends from an op (describe the lowering as data)")


def test_ir_imports_nothing_from_ops():
    _ratchet(_count(wall.import_edges(), "archviz.ir", "archviz.ops"), IR_TO_OPS_ALLOWED,
             "imports archviz.ops from the ir")


def test_no_import_cycles():
    cycles = wall.import_cycles()
    new = [c for c in cycles if c not in CYCLES_ALLOWED]
    gone = [c for c in CYCLES_ALLOWED if c not in cycles]
    assert not new, "new import cycles: " + "; ".join(" -> ".join(c) for c in new)
    assert not gone, "cycles broken (good): remove from CYCLES_ALLOWED: " + "; ".join(" -> ".join(c) for c in gone)


def test_cycle_finder_finds_a_cycle(monkeypatch):
    """The cycle guard is not vacuous now that the package has none."""
    edges = [("archviz.a", "archviz.b", 1), ("archviz.b", "archviz.c", 1), ("archviz.c", "archviz.a", 1),
             ("archviz.c", "archviz.d", 1)]
    monkeypatch.setattr(wall, "import_edges", lambda: edges)
    assert wall.import_cycles() == [["archviz.a", "archviz.b", "archviz.c"]]


def test_size_budgets():
    funcs, mods = wall.budget_offenders()
    print("largest functions:", funcs[:5], "largest modules:", mods[:5])
    _ratchet({k: v for v, k in funcs}, FUNCTIONS_ALLOWED, f"function over {wall.MAX_FUNCTION_LINES} lines")
    _ratchet({k: v for v, k in mods}, MODULES_ALLOWED, f"module over {wall.MAX_MODULE_LINES} lines")


# -- the checker finds what it should (positive controls) and nothing else ----------------
NAMES = {"conv2d", "relu", "embedding", "add", "lstm"}


@pytest.mark.parametrize("snippet, rule", [
    ("if node.op == 'conv2d': pass", "a"),
    ("if n.op in ('relu', 'x'): pass", "a"),
    ("if n.op in WEIGHT_SET: pass", "a"),
    ("if o.name == 'embedding': pass", "b"),
    ("k = r.kind != 'lstm'", "b"),
    ("if node.op.startswith('conv'): pass", "c"),
    ("if 'transpose' in n.op: pass", "c"),
    ("S = {'conv2d', 'relu', 'x'}", "d"),
    ("D = {'relu': 1, 'add': 2}", "d"),
    ("WEIGHT_OPS = frozenset()", "e"),
    ("op = registry['relu']", "e"),
])
def test_checker_flags(snippet, rule):
    assert rule in {r for _ln, r in wall.name_findings(snippet, NAMES)}


@pytest.mark.parametrize("snippet", [
    "if node.role is Role.WEIGHT: pass",
    "label = 'tanh'",
    "ids = ('x', 'h', 'relu')",            # one op name among other strings
    "if score in ('additive', 'concat'): pass",
    "op = registry[name]",
    "if n.kind == Cell.LSTM: pass",
    "if self.mode == 'conv2d': pass",      # a module's own setting that happens to spell an op
])
def test_checker_passes_clean_code(snippet):
    assert wall.name_findings(snippet, NAMES) == []


def test_cycle_finder_and_budgets_see_the_package():
    edges = wall.import_edges()
    assert ("archviz.model", "archviz.ir.meta") in {(a, b) for a, b, _ in edges}
    funcs, mods = wall.budget_offenders()
    assert all(n > wall.MAX_FUNCTION_LINES for n, _ in funcs)
