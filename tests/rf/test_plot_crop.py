"""RF plots crop to the region that matters and number their rows and columns (issue 16: the
5×5 field of two 3×3 convolutions was a speck on a 56×56 grid, with no indices)."""
from __future__ import annotations

import os

import archviz
from archviz.backends import rfplot

from .helpers import model_of

SPECS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "specs")


def test_small_field_on_a_large_input_is_cropped_and_labelled():
    m = archviz.load(os.path.join(SPECS, "exam_two_3x3.yaml"))
    axes, regs = rfplot.regions(m, "conv.1.relu", None)
    assert regs[0].exact == [(25, 29), (25, 29)]            # the 5×5 field at the centre
    L = rfplot._Layout(axes, regs)
    # the field and as much again around it (⌊(5 + 1)/2⌋ = 3 cells, at least 2), not 56 cells
    assert L.cropped and (L.h0, L.h1, L.w0, L.w1) == (22, 32, 22, 32)
    assert L.cs == 28                                         # large cells: 640 // 11, capped
    title = rfplot._title(m, "conv.1.relu", None, axes)
    assert "(56 × 56, shown: H 22..32, W 22..32)" in title
    svg = rfplot.to_svg(m, "conv.1.relu")
    for i in range(22, 33):                                   # every index labelled (28-pixel cells)
        assert f">{i}</text>" in svg
    assert ">21</text>" not in svg and ">33</text>" not in svg


def test_the_whole_grid_when_the_field_covers_much_of_it():
    m = model_of([{"id": "c1", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
                  {"id": "c2", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1}], shape=(2, 12, 12))
    axes, regs = rfplot.regions(m, "c2", [6, 6])
    L = rfplot._Layout(axes, regs)
    assert not L.cropped and (L.h0, L.h1, L.w0, L.w1) == (0, 11, 0, 11)


def test_tick_step_leaves_room_for_three_digits():
    assert [rfplot.tick_step(c) for c in (28, 13, 10, 5, 3, 1)] == [1, 2, 5, 10, 10, 0]
    for c in (2, 3, 4, 6, 9, 12, 20, 27):
        assert rfplot.tick_step(c) * c >= 26
