"""Analysis at scale (issue 17): the bounds that let a 100,000-layer graph in, the JSON
writer, and the collector pause. The speed itself is measured by
tests/benchmarks/bench_versions.py, not by a timed test."""
from __future__ import annotations

import gc
import os
import sys

import pytest

import archviz
from archviz.errors import SpecError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "benchmarks"))
import gen_specs  # noqa: E402


def test_the_layer_budget_counts_layers_not_inputs(tmp_path, monkeypatch):
    # MAX_LAYERS layers compile (the graph's input is a node, not a layer); one more is refused
    # (the budget is lowered: the bound, not the constant, is under test)
    monkeypatch.setattr("archviz.spec.budget.MAX_LAYERS", 60)
    p = tmp_path / "ok.yaml"
    p.write_text(gen_specs.chain_spec(60))
    m = archviz.load(str(p))
    assert len(m.layers) == 60
    p.write_text(gen_specs.chain_spec(61))
    with pytest.raises(SpecError) as e:
        archviz.load(str(p))
    assert e.value.code == "E0135" and "more than 60 layers" in e.value.message
    assert (e.value.span.line, e.value.span.col) == (4 + 61, 10)    # the 61st layer's id


def test_a_100000_layer_spec_fits_the_file_bound():
    from archviz.spec.yamlload import MAX_FILE_BYTES
    assert len(gen_specs.dag_spec(100_000).encode()) <= MAX_FILE_BYTES


