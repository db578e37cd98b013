"""--layout auto picks the family from the graph's structure."""
import pytest

from archviz.backends.render import detect_layout
from archviz.backends.render.levels import node_levels

from .conftest import load


@pytest.mark.parametrize("name,layout", [
    ("mini_resnet", "residual"), ("mini_unet", "unet"), ("mini_unet_pad", "unet"), ("mini_rnn", "unrolled"), ("mini_bilstm", "unrolled"),
    ("mini_encdec", "unrolled"), ("mini_seq2seq", "seq2seq"), ("mini_mlp", "graph"), ("mini_gru", "unrolled"),
    ("mini_bahdanau", "seq2seq"),
])
def test_auto(name, layout):
    assert detect_layout(load(name)) == layout


def test_levels_ignore_valid_convolutions():
    g = load("mini_unet").graph
    level, dec = node_levels(g)
    assert level["inc.conv2"] == 0 and level["down1.pool"] == 1 and level["down4.conv.relu2"] == 4
    # the decoder at level 2 is 104² … 100² (572/100 would round to level 3)
    assert level["up3.upconv"] == 2 - 1 and level["up2.conv.conv2"] == 2
    assert not dec["up1.crop"] and dec["up1.cat"]


def _unet188():
    import os
    import archviz
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return archviz.load(os.path.join(root, "specs", "unet.yaml"), size=188)


def test_small_feature_maps_keep_their_level():
    # at size 188 the deepest maps are 8² → 6² → 4²: a valid 3×3 convolution from 6² to 4²
    # (log2 1.5 = 0.585) is no level step; only pooling and up-convolution change the level
    m = _unet188()
    level, dec = node_levels(m.graph)
    assert level["bottom.conv1"] == level["bottom.conv2"] == 4
    for i in (4, 3, 2, 1):
        assert level[f"dec{i}.upconv"] == level[f"dec{i}.conv.conv2"] == i - 1
    assert level["head"] == 0
    assert detect_layout(m) == "unet"
