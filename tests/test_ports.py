"""Named input ports are bound by name, slot by slot, never shifted (issue: a mapping
`in: {query: q, value: v}` used to bind `v` as the key).

The truth is written here from torch's signatures, not read from the ops: for each op, its
ports in order and the ports torch requires. An optional port can only be left out at the
end (torch's nn.MultiheadAttention(query, key, value) has no default key for a given value,
and nn.LSTM takes (h0, c0) together); a skipped port before a given one is an error, never
a guess. Every subset of ports is tried for every multi-input op."""
from __future__ import annotations

import itertools
import textwrap

import pytest

import archviz
from archviz.errors import ArchvizError, MultipleErrors
from archviz.ops import registry
from archviz.spec import compile_spec

# op -> (ports in slot order, required ports)
TRUTH = {
    "attention": (("query", "key", "value"), {"query", "key"}),
    "multihead_attention": (("query", "key", "value"), {"query"}),
    "rnn": (("x", "h0"), {"x"}),
    "gru": (("x", "h0"), {"x"}),
    "lstm": (("x", "h0", "c0"), {"x"}),      # torch takes (h0, c0) together: c0 alone is refused
    "rnn_cell": (("x", "h"), {"x"}),
    "gru_cell": (("x", "h"), {"x"}),
    "lstm_cell": (("x", "h", "c"), {"x"}),
    "attention_gru": (("x", "memory", "h0"), {"x", "memory"}),
    "matmul": (("a", "b"), {"a", "b"}),          # a @ b: both required, order matters
    "sdpa": (("query", "key", "value"), {"query", "key", "value"}),   # F.scaled_dot_product_attention(q, k, v)
}


def test_the_truth_table_covers_every_op_with_named_ports():
    named = {n for n, op in registry.items() if op.input_ports}
    assert named == set(TRUTH)
    for n, (ports, _) in TRUTH.items():
        assert tuple(registry[n].input_ports) == ports


def _expected(ports, required, given):
    """The source name of each slot, or None where the subset must be refused."""
    if not required <= set(given):
        return None
    last = max(ports.index(p) for p in given)
    if any(p not in given for p in ports[:last]):
        return None
    return [f"src_{p}" for p in ports[:last + 1]]


CASES = [(op, given) for op, (ports, _) in TRUTH.items()
         for k in range(1, len(ports) + 1) for given in itertools.combinations(ports, k)]


@pytest.mark.parametrize("op,given", CASES, ids=[f"{o}-{'+'.join(g)}" for o, g in CASES])
def test_every_subset_of_named_ports(tmp_path, op, given):
    ports, required = TRUTH[op]
    attrs = {"attention": "", "multihead_attention": ", heads: 1", "matmul": "", "sdpa": ""}.get(op, ", out: 4")
    inputs = "".join(f"  src_{p}: {{shape: [3, 4]}}\n" for p in ports)
    mapping = ", ".join(f"{p}: src_{p}" for p in given)
    text = ("archviz: 1\nname: t\ninputs:\n" + inputs + "nodes:\n"
            + f"  - {{id: n, op: {op}, in: {{{mapping}}}{attrs}}}\n")
    line = text.count("\n")    # the node's line
    p = tmp_path / "s.yaml"
    p.write_text(text)
    want = _expected(ports, required, given)
    if want is None:
        with pytest.raises(ArchvizError) as ei:
            compile_spec(str(p))
        errs = ei.value.errors if isinstance(ei.value, MultipleErrors) else [ei.value]
        assert len(errs) == 1, [str(e) for e in errs]
        assert errs[0].code == "E0132" and errs[0].span is not None and errs[0].span.line == line
        missing = [q for q in ports if q not in given][0]
        assert f"'{missing}'" in errs[0].message
        return
    g = compile_spec(str(p))
    node = g.nodes["n"]
    assert [r.node for r in node.inputs] == want
    assert node.input_ports == list(ports[:len(want)])


def test_multihead_attention_query_and_value_is_refused_not_guessed(tmp_path):
    """The fuzz repro: {query: q, value: v} used to bind v as the key (weights (1, 4, 6)).
    torch's nn.MultiheadAttention(query, key, value) has no default key, and the two readings
    (key = query, or key = value) give different params, so the spec must say."""
    from archviz.errors import SpecError
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent("""\
        archviz: 1
        name: t
        inputs:
          q: {shape: [4, 8]}
          v: {shape: [6, 8]}
        nodes:
          - {id: a, op: multihead_attention, in: {query: q, value: v}, heads: 2}
        outputs: {o: a, w: a.weights}
        """))
    with pytest.raises(SpecError, match="'value' is given without 'key'") as ei:
        compile_spec(str(p))
    line = p.read_text().splitlines()[6]
    assert ei.value.code == "E0132" and (ei.value.span.line, ei.value.span.col) == (7, line.index("value") + 1)
    p.write_text(p.read_text().replace("{query: q, value: v}", "{query: q, key: v, value: v}"))
    m = archviz.load(str(p))
    assert m.output_shapes == {"o": (1, 4, 8), "w": (1, 4, 6)}
    assert [str(r) for r in m.graph.nodes["a"].inputs] == ["q", "v", "v"]
