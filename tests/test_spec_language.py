"""The spec language, end to end through archviz.load: params and overrides, inputs,
blocks (typed params, defaults), references (ports, indices), repeat, when, defaults,
imports, hierarchical ids, and the values YAML and `${...}` produce inside a spec.
Expected values are derived here from the conv/linear formulas, not copied."""
from __future__ import annotations

import json
import textwrap
import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import ExpressionError, SpecError
from tests.spec_errors import errors_of


def spec(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))
    return str(p)




def col(path: str, lineno: int, needle: str, after: str = "") -> int:
    """1-based column of `needle` on line `lineno` of the file (after `after`, if given)."""
    with open(path) as f:
        line = f.read().splitlines()[lineno - 1]
    return line.index(needle, line.index(after) if after else 0) + 1


def shapes(m) -> dict:
    return {l.id: l.output_shape for l in m.layers}


# -- params --------------------------------------------------------------------------
PARAMS = """\
    archviz: 1
    params: {c: 8, double: "${c * 2}", size: 16, widths: [4, 6]}
    inputs: {x: {shape: [3, "${size}", "${size}"]}}
    nodes:
      - {id: a, op: conv2d, out: "${double}", kernel: 1}
      - {id: b, op: conv2d, out: "${widths[-1]}", kernel: 1}
"""


def test_params_and_load_overrides(tmp_path):
    p = spec(tmp_path, PARAMS)
    m = archviz.load(p)
    assert shapes(m) == {"a": (1, 16, 16, 16), "b": (1, 6, 16, 16)}
    assert m.graph.params == {"c": 8, "double": 16, "size": 16, "widths": [4, 6]}
    # params derived from an overridden param follow it
    m = archviz.load(p, c=5, size=4, widths=[1, 2, 3])
    assert shapes(m) == {"a": (1, 10, 4, 4), "b": (1, 3, 4, 4)}


