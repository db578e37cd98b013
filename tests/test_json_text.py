"""The layers of `summary -f json` are written as text without building their dicts (issue 17,
archviz.backends.json_text); the text must be exactly what the json module writes for the
dicts of Model.layer_entries() (the contract's reference), entry by entry."""
from __future__ import annotations

import glob
import json
import os

import pytest

import archviz
from archviz.backends.json_text import layer_texts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml"))) + \
    sorted(glob.glob(os.path.join(ROOT, "tests", "render", "specs", "*.yaml")))


def _reference(m) -> list:
    return [json.dumps(e, separators=(",", ":")) for e in m.layer_entries()]


def test_every_bundled_spec_entry_by_entry():
    seen = {"shared": 0, "shared_by": 0, "rf_note": 0, "global": 0, "varying": 0, "null": 0}
    for spec in SPECS:      # (rf_warnings: test_other_input_and_warnings)
        m = archviz.load(spec)
        got = list(layer_texts(m))
        want = _reference(m)
        assert got == want, spec
        for text in want:
            e = json.loads(text)
            for k in ("shared", "shared_by", "rf_note"):
                seen[k] += k in e
            seen["null"] += e.get("rf", 0) is None
            for a in e.get("rf") or []:
                seen["global"] += a["global"]
                seen["varying"] += a["size_min"] != a["size_max"]
    # the specs exercise every kind of entry the writer spells or hands on
    assert all(seen.values()), seen


@pytest.mark.parametrize("kind", ["chain", "dag"])
def test_generated_graphs(tmp_path, kind):
    from tests.benchmarks.gen_specs import KINDS
    p = tmp_path / f"{kind}.yaml"
    p.write_text(KINDS[kind](300))
    m = archviz.load(str(p))
    assert list(layer_texts(m)) == _reference(m)


def test_other_input_and_warnings(tmp_path):
    # a misaligned merge (a 3×3 and a 2×2 'same' convolution: rf_warnings, escaped as the json
    # module escapes them), and the fields of the input the pass last ran for
    p = tmp_path / "n.yaml"
    p.write_text("archviz: 1\nname: n\ninputs: {x: {shape: [3, 16, 16]}, y: {shape: [3, 16, 16]}}\n"
                 "nodes:\n"
                 "  - {id: c, op: conv2d, in: x, out: 3, kernel: 3, stride: 2}\n"
                 "  - {id: d, op: conv2d, in: y, out: 3, kernel: 5, stride: 2, padding: 1}\n"
                 "  - {id: s, op: add, in: [c, d]}\n"
                 "  - {id: a, op: conv2d, in: x, out: 3, kernel: 3, padding: 1}\n"
                 "  - {id: b, op: conv2d, in: x, out: 3, kernel: 2, padding: same}\n"
                 "  - {id: w, op: add, in: [a, b]}\n"
                 "outputs: {out: s, o2: w}\n", encoding="utf-8")
    m = archviz.load(str(p))
    assert list(layer_texts(m)) == _reference(m)
    assert '"rf_warnings":["H: misaligned inputs at ' in list(layer_texts(m))[-1]
    from archviz.passes import run
    run(m.graph, "rf", input="y")
    assert list(layer_texts(m)) == _reference(m)
