"""Every spec in specs/ with spatial inputs: the static field equals the gradient oracle at
several output positions (corners, centre, one more) of several layers — the last layer
that keeps the axes, a merge, one in the middle — and a global output covers the input.
Channel widths are shrunk through the spec's own params where it has them (the fields do
not depend on widths); spatial sizes stay as written.  The U-Net is checked along one
whole output axis (at a reduced input size)."""
from __future__ import annotations

import glob
import os
import random

import pytest

torch = pytest.importorskip("torch")

import archviz  # noqa: E402
from archviz.errors import ArchvizError  # noqa: E402
from archviz.passes import rf as RF  # noqa: E402

from .oracle import oracle_boxes, prepared, static_boxes  # noqa: E402

SPECS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "specs", "*.yaml")))
SMALL = {"base": 2, "c": 4, "num_classes": 3}


def small(path):
    """The spec with narrow layers (its params permitting)."""
    m = archviz.load(path)
    over = {k: v for k, v in SMALL.items() if k in m.graph.params}
    if "widths" in m.graph.params:
        over["widths"] = [2 * (i + 1) for i in range(len(m.graph.params["widths"]))]
    for drop in ((), ("widths",), tuple(over)):    # a spec may hard-code a width the params must match
        try:
            return archviz.load(path, **{k: v for k, v in over.items() if k not in drop})
        except ArchvizError:
            continue
    return m


def spatial_specs():
    out = []
    for p in SPECS:
        m = archviz.load(p)
        if RF.ensure(m.graph).layout == "channels-first":
            out.append(p)
    return out


def pick_nodes(m, rng):
    spatial, merges, glob_ = [], [], []
    for l in m.layers:
        sums, _ = RF.layer_rf(l.node)
        if not sums:
            continue
        if all(s["global"] for s in sums):
            glob_.append(l.id)
        elif all(f.dim is not None and f.kind in ("periodic", "table") for f in l.node.meta["rf"].fields["out"]):
            spatial.append(l.id)
            if l.op in ("add", "concat", "mul"):
                merges.append(l.id)
    nodes = {spatial[-1]} if spatial else set()
    if merges:
        nodes.add(rng.choice(merges))
    if spatial:
        nodes.add(spatial[len(spatial) // 2])
    return sorted(nodes), glob_[-1:] if glob_ else []


def positions_of(m, nid, rng):
    shape = m.graph.nodes[nid].meta["shapes"]["out"]
    h, w = shape[2], shape[3] if len(shape) > 3 else None
    pts = [(0, 0), (h - 1, (w or 1) - 1), (h // 2, (w or 1) // 2), (rng.randrange(h), rng.randrange(w or 1))]
    return [p if w else p[:1] for p in dict.fromkeys(pts)]


@pytest.mark.parametrize("path", spatial_specs(), ids=lambda p: os.path.basename(p)[:-5])
def test_spec_matches_oracle(path):
    rng = random.Random(os.path.basename(path))
    m = small(path)
    RF.ensure(m.graph)
    gm = prepared(m)
    nodes, globals_ = pick_nodes(m, rng)
    assert nodes, "no layer keeps the spatial axes"
    for nid in nodes:
        pos = positions_of(m, nid, rng)
        got = oracle_boxes(m, nid, pos, gm=gm)
        want = static_boxes(m, nid, pos)
        for p, o, s in zip(pos, got, want):
            assert o == [x and tuple(x) for x in s], f"{nid} at {p}: oracle {o}, static {s}"
    for nid in globals_:                        # every output element sees the whole input
        ctx = RF.ensure(m.graph)
        got = oracle_boxes(m, nid, [(0,) * len(ctx.axes)], gm=gm)
        assert got[0] == [(0, a.size - 1) for a in ctx.axes]


def test_unet_along_a_whole_axis():
    path = os.path.join(os.path.dirname(SPECS[0]), "unet.yaml") if SPECS else ""
    if not os.path.exists(path):
        pytest.skip("specs/unet.yaml not written yet")
    m = archviz.load(path, base=2, size=252)       # 252 → 68 output positions per axis
    RF.ensure(m.graph)
    gm = prepared(m)
    head = [l.id for l in m.layers][-1]
    n = m.graph.nodes[head].meta["shapes"]["out"][2]
    every = [(i, i) for i in range(n)]              # every position of both axes (they are independent)
    for k in range(0, n, 17):
        chunk = every[k:k + 17]
        got = oracle_boxes(m, head, chunk, gm=gm)
        want = static_boxes(m, head, chunk)
        assert got == [[tuple(x) for x in s] for s in want]
    sums = RF.layer_rf(m.graph.nodes[head])[0]
    assert sums[0]["size_min"] < sums[0]["size_max"]     # position-dependent after the up-convolutions
    # the reported min and max are those of the positions themselves (theoretical fields)
    sizes = [hi - lo + 1 for (lo, hi), _ in (RF.field_of(m, head, p, clip=False) for p in every)]
    assert (min(sizes), max(sizes)) == (sums[0]["size_min"], sums[0]["size_max"])