def test_params_overridden_with_dash_p(tmp_path):
    p = spec(tmp_path, PARAMS)
    r = CliRunner().invoke(main, ["summary", p, "-f", "json", "-p", "c=3", "-p", "widths=[2, 7]",
                                  "-p", "size=8"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["outputs"] == {"out": [1, 7, 8, 8]}
    assert [l["output_shape"] for l in d["layers"]] == [[1, 6, 8, 8], [1, 7, 8, 8]]
    # conv 1x1: params = in*out + out
    assert d["totals"]["params"] == (3 * 6 + 6) + (6 * 7 + 7)


def test_unknown_override_is_an_error(tmp_path):
    p = spec(tmp_path, PARAMS)
    (e,) = errors_of(p, dobule=3)
    assert e.code == "E0115" and "no param 'dobule'" in e.message and "double" in e.hint


def test_a_param_reads_only_the_params_above_it(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {a: "${b}", b: 1}
        inputs: {x: [4]}
        nodes: [{id: r, op: relu}]
    """)
    (e,) = errors_of(p)
    assert e.code == "E0203" and "'b'" in e.message and (e.span.line, e.span.col) == (2, col(p, 2, "b}"))


# -- inputs and outputs --------------------------------------------------------------
def test_several_named_inputs_and_outputs(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs:
          img: {shape: [3, 8, 8]}
          meta: [5]
        nodes:
          - {id: conv, op: conv2d, in: img, out: 4, kernel: 3, padding: 1}
          - {id: pool, op: global_avgpool}
          - {id: flat, op: flatten}
          - {id: both, op: concat, in: [flat, meta], axis: 1}
          - {id: head, op: linear, out: 2}
        outputs:
          logits: head
          feats: {from: flat, expect: [4]}
    """)
    m = archviz.load(p, batch=2)
    assert m.input_shapes == {"img": (2, 3, 8, 8), "meta": (2, 5)}
    assert m.output_shapes == {"logits": (2, 2), "feats": (2, 4)}
    assert m.layer("both").output_shape == (2, 9)
    # the first node without `in:` reads the first input
    assert m.layer("pool").inputs == ["conv"]


def test_second_input_and_default_output(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {a: [4], b: [4]}
        nodes:
          - {id: s, op: add, in: [a, b]}
          - {id: r, op: relu}
    """)
    m = archviz.load(p)
    assert m.output_shapes == {"out": (1, 4)}            # no outputs: the last node is `out`
    assert m.layer("s").inputs == ["a", "b"]


def test_named_input_ports_and_output_ports(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {seq: {shape: [5, 8]}}
        nodes:
          - {id: rnn, op: lstm, in: {x: seq}, out: 16}
          - {id: final, op: identity, in: rnn.h}
          - {id: all, op: identity, in: rnn}
        outputs: {h: final, y: all, c: rnn.c}
    """)
    m = archviz.load(p, batch=2)
    # torch.nn.LSTM: output (N, T, H); h_n and c_n (num_layers * directions, N, H)
    assert m.output_shapes == {"h": (1, 2, 16), "y": (2, 5, 16), "c": (1, 2, 16)}
    assert m.graph.nodes["final"].inputs[0].port == "h"


# -- blocks --------------------------------------------------------------------------
BLOCKY = """\
    archviz: 1
    params: {widths: [4, 8, 16]}
    defaults:
      conv2d: {bias: false}
    inputs: {x: {shape: [3, 32, 32]}}
    blocks:
      stage:
        params:
          out: {type: int}
          down: {type: bool, default: true}
        defaults:
          conv2d: {padding: 1}
        inputs: [x]
        nodes:
          - {id: conv, op: conv2d, out: "${out}", kernel: 3}
          - {id: act, op: relu}
          - {id: pool, op: maxpool2d, kernel: 2, when: "${down}"}
        outputs: {out: pool, pre: act}
    nodes:
      - {id: s, op: stage, repeat: {n: 3, var: i}, out: "${widths[i]}", down: "${i < 2}"}
      - {id: first_pre, op: identity, in: "s[0].pre"}
      - {id: last, op: identity, in: "s[-1]"}
      - {id: mid, op: identity, in: "s[1].out"}
"""


def test_blocks_repeat_when_defaults_refs(tmp_path):
    m = archviz.load(spec(tmp_path, BLOCKY))
    ids = [l.id for l in m.layers]
    # hierarchical ids; the third copy's pool is bypassed (when: false)
    assert ids[:3] == ["s.0.conv", "s.0.act", "s.0.pool"]
    assert "s.2.pool" not in ids and "s.2.conv" in ids
    sh = shapes(m)
    # padding 1 from the block's defaults keeps the size; pooling halves in copies 0 and 1
    assert sh["s.0.conv"] == (1, 4, 32, 32) and sh["s.1.pool"] == (1, 8, 8, 8)
    assert sh["s.2.conv"] == (1, 16, 8, 8)
    assert sh["first_pre"] == (1, 4, 32, 32)            # s[0].pre: port of the first copy
    assert sh["last"] == (1, 16, 8, 8)                  # s[-1]: the bypassed pool stands for act
    assert sh["mid"] == (1, 8, 8, 8)
    assert m.layer("last").inputs == ["s.2.act"]
    # file defaults: no bias anywhere
    assert all(l.params.total == 9 * l.node.meta["in_shapes"][0][1] * l.output_shape[1]
               for l in m.layers if l.op == "conv2d")
    assert m.graph.repeats == {"s": 3} and m.graph.calls["s.1"] == "stage"
    assert m.graph.nodes["s.1.conv"].scope == ("s.1",)


def test_block_param_types_and_defaults(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [10]}
        blocks:
          head:
            params:
              out: {type: int}
              p: {type: float, default: 0.5}
              act: {type: bool, default: true}
              sizes: {type: list, default: [3]}
              tag: {type: str, default: none}
              anything: {default: 1}
            nodes:
              - {id: drop, op: dropout, p: "${p}"}
              - {id: fc, op: linear, out: "${out + sizes[0] + len(tag)}"}
              - {id: relu, op: relu, when: "${act}"}
        nodes:
          - {id: h1, op: head, out: 2}
          - {id: h2, op: head, out: 2, p: 1, act: false, sizes: [0], tag: "no", anything: [1]}
    """)
    m = archviz.load(p)
    # h1: out 2 + 3 + len('none'); h2: out 2 + 0 + len('no'); an int is a float
    assert shapes(m)["h1.fc"] == (1, 9) and shapes(m)["h2.fc"] == (1, 4)
    assert m.graph.nodes["h1.drop"].attrs["p"] == 0.5 and m.graph.nodes["h2.drop"].attrs["p"] == 1
    assert "h1.relu" in m.graph.nodes and "h2.relu" not in m.graph.nodes
    assert m.output_shapes["out"] == (1, 4)             # h2's relu bypassed: h2 is its fc


@pytest.mark.parametrize("call,ptype,bad,needle", [
    ("out: '64'", "int", "'64'", "64'"),
    ("out: true", "int", "True", "true"),          # a bool is not an int
    ("out: 2.5", "int", "2.5", "2.5"),
    ("out: 2, act: 1", "bool", "1", "1}"),
    ("out: 2, act: yes", "bool", "'yes'", "yes"),  # yes is a string
    ("out: 2, p: true", "float", "True", "true"),
    ("out: 2, sizes: 3", "list", "3", "3}"),
    ("out: 2, tag: 3", "str", "3", "3}"),
])
def test_wrong_typed_block_param(tmp_path, call, ptype, bad, needle):
    p = spec(tmp_path, f"""\
        archviz: 1
        inputs: {{x: [10]}}
        blocks:
          head:
            params:
              out: {{type: int}}
              p: {{type: float, default: 0.5}}
              act: {{type: bool, default: true}}
              sizes: {{type: list, default: [3]}}
              tag: {{type: str, default: t}}
            nodes:
              - {{id: fc, op: linear, out: 3}}
        nodes:
          - {{id: h, op: head, {call}}}
    """)
    (e,) = errors_of(p)
    assert e.code == "E0113" and e.message == f"param '{call.split(': ')[-2].split(', ')[-1]}' of block " \
        f"'head' must be {ptype}, got {bad}"
    assert (e.span.line, e.span.col) == (14, col(p, 14, needle, after="head"))


def test_block_sees_its_params_its_file_params_and_its_inputs_only(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {k: 3}
        inputs: {x: [3, 8, 8]}
        blocks:
          b:
            nodes:
              - {id: c, op: conv2d, out: 2, kernel: "${k}", in: outside}
        nodes:
          - {id: outside, op: relu}
          - {id: call, op: b}
    """)
    (e,) = errors_of(p)
    assert e.code == "E0301" and "unknown node 'outside'" in e.message and e.span.line == 7
    assert any("'call' calls block 'b'" in n for n in e.notes)


def test_block_outputs_forms(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [4]}
        blocks:
          implicit:                      # no outputs: the last node
            nodes: [{id: a, op: relu}, {id: b, op: linear, out: 2}]
          named:                         # outputs: a single name
            nodes: [{id: a, op: linear, out: 3}, {id: b, op: relu}]
            outputs: a
          two_inputs:
            inputs: [p, q]
            nodes: [{id: s, op: add, in: [p, q]}]
        nodes:
          - {id: i, op: implicit}
          - {id: n, op: named, in: x}
          - {id: t, op: two_inputs, in: [x, x]}
          - {id: t2, op: two_inputs, in: {q: x, p: t}}
        outputs: {i: i, n: n, t: t2}
    """)
    m = archviz.load(p)
    assert m.output_shapes == {"i": (1, 2), "n": (1, 3), "t": (1, 4)}
    assert m.layer("t2.s").inputs == ["t.s", "x"]          # mapped by port name, in block order


def test_block_calling_a_block_gives_nested_ids(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {image: [3, 16, 16]}
        blocks:
          basic:
            params: {out: {type: int}}
            nodes:
              - {id: conv1, op: conv2d, out: "${out}", kernel: 3, padding: 1}
              - {id: relu, op: relu}
          stage:
            params: {out: {type: int}, n: {type: int, default: 2}}
            nodes:
              - {id: b, op: basic, repeat: "${n}", out: "${out}"}
        nodes:
          - {id: layer1, op: stage, out: 4}
          - {id: layer2, op: stage, out: 8, n: 1}
    """)
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["layer1.b.0.conv1", "layer1.b.0.relu", "layer1.b.1.conv1",
                                        "layer1.b.1.relu", "layer2.b.0.conv1", "layer2.b.0.relu"]
    assert m.graph.nodes["layer1.b.1.conv1"].scope == ("layer1", "layer1.b.1")
    assert m.graph.calls == {"layer1": "stage", "layer1.b.0": "basic", "layer1.b.1": "basic",
                             "layer2": "stage", "layer2.b.0": "basic"}
    assert m.graph.repeats == {"layer1.b": 2, "layer2.b": 1}
    assert m.layer("layer1.b.1.conv1").inputs == ["layer1.b.0.relu"]


