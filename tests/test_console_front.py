"""The command line as a person at a console meets it (issue 15, item 5): NO_COLOR, a
narrow terminal (names break between their parts, numbers never), options checked before
any work starts. ASCII consoles: tests/test_terminal.py."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

import archviz
from archviz.backends.report import break_name
from archviz.cli import main
from archviz.library import names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")     # a foreground colour


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "archviz", *args], capture_output=True, text=True,
                          env={**ENV, **env}, timeout=120)


def test_no_color_is_honoured():
    forced_env = {k: v for k, v in ENV.items() if k != "NO_COLOR"}
    forced = subprocess.run([sys.executable, "-m", "archviz", "summary", "exam_conv_pool"], capture_output=True,
                            text=True, env={**forced_env, "FORCE_COLOR": "1"}, timeout=120)
    assert COLOR.search(forced.stdout), "the check itself: a forced terminal shows colours"
    plain = _run({"FORCE_COLOR": "1", "NO_COLOR": "1"}, "summary", "exam_conv_pool")
    assert plain.returncode == 0 and not COLOR.search(plain.stdout + plain.stderr)
    assert "1,792" in plain.stdout


def test_break_name_breaks_between_parts():
    assert break_name("layer1.0.downsample.0", 11) == "layer1.0.\ndownsample.\n0"
    assert break_name("attention_gru", 10) == "attention_\ngru"
    assert break_name("basic ×2", 6) == "basic\n×2"
    assert break_name("conv1", 20) == "conv1"
    assert break_name("abcdefghij", 4) == "abcd\nefgh\nij"     # one part longer than the line: cut


def _table_cells(text):
    """Cells of the body rows of the layer table, a list of cells per printed line: rich's
    table (│ between cells) or, for a long table, aligned text (the rule under the heads
    gives the columns)."""
    lines = text.splitlines()
    if any(l.startswith("│") for l in lines):
        return [[c.strip() for c in l.strip("│").split("│")] for l in lines if l.startswith("│")]
    k = next(i for i, l in enumerate(lines) if l and set(l) <= {"─", " "})
    spans = [(m.start(), m.end()) for m in re.finditer("─+", lines[k])]
    body = []
    for l in lines[k + 1:]:
        if l and set(l) <= {"─", " "}:
            continue
        if not l.strip() or not l.startswith((" ", *map(chr, range(33, 127)))) or l.startswith("params"):
            break
        body.append([l[a:b + 2].strip() for a, b in spans])
    return body


@pytest.mark.parametrize("name", names())
def test_summary_at_80_columns_breaks_names_between_parts(name):
    r = CliRunner().invoke(main, ["summary", name], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert max(len(l) for l in out.splitlines()) <= 80
    assert "…" not in out                          # nothing cut off
    m = archviz.load(name)
    rows = _table_cells(out)
    ids = [l.id for l in m.layers] + ["total"]
    # the id column, read top to bottom, gives back every id, each broken only after . _ -
    frags = [r[0] for r in rows if r[0]]
    i = 0
    for nid in ids:
        got = ""
        while got != nid:
            assert i < len(frags) and nid.startswith(got + frags[i]), (nid, got, frags[i:i + 3])
            if got:
                assert got[-1] in "._- ", (nid, got)
            got += frags[i]
            i += 1
    # every number whole on one line
    params = {c[3] for c in rows if c[3]}
    for l in m.layers:
        assert f"{l.params.total:,}" in params


def test_rf_plot_extension_checked_before_any_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the spec was loaded before the options were checked")
    monkeypatch.setattr(archviz, "_load", boom)
    r = CliRunner().invoke(main, ["rf", "resnet18", "--plot", "x.jpg"])
    assert r.exit_code == 2 and "'.jpg'" in r.output and ".png, .svg" in r.output
    r = CliRunner().invoke(main, ["export", "resnet18", "-o", "x.txt"])
    assert r.exit_code == 2 and ".py, .onnx, .pt2" in r.output
    r = CliRunner().invoke(main, ["rf", "resnet18", "--position", "a,b"])
    assert r.exit_code == 2


@pytest.mark.parametrize("args", [["summary", "resnet18", "-o", "{f}/x.json"], ["draw", "resnet18", "-o", "{f}/x.svg"],
                                  ["rf", "resnet18", "--plot", "{f}/x.svg"], ["schema", "-o", "{f}/s.json"]])
def test_output_folder_checked_before_any_work(args, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    calls = []
    real = archviz._load
    monkeypatch.setattr(archviz, "_load", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = CliRunner().invoke(main, [a.format(f=tmp_path / "file") for a in args])
    assert r.exit_code == 1 and "E0801" in r.output and "is a file, not a folder" in r.output
    assert calls == []


@pytest.mark.parametrize("opt, value, words", [
    ("--lr", "nan", "finite"), ("--lr", "inf", "finite"), ("--lr", "-1", "finite number >= 0"),
    ("--steps", "1000000000", "10000"),     # a smoke test of 10⁹ Adam steps ran without end
])
def test_train_smoke_options_checked_before_any_work(monkeypatch, opt, value, words):
    """torch refused lr nan or -1 only after the spec was loaded and lowered (10 s here); lr inf
    trained to a NaN loss and reported 'not going down'."""
    def boom(*a, **k):
        raise AssertionError("the spec was loaded before the options were checked")
    monkeypatch.setattr(archviz, "_load", boom)
    r = CliRunner().invoke(main, ["train-smoke", "exam_conv_pool", opt, value])
    assert r.exit_code == 2 and opt in r.output and words in r.output, r.output
