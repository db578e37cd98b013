"""The encoder summary (the exam's "context vector", U4 Q4) is named in summary, explain and
the seq2seq drawing: the state an encoder hands a decoder as its initial state
(Sutskever et al. 2014, §2), found from the graph (a recurrent layer's h0/c0 inputs)."""
from __future__ import annotations

import os

from click.testing import CliRunner

import archviz
from archviz.backends import context as C
from archviz.cli import main

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")


def spec(name):
    return os.path.join(SPECS, f"{name}.yaml")


def test_plain_seq2seq_hands_over_h_and_c():
    m = archviz.load(spec("seq2seq"))
    hs = C.handovers(m)
    # 2 layers, hidden 512: torch's h_n and c_n are (layers, N, hidden)
    assert [(h.decoder, h.port, h.source, h.shape) for h in hs] == [
        ("decoder", "h0", "encoder.h", (2, 1, 512)), ("decoder", "c0", "encoder.c", (2, 1, 512))]
    assert not C.attends(m)
    assert "context vector" in C.lines(m)[0] and "bottleneck" in C.lines(m)[0]


def test_attention_models_say_the_decoder_reads_more():
    for name in ("seq2seq_luong", "seq2seq_bahdanau"):
        m = archviz.load(spec(name))
        assert C.attends(m) and "also reads every encoder state" in C.lines(m)[0]
    assert C.lines(archviz.load(spec("lstm_lm"))) == []


def test_named_in_summary_explain_and_drawing(tmp_path):
    r = CliRunner()
    out = r.invoke(main, ["summary", spec("seq2seq")], env={"COLUMNS": "200"}).output
    assert "the context vector: all the decoder sees of the source" in out
    for node in ("encoder", "decoder"):
        out = r.invoke(main, ["explain", spec("seq2seq"), node], env={"COLUMNS": "200"}).output
        assert "'decoder' starts from encoder.h (2, 1, 512) as h0" in out
    assert "context vector" not in r.invoke(main, ["explain", spec("seq2seq"), "generator"]).output
    dot = tmp_path / "s.dot"
    assert r.invoke(main, ["draw", spec("seq2seq"), "-o", str(dot)]).exit_code == 0
    assert "the context vector, initialises the decoder" in dot.read_text()
