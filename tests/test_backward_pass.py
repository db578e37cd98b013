"""archviz.passes.backward by hand: which gradients run, one tensor counted once, frozen layers,
activation checkpointing per block (the torch figures are in tests/torch/test_backward_models.py
and tests/ops/test_backward.py)."""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import MissingRuleError
from archviz.ir import meta as M
from archviz.ops.base import Op
from archviz.ops.saved import Need
from archviz.passes.backward import train_costs

# two blocks of conv 3×3 (4 → 4 channels, padding 1, no bias) and ReLU, twice, then a linear head
SPEC = """
archviz: 1
name: two_blocks
inputs:
  x: {shape: [4, 8, 8]}
blocks:
  b:
    inputs: [x]
    nodes:
      - {id: c1, op: conv2d, out: 4, kernel: 3, padding: 1, bias: false}
      - {id: r1, op: relu}
      - {id: c2, op: conv2d, out: 4, kernel: 3, padding: 1, bias: false}
      - {id: r2, op: relu}
    outputs: {out: r2}
nodes:
  - {id: b1, op: b, in: x}
  - {id: b2, op: b}
  - {id: gap, op: global_avgpool}
  - {id: flat, op: flatten}
  - {id: fc, op: linear, out: 2}
outputs:
  y: {from: fc}
"""
# b1 written out, its convolutions frozen (`frozen:` is a layer's, not a block call's)
INLINE_FROZEN_B1 = """\
  - {id: b1_c1, op: conv2d, in: x, out: 4, kernel: 3, padding: 1, bias: false, frozen: true}
  - {id: b1_r1, op: relu}
  - {id: b1_c2, op: conv2d, out: 4, kernel: 3, padding: 1, bias: false, frozen: true}
  - {id: b1_r2, op: relu}
"""
MAP = 4 * 8 * 8                 # one feature map, batch 1: 256 elements
CONV = 1 * 4 * 8 * 8 * 4 * 9    # MACs of one conv: N·C_out·H·W·C_in·k² = 9,216
FC = 4 * 2                      # the head: 4 features → 2


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "two_blocks.yaml"
    p.write_text(SPEC)
    return p


@pytest.fixture
def frozen_spec(tmp_path):
    p = tmp_path / "two_blocks_frozen.yaml"
    p.write_text(SPEC.replace("  - {id: b1, op: b, in: x}\n", INLINE_FROZEN_B1))
    return p


def test_saved_counts_each_tensor_once(spec):
    """b1_c1 keeps x; each ReLU keeps its output, which the next conv keeps too (once); the
    head's linear keeps the pooled features (flatten is a view of them): 5 maps + 4."""
    tc = train_costs(archviz.load(spec).graph)
    assert tc.saved_elems == {"act": 5 * MAP + 4}
    assert tc.saved_bytes(2) == 2 * (5 * MAP + 4)
    # every conv: grad input (but the first: x needs none) and grad weight; the linear both
    assert tc.backward_macs == 7 * CONV + 2 * FC


def test_frozen_block_runs_no_backward(frozen_spec):
    """b1 frozen on the data input: nothing upstream of b2 needs a gradient, so b1 keeps nothing
    and costs nothing; b2.c1 needs only its weight gradient."""
    g = archviz.load(frozen_spec).graph
    assert g.nodes["b1_c1"].frozen
    tc = train_costs(g)
    assert tc.saved_elems == {"act": 3 * MAP + 4}       # r2 of b1 (b2.c1's input), b2.r1, b2.r2, pooled
    assert tc.backward_macs == CONV + 2 * CONV + 2 * FC
    assert g.nodes["b1_c1"].meta[M.BACKWARD].need == Need((False,), False)
    assert not g.nodes["b1_r2"].meta[M.BACKWARD].kept


