"""`archviz rf` (table, one layer, one position, JSON, plots), and the RF column/entries of
`summary` and `explain`."""
from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
import zlib

import click
import pytest
from click.testing import CliRunner

from archviz.backends.rf_commands import rf
from archviz.cli import main

from .helpers import model_of

TWO = """archviz: 1
name: two
inputs: {x: {shape: [2, 12, 12]}}
nodes:
  - {id: c1, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {id: c2, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {id: b, op: conv2d, in: x, out: 2, kernel: 2, padding: same}
  - {id: add, op: add, in: [c2, b]}
  - {id: up, op: conv_transpose2d, out: 2, kernel: 3, stride: 2, padding: 1}
  - {id: c3, op: conv2d, out: 2, kernel: 3, padding: 1}
"""


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "two.yaml"
    p.write_text(TWO)
    return str(p)


@pytest.fixture
def cli():
    group = click.Group(commands={"rf": rf}) if "rf" not in main.commands else main
    return lambda *args: CliRunner().invoke(group, ["rf", *args] if group is not main else ["rf", *args])


def test_table(spec, cli):
    r = cli(spec)
    assert r.exit_code == 0, r.output
    lines = {l.split("│")[1].strip(): [c.strip() for c in l.split("│")[2:-1]] for l in r.output.splitlines()
             if l.startswith("│")}
    assert lines["c2"][2:6] == ["5", "1", "−2", "0"]               # size, jump, start, centre
    # transposed k3 s2 p1: even outputs read one input, odd ones two
    assert lines["up"][2:4] == ["5–6", "1/2"]
    assert lines["c3"][2:4] == ["6–7", "1/2"]
    assert lines["c2"][6] == "1.15"                               # σ² = 2·(3² − 1)/12 = 4/3
    assert "warning" in r.output and "misaligned inputs at 'add'" in r.output


def test_node_and_position(spec, cli):
    r = cli(spec, "--node", "c2", "--position", "0,5")
    assert r.exit_code == 0, r.output
    assert "3 + (3 − 1)·1 = 5" in r.output
    assert "H 0..2 (3 positions);  theoretical -2..2" in r.output
    assert "W 3..7 (5 positions)" in r.output


def test_json(spec, cli):
    r = cli(spec, "-f", "json", "--node", "c3", "--position", "3,3")
    d = json.loads(r.output)
    assert d["axes"] == ["H", "W"] and d["input_size"] == [12, 12]
    (layer,) = d["layers"]
    assert layer["rf"][0] == {"axis": "H", "size_min": 6, "size_max": 7, "jump": "1/2", "start": -3,
                              "global": False}
    ex, th = d["position"]["exact"], d["position"]["theoretical"]
    assert all(t[0] <= e[0] <= e[1] <= t[1] for e, t in zip(ex, th))


def test_plots(spec, cli, tmp_path):
    svg, png = tmp_path / "rf.svg", tmp_path / "rf.png"
    assert cli(spec, "--node", "c3", "--position", "12,12", "--plot", str(svg)).exit_code == 0
    root = ET.parse(svg).getroot()
    rects = [e for e in root.iter() if e.tag.endswith("rect")]
    assert len(rects) >= 6
    assert "c3" in svg.read_text() and "add" in svg.read_text()
    assert cli(spec, "--node", "c3", "--position", "12,12", "--plot", str(png)).exit_code == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    pos, raw = 8, b""
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            raw += data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(data[pos + 4:pos + 8 + n])
        pos += 12 + n
    pix = zlib.decompress(raw)
    assert len(pix) == h * (1 + 3 * w)
    assert len(set(pix[1:1 + 3 * w])) == 1                  # the top row is white
    assert cli(spec, "--plot", str(tmp_path / "rf.pdf")).exit_code == 2


def test_errors(spec, cli):
    r = cli(spec, "--node", "c9")
    assert r.exit_code == 1 and "no node 'c9'" in r.output
    assert cli(spec, "--node", "c2", "--position", "1,x").exit_code == 2
    assert cli(spec, "--node", "c2", "--position", "1,2,3").exit_code == 2
    assert cli(spec, "--node", "c2", "--position", "40,1").exit_code == 2


def test_summary_and_explain(spec):
    r = CliRunner().invoke(main, ["summary", spec])
    assert r.exit_code == 0 and "RF" in r.output and "5×5" in r.output and "misaligned" in r.output
    d = json.loads(CliRunner().invoke(main, ["summary", spec, "-f", "json"]).output)
    assert d["layers"][1]["rf"][0]["size_max"] == 5
    r = CliRunner().invoke(main, ["explain", spec, "c2"])
    assert "receptive field H, W" in r.output and "= 3 + (3 − 1)·1 = 5" in r.output


def test_sequence_table():
    m = model_of([{"id": "r", "op": "rnn", "out": 2}], inputs={"x": {"shape": [5, 3]}})
    from archviz.backends.rf_commands import rf_rows
    (row,) = rf_rows(m)
    assert row[3] == "1–5"


TWO_INPUTS = """archviz: 1
name: two_inputs
inputs: {a: {shape: [1, 8, 8]}, b: {shape: [1, 12, 11]}}
nodes:
  - {id: ca, op: conv2d, in: a, out: 1, kernel: 3}
  - {id: cb, op: conv2d, in: b, out: 1, kernel: 5, stride: 2}
outputs: {ya: {from: ca}, yb: {from: cb}}
"""


def test_chosen_input(tmp_path, cli):
    """`--input b` re-runs the pass on b's axes, and the position and the plot use them too.
    By hand (torch.nn.Conv2d: output o reads o·s − p .. o·s − p + k − 1): cb (k 5, s 2, p 0)
    at (2, 3) reads H 4..8 and W 6..10 of b; r = 5, j = 2, start = −p = 0 (Distill 2019)."""
    p = tmp_path / "two_inputs.yaml"
    p.write_text(TWO_INPUTS)
    d = json.loads(cli(str(p), "-f", "json").output)
    assert d["input"] == "a" and d["input_size"] == [8, 8]           # the first spatial input
    r = cli(str(p), "-f", "json", "--input", "b", "--node", "cb", "--position", "2,3")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["input"] == "b" and d["input_size"] == [12, 11]
    (layer,) = d["layers"]
    assert layer["rf"][0] == {"axis": "H", "size_min": 5, "size_max": 5, "jump": 2, "start": 0, "global": False}
    assert d["position"]["exact"] == [[4, 8], [6, 10]] == d["position"]["theoretical"]
    d = json.loads(cli(str(p), "-f", "json", "--input", "b").output)
    assert {l["id"]: l["rf"] for l in d["layers"]}["ca"] is None      # ca does not read b
    r = cli(str(p), "--input", "b", "--node", "cb", "--position", "2,3", "--plot", str(tmp_path / "b.svg"))
    assert r.exit_code == 0, r.output
    assert "on input 'b' (12 × 11)" in (tmp_path / "b.svg").read_text()


def test_unknown_input(spec, cli):
    r = cli(spec, "--input", "nope")
    assert r.exit_code == 2 and "no input 'nope'; inputs: x" in r.output
