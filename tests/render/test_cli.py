"""`archviz draw` and `archviz gallery`, the main job's render_gallery_item, and the error
when Graphviz is missing."""
import os

import click
import pytest
from click.testing import CliRunner

from archviz.backends.render import render_gallery_item
from archviz.backends.render.commands import draw, gallery
from archviz.backends.render.gallery import read_entries

from .conftest import load, needs_dot, spec_path


@click.group()
@click.option("--traceback", is_flag=True)
def cli(traceback):
    """Stands in for archviz.cli.main (the lead registers the commands there)."""


cli.add_command(draw)
cli.add_command(gallery)


def run(*args, **kw):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kw)


@needs_dot
@pytest.mark.parametrize("ext,magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF"), ("dot", b"/*")])
def test_draw_formats(tmp_path, ext, magic):
    out = tmp_path / f"r.{ext}"
    res = run("draw", spec_path("mini_resnet"), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(magic)
    assert "residual layout" in res.output
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~mask       # the permissions open() would give


@needs_dot
def test_draw_options(tmp_path):
    out = tmp_path / "u.dot"
    res = run("draw", spec_path("mini_resnet"), "-o", str(out), "--layout", "graph", "--depth", "1",
              "--rankdir", "LR", "--no-shapes", "-p", "num_classes=7", "--batch", "2")
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert 'rankdir="LR"' in text and "layer1 ×2" in text and "2×7" not in text
    res = run("draw", spec_path("mini_rnn"), "-o", str(out), "--unroll", "4")
    assert res.exit_code == 0 and '"s0.h1f.4"' in out.read_text()


def test_draw_usage_errors(tmp_path):
    res = run("draw", spec_path("mini_resnet"), "-o", str(tmp_path / "x.jpg"))
    assert res.exit_code == 2 and ".svg" in res.output
    res = run("draw", spec_path("mini_resnet"), "-o", str(tmp_path / "x.svg"), "--depth", "1", "--expand")
    assert res.exit_code == 2 and "exclude" in res.output
    res = run("draw", spec_path("mini_resnet"), "-o", str(tmp_path / "x.svg"), "--layout", "nope")
    assert res.exit_code == 2


def test_layout_that_does_not_apply_is_a_clear_error(tmp_path):
    res = run("draw", spec_path("mini_resnet"), "-o", str(tmp_path / "x.dot"), "--layout", "unrolled")
    assert res.exit_code == 1 and "no rnn, lstm, gru" in res.output and "Traceback" not in res.output
    res = run("draw", spec_path("mini_mlp"), "-o", str(tmp_path / "x.dot"), "--layout", "unet")
    assert res.exit_code == 1 and "no resolution levels" in res.output


def test_missing_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHVIZ_DOT", "no-such-dot-program")
    res = run("draw", spec_path("mini_resnet"), "-o", str(tmp_path / "x.svg"))
    assert res.exit_code == 1
    assert "Graphviz's `dot` program was not found" in res.output and "install Graphviz" in res.output
    assert not (tmp_path / "x.svg").exists()
    # .dot needs no Graphviz
    res = run("draw", spec_path("mini_resnet"), "-o", str(tmp_path / "x.dot"))
    assert res.exit_code == 0 and (tmp_path / "x.dot").exists()


@needs_dot
def test_gallery(tmp_path):
    out = tmp_path / "out"
    res = run("gallery", spec_path("mini_resnet"), spec_path("mini_rnn"), "-o", str(out))
    assert res.exit_code == 0, res.output
    for stem in ("mini_resnet", "mini_rnn"):
        assert (out / f"{stem}.svg").exists() and (out / f"{stem}.png").exists()
    md = (out / "gallery.md").read_text()
    assert '<img src="mini_resnet.png"' in md and "residual layout" in md and "unrolled layout" in md
    assert md.index("mini_resnet") < md.index("mini_rnn")
    # a second run adds to the index; a stem whose picture is gone is dropped
    run("gallery", spec_path("mini_unet"), "-o", str(out))
    assert set(read_entries(str(out))) == {"mini_resnet", "mini_rnn", "mini_unet"}
    (out / "mini_rnn.svg").unlink()
    run("gallery", spec_path("mini_unet"), "-o", str(out))
    assert set(read_entries(str(out))) == {"mini_resnet", "mini_unet"}


@needs_dot
def test_gallery_reports_failures(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archviz: 1\nname: bad\ninputs: {x: {shape: [3]}}\nnodes:\n  - {id: a, op: nope}\n")
    res = run("gallery", str(bad), spec_path("mini_mlp"), "-o", str(tmp_path / "o"))
    assert res.exit_code == 1 and "failed" in res.output
    assert (tmp_path / "o" / "mini_mlp.svg").exists()


@needs_dot
def test_render_gallery_item(tmp_path):
    files = render_gallery_item(load("mini_unet"), str(tmp_path), "unet")
    assert files == ["unet.svg", "unet.png", "gallery.md"]
    assert (tmp_path / "unet.png").read_bytes().startswith(b"\x89PNG")
    (tmp_path / "unet.md").write_text("report")
    render_gallery_item(load("mini_mlp"), str(tmp_path), "mlp")
    md = (tmp_path / "gallery.md").read_text()
    assert "[report](unet.md)" in md and "mlp" in md and "unet layout" in md


def test_gallery_without_graphviz_says_so_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHVIZ_DOT", "no-such-dot-program")
    res = run("gallery", spec_path("mini_resnet"), spec_path("mini_rnn"), spec_path("mini_mlp"),
              "-o", str(tmp_path / "o"))
    assert res.exit_code == 1
    assert res.output.count("E0510") == 1 and res.output.count("was not found") == 1, res.output


def test_draw_notes_options_without_effect(tmp_path):
    out = str(tmp_path / "x.dot")
    res = run("draw", spec_path("mini_unet"), "-o", out, "--no-shapes", "--rankdir", "LR")
    assert res.exit_code == 0
    notes = [ln for ln in res.output.splitlines() if ln.startswith("note:")]
    assert notes == ["note: --rankdir, --no-shapes have no effect on the unet layout"], res.output
    res = run("draw", spec_path("mini_rnn"), "-o", out, "--expand")
    assert "note: --expand has no effect on the unrolled layout" in res.output
    res = run("draw", spec_path("mini_resnet"), "-o", out, "--unroll", "3", "--rankdir", "LR")
    assert "note: --unroll has no effect on the residual layout" in res.output and "--rankdir" not in res.output
    res = run("draw", spec_path("mini_resnet"), "-o", out, "--rankdir", "LR", "--depth", "1")
    assert "note:" not in res.output and "warning:" not in res.output


def test_draw_warns_when_a_forced_layout_does_not_fit(tmp_path):
    out = str(tmp_path / "x.dot")
    res = run("draw", spec_path("mini_resnet"), "-o", out, "--layout", "unet")
    assert "warning: --layout unet does not match" in res.output and "picks residual" in res.output
    res = run("draw", spec_path("mini_unet"), "-o", out, "--layout", "graph")
    assert "warning:" not in res.output
    res = run("draw", spec_path("mini_mlp"), "-o", out, "--layout", "residual")
    assert "warning: --layout residual does not match" in res.output