def test_checkpointing_keeps_segment_inputs_and_the_largest_segment(spec):
    """Each block a segment: kept = outside the segments (the pooled 4) + the segments' inputs
    (x, b1's output) + the largest segment's own (b2: its r1 and r2; b1's new one is r1 only)."""
    tc = train_costs(archviz.load(spec).graph, checkpoint=True)
    assert tc.saved_elems == {"act": 4 + 2 * MAP + 2 * MAP}
    assert tc.segments == 2
    assert tc.recompute_macs == 4 * CONV
    assert tc.backward_macs == 7 * CONV + 2 * FC


def test_resnet18_checkpointing_keeps_less():
    g = archviz.load("resnet18", size=64).graph
    full, ck = train_costs(g).saved_bytes(4), train_costs(g, checkpoint=True)
    assert ck.segments == 8 and 0 < ck.saved_bytes(4) < full


def test_opmath_and_fixed_kinds_have_their_bytes():
    """Batch norm keeps its statistics in opmath (float32 under 16-bit activations), max pooling
    int64 indices, dropout a bool mask."""
    g = archviz.load("resnet18", size=32).graph
    tc = train_costs(g)
    assert set(tc.saved_elems) == {"act", "opmath", "int64"}
    n = tc.saved_elems
    assert tc.saved_bytes(2) == 2 * n["act"] + 4 * n["opmath"] + 8 * n["int64"]
    assert tc.saved_bytes(8) == 8 * n["act"] + 8 * n["opmath"] + 8 * n["int64"]


def test_a_missing_rule_fails_by_name():
    class NoRule(Op):
        name = "norule"
    with pytest.raises(MissingRuleError, match="'norule' has no 'saved' rule"):
        NoRule().saved({}, [(1, 2)], {"out": (1, 2)}, Need((True,)))
    with pytest.raises(MissingRuleError, match="'norule' has no 'backward_macs_terms' rule"):
        NoRule().count_backward_macs({}, [(1, 2)], {"out": (1, 2)}, Need((True,)))


def test_share_gives_each_kept_tensor_its_part(spec):
    """`share(key, n)` (tensor parallelism) scales every kept tensor; the keys name their tensor."""
    g = archviz.load(spec).graph
    keys = []
    tc = train_costs(g, share=lambda key, n: keys.append(key) or n // 2)
    assert tc.saved_elems == {"act": (5 * MAP + 4) // 2}
    assert ("x", "out") in keys and ("b1.r1", "out") in keys and ("gap", "out") in keys


def test_explain_shows_what_backward_keeps(spec, frozen_spec):
    from archviz.backends.explain import explain_node
    text = "\n".join(explain_node(archviz.load(spec), "b2.c1"))
    assert "backward keeps (elements):\n      input 0\n      = 256" in text
    assert "(input 0 also kept by an earlier layer: counted once)" in text      # b1.r2's output
    assert f"grad input + grad weight\n      = {CONV:,} + {CONV:,} = {2 * CONV:,}" in text
    frozen = "\n".join(explain_node(archviz.load(frozen_spec), "b1_c1"))
    assert "training: no backward" in frozen


def test_token_ids_read_by_a_segment_are_int64(tmp_path):
    """A checkpointed block that reads the token ids itself keeps them as int64."""
    p = tmp_path / "emb_block.yaml"
    p.write_text("""
archviz: 1
name: emb_block
inputs:
  tokens: {shape: [5], dtype: int64}
blocks:
  e:
    inputs: [t]
    nodes:
      - {id: emb, op: embedding, num: 11, dim: 3}
    outputs: {out: emb}
nodes:
  - {id: b, op: e, in: tokens}
  - {id: fc, op: linear, out: 2}
outputs:
  y: {from: fc}
""")
    tc = train_costs(archviz.load(p, batch=2).graph, checkpoint=True)
    # outside: fc keeps b's output (2·5·3); the segment's input: the ids (2·5, int64); b keeps
    # nothing more of its own
    assert tc.saved_elems == {"act": 30, "int64": 10}
