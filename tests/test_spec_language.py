"""The spec language: params and overrides, inputs, blocks, references, repeat, when,
defaults, imports, expressions and the restricted YAML. Expected values derived here."""
from __future__ import annotations

import textwrap
from fractions import Fraction

import pytest

import archviz
from archviz.errors import ExpressionError, SpecError
from archviz.spec.expr import evaluate, substitute
from archviz.spec.yamlload import load_yaml


def spec(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_params_and_overrides(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        params: {c: 8, double: "${c * 2}", size: 16}
        inputs: {x: {shape: [3, "${size}", "${size}"]}}
        nodes:
          - {id: a, op: conv2d, out: "${double}", kernel: 1}
    """)
    assert archviz.load(p).output_shapes["out"] == (1, 16, 16, 16)
    # params derived from an overridden param follow it
    assert archviz.load(p, c=5, size=4).output_shapes["out"] == (1, 10, 4, 4)


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
"""


def test_blocks_repeat_when_defaults_refs(tmp_path):
    m = archviz.load(spec(tmp_path, BLOCKY))
    ids = [l.id for l in m.layers]
    # hierarchical ids; the third copy's pool is bypassed (when: false)
    assert ids[:3] == ["s.0.conv", "s.0.act", "s.0.pool"]
    assert "s.2.pool" not in ids and "s.2.conv" in ids
    shapes = {l.id: l.output_shape for l in m.layers}
    # padding 1 from the block's defaults keeps the size; pooling halves in copies 0 and 1
    assert shapes["s.0.conv"] == (1, 4, 32, 32) and shapes["s.1.pool"] == (1, 8, 8, 8)
    assert shapes["s.2.conv"] == (1, 16, 8, 8)
    assert shapes["first_pre"] == (1, 4, 32, 32)            # s[0].pre: port of the first copy
    assert shapes["last"] == (1, 16, 8, 8)                   # s[-1]: the bypassed pool stands for act
    # file defaults: no bias anywhere
    assert all(l.params.total == 9 * l.node.meta["in_shapes"][0][1] * l.output_shape[1]
               for l in m.layers if l.op == "conv2d")
    assert m.graph.repeats == {"s": 3} and m.graph.calls["s.1"] == "stage"


def test_imports_with_namespace(tmp_path):
    spec(tmp_path, """\
        archviz: 1
        blocks:
          cbr:
            params: {out: {type: int}}
            nodes:
              - {id: conv, op: conv2d, out: "${out}", kernel: 3, padding: 1, bias: false}
              - {id: bn, op: batchnorm2d}
              - {id: relu, op: relu}
    """, name="lib.yaml")
    p = spec(tmp_path, """\
        archviz: 1
        imports: [{path: lib.yaml, as: lib}]
        inputs: {x: {shape: [3, 8, 8]}}
        nodes:
          - {id: a, op: lib.cbr, out: 6}
    """)
    m = archviz.load(p)
    assert [l.id for l in m.layers] == ["a.conv", "a.bn", "a.relu"]
    assert m.totals["params"] == 6 * 3 * 9 + 2 * 6 and m.totals["buffers"] == 2 * 6 + 1


def test_forward_reference_is_allowed(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: {shape: [4]}}
        nodes:
          - {id: s, op: add, in: [x, later]}
          - {id: later, op: relu, in: x}
        outputs: {y: s}
    """)
    assert archviz.load(p).output_shapes == {"y": (1, 4)}


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


def test_input_channels_are_never_written(tmp_path):
    p = spec(tmp_path, """\
        archviz: 1
        inputs: {x: {shape: [3, 8, 8]}}
        nodes:
          - {id: a, op: conv2d, in_channels: 3, out: 4, kernel: 1}
    """)
    with pytest.raises(SpecError, match="unknown attribute 'in_channels'"):
        archviz.load(p)


# -- expressions ---------------------------------------------------------------------
def test_expressions_are_exact():
    assert evaluate("c / 2", {"c": 64}) == 32 and isinstance(evaluate("c / 2", {"c": 64}), int)
    assert evaluate("c / 3", {"c": 64}) == Fraction(64, 3)
    assert evaluate("2 ** -1", {}) == Fraction(1, 2)
    assert evaluate("w[i] * 2 if i > 0 else -1", {"w": [3, 5], "i": 1}) == 10
    assert evaluate("max(1, min(4, n)) + abs(-2) + floor(7 / 2) + ceil(7 / 2)", {"n": 9}) == 4 + 2 + 3 + 4
    assert evaluate("1 < x <= 3 and not False", {"x": 3}) is True
    assert substitute("conv${i + 1}", {"i": 0}) == "conv1"
    assert substitute("${w}", {"w": [1, 2]}) == [1, 2]


@pytest.mark.parametrize("text", ["__import__('os')", "x.real", "(lambda: 1)()", "[i for i in w]",
                                  "open('f')", "w[0:1]", "x @ x", "{1: 2}"])
def test_expressions_reject_everything_else(text):
    with pytest.raises(ExpressionError):
        evaluate(text, {"x": 1, "w": [1, 2]})


def test_bounded_exponents():
    assert evaluate("2 ** 64", {}) == 2 ** 64
    with pytest.raises(ExpressionError, match="out of bounds"):
        evaluate("2 ** 1000", {})
    with pytest.raises(ExpressionError):
        evaluate("(2 ** 64) ** 64 ** 64", {})
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate("1 / 0", {})


# -- YAML ----------------------------------------------------------------------------
def test_yaml_scalars_and_spans():
    d = load_yaml('a: yes\nb: no\nc: on\nd: 1e-4\ne: true\nf: "${x}"\ng: 0x10\nh: ~\n', "f.yaml")
    assert d == {"a": "yes", "b": "no", "c": "on", "d": 1e-4, "e": True, "f": "${x}", "g": 16, "h": None}
    assert (d.spans["f"].line, d.spans["f"].col) == (6, 5)     # inside the quotes
    assert (d.key_spans["d"].line, d.key_spans["d"].col) == (4, 1)
