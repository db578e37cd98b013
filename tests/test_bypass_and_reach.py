"""A bypassed node (`when: false`) passes one input, which the spec names when there are
several; layers whose output reaches no graph output are reported; `repeat: 0` under a
false `when:`; `expect:` is checked as soon as its node is shaped.

The silent trap this guards: a shortcut `add: [x, branch]` with its condition off used to
pass `x` and drop the whole branch, whose layers stayed counted, so the totals looked right."""
from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import ExpectError, ShapeError
from tests.spec_errors import errors_of


def spec(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)




# A YOLO-style bottleneck: cv1 → cv2, with the shortcut add switched by a param.
BOTTLENECK = """\
    archviz: 1
    name: bottleneck
    params: {shortcut: false}
    inputs:
      x: {shape: [8, 16, 16]}
    nodes:
      - {id: cv1, op: conv2d, out: 8, kernel: 3, padding: 1}
      - {id: cv2, op: conv2d, out: 8, kernel: 3, padding: 1}
      - {id: add, op: add, in: [x, cv2], when: "${shortcut}"BYPASS}
    """


def test_bypassed_node_with_several_inputs_must_say_which_it_passes(tmp_path):
    p = spec(tmp_path, BOTTLENECK.replace("BYPASS", ""))
    [e] = errors_of(p)
    assert e.code == "E0140" and "2 inputs" in e.message and "bypassed" in e.message
    line = open(p).read().splitlines()[8]
    assert (e.span.line, e.span.col) == (9, line.index('${shortcut}') + 1)     # the `when:` expression
    assert "bypass: x" in e.hint
    # switched on, the same spec is fine: the add reads both
    m = archviz.load(p, shortcut=True)
    assert m.layer("add").inputs == ["x", "cv2"] and m.warnings == []


@pytest.mark.parametrize("passes,unused", [("cv2", []), ("x", ["cv1", "cv2"])])
def test_bypass_names_the_input_and_cut_off_layers_are_reported(tmp_path, passes, unused):
    p = spec(tmp_path, BOTTLENECK.replace("BYPASS", f", bypass: {passes}"))
    m = archviz.load(p)
    assert m.graph.outputs["out"].node == passes
    assert [w.code for w in m.warnings] == (["W0701"] if unused else [])
    if unused:
        w = m.warnings[0]
        assert w.message.startswith("2 layer(s) reach no output: cv1, cv2")
        assert "still counted" in w.hint
        # still counted: conv 3·3·8·8 + 8 per layer, twice
        assert m.totals["params"] == 2 * (3 * 3 * 8 * 8 + 8)
        r = CliRunner().invoke(main, ["summary", p, "-f", "json"])
        assert r.exit_code == 0
        doc = json.loads(r.stdout)
        col = open(p).read().splitlines()[6].index("conv2d") + 1      # cv1's op
        assert doc["warnings"] == [{"code": "W0701", "message": w.message, "at": f"{p}:7:{col}"}]
        assert "warning[W0701]" in r.stderr
        r = CliRunner().invoke(main, ["validate", p])
        assert r.exit_code == 0 and "warning[W0701]" in r.stderr


def test_bypass_by_port_of_a_mapping_in(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        name: t
        params: {on: false}
        inputs:
          q: {shape: [4, 8]}
          k: {shape: [6, 8]}
        nodes:
          - {id: a, op: multihead_attention, in: {query: q, key: k}, heads: 2, when: "${on}", bypass: query}
        """)
    m = archviz.load(p)
    assert m.output_shapes == {"out": (1, 4, 8)}
    assert [w.message for w in m.warnings] == ["input 'k' is not used by any output"]
    assert archviz.load(p, on=True).output_shapes == {"out": (1, 4, 8)}


def test_bypass_errors(tmp_path):
    p = spec(tmp_path, BOTTLENECK.replace("BYPASS", ", bypass: cv9"))
    [e] = errors_of(p)
    assert e.code == "E0140" and "not one of the node's inputs" in e.message and e.hint == "inputs: x, cv2"
    p = spec(tmp_path, BOTTLENECK.replace(', when: "${shortcut}"BYPASS', ", bypass: x"))
    [e] = errors_of(p)
    assert e.code == "E0140" and "no `when:`" in e.message


def test_single_input_bypass_passes_it_through(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        name: t
        inputs:
          x: {shape: [3, 8, 8]}
        nodes:
          - {id: c, op: conv2d, out: 4, kernel: 3}
          - {id: d, op: dropout, when: false}
          - {id: r, op: relu}
        """)
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["c", "r"] and m.layer("r").inputs == ["c"] and m.warnings == []


