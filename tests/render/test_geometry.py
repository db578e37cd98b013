"""Layouts checked through `dot -Tjson` coordinates (y grows upwards; points)."""
import pytest

from archviz.backends.render import to_dot
from archviz.backends.render.layouts.unet import _Maps
from archviz.backends.render.options import DrawOptions

from .conftest import layout_of, load, needs_dot

pytestmark = needs_dot
TOL = 1.0


# -- U-Net ------------------------------------------------------------------------------
def _unet(name="mini_unet", **kw):
    m = load(name)
    maps = _Maps(m, DrawOptions(layout="unet", **kw))
    keys = [k for k in maps.v.units if k not in maps.absorbed]
    return maps, keys, layout_of(to_dot(m, "unet", **kw))


@pytest.mark.parametrize("name,kw", [("mini_unet", {}), ("mini_unet", {"depth": 1}), ("mini_unet_pad", {}),
                                     ("mini_unet_pad", {"depth": 1}), ("mini_unet_pad", {"depth": 2})])
def test_unet_levels_are_rows_and_the_u_narrows_downwards(name, kw):
    maps, keys, lay = _unet(name, **kw)
    by_level = {}
    for k in keys:
        by_level.setdefault(maps.level[k], []).append(k)
    assert sorted(by_level) == [0, 1, 2, 3, 4]
    if kw:   # one box per block: the repeated encoder is drawn as its copies, each on its own row
        assert all(sum(1 for k in ks if not maps.dec[k] and k != "image") <= 2 for ks in by_level.values())
    ys = {}
    for lvl, ks in by_level.items():
        row = {round(lay.y(k), 1) for k in ks}
        assert len(row) == 1, f"level {lvl} is not one row: {row}"
        ys[lvl] = row.pop()
    assert all(ys[i] > ys[i + 1] for i in range(4)), ys           # each level lower than the one above
    span = {lvl: (min(lay.left(k) for k in ks), max(lay.right(k) for k in ks)) for lvl, ks in by_level.items()}
    for i in range(4):
        assert span[i][0] < span[i + 1][0] and span[i][1] > span[i + 1][1], (i, span)
    # contracting path on the left, expansive path on the right, in every row but the bottom
    for lvl, ks in by_level.items():
        enc = [k for k in ks if not maps.dec[k]]
        dec = [k for k in ks if maps.dec[k]]
        if enc and dec:
            assert max(lay.x(k) for k in enc) < min(lay.x(k) for k in dec)


def test_unet_copy_and_crop_arrows_are_horizontal_and_pool_arrows_vertical():
    maps, keys, lay = _unet()
    skips = [e for e in lay.edges if e[2].get("color") == "#7f7f7f"]
    assert len(skips) == 4
    for t, h, _ in skips:
        assert abs(lay.y(t) - lay.y(h)) < TOL and lay.x(t) < lay.x(h)
    pools = [e for e in lay.edges if e[2].get("color") == "#c00000"]
    assert len(pools) == 4
    for t, h, e in pools:
        assert lay.y(t) > lay.y(h) and abs(lay.x(t) - lay.x(h)) < TOL      # straight down
    ups = [e for e in lay.edges if e[2].get("color") == "#2e7d32"]
    assert len(ups) == 4
    for t, h, e in ups:                         # declared top → bottom, drawn upwards (dir=back)
        assert e.get("dir") == "back" and lay.y(t) > lay.y(h)


def test_unet_boxes_are_scaled_by_channels_and_size():
    text = to_dot(load("mini_unet"), "unet")
    assert 'WIDTH="6" HEIGHT="88"' in text         # the 1-channel 572² input
    assert "legend" in text and "copy and crop" in text and "max pool 2×2" in text and "up-conv 2×2" in text


# -- residual ---------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"expand": True}])
def test_residual_main_column_is_straight_and_skips_pass_beside_it(kw):
    text = to_dot(load("mini_resnet"), "residual", **kw)
    lay = layout_of(text)
    main = [n for n in lay.nodes if f'"{n}" [' in text and 'group="main"' in _decl(text, n)]
    xs = {round(lay.x(n)) for n in main}
    assert max(xs) - min(xs) <= 1, xs
    col_x = sum(xs) / len(xs)
    col_right = max(lay.right(n) for n in main if not n.endswith("#fork"))
    skips = [e for e in lay.edges if e[2].get("color") == "#c00000"]
    assert skips
    for _t, _h, e in skips:
        assert all(x >= col_x - TOL for x, _ in lay.points(e))
    identity = [e for t, h, e in skips if t.endswith("#fork") and h.endswith(".add")]
    assert identity and all(max(x for x, _ in lay.points(e)) > col_right for e in identity)
    proj = [n for n in lay.nodes if n.startswith("layer2.first.down")]
    assert proj and all(lay.left(n) > col_right for n in proj)
    # the '+' of a block is below its fork
    for t, h, _ in skips:
        if t.endswith("#fork"):
            assert lay.y(t) > lay.y(h)


