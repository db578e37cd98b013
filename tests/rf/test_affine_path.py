"""The pass's short way for affine fields read through windows (archviz.passes.rf_affine,
issue 17) gives exactly the fields and warnings of the general path (rf.compose + rf.merge,
which the oracle tests hold against torch's gradients), for every bundled spec and for
graphs made to sit on the edges of the short way."""
from __future__ import annotations

import glob
import os

import pytest

import archviz
from archviz.ir import meta as M
from archviz.passes import rf as RF
from tests.benchmarks.gen_specs import KINDS

from .helpers import model_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml"))) + \
    sorted(glob.glob(os.path.join(ROOT, "tests", "render", "specs", "*.yaml")))


def _fields(g) -> dict:
    def one(f):
        return None if f is None else (f.kind, f.dim, f.n, f.P, f.J, f.lo, f.hi, f.var12, f.reason)
    out = {}
    for nid, n in g.nodes.items():
        rec = n.meta[M.RF]
        out[nid] = ({p: None if fs is None else [one(f) for f in fs] for p, fs in rec.fields.items()},
                    rec.reason, list(rec.warnings))
    return out


def _both(m, monkeypatch) -> tuple:
    """(fields with the short way, fields by the general path alone, how often the short way answered)."""
    import archviz.passes.rf_affine as A
    answered = []
    real = A.affine_fields

    def counting(*a):
        r = real(*a)
        answered.append(r is not None)
        return r
    monkeypatch.setattr(RF, "affine_fields", counting)
    RF.rf_pass(m.graph)
    fast = _fields(m.graph)
    monkeypatch.setattr(RF, "affine_fields", lambda *a: None)
    RF.rf_pass(m.graph)
    return fast, _fields(m.graph), sum(answered)


def test_every_bundled_spec(monkeypatch):
    answered = 0
    for spec in SPECS:
        fast, general, n = _both(archviz.load(spec), monkeypatch)
        assert fast == general, spec
        answered += n
    assert answered > 300           # the short way is taken (not a comparison of the general path with itself)


@pytest.mark.parametrize("kind", ["chain", "dag"])
def test_generated_graphs(tmp_path, monkeypatch, kind):
    p = tmp_path / "g.yaml"
    p.write_text(KINDS[kind](200))
    fast, general, n = _both(archviz.load(str(p)), monkeypatch)
    assert fast == general and n >= 100


EDGES = {
    # unequal jumps at a merge (16 -> 8 by a stride of 2 and by a 9×9 window), and equal ones
    "jumps": [{"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "stride": 2, "padding": 1},
              {"id": "b", "op": "conv2d", "in": "x", "out": 2, "kernel": 9},
              {"id": "s", "op": "add", "in": ["a", "b"]},
              {"id": "p", "op": "maxpool2d", "in": "x", "kernel": 2},
              {"id": "t", "op": "add", "in": ["a", "p"]}],
    # misaligned centres (merge warns), then a merge of aligned ones, dilation and a crop
    "centres": [{"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 1},
                {"id": "b", "op": "conv2d", "in": "x", "out": 2, "kernel": 2, "padding": "same"},
                {"id": "w", "op": "add", "in": ["a", "b"]},
                {"id": "c", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 2, "dilation": 2},
                {"id": "d", "op": "add", "in": ["a", "c"]},
                {"id": "e", "op": "pad", "in": "d", "pads": [1, 1, 1, 1]},
                {"id": "f", "op": "conv2d", "out": 2, "kernel": 3},
                {"id": "y", "op": "add", "in": ["f", "d"]}],
    # an upsampling (periodic after it, P = 2), a global pooling and a flatten
    "periodic": [{"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3, "padding": 1},
                 {"id": "u", "op": "conv_transpose2d", "out": 2, "kernel": 2, "stride": 2},
                 {"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
                 {"id": "g", "op": "adaptive_avgpool2d", "size": 1},
                 {"id": "fl", "op": "flatten"},
                 {"id": "l", "op": "linear", "out": 3}],
    # the same tensor twice, and a concat along an axis
    "twice": [{"id": "a", "op": "conv2d", "in": "x", "out": 2, "kernel": 3},
              {"id": "s", "op": "add", "in": ["a", "a"]},
              {"id": "k", "op": "concat", "in": ["s", "s"], "axis": 3}],
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edges(monkeypatch, name):
    fast, general, n = _both(model_of(EDGES[name], shape=(2, 16, 16)), monkeypatch)
    assert fast == general and n > 0


def test_table_text_of_affine_and_global_fields():
    # RF.short's text straight from the fields (_short_affine) is the summaries' (_short)
    answered = 0
    for spec in SPECS:
        m = archviz.load(spec)
        for l in m.layers:
            rec = l.node.meta[M.RF]
            fields = rec.fields.get("out") if rec.ctx.axes else None
            if fields:
                text = RF._short_affine(fields)
                assert text is None or text == RF._short(l.node), (spec, l.id)
                answered += text is not None
    assert answered > 1000
