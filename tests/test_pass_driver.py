"""The pass driver's table: each pass declares what it requires and what it provides, the
driver runs the requirements first, records on the graph what is done, and runs nothing
twice.  The receptive-field pass is one of them (asked for an input, it runs again for it)."""
from __future__ import annotations

import json

import pytest

import archviz
from archviz.ir import meta as M
from archviz.passes import driver
from archviz.passes import rf as RF
from archviz.spec import compile_spec

SPEC = """archviz: 1
name: two_inputs
inputs: {a: {shape: [1, 8, 8]}, b: {shape: [1, 12, 11]}}
nodes:
  - {id: ca, op: conv2d, in: a, out: 1, kernel: 3}
  - {id: cb, op: conv2d, in: b, out: 1, kernel: 5, stride: 2}
  - {id: r, op: relu}
outputs: {ya: {from: ca}, yb: {from: r}}
"""


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "two_inputs.yaml"
    p.write_text(SPEC)
    return str(p)


def test_the_table():
    assert set(driver.PASSES) == {"shapes", "ties", "cost", "training", "lint", "rf"}
    for name, p in driver.PASSES.items():
        assert p.name == name and all(r in driver.PASSES for r in p.requires)
    assert driver.PASSES["rf"].requires == ("shapes",)          # rf reads shapes, not counts
    assert driver.PASSES["cost"].requires == ("shapes", "ties")     # a shared tensor counts at its owner
    # only rf takes options, so only rf re-runs: nothing may require it (nothing goes stale)
    assert not any("rf" in p.requires for p in driver.PASSES.values())


@pytest.mark.parametrize("name", ["shapes", "ties", "cost", "training", "lint", "rf"])
def test_a_pass_runs_what_it_requires_and_writes_what_it_provides(path, name):
    """On a freshly compiled graph: exactly the pass and its requirements run, and the
    node.meta keys that appear are exactly what those passes declare."""
    g = compile_spec(path)
    before = {nid: set(n.meta) for nid, n in g.nodes.items()}      # the compiler's (doc)
    assert g.done == {} and not any(M.SHAPES in b for b in before.values())
    driver.run(g, name)
    want = {name} | set(driver.PASSES[name].requires)
    assert set(g.done) == want
    provided = {k for p in want for k in driver.PASSES[p].provides}
    for nid, n in g.nodes.items():
        assert set(n.meta) - before[nid] == provided, nid


def test_asking_twice_runs_once(path, monkeypatch):
    g = compile_spec(path)
    calls = []
    real = RF.rf_pass
    monkeypatch.setattr(RF, "rf_pass", lambda g, i=None: calls.append(i) or real(g, i))
    ctx = driver.run(g, "rf")
    recs = {nid: n.meta[M.RF] for nid, n in g.nodes.items()}
    assert driver.run(g, "rf") is ctx and calls == [None]
    assert all(n.meta[M.RF] is recs[nid] for nid, n in g.nodes.items())
    assert ctx.input == "a" and [a.size for a in ctx.axes] == [8, 8]


def test_an_input_reruns_rf_for_it_and_stays(path, monkeypatch):
    g = compile_spec(path)
    assert driver.run(g, "rf").input == "a"
    ctx = driver.run(g, "rf", input="b")
    assert ctx.input == "b" and [a.size for a in ctx.axes] == [12, 11]
    # cb: k 5, s 2 on b -> r 5, j 2 (Distill 2019: r = r_in + (k - 1)·j_in, j = j_in·s)
    assert [(s["size_max"], s["jump"]) for s in RF.layer_rf(g.nodes["cb"])[0]] == [(5, 2), (5, 2)]
    assert RF.layer_rf(g.nodes["ca"])[0] is None                 # ca does not read b
    # a later reader that does not name an input gets b's fields, not a fresh run on a
    monkeypatch.setattr(RF, "rf_pass", lambda g, i=None: pytest.fail("ran again"))
    assert driver.run(g, "rf") is ctx and driver.run(g, "rf", input="b") is ctx


def test_an_unknown_input_fails_alone(path):
    g = compile_spec(path)
    with pytest.raises(KeyError):
        driver.run(g, "rf", input="nope")
    assert driver.run(g, "rf").input == "a"                      # not a recorded failure


def test_analyse_runs_every_pass(path):
    m = archviz.load(path)
    assert set(m.graph.done) == {"shapes", "ties", "cost", "training", "lint", "rf"}
    assert all(M.RF in n.meta for n in m.graph.nodes.values())


def test_a_failing_rf_pass_never_breaks_analysis_and_runs_once(path, monkeypatch):
    calls = []

    def boom(g, i=None):
        calls.append(i)
        raise RuntimeError("boom")
    monkeypatch.setattr(RF, "rf_pass", boom)
    m = archviz.load(path)                                       # analysis goes on
    assert m.totals["params"] == (3 * 3 + 1) + (5 * 5 + 1)        # conv2d 1 -> 1: k·k + bias
    for layer in json.loads(m.to_json())["layers"]:
        assert "rf" not in layer and layer["rf_note"] == "receptive-field pass failed: RuntimeError: boom"
    with pytest.raises(RuntimeError, match="boom"):               # asked for, it says why
        driver.run(m.graph, "rf")
    assert "ca" in m.summary() and calls == [None]               # and never runs again


def test_a_failing_required_pass_is_not_recorded(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(SPEC.replace("kernel: 5", "kernel: 15"))        # 15 > 12: no output position
    g = compile_spec(str(p))
    from archviz.errors import ShapeError
    with pytest.raises(ShapeError):
        driver.run(g, "rf")
    assert g.done == {}
