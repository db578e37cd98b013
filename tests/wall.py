"""The op/backend wall, checked on the source (AST), not by convention.

Backends and passes must ask an op what it is (its role, label, resampling, recurrence...),
never decide by its name.  `name_findings(source)` reports every place that does:

a. a comparison with an op-ish side (``X.op``, a name ``op``/``opname``/``op_name``, a call of
   one, or a method call on one) and a string literal, a literal collection or an UPPER_CASE
   name on another side;
b. a comparison with a string literal that is a registered op's name (not where the other
   side is a setting of the object itself, `self.mode == "constant"`: a module's own option);
c. ``.startswith``/``.endswith`` on an op-ish expression, or ``"x" in <op-ish>``;
d. a set/list/tuple literal or dict's keys with at least two registered op names making up
   more than half of its strings (a gate's "tanh" label or a DOT id passes);
e. a module-level name ending in ``_OPS``, or ``registry["literal"]``.

`import_edges()` gives every explicit import between archviz modules (function-level
imports included), for the layering and cycle checks; `budget_offenders()` the functions
over 80 lines and the modules over 500.
"""
from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "archviz")

MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


def op_names() -> set:
    from archviz.ops import registry
    return set(registry)


def _opish(e) -> bool:
    if isinstance(e, ast.Attribute) and e.attr == "op":
        return True
    if isinstance(e, ast.Name) and e.id in ("op", "opname", "op_name"):
        return True
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
        return e.func.attr == "op" or _opish(e.func.value)
    return False


def _own_setting(e) -> bool:
    """`self.mode`: an object's own option (a torch module's padding mode), not an op's name."""
    return isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self" \
        and e.attr not in ("op", "name", "kind")


def _strs(e) -> list:
    if isinstance(e, ast.Constant) and isinstance(e.value, str):
        return [e.value]
    if isinstance(e, (ast.Set, ast.List, ast.Tuple)):
        return [x.value for x in e.elts if isinstance(x, ast.Constant) and isinstance(x.value, str)]
    return []


def name_findings(source: str, names: set) -> list:
    """[(line, rule)] for every place in `source` that decides by an op's name."""
    out = set()
    tree = ast.parse(source)
    for n in ast.walk(tree):
        if isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            if any(map(_opish, sides)) and any(_strs(s) or (isinstance(s, ast.Name) and s.id.isupper())
                                               for s in sides):
                out.add((n.lineno, "a"))
            if any(isinstance(s, ast.Constant) and s.value in names for s in sides) and \
                    not any(_own_setting(s) for s in sides):
                out.add((n.lineno, "b"))
            if any(isinstance(o, (ast.In, ast.NotIn)) for o in n.ops) and _strs(n.left) \
                    and any(map(_opish, n.comparators)):
                out.add((n.lineno, "c"))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                and n.func.attr in ("startswith", "endswith") and _opish(n.func.value):
            out.add((n.lineno, "c"))
        if isinstance(n, (ast.Set, ast.List, ast.Tuple, ast.Dict)):
            elts = n.keys if isinstance(n, ast.Dict) else n.elts
            s = [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            hit = [x for x in s if x in names]
            if len(hit) >= 2 and 2 * len(hit) > len(s):
                out.add((n.lineno, "d"))
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "registry" \
                and isinstance(n.slice, ast.Constant):
            out.add((n.lineno, "e"))
    for n in tree.body:
        if isinstance(n, (ast.Assign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(isinstance(t, ast.Name) and t.id.endswith("_OPS") for t in targets):
                out.add((n.lineno, "e"))
    return sorted(out)


def py_files(*under: str) -> list:
    out = []
    for sub in under:
        for d, _dirs, files in os.walk(os.path.join(PKG, sub)):
            out += [os.path.join(d, f) for f in files if f.endswith(".py")]
    return sorted(out)


def rel(path: str) -> str:
    return os.path.relpath(path, PKG).replace(os.sep, "/")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def module_name(path: str) -> str:
    r = os.path.relpath(path, ROOT).replace(os.sep, "/").removesuffix(".py")
    return r.removesuffix("/__init__").replace("/", ".")


def import_edges() -> list:
    """[(importer module, imported archviz module, line)] for every import statement, at any
    depth.  `from archviz.x import y` counts as importing archviz.x.y when that is a module."""
    mods = {module_name(p): p for p in py_files(".")}
    edges = []
    for name, path in mods.items():
        is_pkg = path.endswith("__init__.py")
        for n in ast.walk(ast.parse(read(path))):
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                if n.level:
                    base = name.split(".")[: len(name.split(".")) - n.level + (1 if is_pkg else 0)]
                    mod = ".".join(base + ([n.module] if n.module else []))
                else:
                    mod = n.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in n.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] == "archviz" and t != name:
                    while t not in mods and "." in t:
                        t = t.rsplit(".", 1)[0]
                    edges.append((name, t, n.lineno))
    return edges


def import_cycles() -> list:
    import networkx as nx
    g = nx.DiGraph()
    g.add_edges_from((a, b) for a, b, _ in import_edges() if b != "archviz")
    return sorted(sorted(c) for c in nx.simple_cycles(g))


def budget_offenders() -> tuple[list, list]:
    """([(lines, 'file:function')] over MAX_FUNCTION_LINES, [(lines, file)] over MAX_MODULE_LINES)."""
    funcs, mods = [], []
    for p in py_files("."):
        src = read(p)
        n_lines = src.count("\n")
        if n_lines > MAX_MODULE_LINES:
            mods.append((n_lines, rel(p)))
        for n in ast.walk(ast.parse(src)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = n.end_lineno - n.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    funcs.append((length, f"{rel(p)}:{n.name}"))
    return sorted(funcs, reverse=True), sorted(mods, reverse=True)
