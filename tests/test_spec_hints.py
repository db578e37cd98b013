"""Hints for the traps of writing a spec (issue 15, item 6): a reference with brackets left
unquoted inside a YAML flow collection, a tab, a batch written into an input's shape, and a
linear layer on a 4-D feature map (torch runs it, so a warning: W0704)."""
from __future__ import annotations

import importlib.util

import pytest

import archviz
from archviz.errors import ArchvizError, MultipleErrors
from archviz.library import names

HEAD = "archviz: 1\nname: t\n"


def _err(tmp_path, text) -> ArchvizError:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(ArchvizError) as e:
        archviz.load(str(p))
    err = e.value
    return err.errors[0] if isinstance(err, MultipleErrors) else err


def _load(tmp_path, text):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return archviz.load(str(p))


REPEAT = HEAD + "inputs: {x: {shape: [3, 8, 8]}}\nnodes:\n  - {id: stage, op: conv2d, out: 3, kernel: 1, repeat: 4}\n"


@pytest.mark.parametrize("line", ["  - {id: add, op: add, in: [stage, stage[3]]}",
                                  "  - {id: add, op: relu, in: stage[3]}",
                                  "  - {id: add, op: add, in: [stage[1], stage[3]]}"])
def test_unquoted_bracket_reference_in_a_flow_collection(tmp_path, line):
    e = _err(tmp_path, REPEAT + line + "\n")
    assert e.code == "E0101" and e.span.line == 6
    assert "quote the reference" in e.hint and '"stage[' in e.hint
    # the hint's fix compiles: both copies are 3x8x8, added
    fixed = line.replace("stage[3]", '"stage[3]"').replace("stage[1]", '"stage[1]"')
    m = _load(tmp_path, REPEAT + fixed + "\n")
    assert m.output_shapes["out"] == (1, 3, 8, 8)


def test_bracket_reference_in_block_style_needs_no_quotes(tmp_path):
    m = _load(tmp_path, REPEAT + "  - id: pick\n    op: relu\n    in: stage[3]\n")
    assert m.output_shapes["out"] == (1, 3, 8, 8)


@pytest.mark.parametrize("text", [
    HEAD + "inputs:\n\tx: {shape: [3, 8, 8]}\nnodes:\n  - {id: c, op: conv2d, out: 3, kernel: 1}\n",
    HEAD + "inputs: {x: {shape: [3, 8, 8]}}\nnodes:\n\t- {id: c, op: conv2d, out: 3, kernel: 1}\n",
    HEAD + "inputs:\n  x:\n\t  shape: [3, 8, 8]\nnodes:\n  - {id: c, op: conv2d, out: 3, kernel: 1}\n",
])
def test_tab_indentation(tmp_path, text):
    e = _err(tmp_path, text)
    assert e.code == "E0101" and "spaces, not tabs" in (e.hint or "")


CONV = "nodes:\n  - {id: conv, op: conv2d, out: 8, kernel: 3}\n"


@pytest.mark.parametrize("shape, fixed", [([1, 3, 32, 32], [3, 32, 32]), ([16, 3, 32, 32], [3, 32, 32])])
def test_batch_written_in_an_input_shape(tmp_path, shape, fixed):
    e = _err(tmp_path, HEAD + f"inputs: {{image: {{shape: {shape}}}}}\n" + CONV)
    assert e.code == "E0401"
    assert f"input 'image' is declared with shape {shape}" in e.hint and f"write shape: {fixed}" in e.hint
    # the fix: conv 3x3 without padding, 32 -> 30
    m = _load(tmp_path, HEAD + f"inputs: {{image: {{shape: {fixed}}}}}\n" + CONV)
    assert m.output_shapes["out"] == (1, 8, 30, 30)


def test_batch_in_a_token_shape_before_an_embedding(tmp_path):
    e = _err(tmp_path, HEAD + "inputs: {tokens: {shape: [1, 20]}}\nnodes:\n"
                              "  - {id: emb, op: embedding, num: 100, dim: 8}\n  - {id: lstm, op: lstm, out: 16}\n")
    assert "input 'tokens' is declared with shape [1, 20]" in e.hint and "write shape: [20]" in e.hint


def test_no_batch_hint_for_another_mistake(tmp_path):
    # a single-channel image is legitimate; the error here is a kernel larger than the input
    e = _err(tmp_path, HEAD + "inputs: {image: {shape: [1, 4, 4]}}\nnodes:\n"
                              "  - {id: conv, op: conv2d, out: 8, kernel: 5}\n")
    assert "declared with shape" not in (e.hint or "")