def test_recursive_blocks_are_an_error(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [4]}
        blocks:
          a:
            nodes: [{id: r, op: relu}, {id: inner, op: b}]
          b:
            nodes: [{id: again, op: a}]
        nodes:
          - {id: top, op: a}
    """)
    (e,) = errors_of(p)
    assert e.code == "E0134" and e.message == "block 'a' calls itself: a -> b -> a"
    assert (e.span.line, e.span.col) == (7, col(p, 7, "a}"))   # op: a, inside b
    assert any("'top.inner' calls block 'b'" in n for n in e.notes)


# -- references ----------------------------------------------------------------------
def test_references_with_ports_and_indices(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {image: [3, 32, 32]}
        blocks:
          down:
            params: {out: {type: int}}
            nodes:
              - {id: conv, op: conv2d, out: "${out}", kernel: 3, padding: 1}
              - {id: pool, op: maxpool2d, kernel: 2}
            outputs: {out: pool, skip: conv}
        nodes:
          - {id: enc, op: down, repeat: {n: 3, var: i}, out: "${4 * 2 ** i}"}
          - {id: a, op: identity, in: "enc[1].skip"}
          - {id: b, op: identity, in: "enc[-1].skip"}
          - {id: c, op: identity, in: "enc[-3]"}
          - {id: d, op: identity, in: enc}
          - {id: e, op: identity, in: "enc[0].out"}
          - {id: f, op: identity, in: "${'enc[' + '1' + ']'}"}
    """)
    m = archviz.load(p)
    sh = shapes(m)
    assert sh["a"] == (1, 8, 16, 16)       # the conv of copy 1 (before its pool)
    assert sh["b"] == (1, 16, 8, 8)
    assert sh["c"] == (1, 4, 16, 16) and sh["e"] == sh["c"]
    assert sh["d"] == (1, 16, 4, 4)        # a repeated node without index: its last copy
    assert sh["f"] == (1, 8, 8, 8)         # a reference may be an expression
    assert m.layer("a").inputs == ["enc.1.conv"] and m.layer("b").inputs == ["enc.2.conv"]


