"""`${shape(x)}`: a block reads its input's shape (without the batch axis) while the spec is
compiled, so an inverted residual reads its input channels instead of being told them.
Truths: torch modules written out with the channel counts a reader would work out by hand."""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import ArchvizError

# MobileNetV2's inverted residual (Sandler et al. 2018, Table 1; torchvision.models.mobilenetv2
# InvertedResidual): expand 1x1 (when t != 1), depthwise 3x3, project 1x1; the shortcut when the
# stride is 1 and the channels are kept.
BLOCKS = """\
archviz: 1
name: ir
defaults:
  conv2d: {bias: false}
blocks:
  inverted_residual:
    params:
      out: {type: int}
      t: {type: int}
      stride: {type: int, default: 1}
      inp: {type: int, default: "${shape(x)[0]}"}
    inputs: [x]
    nodes:
      - {id: expand, op: conv2d, out: "${inp * t}", kernel: 1, when: "${t != 1}"}
      - {id: dw, op: conv2d, out: "${inp * t}", kernel: 3, stride: "${stride}", padding: 1, groups: "${inp * t}"}
      - {id: project, op: conv2d, out: "${out}", kernel: 1}
      - {id: add, op: add, in: [x, project], when: "${stride == 1 and shape(x)[0] == out}", bypass: project}
    outputs: {out: add}
"""


def _load(tmp_path, text, **kw):
    (tmp_path / "ir.yaml").write_text(BLOCKS)
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return archviz.load(str(p), **kw)


def _torch_ir(torch, inp, out, t, stride):
    nn = torch.nn
    hid = inp * t
    layers = ([nn.Conv2d(inp, hid, 1, bias=False)] if t != 1 else []) + [
        nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.Conv2d(hid, out, 1, bias=False)]
    return nn.Sequential(*layers)


CHAIN = """\
archviz: 1
name: chain
imports: [{path: ir.yaml, as: ir}]
inputs: {image: {shape: [3, 32, 32]}}
nodes:
  - {id: stem, op: conv2d, out: 16, kernel: 3, stride: 2, padding: 1, bias: false}
  - {id: b1, op: ir.inverted_residual, out: 24, t: 6, stride: 2}
  - {id: b2, op: ir.inverted_residual, out: 24, t: 6}
  - {id: b3, op: ir.inverted_residual, out: 32, t: 1}
outputs: {out: {from: b3, expect: [32, 8, 8]}}
"""


def test_inverted_residuals_read_their_input_channels(tmp_path):
    torch = pytest.importorskip("torch")
    m = _load(tmp_path, CHAIN)
    # by hand: stem gives 16 channels, b1 reads 16, b2 and b3 read 24
    want = 3 * 16 * 9 + sum(sum(p.numel() for p in _torch_ir(torch, i, o, t, s).parameters())
                            for i, o, t, s in [(16, 24, 6, 2), (24, 24, 6, 1), (24, 32, 1, 1)])
    assert m.totals["params"] == want
    assert m.output_shapes == {"out": (1, 32, 8, 8)}
    # the shortcut exists where the channels are kept (b2), not where they change (b1, b3)
    assert "b2.add" in m.graph.nodes and "b1.add" not in m.graph.nodes and "b3.add" not in m.graph.nodes
    assert "b3.expand" not in m.graph.nodes       # t = 1: no expansion


def test_the_same_function_as_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    m = _load(tmp_path, CHAIN)
    gm = to_torch(m, seed=0).double().eval()
    sd = gm.state_dict()
    stem = torch.nn.Conv2d(3, 16, 3, 2, 1, bias=False).double()
    stem.weight.data.copy_(sd["stem.weight"])
    blocks = []
    for name, (i, o, t, s) in zip(["b1", "b2", "b3"], [(16, 24, 6, 2), (24, 24, 6, 1), (24, 32, 1, 1)]):
        ref = _torch_ir(torch, i, o, t, s).double()
        keys = (["expand"] if t != 1 else []) + ["dw", "project"]
        for layer, k in zip(ref, keys):
            layer.weight.data.copy_(sd[f"{name}.{k}.weight"])
        blocks.append((ref, s == 1 and i == o))
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    want = stem(x)
    for ref, shortcut in blocks:
        want = want + ref(want) if shortcut else ref(want)
    got = gm(x)
    got = got["out"] if isinstance(got, dict) else got
    assert torch.allclose(got, want, atol=1e-12)


