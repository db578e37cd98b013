"""Unit tests of the shared window-length formula, values worked out by hand.

L_out = ⌊(L + p_total − d·(k − 1) − 1) / s⌋ + 1; ceil_mode: ⌈…⌉, and the last window
must start inside the input or the left padding.
"""
from __future__ import annotations

import pytest

from archviz.errors import OpError
from archviz.ops.base import conv_out_len


@pytest.mark.parametrize("args,kwargs,want", [
    # 3×3 conv, padding 1 each side, stride 1: (224 + 2 − 3)//1 + 1
    ((224, 3, 1, 2), {}, (224 + 2 - 3) // 1 + 1),                 # 224
    # ResNet stem: 7×7, stride 2, padding 3: (224 + 6 − 7)//2 + 1 = 111 + 1
    ((224, 7, 2, 6), {}, (224 + 6 - 7) // 2 + 1),                 # 112
    # AlexNet conv1: 11×11, stride 4, no padding: (227 − 11)//4 + 1 = 54 + 1
    ((227, 11, 4, 0), {}, 55),
    # AlexNet pool: 3×3, stride 2: (55 − 3)//2 + 1 = 26 + 1
    ((55, 3, 2, 0), {}, 27),
    # dilation 2 makes a 3-tap kernel span 5: (10 − 5)//1 + 1
    ((10, 3, 1, 0), {"d": 2}, 6),
    # window exactly the input: one output
    ((3, 3, 1, 0), {}, 1),
    # stride larger than what is left: (7 − 3)//5 + 1 = 0 + 1
    ((7, 3, 5, 0), {}, 1),
    # 1×1 conv, stride 2: (8 − 1)//2 + 1 = 3 + 1
    ((8, 1, 2, 0), {}, 4),
    # floor vs ceil: span 14 + 2 − 3 = 13; floor: 13//2 + 1 = 7
    ((14, 3, 2, 2), {}, 7),
    # ceil: ⌈13/2⌉ + 1 = 8; last window starts at 7·2 = 14 < 14 + 1 (input + left pad): kept
    ((14, 3, 2, 2), {"ceil_mode": True}, 8),
    # ceil: span 5 + 2 − 2 = 5, ⌈5/2⌉ + 1 = 4; last window would start at 3·2 = 6 ≥ 5 + 1: dropped
    ((5, 2, 2, 2), {"ceil_mode": True}, 3),
    # ceil with no remainder changes nothing: span 6 − 2 = 4, ⌈4/2⌉ + 1 = 3 = 4//2 + 1
    ((6, 2, 2, 0), {"ceil_mode": True}, 3),
    # ceil, window overhangs a too-small input: span 2 − 3 = −1, ⌈−1/2⌉ + 1 = 0 + 1 (torch gives 1)
    ((2, 3, 2, 0), {"ceil_mode": True}, 1),
])
def test_conv_out_len_by_hand(args, kwargs, want):
    assert conv_out_len(*args, **kwargs) == want


@pytest.mark.parametrize("args,kwargs", [
    ((2, 3, 1, 0), {}),                       # 2 − 3 < 0: window larger than the input
    ((4, 3, 1, 0), {"d": 2}),                 # dilated window 5 > 4
    ((1, 2, 1, 0), {}),
    ((2, 3, 1, 0), {"ceil_mode": True}),      # ⌈−1/1⌉ + 1 = 0 outputs
    ((1, 4, 3, 0), {"ceil_mode": True}),      # span −3, ⌈−3/3⌉ + 1 = 0
])
def test_conv_out_len_rejects_windows_larger_than_the_input(args, kwargs):
    with pytest.raises(OpError, match="larger than the padded input"):
        conv_out_len(*args, **kwargs)