def test_forward_reference_is_allowed(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: {shape: [4]}}
        nodes:
          - {id: s, op: add, in: [x, later]}
          - {id: later, op: relu, in: x}
        outputs: {y: s}
    """)
    m = archviz.load(p)
    assert m.output_shapes == {"y": (1, 4)}
    assert [l.id for l in m.layers] == ["later", "s"]      # topological, then spec order


# -- repeat --------------------------------------------------------------------------
def test_repeat_n_chains_copies(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [3, 16, 16]}
        nodes:
          - {id: c, op: conv2d, out: 3, kernel: 3, repeat: 3}
          - {id: one, op: relu, repeat: 1}
    """)
    m = archviz.load(p)
    assert shapes(m) == {"c.0": (1, 3, 14, 14), "c.1": (1, 3, 12, 12), "c.2": (1, 3, 10, 10),
                         "one.0": (1, 3, 10, 10)}
    assert m.layer("c.1").inputs == ["c.0"] and m.layer("one.0").inputs == ["c.2"]
    assert m.graph.repeats == {"c": 3, "one": 1}


def test_repeat_chains_the_first_input_and_keeps_the_others(tmp_path):
    # A repeated node with several inputs (a decoder layer reading the encoder's memory,
    # a recurrent step reading the annotations): copy k+1 reads copy k in place of the
    # first input; every other input stays what the spec wrote.
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [4, 8, 8], y: [4, 8, 8]}
        blocks:
          mix:
            inputs: [a, b]
            nodes:
              - {id: s, op: add, in: [a, b]}
              - {id: r, op: relu}
        nodes:
          - {id: m, op: mix, in: [x, y], repeat: 3}
          - {id: k, op: concat, in: [m, y], axis: 1, repeat: 2}
          - {id: p, op: mix, in: {b: x, a: m}, repeat: 2}
    """)
    m = archviz.load(p)
    assert m.layer("m.0.s").inputs == ["x", "y"]
    assert m.layer("m.1.s").inputs == ["m.0.r", "y"]
    assert m.layer("m.2.s").inputs == ["m.1.r", "y"]
    assert m.layer("k.1").inputs == ["k.0", "y"]
    assert m.layer("k.1").output_shape == (1, 4 + 4 + 4, 8, 8)     # (m ++ y) ++ y
    # a port mapping orders by the block's ports: a (chained) first, b fixed
    assert m.layer("p.1.s").inputs == ["p.0.r", "x"]


def test_repeat_with_a_variable_and_expressions(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {widths: [2, 4, 8, 16], n: 4}
        inputs: {x: [3, 8, 8]}
        nodes:
          - {id: c, op: conv2d, repeat: {n: "${n}", var: s}, out: "${widths[s]}", kernel: 1,
             bias: "${s % 2 == 0}"}
    """)
    m = archviz.load(p)
    outs = [m.layer(f"c.{s}").output_shape[1] for s in range(4)]
    assert outs == [2, 4, 8, 16]
    assert [m.layer(f"c.{s}").node.attrs["bias"] for s in range(4)] == [True, False, True, False]
    # params: in*out (+ out where bias)
    assert m.totals["params"] == (3 * 2 + 2) + 2 * 4 + (4 * 8 + 8) + 8 * 16


