"""Named input ports are bound by name, slot by slot, never shifted (issue: a mapping
`in: {query: q, value: v}` used to bind `v` as the key).

The truth is written here from torch's signatures and archviz's documented defaults, not
read from the ops: for each op, its ports in order, the ports torch requires, and the
ports that may be skipped because they default to another port's input
(nn.MultiheadAttention is self-attention when key is omitted, and value defaults to key).
Every subset of ports is tried for every multi-input op."""
from __future__ import annotations

import itertools
import textwrap

import pytest

from archviz.errors import ArchvizError, MultipleErrors
from archviz.ops import registry
from archviz.spec import compile_spec

# op -> (ports in slot order, required ports, {skippable port: the port it defaults to})
TRUTH = {
    "attention": (("query", "key", "value"), {"query", "key"}, {"value": "key"}),
    "multihead_attention": (("query", "key", "value"), {"query"}, {"key": "query", "value": "key"}),
    "rnn": (("x", "h0"), {"x"}, {}),
    "gru": (("x", "h0"), {"x"}, {}),
    "lstm": (("x", "h0", "c0"), {"x"}, {}),      # torch takes (h0, c0) together: c0 alone is refused
    "rnn_cell": (("x", "h"), {"x"}, {}),
    "gru_cell": (("x", "h"), {"x"}, {}),
    "lstm_cell": (("x", "h", "c"), {"x"}, {}),
    "attention_gru": (("x", "memory", "h0"), {"x", "memory"}, {}),
}


def test_the_truth_table_covers_every_op_with_named_ports():
    named = {n for n, op in registry.items() if op.input_ports}
    assert named == set(TRUTH)
    for n, (ports, _, _) in TRUTH.items():
        assert tuple(registry[n].input_ports) == ports


def _expected(ports, required, defaults, given):
    """The source name of each slot, or None where the subset must be refused."""
    if not required <= set(given):
        return None
    last = max(ports.index(p) for p in given)
    out = {}
    for p in ports[:last + 1]:
        if p in given:
            out[p] = f"src_{p}"
        elif p in defaults and defaults[p] in out:
            out[p] = out[defaults[p]]
        else:
            return None
    return [out[p] for p in ports[:last + 1]]


CASES = [(op, given) for op, (ports, _, _) in TRUTH.items()
         for k in range(1, len(ports) + 1) for given in itertools.combinations(ports, k)]


@pytest.mark.parametrize("op,given", CASES, ids=[f"{o}-{'+'.join(g)}" for o, g in CASES])
def test_every_subset_of_named_ports(tmp_path, op, given):
    ports, required, defaults = TRUTH[op]
    attrs = {"attention": "", "multihead_attention": ", heads: 1"}.get(op, ", out: 4")
    inputs = "".join(f"  src_{p}: {{shape: [3, 4]}}\n" for p in ports)
    mapping = ", ".join(f"{p}: src_{p}" for p in given)
    text = ("archviz: 1\nname: t\ninputs:\n" + inputs + "nodes:\n"
            + f"  - {{id: n, op: {op}, in: {{{mapping}}}{attrs}}}\n")
    line = text.count("\n")    # the node's line
    p = tmp_path / "s.yaml"
    p.write_text(text)
    want = _expected(ports, required, defaults, given)
    if want is None:
        with pytest.raises(ArchvizError) as ei:
            compile_spec(str(p))
        errs = ei.value.errors if isinstance(ei.value, MultipleErrors) else [ei.value]
        assert len(errs) == 1, [str(e) for e in errs]
        assert errs[0].code == "E0132" and errs[0].span is not None and errs[0].span.line == line
        missing = [q for q in ports if q not in given and (q in required or q not in defaults)][0]
        assert f"'{missing}'" in errs[0].message
        return
    g = compile_spec(str(p))
    node = g.nodes["n"]
    assert [r.node for r in node.inputs] == want
    assert node.input_ports == list(ports[:len(want)])


def test_multihead_attention_query_and_value_keeps_the_key_slot(tmp_path):
    """The fuzz repro: {query: q, value: v} is self-attention keys with v as values; torch's
    nn.MultiheadAttention(q, q, v) raises when v's length differs from the key's, and so does
    archviz (it used to bind v as the key and report weights (1, 4, 6))."""
    import archviz
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
    with pytest.raises(ArchvizError, match="value must be"):
        archviz.load(str(p))
    p.write_text(p.read_text().replace("v: {shape: [6, 8]}", "v: {shape: [4, 8]}"))
    m = archviz.load(str(p))
    assert m.output_shapes == {"o": (1, 4, 8), "w": (1, 4, 4)}
    assert [str(r) for r in m.graph.nodes["a"].inputs] == ["q", "q", "v"]
