"""The U-Net picture's model (layouts/unet.py): its rows and arrows, built before any DOT.
Expected from Ronneberger et al. (2015), Fig. 1, as mini_unet writes it (block per box,
--depth 1): four 2×2 max pools down, four 2×2 up-convolutions up, four copy-and-crop arrows
across, each within one level, and the final 1×1 convolution."""
from archviz.backends.render.layouts.unet import _arrows, _levels, _Maps
from archviz.backends.render.options import DrawOptions

from .conftest import load


def test_mini_unet_blocks_form_the_u():
    m = _Maps(load("mini_unet"), DrawOptions(layout="unet", depth=1))
    levels = _levels(m)
    assert levels == {0: ["image", "inc", "up4", "head"], 1: ["down1", "up3"], 2: ["down2", "up2"],
                      3: ["down3", "up1"], 4: ["down4"]}
    arrows = _arrows(m)
    by_kind = {}
    for e in arrows:
        by_kind.setdefault(e.kind, []).append((e.a, e.b, e.label))
    downs = ["inc", "down1", "down2", "down3", "down4"]
    ups = ["down4", "up1", "up2", "up3", "up4"]
    assert by_kind["down"] == [(a, b, "max pool 2×2") for a, b in zip(downs, downs[1:])]
    assert sorted(by_kind["up"]) == sorted((a, b, "up-conv 2×2") for a, b in zip(ups, ups[1:]))
    assert sorted(by_kind["skip"]) == sorted(
        (a, b, "copy and crop") for a, b in [("down3", "up1"), ("down2", "up2"), ("down1", "up3"), ("inc", "up4")])
    level = {k: lvl for lvl, ks in levels.items() for k in ks}
    assert all(level[a] == level[b] for a, b, _ in by_kind["skip"])
    assert by_kind["conv1x1"] == [("up4", "head", "conv 1×1")]
