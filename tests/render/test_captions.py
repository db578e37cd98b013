"""Text in the sequence diagrams: two-line labels and captions do not overlap, the cell
formulas are the ones torch computes, and spec text reads with real subscripts."""
import re

import pytest

from archviz.backends.render import to_dot

from .conftest import load

BROKEN_AFTER_SUB = re.compile(r"</SUB>(?:(?!<TR>|<TD).)*?<BR/>")


@pytest.mark.parametrize("name,layout,kw", [
    ("mini_bilstm", "cell", {}), ("mini_gru", "cell", {}), ("mini_rnn", "cell", {}),
    ("mini_rnn", "unrolled", {}), ("mini_bilstm", "unrolled", {"unroll": 2}), ("mini_encdec", "unrolled", {}),
    ("mini_seq2seq", "seq2seq", {}), ("mini_encdec", "seq2seq", {}),
])
def test_no_line_break_right_after_a_subscript(name, layout, kw):
    # dot does not count a subscript's drop in a <BR/>-broken line's height, so the next
    # line ran into it: such text is stacked as table rows instead
    text = to_dot(load(name), layout, **kw)
    bad = [ln.strip()[:120] for ln in text.splitlines() if BROKEN_AFTER_SUB.search(ln)]
    assert not bad, bad
    assert "<TABLE" in text


def test_gru_cell_is_torchs_gru():
    # nn.GRU: n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn)), the reset gate applied
    # after the hidden state's product (not Cho et al.'s tanh(W·[r ⊙ h; x]))
    text = to_dot(load("mini_gru"), "cell")
    assert "r ⊙ (W<SUB>hn</SUB> h<SUB>t−1</SUB> + b<SUB>hn</SUB>)" in text
    assert "W<SUB>in</SUB> x<SUB>t</SUB> + b<SUB>in</SUB>" in text
    assert "[r ⊙ h" not in text and "concat_n" not in text
    edges = {tuple(x.strip('"') for x in ln.strip().split(" [")[0].split(" -> "))
             for ln in text.splitlines() if " -> " in ln and "invis" not in ln}
    assert {("h_prev", "lin_hn"), ("lin_hn", "mul_r"), ("gate_r", "mul_r"), ("mul_r", "add_n"),
            ("x_t", "lin_in"), ("lin_in", "add_n"), ("add_n", "gate_n"), ("gate_n", "mul_n")} <= edges


def _edge(text, head_label):
    return [ln.strip() for ln in text.splitlines() if " -> " in ln and head_label in ln]


def test_seq2seq_init_comes_from_the_state_the_spec_selects():
    # mini_seq2seq: s0 = tanh(init(select_step(encoder.h, axis 0, index 1))) = tanh(W ←h_1)
    text = to_dot(load("mini_seq2seq"), "seq2seq")
    init = _edge(text, 'label=<init')
    assert len(init) == 1 and init[0].startswith('"h.1" -> "s.prev"'), init
    assert "←h<SUB>1</SUB>" in init[0] and "tanh(fc(" in init[0]
    # the forward final state h_n[0] sits at the last step
    from archviz.backends.render.seqinfo import init_source, rec_info
    m = load("mini_encdec")
    recs = [rec_info(m.graph, n) for n in m.graph.topo_order() if n.op == "lstm"]
    src = init_source(m.graph, recs[0], recs[1])
    assert src.step == recs[0].steps


def test_spec_doc_subscripts_are_drawn():
    from archviz.backends.render.common import with_subscripts
    assert with_subscripts("tanh(W_c [c_t; h̃_t])") == "tanh(W<SUB>c</SUB> [c<SUB>t</SUB>; h̃<SUB>t</SUB>])"
    assert with_subscripts("x_{t-1} <a>") == "x<SUB>t-1</SUB> &lt;a&gt;"
