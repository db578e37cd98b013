"""The one-step compilation of plain nodes (archviz.spec.plainnodes) builds what the
general path (archviz.spec.nodes) builds: the same graph nodes, attributes, inputs,
locations and notes, and the same errors. The truth is the general path, which the rest
of the suite checks against torch and the spec language's tests."""
from __future__ import annotations

import glob
import os
import sys

import pytest

from archviz.errors import ArchvizError, MultipleErrors
from archviz.spec import compile_spec
from archviz.spec import yamlfast
from archviz.spec.plainnodes import PlainNodes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(p for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml")))


def _span(s):
    return None if s is None else (s.file, s.line, s.col, s.end_col)


def picture(path, **kw):
    """Everything the compiler built, as plain values; or the errors it reported."""
    try:
        g = compile_spec(path, **kw)
    except ArchvizError as e:
        errs = e.errors if isinstance(e, MultipleErrors) else [e]
        return [(type(x).__name__, x.code, x.message, _span(x.span), x.hint, x.notes) for x in errs]
    nodes = [(n.id, n.op, dict(n.attrs), [(r.node, r.port) for r in n.inputs], n.input_ports, n.scope,
              _span(n.span), {k: _span(s) for k, s in n.attr_spans.items()}, [_span(s) for s in n.input_spans],
              list(n.notes), n.frozen, n.order, dict(n.meta),
              repr(dict(n.attrs))) for n in g.nodes.values()]     # (types too: 1, 1.0 and True are ==)
    return nodes, dict(g.outputs), g.repeats, [(w.code, w.message, _span(w.span)) for w in g.warnings], \
        [n.id for n in g.topo_order()]


def general(monkeypatch, path, **kw):
    """The picture the general paths make: no plain node, and the YAML read by libyaml."""
    with monkeypatch.context() as m:
        m.setattr(PlainNodes, "_plain", lambda self, nd, scope, prev: None)
        m.setattr(yamlfast, "MIN_LINES", 10 ** 9)
        return picture(path, **kw)


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_every_bundled_spec_compiles_the_same(path, monkeypatch):
    assert picture(path) == general(monkeypatch, path)


@pytest.mark.parametrize("path", SPECS + ["dag"], ids=os.path.basename)
def test_the_topological_order_is_kahns(path, tmp_path):
    """lint takes the spec order when every edge runs forward: it is the order Kahn's
    algorithm (the earliest ready node first) finds."""
    if path == "dag":
        sys.path.insert(0, os.path.join(ROOT, "tests", "benchmarks"))
        import gen_specs
        path = gen_specs.write("dag", 600, str(tmp_path / "dag.yaml"))
    g = compile_spec(path)
    assert [n.id for n in g.topo_order()] == g._kahn()


def test_the_plain_path_takes_the_nodes_it_is_for(tmp_path, monkeypatch):
    """Not vacuous: the generated 300-layer DAG's layers all take it."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "benchmarks"))
    import gen_specs
    path = gen_specs.write("dag", 300, str(tmp_path / "dag.yaml"))
    taken = []
    real = PlainNodes._plain

    def counting(self, nd, scope, prev):
        s = real(self, nd, scope, prev)
        taken.append(s is not None)
        return s
    monkeypatch.setattr(PlainNodes, "_plain", counting)
    got = picture(path)
    assert taken.count(True) == 300
    monkeypatch.undo()
    assert got == general(monkeypatch, path)


HEAD = "archviz: 1\nname: t\nparams: {n: 4}\ninputs: {x: {shape: [8, 16, 16]}}\n"
CASES = {
    "plain": "nodes:\n  - {id: c, op: conv2d, out: 8, kernel: 3, padding: 1}\n  - {id: r, op: relu}\n"
             "  - {id: a, op: add, in: [r, x]}\n",
    "forward reference": "nodes:\n  - {id: a, op: add, in: [r, x]}\n  - {id: r, op: relu, in: x}\n",
    "unknown attribute": "nodes:\n  - {id: c, op: conv2d, out: 8, kernal: 3}\n",
    "bad value": "nodes:\n  - {id: c, op: conv2d, out: -8, kernel: 3}\n",
    "missing attribute": "nodes:\n  - {id: c, op: conv2d, kernel: 3}\n",
    "duplicate id": "nodes:\n  - {id: r, op: relu}\n  - {id: r, op: relu}\n",
    "id of an input": "nodes:\n  - {id: x, op: relu}\n",
    "unknown reference": "nodes:\n  - {id: r, op: relu, in: y}\n",
    "unknown op": "nodes:\n  - {id: r, op: rleu}\n",
    "bad id": "nodes:\n  - {id: 3r, op: relu}\n",
    "expression": "nodes:\n  - {id: c, op: conv2d, out: '${n * 2}', kernel: 3}\n",
    "bad expression": "nodes:\n  - {id: c, op: conv2d, out: '${m * 2}', kernel: 3}\n",
    "list attribute": "nodes:\n  - {id: c, op: conv2d, out: 8, kernel: [3, 1], padding: [1, 0]}\n",
    "list with expression": "nodes:\n  - {id: c, op: conv2d, out: 8, kernel: [3, '${n}'], padding: 1}\n",
    "defaults": "defaults: {conv2d: {padding: 1}}\nnodes:\n  - {id: c, op: conv2d, out: 8, kernel: 3}\n",
    "frozen": "nodes:\n  - {id: c, op: conv2d, out: 8, kernel: 3, frozen: true}\n",
    "doc": "nodes:\n  - {id: c, op: conv2d, out: 8, kernel: 3, doc: a layer}\n",
    "port": "nodes:\n  - {id: s, op: split, sections: [4, 4]}\n  - {id: r, op: relu, in: s.out}\n",
    "repeat": "nodes:\n  - {id: r, op: relu, repeat: 3}\n",
    "no input": "nodes:\n  - {id: r, op: relu, in: []}\n",
    "input as mapping": "nodes:\n  - {id: r, op: relu, in: {x: x}}\n",
    "op as list": "nodes:\n  - {id: r, op: [relu]}\n",
    "id as number": "nodes:\n  - {id: 3, op: relu}\n",
    "a cycle": "nodes:\n  - {id: a, op: relu, in: b}\n  - {id: b, op: relu, in: a}\n",
    "outputs": "nodes:\n  - {id: r, op: relu}\n  - {id: t, op: tanh, in: x}\noutputs: {o: r}\n",
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_kind_of_node_compiles_the_same(name, tmp_path, monkeypatch):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + CASES[name])
    assert picture(str(path)) == general(monkeypatch, str(path))


def test_nodes_written_alike_share_one_answer_and_keep_their_types(tmp_path, monkeypatch):
    """The plain path answers once for the nodes written alike (op, keys, values, types):
    values equal as keys but not as attributes (1, 1.0, True; 0.0 and -0.0), a value
    refused among accepted ones, a key the op does not know, each keep what the general
    path makes of them. Enough lines for the YAML fast path, so its mappings are read."""
    variants = ["op: conv2d, out: 8, kernel: 3, padding: 1", "op: conv2d, out: 8, kernel: 3, padding: 1, bias: true",
                "op: conv2d, out: 8, kernel: 3, padding: 1, bias: false", "op: conv2d, out: 8, kernel: [3, 3], padding: 1",
                "op: conv2d, kernel: 3, out: 8, padding: 1", "op: dropout, p: 0", "op: dropout, p: 0.0",
                "op: dropout, p: 0.25", "op: leaky_relu, negative_slope: 0.0", "op: leaky_relu, negative_slope: -0.0",
                "op: leaky_relu, negative_slope: 0", "op: relu"]
    # each refused value after the nodes whose key it equals (True == 1, False == 0, 8 == 8.0)
    for bad in ["", "op: conv2d, out: 8, kernel: 3, padding: 1, bias: 1", "op: conv2d, out: 8, kernel: 3, padding: 1, bias: 0",
                "op: conv2d, out: 8.0, kernel: 3, padding: 1", "op: conv2d, out: -8, kernel: 3, padding: 1",
                "op: conv2d, out: 8, kernal: 3, padding: 1", "op: dropout, p: false", "op: dropout, p: half"]:
        lines = []
        for i in range(96):
            v = bad if bad and i == 50 else variants[i % len(variants)]
            lines.append(f"  - {{id: n{i}, {v}}}\n")
        path = tmp_path / "alike.yaml"
        path.write_text(HEAD + "nodes:\n" + "".join(lines))
        got = picture(str(path))
        assert got == general(monkeypatch, str(path)), bad
        assert (type(got) is list) == bool(bad), bad        # the refused value is reported
