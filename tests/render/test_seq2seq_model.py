"""The seq2seq picture's model (layouts/seq2seq.py): who is encoder, decoder and attention,
the encoder row, and where each read-out input comes from -- built before any DOT.  The
expected parts are read off the spec files by hand (their `in:` wiring), not from the code."""
from archviz.backends.render.layouts.seq2seq import Source, _parts, _readout, _shown
from archviz.backends.render.seqinfo import rec_info, recurrent_nodes

from .conftest import load


def _model(name):
    g = load(name).graph
    p = _parts(g, [rec_info(g, n) for n in recurrent_nodes(g)])
    return p, (_readout(p) if p.dec is not None else None)


def test_the_encoder_row_elides_a_long_source():
    assert [Source(i).h for i in _shown(4, None)] == ["h.1", "h.2", "h.3", "h.4"]
    assert [(s.x, s.h, s.port) for s in map(Source, _shown(9, None))][3] == ("x.gap", "h.gap", "agap")
    assert _shown(9, 2) == [1, 2]


def test_an_attention_op_after_the_decoder():
    # mini_seq2seq: attention {query: decoder, key: encoder}; combine = concat [decoder; attention]
    p, ro = _model("mini_seq2seq")
    assert (p.enc.id, p.dec.id, p.attn.id, p.fed) == ("encoder", "decoder", "attention", False)
    assert [n.id for n in ro.ops] == ["combine", "generator"]
    assert ro.sources == {"combine": ["s.t", "ctx"], "generator": ["op.combine"]}
    assert ro.last == "op.generator"


def test_a_decoder_that_attends_itself():
    # mini_bahdanau: attention_gru {memory: encoder}; combine = concat [decoder; decoder.context]
    p, ro = _model("mini_bahdanau")
    assert (p.enc.id, p.dec.id, p.attn.id, p.fed) == ("encoder", "decoder", "decoder", True)
    assert ro.sources["combine"] == ["s.t", "ctx"]


def test_no_attention_the_state_chain_decides():
    # mini_encdec: decoder h0 = encoder.h; the generator reads the decoder's outputs
    p, ro = _model("mini_encdec")
    assert (p.enc.id, p.dec.id, p.attn, p.fed) == ("encoder", "decoder", None, False)
    assert [n.id for n in ro.ops] == ["generator"] and ro.sources == {"generator": ["s.t"]}
