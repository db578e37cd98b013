"""One table of error codes (archviz/codes.py), referenced by name everywhere.

- a Code is its string: `err.code == "E0301"`, JSON and dict keys are unchanged;
- no "E0301"-like literal anywhere in archviz/ outside codes.py (the checker is tested on
  snippets, so the guard is not vacuous);
- every name the source uses exists, every code of the table is used, and the error class
  at each raise site is the code's `kind`;
- docs/errors.md is generated from the table (`make docs`) and must not drift.
"""
from __future__ import annotations

import ast
import copy
import json
import os
import pickle
import re

import pytest
from click.testing import CliRunner

from archviz import errors as errors_mod
from archviz.codes import ALL, RANGES, Code, E
from tests import wall

CODE_RE = re.compile(r"^[EW]\d{4}$")


def code_literals(source: str) -> list:
    """[line] of every string constant that is exactly one error code."""
    return sorted(n.lineno for n in ast.walk(ast.parse(source))
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and CODE_RE.match(n.value))


def code_names(source: str) -> list:
    """[(line, NAME)] of every `E.NAME` in `source`."""
    return sorted((n.lineno, n.attr) for n in ast.walk(ast.parse(source))
                  if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "E")


def sources():
    return [(wall.rel(p), wall.read(p)) for p in wall.py_files(".") if wall.rel(p) != "codes.py"]


# -- a Code is its string ------------------------------------------------------------------
def test_a_code_is_its_string():
    c = E.UNKNOWN_NODE
    assert c == "E0301" and "E0301" == c and isinstance(c, str)
    assert hash(c) == hash("E0301") and {"E0301": 1}[c] == 1
    assert json.dumps({"code": c}) == '{"code": "E0301"}'
    assert f"error[{c}]" == "error[E0301]" and str(c) == "E0301" and type(str(c)) is str
    assert (c.kind, c.name) == ("RefError", "UNKNOWN_NODE") and c.title
    for back in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c), copy.copy(c)):
        assert back == c and back.kind == c.kind and back.title == c.title


def test_an_error_carries_the_code_it_is_given():
    e = errors_mod.RefError("unknown node 'x'", code=E.UNKNOWN_NODE)
    assert e.code == "E0301" and e.code.kind == "RefError"
    assert errors_mod.format_error(e).startswith("error[E0301]: unknown node 'x'")


# -- the table -----------------------------------------------------------------------------
def test_the_table_is_well_formed():
    assert list(ALL) == sorted(ALL, key=lambda k: k[1:]) and len(ALL) == len({c.name for c in ALL.values()})
    for k, c in ALL.items():
        assert CODE_RE.match(k) and ALL[k] is c and c == k, k
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", c.name) and getattr(E, c.name) is c, k
        assert c.title and c.title[0].islower() or c.title.startswith(("YAML", "Graphviz")), k
        assert k[1:3] in RANGES, f"{k}: no range heading in codes.RANGES"
        assert (k[0] == "W") == (c.kind == "SpecWarning"), f"{k}: warnings and only warnings start with W"


def test_a_duplicate_value_is_refused():
    from archviz import codes
    class Twice:                                        # noqa: E306
        A = Code("E0901", "ArchvizError", "one")
        B = Code("E0901", "ArchvizError", "two")
    saved = codes.E
    codes.E = Twice
    try:
        with pytest.raises(ValueError, match="E0901 is named twice"):
            codes._table()
    finally:
        codes.E = saved


def _error_classes() -> dict:
    """name -> class of every ArchvizError subclass archviz defines (render's included)."""
    import archviz.backends.render.engine  # noqa: F401  (defines the Graphviz errors)
    out, todo = {}, [errors_mod.ArchvizError]
    while todo:
        cls = todo.pop()
        out[cls.__name__] = cls
        todo += cls.__subclasses__()
    return out


def test_each_class_default_is_a_code_of_that_class():
    for name, cls in _error_classes().items():
        if cls.__module__.startswith("archviz"):
            assert isinstance(cls.code, Code) and cls.code.kind in {c.__name__ for c in cls.__mro__}, name


# a code raised by two classes (kept: the class decides `except` clauses); each is its kind's
# or named here with the other class
MIXED = {"E0305": {"SpecError"}}    # wrong number of inputs: to a block (spec) or an op (graph)


def test_each_raise_site_uses_a_code_of_its_class():
    classes = _error_classes()
    bad = []
    for rel, src in sources():
        for n in ast.walk(ast.parse(src)):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in classes):
                continue
            for kw in n.keywords:
                if kw.arg == "code" and isinstance(kw.value, ast.Attribute):
                    code = getattr(E, kw.value.attr)
                    mro = {c.__name__ for c in classes[n.func.id].__mro__}
                    if code.kind not in mro and n.func.id not in MIXED.get(code, ()):
                        bad.append(f"{rel}:{n.lineno}: {n.func.id}(code=E.{code.name}) but {code} is a {code.kind}")
    assert not bad, "\n".join(bad)


def test_every_name_used_exists_and_every_code_is_used():
    used, unknown = set(), []
    for rel, src in sources():
        for line, name in code_names(src):
            if isinstance(getattr(E, name, None), Code):
                used.add(name)
            else:
                unknown.append(f"{rel}:{line}: E.{name}")
    assert not unknown, "no such code: " + ", ".join(unknown)
    assert {c.name for c in ALL.values()} - used == set(), "codes no source raises"


# -- no literal codes ----------------------------------------------------------------------
def test_no_code_literal_outside_the_table():
    found = [f"{rel}:{line}" for rel, src in sources() for line in code_literals(src)]
    assert not found, "write the code by name (archviz.codes.E): " + ", ".join(found)


@pytest.mark.parametrize("snippet, flagged", [
    ('raise SpecError("x", code="E0101")', [1]),
    ("class X(ArchvizError):\n    code = 'W0700'", [2]),
    ('def f(code="E0202"): pass', [1]),
    ('if e.code == "E0114": pass', [1]),
    ('raise SpecError("x", code=E.YAML_SYNTAX)', []),
    ('msg = "see E0101 in docs/errors.md"', []),      # inside a sentence: not a code literal
])
def test_the_literal_checker(snippet, flagged):
    assert code_literals(snippet) == flagged


# -- the generated reference ---------------------------------------------------------------
def test_docs_errors_reference_is_current():
    """docs/errors.md is generated from archviz/codes.py (`make docs`); it must not drift."""
    from archviz.backends.errorsdoc import errors_markdown
    path = os.path.join(wall.ROOT, "docs", "errors.md")
    with open(path, encoding="utf-8") as f:
        assert f.read() == errors_markdown(), "docs/errors.md is stale: run `make docs`"


def test_errors_command():
    from archviz.cli import main
    r = CliRunner().invoke(main, ["errors", "--format", "markdown"])
    assert r.exit_code == 0 and all(f"| {k} | `{c.name}` | {c.kind} |" in r.output for k, c in ALL.items())
    r = CliRunner().invoke(main, ["errors", "unknown_node", "-f", "markdown"])
    assert r.exit_code == 0 and "| E0301 | `UNKNOWN_NODE` | RefError |" in r.output and "E0302" not in r.output
    r = CliRunner().invoke(main, ["errors", "E0301"])
    assert r.exit_code == 0 and "UNKNOWN_NODE" in r.output
    r = CliRunner().invoke(main, ["errors", "UNKNOWN_NOD"])
    assert r.exit_code == 2 and "did you mean 'UNKNOWN_NODE'" in r.output
    r = CliRunner().invoke(main, ["errors", "--format", "html"])
    assert r.exit_code == 2