@pytest.mark.parametrize("rep,msg", [
    ("-1", "repeat count must be an integer >= 0, got -1"),
    ("{n: 2, rows: []}", "one of `n` (a count) and `rows` (a table)"),
    ("{rows: [1, 2]}", "rows must be a list of mappings"),
    ("{rows: [{2x: 1}]}", "names must be identifiers"),
    ("{rows: [{c: 1}, 2]}", "row 1 is an int"),
    # the copy's index would silently replace the row's value (i = 0, 1, not 7, 9)
    ("{rows: [{i: 7}, {i: 9}], var: i}", "'i' is both a name of the rows and the repeat's `var`"),
    ("two", "got 'two'"),
    ("2.0", "got 2.0"),
    ("{n: 2, var: 3}", "repeat `var` must be an identifier"),
    ("{n: 2, vra: i}", "unknown key 'vra' in repeat"),
])
def test_bad_repeat(tmp_path, rep, msg):
    p = spec(tmp_path, f"""\
        archviz: 1
        inputs: {{x: [4]}}
        nodes:
          - {{id: r, op: relu, repeat: {rep}}}
    """)
    (e,) = errors_of(p)
    assert e.code == "E0133" and msg in e.message and e.span.line == 4


# -- when ----------------------------------------------------------------------------
def test_when_true_and_false(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {use_pool: false, use_fc: true}
        inputs: {x: [3, 8, 8]}
        nodes:
          - {id: conv, op: conv2d, out: 4, kernel: 1}
          - {id: pool, op: maxpool2d, kernel: 2, when: "${use_pool}"}
          - {id: act, op: relu}
          - {id: skip, op: add, in: [pool, act]}
          - {id: flat, op: flatten, when: true}
          - {id: fc, op: linear, out: 2, when: "${use_fc}", expect: [2]}
    """)
    m = archviz.load(p)
    ids = [l.id for l in m.layers]
    assert "pool" not in ids and "fc" in ids
    # the bypassed pool stands for its input, for the next node and for a named reference
    assert m.layer("act").inputs == ["conv"] and m.layer("skip").inputs == ["conv", "act"]
    m2 = archviz.load(p, use_pool=True, use_fc=False)
    assert "pool" in [l.id for l in m2.layers] and m2.layer("act").inputs == ["pool"]
    assert m2.output_shapes["out"] == (1, 4 * 4 * 4)   # fc bypassed (its expect with it): the flatten


def test_when_bypasses_a_block_call_and_sees_the_repeat_variable(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [3, 16, 16]}
        blocks:
          down:
            nodes: [{id: pool, op: maxpool2d, kernel: 2}]
        nodes:
          - {id: d, op: down, repeat: {n: 3, var: i}, when: "${i != 1}"}
          - {id: e, op: identity, in: "d[1]"}
    """)
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["d.0.pool", "d.2.pool", "e"]
    assert m.layer("d.2.pool").inputs == ["d.0.pool"]       # d[1] stands for its input
    assert m.layer("e").inputs == ["d.0.pool"]
    assert m.graph.repeats == {"d": 2}