def _w0704(m):
    return [w for w in m.warnings if w.code == "W0704"]


def test_linear_on_a_4d_feature_map_warns(tmp_path):
    m = _load(tmp_path, HEAD + "inputs: {image: {shape: [3, 32, 32]}}\n" + CONV + "  - {id: fc, op: linear, out: 10}\n")
    (w,) = _w0704(m)
    assert "'fc' (linear)" in w.message and "flatten" in w.message and w.span.line == 6
    # still analysed as torch runs it: the last axis (30) -> 10, once per (N, C, H) position
    assert m.output_shapes["out"] == (1, 8, 30, 10)
    assert m.layer("fc").macs == 8 * 30 * 30 * 10
    if importlib.util.find_spec("torch"):
        import torch
        assert tuple(torch.nn.Linear(30, 10)(torch.zeros(1, 8, 30, 30)).shape) == (1, 8, 30, 10)


@pytest.mark.parametrize("nodes", ["  - {id: flat, op: flatten}\n  - {id: fc, op: linear, out: 10}\n",
                                   "  - {id: gap, op: global_avgpool}\n  - {id: flat, op: flatten}\n"
                                   "  - {id: fc, op: linear, out: 10}\n"])
def test_linear_after_flatten_does_not_warn(tmp_path, nodes):
    m = _load(tmp_path, HEAD + "inputs: {image: {shape: [3, 32, 32]}}\n" + CONV + nodes)
    assert _w0704(m) == []


def test_linear_on_a_sequence_does_not_warn(tmp_path):
    m = _load(tmp_path, HEAD + "inputs: {x: {shape: [20, 16]}}\nnodes:\n  - {id: fc, op: linear, out: 4}\n")
    assert _w0704(m) == [] and m.output_shapes["out"] == (1, 20, 4)


def test_the_warning_is_in_the_json_and_on_stderr(tmp_path):
    import json

    from click.testing import CliRunner

    from archviz.cli import main
    p = tmp_path / "t.yaml"
    p.write_text(HEAD + "inputs: {image: {shape: [3, 32, 32]}}\n" + CONV + "  - {id: fc, op: linear, out: 10}\n")
    r = CliRunner().invoke(main, ["summary", str(p), "-f", "json"])
    assert r.exit_code == 0
    assert "warning[W0704]" in r.stderr
    assert [w["code"] for w in json.loads(r.stdout)["warnings"]] == ["W0704"]


@pytest.mark.parametrize("name", names())
def test_no_bundled_spec_trips_the_linear_warning(name):
    assert _w0704(archviz.load(name)) == []


# A channels-last MLP on purpose: ConvNeXt's block (Liu et al. 2022, Fig. 4; torchvision CNBlock)
# permutes (N, C, H, W) to (N, H, W, C) and runs LayerNorm, Linear, GELU, Linear per position.
CHANNELS_LAST = ("  - {id: nhwc, op: permute, dims: [0, 2, 3, 1]}\n  - {id: ln, op: layernorm}\n"
                 "  - {id: fc1, op: linear, out: 32}\n  - {id: act, op: gelu}\n  - {id: fc2, op: linear, out: 8}\n")


def test_a_channels_last_mlp_after_a_permute_does_not_warn(tmp_path):
    m = _load(tmp_path, HEAD + "inputs: {image: {shape: [3, 32, 32]}}\n" + CONV + CHANNELS_LAST)
    assert _w0704(m) == [] and m.output_shapes["out"] == (1, 30, 30, 8)


def test_a_linear_on_the_feature_map_after_layers_that_keep_it_still_warns(tmp_path):
    """conv → LayerNorm over W → GELU → linear: the axes were never moved, the mistake stands."""
    m = _load(tmp_path, HEAD + "inputs: {image: {shape: [3, 32, 32]}}\n" + CONV +
              "  - {id: ln, op: layernorm}\n  - {id: act, op: gelu}\n  - {id: fc, op: linear, out: 10}\n")
    assert [w.message.split("'")[1] for w in _w0704(m)] == ["fc"]


def test_a_reshape_that_keeps_the_shape_does_not_excuse_it(tmp_path):
    m = _load(tmp_path, HEAD + "inputs: {image: {shape: [3, 32, 32]}}\n" + CONV +
              "  - {id: same, op: reshape, shape: [8, 30, 30]}\n  - {id: fc, op: linear, out: 10}\n")
    assert len(_w0704(m)) == 1
