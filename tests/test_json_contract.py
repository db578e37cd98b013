"""The JSON contract does not change when the way it is written changes (issue 17): the
parsed documents of `summary -f json` and `rf -f json` for every bundled spec are compared
with those of the code before (tests/golden/json_documents.txt holds a hash of each
document in canonical form: keys sorted, compact; made by the code of 2026-12-07, e5c456f).

A deliberate change of a document (a new field, a spec of the library changed or added):

    ARCHVIZ_UPDATE_GOLDEN=1 python -m pytest -q tests/test_json_contract.py

and say why in the commit. To see what changed, `python scripts/snapshot.py DIR` before and
after, then `diff -r`.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os

import pytest
from click.testing import CliRunner

from archviz.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden", "json_documents.txt")
SPECS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml")))
COMMANDS = {"summary": ["summary", "{spec}", "-f", "json"], "rf": ["rf", "{spec}", "-f", "json"]}


def run(args: list) -> str:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    return r.stdout


def canonical_hash(doc) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def document(cmd: str, spec: str):
    """The parsed document (None where the command prints nothing: rf of a spec without axes)."""
    out = run([a.format(spec=spec) for a in COMMANDS[cmd]])
    return json.loads(out) if out.strip() else None


def hashes() -> dict:
    return {f"{cmd} {spec}": canonical_hash(document(cmd, spec)) for spec in SPECS for cmd in COMMANDS}


def read_golden() -> dict:
    with open(GOLDEN, encoding="utf-8") as f:
        return dict(line.rsplit(" ", 1) for line in f.read().splitlines() if line and not line.startswith("#"))


def write_golden(found: dict) -> None:
    with open(GOLDEN, "w", encoding="utf-8") as f:
        f.write("# sha256 (24 hex digits) of each parsed JSON document, keys sorted, compact: tests/test_json_contract.py\n")
        f.writelines(f"{k} {v}\n" for k, v in sorted(found.items()))


@pytest.fixture(scope="module")
def at_root():
    old = os.getcwd()
    os.chdir(ROOT)          # warnings name spec paths as given: relative to the checkout
    yield
    os.chdir(old)


@pytest.mark.parametrize("spec", SPECS)
def test_every_bundled_document_is_unchanged(spec, at_root):
    if os.environ.get("ARCHVIZ_UPDATE_GOLDEN"):
        found = {**(read_golden() if os.path.exists(GOLDEN) else {}),
                 **{f"{cmd} {spec}": canonical_hash(document(cmd, spec)) for cmd in COMMANDS}}
        write_golden(found)
        return
    golden = read_golden()
    for cmd in COMMANDS:
        key = f"{cmd} {spec}"
        if key not in golden:
            pytest.fail(f"no golden document for '{key}' (a new spec?): run with ARCHVIZ_UPDATE_GOLDEN=1")
        assert canonical_hash(document(cmd, spec)) == golden[key], (
            f"the JSON document of `archviz {key} -f json` changed (scripts/snapshot.py shows how)")


def test_compact_and_indented_json_are_the_same_document(at_root):
    spec = "specs/unet.yaml"            # a spec with position-dependent fields and warnings
    for cmd in COMMANDS:
        args = [a.format(spec=spec) for a in COMMANDS[cmd]]
        compact, indented = run(args), run(args + ["--indent", "2"])
        assert compact.count("\n") == 1 and compact.endswith("\n")          # one line
        assert indented.startswith('{\n  "') and indented.count("\n") > 100
        assert json.loads(compact) == json.loads(indented)


def test_indent_is_refused_without_json(at_root):
    for cmd in ("summary", "rf"):
        r = CliRunner().invoke(main, [cmd, "specs/exam_two_3x3.yaml", "--indent", "2"])
        assert r.exit_code == 2 and "--indent is for JSON" in r.output