@pytest.mark.parametrize("when,msg", [("'no'", "got 'no'"), ("1", "got 1"), ("yes", "got 'yes'")])
def test_when_must_be_a_boolean(tmp_path, when, msg):
    p = spec(tmp_path, f"""\
        archviz: 1
        inputs: {{x: [4]}}
        nodes:
          - {{id: r, op: relu, when: {when}}}
    """)
    (e,) = errors_of(p)
    assert e.code == "E0130" and "'when' must be true or false" in e.message and msg in e.message


# -- defaults ------------------------------------------------------------------------
def test_defaults_per_file_and_per_block(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {pad: 1}
        defaults:
          conv2d: {bias: false, padding: "${pad}"}
          maxpool2d: {kernel: 2}
        inputs: {x: [3, 16, 16]}
        blocks:
          b:
            defaults:
              conv2d: {padding: 0}        # adds to and overrides the file's defaults
            nodes:
              - {id: c, op: conv2d, out: 4, kernel: 3}
        nodes:
          - {id: c1, op: conv2d, out: 4, kernel: 3}
          - {id: c2, op: conv2d, out: 4, kernel: 3, bias: true, padding: 2}
          - {id: p, op: maxpool2d}
          - {id: blk, op: b}
    """)
    m = archviz.load(p)
    sh = shapes(m)
    assert sh["c1"] == (1, 4, 16, 16) and m.layer("c1").params.total == 4 * 3 * 9
    assert sh["c2"] == (1, 4, 18, 18) and m.layer("c2").params.total == 4 * 4 * 9 + 4
    assert sh["p"] == (1, 4, 9, 9)
    assert sh["blk.c"] == (1, 4, 7, 7) and m.layer("blk.c").params.total == 4 * 4 * 9


def test_defaults_errors(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        defaults:
          conv2: {bias: false}
          conv2d: {bais: false}
        inputs: {x: [3, 8, 8]}
        nodes: [{id: c, op: conv2d, out: 1, kernel: 1}]
    """)
    errs = errors_of(p)
    assert [(e.code, e.span.line, e.span.col) for e in errs] == [("E0111", 3, 3), ("E0112", 4, col(p, 4, "bais"))]
    assert "conv2d" in errs[0].hint and "bias" in errs[1].hint