def test_a_default_reads_the_blocks_own_input_not_a_callers_node_of_that_name(tmp_path):
    text = CHAIN.replace("  - {id: stem,", "  - {id: x, op: conv2d, out: 40, kernel: 1, bias: false}\n"
                                         "  - {id: stem, in: image,")
    m = _load(tmp_path, text)
    # b1's inp is its input's 16 channels (the stem), not the caller's node x (40 channels)
    assert m.graph.nodes["b1.dw"].attrs["groups"] == 16 * 6


def test_spatial_sizes_and_repeats(tmp_path):
    text = """\
archviz: 1
name: grow
inputs: {x: {shape: [8, 12, 10]}}
blocks:
  double:
    nodes:
      - {id: c, op: conv2d, out: "${2 * shape(x)[0]}", kernel: 3, padding: 1}
nodes:
  - {id: g, op: double, repeat: 3}
  - {id: whole, op: conv2d, out: 5, kernel: ["${shape(g)[1]}", "${shape(g)[2]}"]}
outputs: {out: {from: whole}}
"""
    m = _load(tmp_path, text)
    assert [m.graph.nodes[f"g.{k}.c"].attrs["out"] for k in range(3)] == [16, 32, 64]
    assert m.output_shapes == {"out": (1, 5, 1, 1)}       # a kernel the size of the map


@pytest.mark.parametrize("line, message, col", [
    ('  - {id: a, op: conv2d, out: "${shape(b)[0]}", kernel: 1}\n  - {id: b, op: relu}',
     "no node 'b' is defined before this point", 39),
    ('  - {id: a, op: conv2d, out: "${shape(nope)[0]}", kernel: 1}', "no node 'nope'", 39),
    ('  - {id: a, op: conv2d, out: "${shape(x, 1)}", kernel: 1}', "shape() takes one node", 33),
    ('  - {id: a, op: conv2d, out: "${shape(\'x y\')[0]}", kernel: 1}', "shape() names a node", 39),
    ('  - {id: a, op: conv2d, out: 4, kernel: 9}\n  - {id: b, op: conv2d, out: "${shape(a)[0]}", kernel: 1}',
     "'a' (conv2d): window of 9", None),     # at its cause, a's kernel, not at the read
    ('  - {id: a, op: conv2d, out: "${shape(x)}", kernel: 1}', "expected an integer, got a list", None),
])
def test_bad_reads_are_one_located_error(tmp_path, line, message, col):
    text = f"archviz: 1\nname: bad\ninputs: {{x: {{shape: [3, 5, 5]}}}}\nnodes:\n{line}\n"
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ArchvizError) as ei:
        archviz.load(str(p))
    errs = getattr(ei.value, "errors", [ei.value])
    assert len(errs) == 1, [str(e) for e in errs]
    err = errs[0]
    assert message in err.message
    assert err.span is not None and err.span.line == 5
    if col is not None:
        assert err.span.col == col


def test_a_read_through_a_node_with_a_bad_attribute_is_that_error_alone(tmp_path):
    """An attribute refused by the schema is left out of the node; a later shape read through
    it must neither crash (it was an AttributeError) nor add an error of its own."""
    p = tmp_path / "s.yaml"
    p.write_text("archviz: 1\nname: nw\ninputs: {q: {shape: [4, 6, 8]}}\nnodes:\n"
                 "  - {id: a, op: sdpa, in: [q, q, q], mask: causal, window: null}\n"
                 "  - {id: b, op: relu, in: a}\n"
                 "  - {id: c, op: linear, out: \"${shape(b)[2]}\"}\n")
    with pytest.raises(ArchvizError) as ei:
        archviz.load(str(p))
    errs = getattr(ei.value, "errors", [ei.value])
    assert [(e.code, e.span.line) for e in errs] == [("E0113", 5)]