def _decl(text, n):
    for line in text.splitlines():
        if line.strip().startswith(f'"{n}" ['):
            return line
    return ""


def test_residual_lr_puts_arcs_above_the_row():
    lay = layout_of(to_dot(load("mini_resnet"), "residual", rankdir="LR"))
    ys = {round(lay.y(n)) for n in ("conv1", "avgpool", "fc", "layer1.0.add")}
    assert len(ys) == 1
    row_y = ys.pop()
    for _t, _h, e in lay.edges:
        if e.get("color") == "#c00000":
            assert all(y >= row_y - TOL for _, y in lay.points(e))


# -- unrolled RNN -----------------------------------------------------------------------
def test_unrolled_h_chain_is_one_row_in_time_order():
    lay = layout_of(to_dot(load("mini_rnn"), "unrolled"))
    hs = ["s0.h1f.0"] + [f"s0.h1f.{t}" for t in (1, 2, 3)]
    assert len({round(lay.y(h)) for h in hs}) == 1
    xs = [lay.x(h) for h in hs]
    assert xs == sorted(xs) and len(set(xs)) == 4
    for t in (1, 2, 3):
        x, h, y = f"s0.x.{t}", f"s0.h1f.{t}", f"s0.y.{t}"
        assert lay.y(x) < lay.y(h) < lay.y(y)                      # x at the bottom, y on top
        assert abs(lay.x(x) - lay.x(h)) < TOL and abs(lay.x(h) - lay.x(y)) < TOL
    assert lay.x("fold.h") < lay.x("unfold") < lay.x("s0.h1f.0")    # folded view on the left
    chain = [e for t, h, e in lay.edges if t.startswith("s0.h1f.") and h.startswith("s0.h1f.")]
    assert len(chain) == 3 and all("hh" in e["label"] for e in chain)


@pytest.mark.parametrize("T", [2, 7])
def test_unroll_option_sets_the_steps(T):
    text = to_dot(load("mini_rnn"), "unrolled", unroll=T)
    assert f'"s0.h1f.{T}"' in text and f'"s0.h1f.{T + 1}"' not in text
    assert f"t = 1..{T}" in text


def test_default_steps_come_from_the_spec():
    text = to_dot(load("mini_rnn", T=5), "unrolled")
    assert '"s0.h1f.5"' in text and '"s0.h1f.6"' not in text


def test_bidirectional_layers_stack_in_rows():
    lay = layout_of(to_dot(load("mini_bilstm"), "unrolled", unroll=3))
    rows = ["s0.x.1", "s0.h1f.1", "s0.h1b.1", "s0.h2f.1", "s0.h2b.1", "s0.y.1"]
    ys = [lay.y(n) for n in rows]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    for row in ("h1f", "h1b", "h2f", "h2b"):
        assert len({round(lay.y(f"s0.{row}.{t}")) for t in (1, 2, 3)}) == 1
    # the backward chain runs right to left: its initial state is on the right
    assert lay.x("s0.h1b.4") > lay.x("s0.h1b.3") > lay.x("s0.h1b.1")


def test_encoder_decoder_continue_in_one_row():
    lay = layout_of(to_dot(load("mini_encdec"), "unrolled"))
    row = ["s0.h1f.0", "s0.h1f.1", "s0.h1f.2", "s0.h1f.3", "s1.h1f.1", "s1.h1f.2"]
    assert len({round(lay.y(n)) for n in row}) == 1
    xs = [lay.x(n) for n in row]
    assert xs == sorted(xs)


# -- cell, seq2seq ------------------------------------------------------------------------
def test_lstm_cell_belt_runs_left_to_right():
    lay = layout_of(to_dot(load("mini_bilstm"), "cell"))
    belt = ["c_prev", "mul_f", "add_c", "c_t"]
    assert len({round(lay.y(n)) for n in belt}) == 1
    assert [lay.x(n) for n in belt] == sorted(lay.x(n) for n in belt)
    gates = ["gate_f", "gate_i", "gate_g", "gate_o"]
    assert len({round(lay.y(n)) for n in gates}) == 1
    assert [lay.x(n) for n in gates] == sorted(lay.x(n) for n in gates)
    assert lay.y("x_t") < lay.y("gate_f") < lay.y("add_c") < lay.y("h_t")


def test_gru_cell_has_reset_update_and_the_h_line():
    text = to_dot(load("mini_gru"), "cell")
    lay = layout_of(text)
    assert "gate_r" in lay.nodes and "gate_z" in lay.nodes and "one_minus" in lay.nodes
    belt = ["h_belt", "mul_z", "add_h", "h_t"]
    assert len({round(lay.y(n)) for n in belt}) == 1
    assert [lay.x(n) for n in belt] == sorted(lay.x(n) for n in belt)