# -- imports -------------------------------------------------------------------------
LIB = """\
    archviz: 1
    params: {k: 3}
    defaults: {conv2d: {bias: false}}
    blocks:
      cbr:
        params: {out: {type: int}}
        nodes:
          - {id: conv, op: conv2d, out: "${out}", kernel: "${k}", padding: 1}
          - {id: bn, op: batchnorm2d}
          - {id: relu, op: relu}
"""


def test_imports_with_namespace(tmp_path):
    spec(tmp_path, LIB, name="lib/blocks.yaml")
    p = spec(tmp_path, """\
        archviz: 1
        params: {k: 99}                  # the importer's params do not reach the library
        imports: [{path: lib/blocks.yaml, as: lib}, {path: lib/blocks.yaml, as: again}]
        inputs: {x: {shape: [3, 8, 8]}}
        nodes:
          - {id: a, op: lib.cbr, out: 6}
          - {id: b, op: again.cbr, out: 2}
    """)
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["a.conv", "a.bn", "a.relu", "b.conv", "b.bn", "b.relu"]
    assert shapes(m)["b.relu"] == (1, 2, 8, 8)
    # the library's own defaults (no bias) and params (k = 3)
    assert m.totals["params"] == (6 * 3 * 9 + 2 * 6) + (2 * 6 * 9 + 2 * 2)
    assert m.totals["buffers"] == (2 * 6 + 1) + (2 * 2 + 1)
    assert m.graph.calls == {"a": "cbr", "b": "cbr"}


def test_imports_are_relative_to_the_importing_file(tmp_path):
    spec(tmp_path, LIB, name="deep/leaf.yaml")
    spec(tmp_path, """\
        archviz: 1
        imports: [{path: leaf.yaml, as: leaf}]
        blocks:
          twice:
            params: {out: {type: int}}
            nodes:
              - {id: one, op: leaf.cbr, out: "${out}"}
              - {id: two, op: leaf.cbr, out: "${out}"}
    """, name="deep/mid.yaml")
    p = spec(tmp_path, """\
        archviz: 1
        imports: [{path: deep/mid.yaml, as: m}]
        inputs: {x: [3, 8, 8]}
        nodes: [{id: t, op: m.twice, out: 4}]
    """)
    m = archviz.load(p)
    assert [l.id for l in m.layers][-1] == "t.two.relu"


# -- values inside a spec ------------------------------------------------------------
def test_yes_no_on_off_stay_strings_in_a_spec(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {flag: no}
        inputs: {x: [4]}
        blocks:
          b:
            params: {s: {type: str}}
            nodes: [{id: r, op: relu, doc: "${s}"}]
        nodes:
          - {id: a, op: relu, doc: yes}
          - {id: c, op: b, s: off}
          - {id: d, op: b, s: "${flag}"}
    """)
    m = archviz.load(p)
    assert m.graph.params["flag"] == "no"
    assert m.graph.nodes["a"].meta["doc"] == "yes"


def test_scientific_notation_is_a_float(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [3, 4, 4]}
        nodes: [{id: bn, op: batchnorm2d, eps: 1e-4, momentum: 1e-1}]
    """)
    attrs = archviz.load(p).graph.nodes["bn"].attrs
    assert attrs["eps"] == 1e-4 and isinstance(attrs["eps"], float) and attrs["momentum"] == 0.1


def test_division_in_a_spec_is_exact(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {c: 64}
        inputs: {x: [3, 4, 4]}
        nodes:
          - {id: a, op: conv2d, out: "${c / 2}", kernel: 1}
          - {id: b, op: conv2d, out: "${c / 3 * 3}", kernel: 1}
    """)
    m = archviz.load(p)
    assert m.graph.nodes["a"].attrs["out"] == 32 and type(m.graph.nodes["a"].attrs["out"]) is int
    assert shapes(m)["b"] == (1, 64, 4, 4)
    bad = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [3, 4, 4]}
        nodes: [{id: a, op: conv2d, out: "${64 / 3}", kernel: 1}]
    """, name="bad.yaml")
    (e,) = errors_of(bad)
    assert e.code == "E0113" and "'out'" in e.message and "64/3" in e.message.replace("Fraction(64, 3)", "64/3")


