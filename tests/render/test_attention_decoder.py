"""The attention decoder with the context fed back (op attention_gru, Bahdanau et al. 2015):
α from the PREVIOUS state s_{t−1}, c_t into the GRU step beside y_{t−1}, the read-out on
[s_t; c_t]; checked through `dot -Tjson` coordinates."""
import os

import pytest

from archviz.backends.render import detect_layout, to_dot

from .conftest import dot_warnings, layout_of, load, needs_dot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOL = 1.0


def _spec(name):
    import archviz
    return archviz.load(os.path.join(ROOT, "specs", name + ".yaml"))


def _edges(lay, tail=None, head=None):
    return [e for t, h, e in lay.edges if (tail is None or t == tail) and (head is None or h == head)]


def test_auto_picks_seq2seq_for_an_attention_decoder():
    assert detect_layout(load("mini_bahdanau")) == "seq2seq"
    assert detect_layout(_spec("seq2seq_bahdanau")) == "seq2seq"
    assert detect_layout(_spec("seq2seq_luong")) == "seq2seq"


def test_forcing_seq2seq_on_the_bahdanau_spec_gets_no_warning():
    from archviz.backends.render.detect import structure_mismatch
    assert structure_mismatch(load("mini_bahdanau").graph, "seq2seq") is None


@needs_dot
@pytest.mark.parametrize("src", ["mini", "spec"])
def test_bahdanau_step_attends_from_the_previous_state(src):
    m = load("mini_bahdanau") if src == "mini" else _spec("seq2seq_bahdanau")
    text = to_dot(m, "seq2seq")
    assert "Warning" not in dot_warnings(text)
    lay = layout_of(text)
    S = 4 if src == "mini" else 20
    shown = [1, 2, 3, 4] if src == "mini" else [1, 2, 3, 20]
    hs = [f"h.{i}" for i in shown]
    # encoder states h_1..h_S in one row, each into its own α cell
    assert len({round(lay.y(h)) for h in hs}) == 1
    assert [lay.x(h) for h in hs] == sorted(lay.x(h) for h in hs)
    into = {(t, e.get("headport")) for t, h, e in lay.edges if h == "attn"}
    assert into >= {(f"h.{i}", f"a{i}:s") for i in shown}
    assert f"α<SUB>t,{S}</SUB>" in text
    # the score reads s_{t−1}, and the query edge comes from s_{t−1}, not s_t
    assert "W<SUB>a</SUB>s<SUB>t−1</SUB> + U<SUB>a</SUB>h<SUB>i</SUB>" in text
    queries = [(t, e) for t, h, e in lay.edges if h == "attn" and e.get("label") == "query"]
    assert [t for t, _ in queries] == ["s.prev"]
    assert not _edges(lay, "s.t", "attn")
    # α → c_t → s_t (the context enters the GRU step), beside y_{t−1}
    assert _edges(lay, "attn", "ctx") and _edges(lay, "ctx", "s.t") and _edges(lay, "y.prev", "s.t")
    assert _edges(lay, "s.prev", "s.t")
    assert lay.y("h.1") < lay.y("attn") < lay.y("ctx") < lay.y("s.t")
    assert abs(lay.y("ctx") - lay.y("y.prev")) < TOL          # the step's two inputs on one row
    assert abs(lay.y("s.prev") - lay.y("s.t")) < TOL
    assert "GRU([y<SUB>t−1</SUB>; c<SUB>t</SUB>&#93;, s<SUB>t−1</SUB>)" in text   # ']' escaped by the writer
    # the read-out: concat [s_t; c_t] → generator → y_t
    assert "concat [s<SUB>t</SUB>; c<SUB>t</SUB>&#93;" in text
    assert _edges(lay, "s.t", "op.combine") and _edges(lay, "ctx", "op.combine")
    assert _edges(lay, "op.combine", "op.generator") and _edges(lay, "op.generator", "y.t")
    assert lay.y("s.t") < lay.y("op.combine") < lay.y("op.generator") < lay.y("y.t")
    # s_0 = tanh(W_s ←h_1): the init arrow starts at h_1, not at the last state
    inits = [(t, e) for t, h, e in lay.edges if h == "s.prev" and "init" in e.get("label", "")]
    assert [t for t, _ in inits] == ["h.1"]
    assert "←h<SUB>1</SUB>" in inits[0][1]["label"]
    # the attention belongs to the decoder op: inside its cluster, the encoder outside it
    x0, y0, x1, y1 = lay.clusters["cluster_decoder"]
    for n in ("attn", "ctx", "s.t", "s.prev", "y.prev"):
        assert x0 <= lay.x(n) <= x1 and y0 <= lay.y(n) <= y1, n
    assert not (y0 <= lay.y("h.1") <= y1)


@needs_dot
def test_luong_step_still_attends_from_the_current_state():
    # the attention after the decoder (Luong et al.): s_t scores, c_t goes to the read-out only
    for m in (load("mini_seq2seq"), _spec("seq2seq_luong")):
        lay = layout_of(to_dot(m, "seq2seq"))
        queries = [t for t, h, e in lay.edges if h == "attn" and e.get("label") == "query"]
        assert queries == ["s.t"]
        assert not _edges(lay, "ctx", "s.t")
        assert _edges(lay, "ctx", "op.combine")