def test_load_leaves_the_collector_as_it_found_it(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(gen_specs.dag_spec(30))
    assert gc.isenabled()
    archviz.load(str(p))
    assert gc.isenabled()
    gc.disable()
    try:
        archviz.load(str(p))
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(SpecError):      # an error on the way restores it too
        archviz.load(str(tmp_path / "missing.yaml"))
    assert gc.isenabled()


def _random_graph(rng, n, extra):
    from archviz.ir.graph import LayerGraph, Node, Ref
    g = LayerGraph()
    g.add_node(Node("x", "input"))
    g.inputs["x"] = "x"
    ids = ["x"]
    for i in range(n):
        nid = f"n{rng.randrange(10 ** 6)}_{i}"      # ids not in spec order when sorted as text
        k = rng.randint(1, 3)
        ins = [Ref(rng.choice(ids[-extra:] if rng.random() < 0.7 else ids)) for _ in range(k)]
        g.add_node(Node(nid, "add", inputs=ins))
        ids.append(nid)
    return g, ids


def test_graph_algorithms_agree_with_networkx():
    # the truth: networkx's own algorithms on the same edges (the graph used them before)
    import random

    import networkx as nx

    from archviz.ir.graph import Ref
    rng = random.Random(17)
    for trial in range(40):
        g, ids = _random_graph(rng, rng.randint(1, 60), rng.randint(1, 5))
        # reorder: a node may read one defined after it in spec order (as refs allow)
        last = list(g.nodes.values())[-1]
        if trial % 3 == 0 and len(g.nodes) > 3:
            first = list(g.nodes.values())[1]
            first.inputs.append(Ref(list(g.nodes)[-2]))
        g.connect()
        nxg = nx.MultiDiGraph()
        nxg.add_nodes_from(g.nodes)
        for n in g.nodes.values():
            for i, r in enumerate(n.inputs):
                nxg.add_edge(r.node, n.id, key=i)
        order = {k: n.order for k, n in g.nodes.items()}
        if nx.is_directed_acyclic_graph(nxg):
            want = list(nx.lexicographical_topological_sort(nxg, key=order.__getitem__))
            assert [n.id for n in g.topo_order()] == want
            assert not [p for p in g.lint({}) if p.code == "E0306"]
        else:
            cycles = [p for p in g.lint({}) if p.code == "E0306"]
            assert len(cycles) == 1 and cycles[0].message.startswith("cycle in the layer graph: ")
        g.outputs["y"] = Ref(last.id)
        live = {last.id} | nx.ancestors(nxg, last.id)
        assert g.unreached() == [k for k in g.nodes if k not in live]
        for k in g.nodes:
            assert [c.id for c in g.consumers(k)] == list(dict.fromkeys(nxg.successors(k)))
        assert sorted(g.g.edges(keys=True)) == sorted(nxg.edges(keys=True))


def test_unreached_answered_from_the_readers_lint_leaves():
    # every node read by another or an output: nothing is unreached, and lint's readers say so
    # without a walk; an unread node, or a cycle cut off from the output (whose nodes all have
    # readers), is found by the walk, as networkx finds it
    import networkx as nx

    from archviz.ir.graph import LayerGraph, Node, Ref

    def graph(edges, out):
        g = LayerGraph()
        g.add_node(Node("x", "input"))
        g.inputs["x"] = "x"
        for nid, ins in edges:
            g.add_node(Node(nid, "add", inputs=[Ref(r) for r in ins]))
        g.outputs["y"] = Ref(out)
        return g

    def truth(g):
        nxg = nx.MultiDiGraph()
        nxg.add_nodes_from(g.nodes)
        nxg.add_edges_from((r.node, n.id) for n in g.nodes.values() for r in n.inputs)
        live = {g.outputs["y"].node} | nx.ancestors(nxg, g.outputs["y"].node)
        return [k for k in g.nodes if k not in live]

    # a graph rewired into a cycle and linted again (without connect): the order lint found
    # before is gone, and the walk answers
    g = graph([("a", ["x"]), ("p", ["x"]), ("q", ["p"])], "a")
    g.outputs["z"] = Ref("q")
    assert not g.lint({}) and g.unreached() == []
    g.nodes["p"].inputs = [Ref("q")]
    del g.outputs["z"]
    assert [p.code for p in g.lint({})] == ["E0306"] and g.unreached() == truth(g) == ["p", "q"]

    chain = [("a", ["x"]), ("b", ["a", "x"]), ("c", ["b", "a"])]
    for edges, out, want in [(chain, "c", []),
                             (chain + [("d", ["b"])], "c", ["d"]),
                             ([("a", ["x"]), ("b", ["c"]), ("c", ["b"])], "a", ["b", "c"])]:
        g = graph(edges, out)
        cyclic = [p for p in g.lint({}) if p.code == "E0306"]
        assert bool(cyclic) == (out == "a")
        assert g.unreached() == truth(g) == want


def test_shared_empty_containers_read_as_empty_and_refuse_writes():
    import copy
    import pickle

    from archviz.ir.frozen import EMPTY_DICT, EMPTY_LIST
    assert EMPTY_DICT == {} and EMPTY_LIST == [] and not EMPTY_DICT and not EMPTY_LIST
    assert EMPTY_DICT.get("w") is None and list(EMPTY_DICT.items()) == [] and list(EMPTY_LIST) == []
    for write in (lambda: EMPTY_DICT.__setitem__("w", 1), lambda: EMPTY_DICT.setdefault("w", []),
                  lambda: EMPTY_DICT.update(w=1), lambda: EMPTY_LIST.append("x"),
                  lambda: EMPTY_LIST.extend(["x"]), lambda: EMPTY_LIST.insert(0, "x")):
        with pytest.raises(TypeError, match="shared empty"):
            write()
    assert EMPTY_DICT == {} and EMPTY_LIST == []
    # pickled or copied (a model sent to a worker process), still the one read-only empty: a
    # plain copy would be one writable dict shared by every node of the copy
    for c in (pickle.loads(pickle.dumps(EMPTY_DICT)), copy.deepcopy(EMPTY_DICT), copy.copy(EMPTY_DICT)):
        assert c is EMPTY_DICT
    for c in (pickle.loads(pickle.dumps(EMPTY_LIST)), copy.deepcopy(EMPTY_LIST), copy.copy(EMPTY_LIST)):
        assert c is EMPTY_LIST
    m = archviz.load("resnet18")
    for twin in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        nodes = list(twin.graph.nodes.values())
        assert all(n.meta["ties"] is EMPTY_DICT and n.meta["tied_by"] is EMPTY_DICT for n in nodes)
        with pytest.raises(TypeError, match="shared empty"):
            nodes[1].meta["ties"]["weight"] = ("conv1", "weight", (64, 3, 7, 7), "param")
        assert twin.totals == m.totals


def test_layers_that_share_weights_get_their_own_ties_and_the_rest_share_one_empty(tmp_path):
    from archviz.ir import meta as M
    from archviz.ir.frozen import EMPTY_DICT
    p = tmp_path / "tied.yaml"
    p.write_text("archviz: 1\nname: tied\ninputs: {x: {shape: [8]}}\nnodes:\n"
                 "  - {id: a, op: linear, out: 8}\n  - {id: r, op: relu}\n"
                 "  - {id: b, op: linear, out: 8, share: a}\n")
    m = archviz.load(str(p))
    meta = {k: n.meta for k, n in m.graph.nodes.items()}
    assert meta["b"][M.TIES] == {"weight": ("a", "weight", (8, 8), "param"), "bias": ("a", "bias", (8,), "param")}
    assert meta["a"][M.TIED_BY] == {"weight": [("b", "weight")], "bias": [("b", "bias")]}
    assert type(meta["b"][M.TIES]) is dict and type(meta["a"][M.TIED_BY]) is dict
    assert meta["a"][M.TIES] is meta["r"][M.TIES] is meta["r"][M.TIED_BY] is meta["b"][M.TIED_BY] is EMPTY_DICT
    assert m.totals["params"] == 8 * 8 + 8


@pytest.mark.parametrize("chunk", [1, 2, 7, 512])
def test_the_streamed_json_is_the_documents_text(tmp_path, chunk):
    # the writer that encodes layers a chunk at a time gives exactly json.dumps of to_dict()
    import json

    from archviz.backends.report import _stream_json
    for spec in ("specs/unet.yaml", "specs/seq2seq_bahdanau.yaml", "specs/exam_one_5x5.yaml"):
        m = archviz.load(os.path.join(os.path.dirname(os.path.dirname(__file__)), spec))
        assert _stream_json(m, chunk) == json.dumps(m.to_dict(), separators=(",", ":")) + "\n"


def test_the_streamed_json_when_receptive_fields_fail(monkeypatch):
    import json

    from archviz.backends.report import _stream_json
    from archviz.passes import rf as RF

    def broken(g, input_name=None):
        raise RuntimeError("boom")
    monkeypatch.setattr(RF, "rf_pass", broken)
    m = archviz.load(os.path.join(os.path.dirname(os.path.dirname(__file__)), "specs/exam_one_5x5.yaml"))
    d = json.loads(_stream_json(m, 1))
    assert d == m.to_dict() and d["layers"]
    assert all(e["rf_note"] == "receptive-field pass failed: RuntimeError: boom" and "rf" not in e for e in d["layers"])


def test_commands_that_show_no_field_leave_the_rf_pass_alone(tmp_path, monkeypatch):
    # receptive fields are lazy in the CLI (issue 17, item 4): validate pays nothing for them,
    # and a command that shows them runs the pass once
    from click.testing import CliRunner
    from archviz.cli import main
    from archviz.passes import rf as RF
    p = tmp_path / "d.yaml"
    p.write_text(gen_specs.dag_spec(30))
    calls = []
    real = RF.rf_pass
    monkeypatch.setattr(RF, "rf_pass", lambda g, i=None: calls.append(i) or real(g, i))
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 0 and "30 layers" in r.output and calls == []
    r = CliRunner().invoke(main, ["summary", str(p), "-f", "json"])
    assert r.exit_code == 0 and calls == [None]
    import json
    assert json.loads(r.output)["layers"][-1]["rf"][0]["size_min"] == 1 + 2 * 10    # ten 3x3 convs


def test_equal_attribute_sets_share_one_attrs_and_values_keep_their_types(tmp_path):
    from archviz.errors import ArchvizError
    head = "archviz: 1\nname: t\ninputs: {x: {shape: [4, 8, 8]}}\nnodes:\n"
    p = tmp_path / "a.yaml"
    p.write_text(head + "  - {id: a, op: conv2d, out: 4, kernel: 3, padding: 1}\n"
                        "  - {id: b, op: conv2d, out: 4, kernel: 3, padding: 1, frozen: true}\n"
                        "  - {id: c, op: conv2d, out: 4, kernel: [3, 3], padding: 1}\n")
    m = archviz.load(str(p))
    a, b, c = (m.graph.nodes[k] for k in "abc")
    assert a.attrs is b.attrs and a.attrs == c.attrs       # [3, 3] is written otherwise: its own
    # one answer for equal (op, attrs, shapes), but frozen is the node's: 4*4*9 + 4 = 148 each
    assert (m.layer("a").params.trainable, m.layer("b").params.non_trainable) == (148, 148)
    assert m.totals["trainable_params"] == 2 * 148 and m.totals["non_trainable_params"] == 148
    # 3 and 3.0 are equal keys of a dict, not equal attributes: 3.0 is refused where 3 is taken
    p.write_text(head + "  - {id: a, op: conv2d, out: 4, kernel: 3}\n  - {id: b, op: conv2d, out: 4, kernel: 3.0}\n")
    with pytest.raises(ArchvizError) as e:
        archviz.load(str(p))
    assert "'b' (conv2d)" in str(e.value) and "expected an integer" in str(e.value)


def test_a_command_gives_the_collector_back_as_it_found_it(tmp_path):
    # load_model pauses the collector and freezes the model for the command (issue 17);
    # the caller's process (here pytest's) gets both back, also after an error
    from click.testing import CliRunner
    from archviz.cli import main
    from archviz.backends.rf_commands import rf
    p = tmp_path / "d.yaml"
    p.write_text(gen_specs.dag_spec(30))
    gc.unfreeze()       # what an earlier test may have left: this one starts from a thawed heap
    # through archviz's group, and a command run by another group (or alone)
    for group, args in ((main, ["summary", str(p), "-f", "json"]), (main, ["validate", str(tmp_path / "nope.yaml")]),
                        (rf, [str(p)])):
        assert gc.isenabled() and not gc.get_freeze_count()
        assert CliRunner().invoke(group, args).exit_code in (0, 1)
        assert gc.isenabled() and not gc.get_freeze_count()
