"""Units and clusters: repeats collapse to ×N, --expand, --depth, runs of identical copies."""
from archviz.backends.render.view import build_view, fuse
from archviz.backends.render.common import is_layer

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
    v = fuse(build_view(g, "expand"), is_layer)
    u = v.units["layer1.0.conv1"]
    assert [g.nodes[f].op for f in u.fused_heads] == ["batchnorm2d", "relu"]
    # the ReLU after the add is not fused (its input is a merge, not a weight layer)
    assert "layer1.0.relu2" in v.units


def test_edge_labels_name_every_port():
    g = load("mini_encdec").graph
    v = build_view(g, "collapse")
    assert ("encoder", "decoder", "h, c") in v.edges


def _png(path, w, h):
    import struct
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", w, h) + b"\0" * 9)


def test_gallery_img_fits_wide_and_tall_pictures(tmp_path):
    from archviz.backends.render.gallery import IMG_BOX, png_size, render_index
    _png(tmp_path / "wide.png", 6000, 400)
    _png(tmp_path / "tall.png", 216, 3000)
    _png(tmp_path / "tiny.png", 100, 50)
    assert png_size(str(tmp_path / "wide.png")) == (6000, 400)
    base = {"name": "n", "doc": "", "layout": "graph", "batch": 1, "params": 1, "macs": 1,
            "inputs": {}, "outputs": {}}
    md = render_index([dict(base, stem=s, layers=n) for s, n in (("wide", 5), ("tall", 1), ("tiny", 2))],
                      str(tmp_path))
    assert f'<img src="wide.png" width="{IMG_BOX[0]}" height="24"' in md       # bounded by the width
    assert f'<img src="tall.png" width="35" height="{IMG_BOX[1]}"' in md       # bounded by the height
    assert '<img src="tiny.png" width="100" height="50"' in md                 # never enlarged
    assert "1 layer ·" in md and "5 layers ·" in md and "1 layers" not in md


def test_collapsed_boxes_name_kernels_widths_and_count_layers_in_all():
    from archviz.backends.render import to_dot
    from .conftest import load
    text = to_dot(load("mini_resnet"), "graph")
    box = next(ln for ln in text.splitlines() if "<B>layer1 ×2</B>" in ln)
    assert "conv 3×3, " in box and " layers (" in box and "each)" in box


def test_repeats_whose_copies_differ_are_not_marked_xN():
    import os
    import archviz
    from archviz.backends.render import to_dot
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    m = archviz.load(os.path.join(root, "specs", "vgg16.yaml"))
    text = to_dot(m, "graph", depth=1)
    assert "features ×5" not in text and "5 × stage, copies differ" in text and "conv 3×3, 64…512" in text
    text = to_dot(m, "graph")
    assert "<B>block ×2</B>" in text and "conv 3×3, 64<" in text