def test_repeat_zero_under_a_false_when(tmp_path):
    text = """\
        archviz: 1
        name: t
        params: {n: 0}
        inputs:
          x: {shape: [3, 8, 8]}
        nodes:
          - {id: c, op: conv2d, out: 4, kernel: 3}
          - {id: extra, op: relu, repeat: "${n}"WHEN}
          - {id: r, op: sigmoid}
        """
    p = spec(tmp_path, text.replace("WHEN", ', when: "${n > 0}"'))
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["c", "r"] and m.layer("r").inputs == ["c"]
    assert [l.id for l in archviz.load(p, n=2).layers] == ["c", "extra.0", "extra.1", "r"]
    # `repeat: 0` needs no `when:` (issue 12): the node is absent and passes its input through
    m = archviz.load(spec(tmp_path, text.replace("WHEN", ""), "b.yaml"))
    assert [l.id for l in m.layers] == ["c", "r"] and m.layer("r").inputs == ["c"]
    m = archviz.load(spec(tmp_path, text.replace("WHEN", ", when: true"), "c.yaml"))
    assert [l.id for l in m.layers] == ["c", "r"]


def test_an_earlier_expect_is_reported_before_the_shape_error_it_explains(tmp_path):
    # the author expected 16×16 after the first conv (padding forgotten: 14×14), and the
    # later concat fails because of it; the first cause must come first
    p = spec(tmp_path, """\
        archviz: 1
        name: t
        inputs:
          x: {shape: [3, 16, 16]}
        nodes:
          - {id: c, op: conv2d, out: 4, kernel: 3, expect: [4, 16, 16]}
          - {id: cat, op: concat, in: [x, c]}
        """)
    errs = errors_of(p)
    assert [type(e) for e in errs] == [ExpectError, ShapeError]
    assert errs[0].span.line == 6 and "got [4, 14, 14]" in errs[0].message
    assert errs[1].span.line == 7


def test_a_repeat_that_blows_the_layer_budget_is_refused_after_a_few_copies(monkeypatch):
    """Fuzz repro 11: `-p depths=[100000,1,1,1]` on resnet18 expanded ~14,000 blocks (21 s,
    645 MB) before the budget stopped it; two copies show it cannot fit."""
    from archviz.spec.budget import MAX_LAYERS
    from archviz.spec.compile import Compiler
    calls = []
    real = Compiler._call
    monkeypatch.setattr(Compiler, "_call", lambda self, *a: calls.append(1) or real(self, *a))
    [e] = errors_of("specs/resnet18.yaml", depths=[100000, 1, 1, 1])
    # the stem (conv, bn, relu, pool) and 100,000 basic blocks of 2 conv, 2 bn, 2 relu and an
    # add (layer1 keeps its 64 channels: no projection); later stages are not counted
    assert e.code == "E0135" and e.message == ("'layer1' repeats 100,000 copies: the spec would expand to at "
                                               f"least {4 + 100_000 * 7:,} layers, more than {MAX_LAYERS:,}")
    layer1 = next(i for i, line in enumerate(open("specs/resnet18.yaml"), 1) if "id: layer1," in line)
    assert e.span.line == layer1 and len(calls) == 2 + 3    # layer1 twice, then layer2..4 once each
    # a count that fits still expands in full (1000 basic blocks of 7 layers)
    assert len(archviz.load("specs/resnet18.yaml", depths=[1000, 1, 1, 1]).layers) == 7034