@pytest.mark.parametrize("expr", ["__import__('os').getcwd()", "x.__class__", "open('s.yaml')",
                                  "0 if true else __import__('os')"])
def test_no_eval_in_a_spec(tmp_path, expr):
    p = spec(tmp_path, f"""\
        archviz: 1
        inputs: {{x: [4]}}
        nodes: [{{id: a, op: linear, out: "${{{expr}}}"}}]
    """)
    (e,) = errors_of(p)
    assert isinstance(e, ExpressionError) and e.code == "E0202" and e.span.line == 3
    assert "not allowed" in e.message


def test_frozen_params_are_non_trainable(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: {shape: [10]}}
        nodes:
          - {id: a, op: linear, out: 5, frozen: true}
          - {id: b, op: linear, out: 2}
    """)
    t = archviz.load(p).totals
    assert t["non_trainable_params"] == 55 and t["trainable_params"] == 12 and t["params"] == 67


def test_frozen_must_be_a_boolean(tmp_path):
    # `no` is a string: before it was silently taken as true
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: {shape: [10]}}
        nodes: [{id: a, op: linear, out: 5, frozen: no}]
    """)
    (e,) = errors_of(p)
    assert e.code == "E0113" and "'frozen' must be true or false, got 'no'" in e.message
    assert (e.span.line, e.span.col) == (3, col(p, 3, "no}"))


def test_input_channels_are_never_written(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: {shape: [3, 8, 8]}}
        nodes:
          - {id: a, op: conv2d, in_channels: 3, out: 4, kernel: 1}
    """)
    with pytest.raises(SpecError, match="unknown attribute 'in_channels'"):
        archviz.load(p)


def test_expect_null_matches_any_size(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: [3, 9, 7]}
        nodes: [{id: a, op: conv2d, out: 4, kernel: 3, expect: [4, null, 5]}]
        outputs: {y: {from: a, expect: [null, 7, null]}}
    """)
    assert archviz.load(p).output_shapes == {"y": (1, 4, 7, 5)}


def test_expression_results_in_shapes(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {size: 32}
        inputs: {x: {shape: [3, "${size}", "${size * 3 / 4}"]}}
        nodes: [{id: a, op: relu}]
    """)
    assert archviz.load(p).input_shapes == {"x": (1, 3, 32, 24)}      # 32 * 3 / 4 is the int 24


def test_repeat_over_a_table(tmp_path):
    """`repeat: {rows: [...]}`: one copy per row, the row's names variables of its copy (a
    network's per-block table written once, as MobileNetV2's (t, c, n, s) table is)."""
    p = spec(tmp_path, """\
        archviz: 1
        name: table
        params:
          table: [{c: 8, s: 1}, {c: 16, s: 2}, {c: 32, s: 2}]
        inputs: {x: {shape: [3, 32, 32]}}
        nodes:
          - {id: stage, op: conv2d, repeat: {rows: "${table}", var: i}, out: "${c}", kernel: 3, stride: "${s}",
             padding: 1, bias: "${i == 0}"}
          - {id: head, op: conv2d, repeat: {rows: [{k: 1}]}, out: 4, kernel: "${k}"}
        """)
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["stage.0", "stage.1", "stage.2", "head.0"]
    assert [l.output_shape for l in m.layers] == [(1, 8, 32, 32), (1, 16, 16, 16), (1, 32, 8, 8), (1, 4, 8, 8)]
    # conv weights c_out·c_in·3·3, the first with its bias; then the 1×1 head with its bias
    assert m.totals["params"] == (8 * 3 * 9 + 8) + 16 * 8 * 9 + 32 * 16 * 9 + (4 * 32 + 4)
    assert [l.id for l in archviz.load(p, table=[]).layers] == ["head.0"]     # no rows: passes x through