def test_seq2seq_step():
    text = to_dot(load("mini_seq2seq"), "seq2seq")
    lay = layout_of(text)
    hs = [f"h.{i}" for i in (1, 2, 3, 4)]
    assert len({round(lay.y(h)) for h in hs}) == 1
    assert [lay.x(h) for h in hs] == sorted(lay.x(h) for h in hs)
    assert lay.y("h.1") < lay.y("attn") < lay.y("ctx")
    assert "cluster_encoder" in lay.clusters and "cluster_decoder" in lay.clusters
    assert "additive" in text and "α<SUB>t,4</SUB>" in text
    # every h_i points at its own α cell
    into_cells = {(t, e.get("headport")) for t, h, e in lay.edges if h == "attn"}
    assert into_cells >= {(f"h.{i}", f"a{i}:s") for i in (1, 2, 3, 4)}


def test_seq2seq_elides_a_long_source():
    text = to_dot(load("mini_seq2seq", S=12), "seq2seq")
    assert '"h.gap"' in text and '"h.12"' in text and '"h.5"' not in text
    text = to_dot(load("mini_seq2seq", S=12), "seq2seq", unroll=6)
    assert '"h.6"' in text and '"h.gap"' not in text


# -- graph ------------------------------------------------------------------------------
def test_graph_collapsed_boxes_and_clusters():
    text = to_dot(load("mini_resnet"), "graph")
    lay = layout_of(text)
    assert "layer1" in lay.nodes and "layer1.0.conv1" not in lay.nodes
    assert "<B>layer1 ×2</B>" in text
    assert "cluster_layer2" in lay.clusters and "cluster_layer2.first" in lay.clusters
    x0, y0, x1, y1 = lay.clusters["cluster_layer2.first"]
    assert x0 <= lay.x("layer2.first.add") <= x1 and y0 <= lay.y("layer2.first.add") <= y1


def test_graph_no_shapes_and_rankdir():
    text = to_dot(load("mini_mlp"), "graph", shapes=False, rankdir="LR")
    assert "1×32" not in text and "rankdir=\"LR\"" in text
    lay = layout_of(text)
    assert lay.x("x") < lay.x("stem") < lay.x("hidden") < lay.x("head")


def test_unet_with_small_maps_is_a_u():
    from .test_detect import _unet188
    m = _unet188()
    maps = _Maps(m, DrawOptions(layout="unet"))
    keys = [k for k in maps.v.units if k not in maps.absorbed]
    text = to_dot(m, "unet")
    lay = layout_of(text)
    by_level = {}
    for k in keys:
        by_level.setdefault(maps.level[k], []).append(k)
    assert sorted(by_level) == [0, 1, 2, 3, 4]
    for lvl, ks in by_level.items():
        assert len({round(lay.y(k), 1) for k in ks}) == 1, lvl
        if lvl < 4:
            assert any(maps.dec[k] for k in ks) and any(not maps.dec[k] for k in ks), lvl
    assert "&#x2193;</FONT> conv" not in text        # only pooling goes down in the legend


def test_a_long_sequence_is_elided_to_first_steps_gap_and_last():
    text = to_dot(load("mini_rnn", T=40), "unrolled")
    for t in (1, 2, 3, 40):
        assert f'"s0.h1f.{t}"' in text
    assert '"s0.h1f.4"' not in text and '"s0.h1f.39"' not in text and '"s0.h1f.gap"' in text
    assert "t = 1..40" in text and "h<SUB>40</SUB>" in text
    lay = layout_of(text)
    row = ["s0.h1f.0", "s0.h1f.1", "s0.h1f.2", "s0.h1f.3", "s0.h1f.gap", "s0.h1f.40"]
    assert len({round(lay.y(n)) for n in row}) == 1
    xs = [lay.x(n) for n in row]
    assert xs == sorted(xs)
    assert abs(lay.x("s0.x.gap") - lay.x("s0.h1f.gap")) < TOL
    chain = {(t, h) for t, h, _ in lay.edges}
    assert ("s0.h1f.3", "s0.h1f.gap") in chain and ("s0.h1f.gap", "s0.h1f.40") in chain
    # the whole picture stays readable: a few columns, not 40
    w = max(lay.right(n) for n in lay.nodes) - min(lay.left(n) for n in lay.nodes)
    assert w < 1000
    # --unroll still draws every step asked for
    assert '"s0.h1f.9"' in to_dot(load("mini_rnn", T=40), "unrolled", unroll=9)


def test_a_long_bidirectional_sequence_is_elided():
    text = to_dot(load("mini_bilstm", T=30), "unrolled")
    lay = layout_of(text)
    assert lay.x("s0.h1b.31") > lay.x("s0.h1b.30") > lay.x("s0.h1b.gap") > lay.x("s0.h1b.3")