def test_the_budget_evaluates_only_the_values_that_name_the_copy(monkeypatch):
    """Fuzz seed 30, case 565: resnet152 with -p depths=[100000,1,1,1] took over 10 s in the
    budget, which evaluated all four attributes of each of the 100,000 copies (400,000
    evaluations). Only `proj: "${i == 0}"` names the index: one evaluation per copy."""
    from archviz.spec.compile import Compiler
    calls = []
    real = Compiler._eval
    monkeypatch.setattr(Compiler, "_eval", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    [e] = errors_of("specs/resnet50.yaml", depths=[100000, 1, 1, 1])
    assert e.code == "E0135" and "'layer1' repeats 100,000 copies" in e.message
    assert 100_000 <= len(calls) < 101_000


def test_a_port_of_a_bypassed_node_is_a_located_error(tmp_path):
    """Fuzz finding: an output `from: rnn.h` of a bypassed rnn resolved to port 'h' of the
    graph input, and `validate` died on a KeyError."""
    p = spec(tmp_path, """\
        archviz: 1
        name: t
        inputs:
          x: {shape: [5, 3]}
        nodes:
          - {id: rnn, op: rnn, out: 4, when: false}
        outputs:
          h_T: {from: rnn.h}
        """)
    [e] = errors_of(p)
    assert e.code == "E0302" and e.span.line == 8
    assert e.message == ("'rnn.h' does not exist: 'rnn' is bypassed (when: false) and stands for 'x' (input), "
                         "which has no output 'h'")
    p2 = spec(tmp_path, open(p).read().replace("when: false", "when: true"), "on.yaml")
    assert archviz.load(p2).output_shapes == {"h_T": (1, 1, 4)}


@pytest.mark.parametrize("text,layers", [
    # review: 300 copies of a 200-layer block, all but two bypassed: 400 layers
    ("""\
     archviz: 1
     name: t
     inputs:
       x: {shape: [8]}
     blocks:
       deep:
         nodes:
           - {id: l, op: linear, out: 8, repeat: 200}
     nodes:
       - {id: b, op: deep, repeat: {n: 300, var: i}, when: "${i < 2}"}
     """, 400),
    # review: copies that shrink: 300, 200, 100, then 597 copies of 1 layer
    ("""\
     archviz: 1
     name: t
     inputs:
       x: {shape: [8]}
     blocks:
       deep:
         params: {d: {type: int}}
         nodes:
           - {id: l, op: linear, out: 8, repeat: "${d}"}
     nodes:
       - {id: b, op: deep, d: "${max(1, 300 - 100*i)}", repeat: {n: 600, var: i}}
     """, 300 + 200 + 100 + 597),
    # a table without `var`: its rows still differ (the budget took every copy for the first:
    # 700 + 700 + 2 × 700 > 2,000, where the rows make 700 + 700 + 1 + 1)
    ("""\
     archviz: 1
     name: t
     inputs:
       x: {shape: [8]}
     blocks:
       deep:
         params: {d: {type: int}}
         nodes:
           - {id: l, op: linear, out: 8, repeat: "${d}"}
     nodes:
       - {id: b, op: deep, d: "${d}", repeat: {rows: [{d: 700}, {d: 700}, {d: 1}, {d: 1}]}}
     """, 700 + 700 + 1 + 1),
    # copies of one block with equal values whose sizes differ: each reads its own input's
    # shape (1,000 features, then 500, 250, 125): 1,001 + 501 + 251 + 126 layers, where
    # "the rest are like copy 1" claimed at least 1,502 + 2 × 501
    ("""\
     archviz: 1
     name: t
     inputs:
       x: {shape: [1000]}
     blocks:
       half:
         inputs: [x]
         nodes:
           - {id: r, op: relu, repeat: "${shape(x)[0]}"}
           - {id: l, op: linear, out: "${shape(x)[0] // 2}"}
     nodes:
       - {id: b, op: half, repeat: 4}
     """, 1001 + 501 + 251 + 126),
])
def test_the_budget_never_refuses_a_repeat_that_fits(tmp_path, monkeypatch, text, layers):
    """The early refusal is a lower bound from copies with equal values, never a guess from
    the first copies (the estimate 'smallest copy so far × the rest' refused both)."""
    monkeypatch.setattr("archviz.spec.budget.MAX_LAYERS", 2_000)
    m = archviz.load(spec(tmp_path, text))
    assert len(m.layers) == layers
    monkeypatch.setattr("archviz.spec.budget.MAX_LAYERS", layers - 1)
    [e] = errors_of(spec(tmp_path, text, "b.yaml"))
    assert e.code == "E0135"


@pytest.mark.parametrize("nodes, layers", [
    ("  - {id: a, op: relu, repeat: 10}\n", 10),
    ("  - {id: a, op: relu, repeat: 8}\n  - {id: b, op: relu}\n  - {id: c, op: relu}\n", 10),
])
def test_the_layer_budget_holds_exactly_max_layers(tmp_path, monkeypatch, nodes, layers):
    """MAX_LAYERS layers, the graph's input not counted (it is no layer): 10 fit when the
    budget is 10. The 10th layer was refused as 'more than 10 layers' (the input counted)."""
    monkeypatch.setattr("archviz.spec.budget.MAX_LAYERS", 10)
    head = "archviz: 1\nname: t\ninputs:\n  x: {shape: [4]}\nnodes:\n"
    assert len(archviz.load(spec(tmp_path, head + nodes)).layers) == layers
    # one layer more: one error, not one for each node after the budget ran out
    [e] = errors_of(spec(tmp_path, head + nodes + "  - {id: d, op: relu}\n  - {id: e, op: relu}\n", "b.yaml"))
    assert e.code == "E0135" and e.span.line == 6 + nodes.count("\n") and "more than 10 layers" in e.message


def test_a_spec_that_reads_shapes_is_still_refused_after_a_few_copies(monkeypatch):
    """ShuffleNet's unit reads its input's channels (shape(x)), so copies with equal values
    may differ in size; each still has 10 layers whatever it reads (branch2's 8, the concat,
    the shuffle: specs/blocks/shufflenet.yaml), so 100,000 copies cannot fit."""
    from archviz.spec.compile import Compiler
    calls = []
    real = Compiler._call
    monkeypatch.setattr(Compiler, "_call", lambda self, *a: calls.append(1) or real(self, *a))
    [e] = errors_of("specs/shufflenet_v2_x1_0.yaml", repeats=[100000, 1, 1])
    assert e.code == "E0135" and "'stage2' repeats 100,000 copies" in e.message
    assert len(calls) <= 2 + 2      # stage2 twice, then stage3 and stage4


def test_report_files_carry_the_warnings(tmp_path):
    """W0701 was in the report's JSON and HTML but not in its .md and .summary.txt."""
    spec = tmp_path / "dead.yaml"
    spec.write_text(textwrap.dedent("""\
        archviz: 1
        name: dead
        inputs: {x: {shape: [3, 8, 8]}}
        nodes:
          - {id: a, op: conv2d, out: 4, kernel: 3}
          - {id: b, op: conv2d, in: x, out: 2, kernel: 1}
        outputs: {y: a}
        """))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["report", str(spec), "-o", str(out), "--no-diagrams"])
    assert r.exit_code == 0, r.output
    for name in ("dead.md", "dead.summary.txt"):
        text = (out / name).read_text()
        assert "warning[W0701]" in text and "reach no output: b" in text and f"{spec}:6:" in text
    clean = tmp_path / "clean.yaml"
    clean.write_text(spec.read_text().replace("  - {id: b, op: conv2d, in: x, out: 2, kernel: 1}\n", ""))
    CliRunner().invoke(main, ["report", str(clean), "-o", str(out), "--no-diagrams"])
    assert "warning" not in (out / "clean.md").read_text()
