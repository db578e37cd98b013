"""Units and clusters: repeats collapse to ×N, --expand, --depth, runs of identical copies."""
from archviz.backends.render.view import build_view, fuse
from archviz.backends.render.common import WEIGHT_OPS

from .conftest import load


def test_collapse_makes_innermost_repeats_one_box():
    g = load("mini_resnet").graph
    v = build_view(g, "collapse")
    assert v.units["layer1"].kind == "repeat" and v.units["layer1"].count == 2
    assert v.units["layer2.rest"].count == 2
    # the non-repeated block call stays expanded, as a cluster
    assert v.units["layer2.first.conv1"].clusters == ("layer2", "layer2.first")
    assert ("relu", "layer1", "") in v.edges
    # the box's output is the last copy's output
    assert v.units["layer1"].out_node == "layer1.1.relu2"
    # params of the box = params of both copies (read from the passes' results)
    assert v.params("layer1") == sum(g.nodes[m].meta["params"].total for m in v.units["layer1"].members)


def test_expand_draws_every_layer_in_clusters():
    g = load("mini_resnet").graph
    v = build_view(g, "expand")
    assert len(v.units) == len(g.nodes)
    assert v.units["layer1.1.conv1"].clusters == ("layer1", "layer1.1")
    assert v.containers["layer1"].kind == "repeat" and v.containers["layer1.1"].kind == "call"


def test_depth_cuts_ids():
    g = load("mini_resnet").graph
    v = build_view(g, "depth", 1)
    assert list(v.units) == ["image", "conv1", "bn1", "relu", "layer1", "layer2", "avgpool", "flatten", "fc"]
    assert v.units["layer2"].kind == "call" and v.units["layer2"].block == "stage"
    v2 = build_view(g, "depth", 2)
    assert "layer2.rest" in v2.units and v2.units["layer2.rest"].clusters == ("layer2",)


def test_runs_draw_identical_copies_once():
    g = load("mini_resnet").graph
    v = build_view(g, "runs")
    assert "layer1.1.conv1" not in v.units
    assert v.units["layer1.0.conv1"].members == ["layer1.0.conv1", "layer1.1.conv1"]
    assert v.units["layer1.0.conv1"].clusters == ("layer1.0",)
    assert v.containers["layer1.0"].label == "layer1.0–1" and v.containers["layer1.0"].count == 2
    # no edge from the run back into itself
    for a, b, _ in v.edges:
        assert not (a.startswith("layer1.0.") and b.startswith("layer1.0.") and b.endswith("conv1"))


def test_fuse_conv_bn_relu():
    g = load("mini_resnet").graph
    v = fuse(build_view(g, "expand"), WEIGHT_OPS)
    u = v.units["layer1.0.conv1"]
    assert [g.nodes[f].op for f in u.fused_heads] == ["batchnorm2d", "relu"]
    # the ReLU after the add is not fused (its input is a merge, not a weight layer)
    assert "layer1.0.relu2" in v.units


def test_edge_labels_name_every_port():
    g = load("mini_encdec").graph
    v = build_view(g, "collapse")
    assert ("encoder", "decoder", "h, c") in v.edges
