"""The unrolled picture's model (layouts/unrolled.py): named rows and columns built before
any DOT.  Expected values are derived by hand from the picture the layout documents
(Goodfellow et al., Fig. 10.3, stacked and bidirectional rows; Sutskever et al. 2014, Fig. 1,
for an encoder handing its final state to the decoder), not read back from the code."""
from archviz.backends.render.layouts.unrolled import GAP, HY, JOIN, XH, columns_of, rows, segments
from archviz.backends.render.seqinfo import rec_info, recurrent_nodes, state_chain

from .conftest import load


def _segs(name, unroll=None, **params):
    g = load(name, **params).graph
    return segments(g, state_chain(g, [rec_info(g, n) for n in recurrent_nodes(g)]), unroll)


def test_columns_elide_a_long_sequence_unless_unrolled():
    assert columns_of(6, None) == [1, 2, 3, 4, 5, 6]
    assert columns_of(9, None) == [1, 2, 3, GAP, 9]
    assert columns_of(9, 9) == list(range(1, 10))


def test_a_stacked_bidirectional_column_bottom_to_top():
    # mini_bilstm: 2 layers, both directions, a tagger at every step (T = 4)
    (seg,) = _segs("mini_bilstm")
    assert [c.t for c in seg.columns] == [1, 2, 3, 4]
    col = seg.columns[0]
    assert [(s.kind, s.layer, s.back) for s in col.slots] == [
        ("x", 0, False), ("h", 1, False), ("h", 1, True), ("j", 2, False),
        ("h", 2, False), ("h", 2, True), ("y", 0, False)]
    assert [s.row for s in col.slots] == ["x", (1, "f"), (1, "b"), (2, "j"), (2, "f"), (2, "b"), "y"]
    kinds = [(e.kind, col.slots.index(next(s for s in col.slots if s.id == e.a)),
              col.slots.index(next(s for s in col.slots if s.id == e.b)), e.near) for e in col.vertical(2, seg.dirs)]
    # x feeds both first-layer states (the backward one past the forward one); layer 2 reads
    # the junction, which both directions below feed; both top states feed y
    assert kinds == [(XH, 0, 1, True), (XH, 0, 2, False), (XH, 3, 4, True), (XH, 3, 5, False),
                     (JOIN, 1, 3, False), (JOIN, 2, 3, True), (HY, 4, 6, False), (HY, 5, 6, True)]
    linked = {(e.a, e.b) for e in col.vertical(2, seg.dirs) if e.near}
    # the only neighbours left unlinked are forward → backward state: light, the backward
    # state sits beside its column
    assert [(a, b, w) for a, b, w in col.spacers(linked)] == [
        (col.slots[1].id, col.slots[2].id, 1), (col.slots[4].id, col.slots[5].id, 1)]


def test_chains_run_through_time_from_their_initial_states():
    (seg,) = _segs("mini_bilstm")
    h = {(s.layer, s.back): [c.find("h", s.layer, s.back).id for c in seg.columns]
         for s in seg.columns[0].slots if s.kind == "h"}
    for (l, back), states in h.items():
        chain = seg.chains[(l, back)]
        assert len(chain) == 4 + 1
        # forward: h_0 then h_1..h_T; backward: h_1..h_T then its start h_T+1 on the right
        assert (chain[1:] if not back else chain[:-1]) == states
    assert [(l, back) for l, back, _ in seg.inits] == [(1, False), (1, True), (2, False), (2, True)]


def test_a_decoder_continues_the_encoders_chain():
    enc, dec = _segs("mini_encdec")
    assert dec.chains[(1, False)][0] == enc.chains[(1, False)][-1]    # s_0 is h_T, no box of its own
    assert dec.inits == [] and [l for l, _b, _ in enc.inits] == [1]
    r = rows([enc, dec], {"x": ["fold.x"], (1, "f"): ["fold.h"], "y": []})
    assert list(r) == ["x", "y", (1, "f")]
    # the encoder's h_0 leads its row, before the folded view; then every step, left to right
    assert r[(1, "f")] == ([enc.chains[(1, False)][0], "fold.h"] + enc.chains[(1, False)][1:]
                           + dec.chains[(1, False)][1:])


def test_a_computed_decoder_state_gets_its_own_box_and_context_per_step():
    enc, dec = _segs("mini_bahdanau")
    # s_0 = tanh(W_s ←h_1): drawn as its own initial state, not an arrow from h_T
    assert dec.handover is None and dec.init_from.via
    assert [(l, b) for l, b, _ in dec.inits] == [(1, False)]
    assert all(c.context for c in dec.columns) and not any(c.context for c in enc.columns)
    r = rows([enc, dec], {"x": [], (1, "f"): [], "y": []})
    assert list(r) == ["x", "y", (1, "f"), (1, "b")]       # one layer: no junction row
    xs = [i for c in dec.columns for i in (c.slots[0].id, c.context)]
    assert r["x"][-len(xs):] == xs                          # c_t right beside x_t


MIXED = """archviz: 1
name: mixed
doc: An encoder of one cell kind handing its final state to a decoder of another.
params: {{S: 3, T: 2, vocab: 20, emb: 4, hidden: 6}}
inputs:
  src: {{shape: ["${{S}}"], dtype: int64}}
  tgt: {{shape: ["${{T}}"], dtype: int64}}
nodes:
  - {{id: src_embed, op: embedding, in: src, num: "${{vocab}}", dim: "${{emb}}"}}
  - {{id: encoder, op: {enc}, out: "${{hidden}}"}}
  - {{id: tgt_embed, op: embedding, in: tgt, num: "${{vocab}}", dim: "${{emb}}"}}
  - {{id: decoder, op: {dec}, in: {{x: tgt_embed, h0: encoder.h{c0}}}, out: "${{hidden}}"}}
  - {{id: generator, op: linear, out: "${{vocab}}"}}
outputs:
  logits: {{from: generator}}
"""


def test_each_recurrence_labels_its_own_states(tmp_path):
    # an LSTM carries a memory cell c_t beside h_t (Hochreiter & Schmidhuber 1997); a GRU
    # has none (Cho et al. 2014): each segment's states say so by their own cell kind
    import archviz
    from archviz.backends.render import to_dot
    for enc, dec in [("gru", "lstm"), ("lstm", "gru")]:
        p = tmp_path / f"{enc}_{dec}.yaml"
        p.write_text(MIXED.format(enc=enc, dec=dec, c0=", c0: encoder.h" if dec == "lstm" else ""))
        text = to_dot(archviz.load(str(p)), "unrolled")
        for si, kind in enumerate((enc, dec)):
            step = [ln for ln in text.splitlines() if ln.strip().startswith(f'"s{si}.h1f.1" [')]
            assert len(step) == 1
            assert ("c<SUB>1</SUB>" in step[0]) == (kind == "lstm"), (enc, dec, step[0])
