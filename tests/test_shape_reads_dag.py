"""`${shape(x)}` through a graph that is not a chain: a node read by several inputs of one
node (self-attention reads its LayerNorm as query, key and value) and a residual whose
shortcut is listed before the branch that also reads it. Both are DAGs, not cycles; the
shape read must give the shape the shape pass gives. (Found writing specs/vit_b_16.yaml.)"""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import ArchvizError


def _load(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return archviz.load(str(p))


def test_shape_read_past_a_node_read_as_query_key_and_value(tmp_path):
    m = _load(tmp_path, """\
archviz: 1
name: attn
inputs:
  x: {shape: [5, 8]}
nodes:
  - {id: ln, op: layernorm}
  - {id: att, op: multihead_attention, in: {query: ln, key: ln, value: ln}, heads: 2}
  - {id: fc, op: linear, out: "${shape(att)[-1] * 3}"}
""")
    assert m.output_shapes == {"out": (1, 5, 24)}


@pytest.mark.parametrize("order", ["[x, branch]", "[branch, x]"])
def test_shape_read_past_a_residual_either_order(tmp_path, order):
    m = _load(tmp_path, f"""\
archviz: 1
name: res
inputs:
  x: {{shape: [4, 6, 6]}}
nodes:
  - {{id: branch, op: conv2d, out: 4, kernel: 3, padding: 1}}
  - {{id: add, op: add, in: {order}}}
  - {{id: fc, op: conv2d, out: "${{shape(add)[0] * 2}}", kernel: 1}}
""")
    assert m.output_shapes == {"out": (1, 8, 6, 6)}


def test_a_real_cycle_is_still_an_error(tmp_path):
    with pytest.raises(ArchvizError, match="cycle|depends on itself"):
        _load(tmp_path, """\
archviz: 1
name: cyc
inputs:
  x: {shape: [4]}
nodes:
  - {id: a, op: add, in: [x, b]}
  - {id: b, op: linear, in: a, out: 4}
  - {id: c, op: linear, in: b, out: "${shape(b)[0]}"}
""")


def test_a_read_past_a_node_with_no_inputs_is_that_nodes_error(tmp_path):
    """`in: []` on a pool (found by the spec fuzzer on shufflenet_v2_x1_0): the pool's own
    error is reported, and a later shape read is not an uncaught IndexError."""
    with pytest.raises(ArchvizError) as e:
        _load(tmp_path, """\
archviz: 1
name: empty_in
inputs:
  x: {shape: [4, 8, 8]}
nodes:
  - {id: pool, op: maxpool2d, kernel: 2, in: []}
  - {id: conv, op: conv2d, out: "${shape(pool)[0]}", kernel: 1}
""")
    assert "pool" in str(e.value)
