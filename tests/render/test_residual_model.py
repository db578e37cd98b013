"""The residual picture's model (layouts/residual.py, Bypasses): every '+' with its fork,
the projections on skip arcs and what each edge of the view is.  Expected from the spec by
hand: mini_resnet has layer1 = 2 basic blocks with identity shortcuts, then layer2 = a
stride-2 block with a 1×1 projection shortcut (He et al. 2016, option B) and 2 identity
blocks."""
from archviz.backends.render.common import is_layer
from archviz.backends.render.layouts.residual import (IDENTITY, INTO_SKIP, MAIN, OUT_OF_SKIP, Bypasses)
from archviz.backends.render.view import build_view, fuse

from .conftest import load


def test_mini_resnet_bypasses():
    view = fuse(build_view(load("mini_resnet").graph, "expand"), is_layer)
    bp = Bypasses.of(view)
    adds = ["layer1.0.add", "layer1.1.add", "layer2.first.add", "layer2.rest.0.add", "layer2.rest.1.add"]
    assert sorted(bp.res) == sorted(adds)
    # each block forks at the previous block's output (the stem's conv for the first)
    assert bp.forks == {"conv1": adds[0], "layer1.0.relu2": adds[1], "layer1.1.relu2": adds[2],
                        "layer2.first.relu2": adds[3], "layer2.rest.0.relu2": adds[4]}
    assert bp.skip_units == {"layer2.first.down"}       # conv 1×1 + BN fused in one box
    kinds = {(a, b): bp.kind(a, b) for a, b, _ in view.edges}
    assert sorted(e for e, k in kinds.items() if k == IDENTITY) == sorted(
        (f, a) for f, a in bp.forks.items() if a != "layer2.first.add")
    assert kinds[("layer1.1.relu2", "layer2.first.down")] == INTO_SKIP
    assert kinds[("layer2.first.down", "layer2.first.add")] == OUT_OF_SKIP
    assert sum(k == MAIN for k in kinds.values()) == len(kinds) - 4 - 2
    assert bp.point("conv1") == "conv1#fork" and bp.point("fc") == "fc"
