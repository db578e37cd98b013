"""split / chunk (outputs as indexed ports, read `s.0`), slice, channel_shuffle and the pixel
shuffles in specs: references to parts, located errors with hints, and the same function as
torch's own calls (torch.chunk, torch.split, nn.ChannelShuffle, nn.PixelShuffle)."""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import ArchvizError

SHUFFLE_UNIT = """\
archviz: 1
name: unit
inputs: {x: {shape: [8, 6, 6]}}
nodes:
  - {id: halves, op: chunk, chunks: 2}
  - {id: conv, op: conv2d, in: halves.1, out: 4, kernel: 3, padding: 1, groups: 4}
  - {id: cat, op: concat, in: [halves.0, conv]}
  - {id: shuffle, op: channel_shuffle, groups: 2}
  - {id: up, op: pixel_shuffle, factor: 2}
  - {id: crop, op: slice, dim: 3, start: 1, end: -1, step: 2}
outputs: {out: crop, left: halves.0}
"""


def _load(tmp_path, text, **kw):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return archviz.load(str(p), **kw)


def test_shapes_and_counts(tmp_path):
    m = _load(tmp_path, SHUFFLE_UNIT, batch=2)
    assert m.output_shapes == {"out": (2, 2, 12, 5), "left": (2, 4, 6, 6)}
    assert m.totals["params"] == 4 * 1 * 9 + 4
    assert m.totals["macs"] == 2 * 4 * 9 * 36      # batch 2


def test_the_same_function_as_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    m = _load(tmp_path, SHUFFLE_UNIT, batch=2)
    gm = to_torch(m, seed=0).double().eval()
    sd = gm.state_dict()
    conv = torch.nn.Conv2d(4, 4, 3, padding=1, groups=4).double()
    conv.load_state_dict({"weight": sd["conv.weight"], "bias": sd["conv.bias"]})
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    a, b = torch.chunk(x, 2, dim=1)
    y = torch.nn.ChannelShuffle(2)(torch.cat([a, conv(b)], dim=1))
    y = torch.nn.PixelShuffle(2)(y)[:, :, :, 1:-1:2]
    got = gm(x)
    assert torch.equal(got["out"], y) and torch.equal(got["left"], a)


def test_split_sizes_are_its_ports(tmp_path):
    text = SHUFFLE_UNIT.replace("{id: halves, op: chunk, chunks: 2}", "{id: halves, op: split, sizes: [4, 4]}")
    assert _load(tmp_path, text).output_shapes["left"] == (1, 4, 6, 6)


@pytest.mark.parametrize("node, message, hint", [
    ("{id: s, op: split, sizes: [3, 4]}", "sizes [3, 4] add up to 7, but axis 1 of (1, 8, 6, 6) has 8",
     "add up to 8"),
    ("{id: s, op: split, sizes: [8, 0]}", "at least 1 element", None),
    ("{id: s, op: split, sizes: [1, 1], dim: 0}", "batch axis", "after the batch"),
    ("{id: s, op: chunk, chunks: 5}", "torch.chunk cuts 8 into 4 part(s) of 2, not 5", "split with explicit sizes"),
    ("{id: s, op: slice, dim: 2, start: 7}", "is empty", None),
    ("{id: s, op: channel_shuffle, groups: 3}", "8 channels cannot be shuffled in 3 groups", "divide"),
    ("{id: s, op: pixel_shuffle, factor: 3}", "8 channels are not a multiple of factor² = 9", None),
    ("{id: s, op: pixel_unshuffle, factor: 4}", "H = 6 is not a multiple of factor 4", None),
])
def test_bad_parts_are_located_errors(tmp_path, node, message, hint):
    text = f"archviz: 1\nname: bad\ninputs: {{x: {{shape: [8, 6, 6]}}}}\nnodes:\n  - {node}\n"
    if "split" in node or "chunk" in node:
        text += "outputs: {a: s.0}\n"
    with pytest.raises(ArchvizError) as ei:
        _load(tmp_path, text)
    err = ei.value
    assert message in err.message and err.span is not None and err.span.line == 5
    if hint:
        assert hint in (err.hint or "")


def test_a_missing_part_lists_the_parts(tmp_path):
    text = SHUFFLE_UNIT.replace("in: halves.1", "in: halves.2")
    with pytest.raises(ArchvizError) as ei:
        _load(tmp_path, text)
    assert "has no output '2'" in ei.value.message and "0, 1" in ei.value.hint
    assert ei.value.span.line == 6


def test_a_split_read_without_a_part_says_so(tmp_path):
    text = SHUFFLE_UNIT.replace("in: halves.1", "in: halves")
    with pytest.raises(ArchvizError) as ei:
        _load(tmp_path, text)
    assert "has no output 'out'" in ei.value.message and "0, 1" in ei.value.hint


def test_a_broken_count_adds_no_error_about_parts(tmp_path):
    text = SHUFFLE_UNIT.replace("chunks: 2", "chunks: 0")
    with pytest.raises(ArchvizError) as ei:
        _load(tmp_path, text)
    errs = getattr(ei.value, "errors", [ei.value])
    assert len(errs) == 1 and "chunks" in errs[0].message


UP_TO_SKIP = """\
archviz: 1
name: decoder
inputs: {x: {shape: [3, 15, 13]}}
nodes:
  - {id: skip, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {id: down, op: maxpool2d, kernel: 2}
  - {id: up, op: upsample, in: [down, skip], mode: bilinear}
  - {id: cat, op: concat, in: [skip, up]}
"""


def test_upsample_to_the_size_of_another_node(tmp_path):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from archviz.backends.torch.lower import to_torch
    m = _load(tmp_path, UP_TO_SKIP)
    assert m.output_shapes == {"out": (1, 8, 15, 13)}      # 7×6 back to the skip's 15×13
    gm = to_torch(m, seed=0).double().eval()
    sd = gm.state_dict()
    x = torch.randn(1, 3, 15, 13, dtype=torch.float64)
    skip = F.conv2d(x, sd["skip.weight"], sd["skip.bias"], padding=1)
    up = F.interpolate(F.max_pool2d(skip, 2), size=(15, 13), mode="bilinear", align_corners=False)
    assert torch.allclose(gm(x), torch.cat([skip, up], dim=1), atol=1e-12)


def test_upsample_with_a_size_input_and_a_scale_is_an_error(tmp_path):
    text = UP_TO_SKIP.replace("mode: bilinear", "mode: bilinear, scale: 2")
    with pytest.raises(ArchvizError) as ei:
        _load(tmp_path, text)
    assert "a second input gives the size" in ei.value.message and ei.value.span.line == 7


@pytest.mark.parametrize("node", ["{id: s, op: chunk, chunks: 100000000}",
                                  "{id: s, op: split, sizes: \"${[1] * 5000}\"}"])
def test_a_hostile_part_count_is_bounded(tmp_path, node):
    """A chunk of 10^8 parts built 10^8 port names (a MemoryError under a 3 GB limit): each
    part is an output port, so their number is bounded, with a located error."""
    text = (f"archviz: 1\nname: big\ninputs: {{x: {{shape: [100000000]}}}}\nnodes:\n  - {node}\n"
            "outputs: {a: s.0}\n")
    with pytest.raises(ArchvizError) as ei:
        _load(tmp_path, text)
    errs = getattr(ei.value, "errors", [ei.value])
    assert len(errs) == 1 and "at most 4,096" in errs[0].message and errs[0].span.line == 5
