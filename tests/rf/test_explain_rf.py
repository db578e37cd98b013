"""`explain` (and `rf --node`) for position-dependent fields (audit item B): the recurrence
with its numbers, one period of output positions, each with the input positions it reads and
its interval, and which position gives the minimum and which the maximum size.  The truth is a
derivation written here (torch's transposed-convolution index rule) and the gradient oracle
at interior positions (where no border clips the field)."""
from __future__ import annotations

import re

import pytest

from archviz.passes import rf as RF
from archviz.passes.rf_explain import explain_lines
from archviz.passes.rf_explain import LIST_CAP
from tests.test_explain_arithmetic import bad_steps

from .helpers import model_of

UP = [{"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
      {"id": "u", "op": "conv_transpose2d", "out": 2, "kernel": 3, "stride": 2, "padding": 1},
      {"id": "c2", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1},
      {"id": "p", "op": "conv_transpose2d", "in": "x", "out": 2, "kernel": 3, "stride": 2, "padding": 1},
      {"id": "m", "op": "add", "in": ["c2", "p"]}]


def per_position(text: str) -> dict:
    """{o: (lo, hi, r)} from the per-position lines 'output o = 1 reads ... field [lo, hi], r = 6'."""
    out = {}
    for o, lo, hi, r in re.findall(r"output o = (\d+)\b.*?field \[(−?\d+), (−?\d+)\], r = (\d+)", text):
        num = lambda s: int(s.replace("−", "-"))
        out[int(o)] = (num(lo), num(hi), int(r))
    return out


def test_transposed_conv_explained_position_by_position():
    m = model_of(UP[1:2], shape=(2, 12, 12))
    text = m.explain("u")
    # torch ConvTranspose: output o = i·s − p + t (t < k)
    #   ⇒ ⌈(o + p − (k − 1))/s⌉ ≤ i ≤ ⌊(o + p)/s⌋.
    # k = 3, s = 2, p = 1 on the input itself (field of i = [i, i]):
    #   o = 0: ⌈(0 + 1 − 2)/2⌉ = 0 ≤ i ≤ ⌊1/2⌋ = 0 → [0, 0], r = 1
    #   o = 1: ⌈(1 + 1 − 2)/2⌉ = 0 ≤ i ≤ ⌊2/2⌋ = 1 → [0, 1], r = 2;  field(o + 2) = field(o) + 1
    assert per_position(text) == {0: (0, 0, 1), 1: (0, 1, 2)}
    assert "⌈(0 + 1 − 1·(3 − 1))/2⌉ = 0" in text and "⌊(1 + 1)/2⌋ = 1" in text
    assert re.search(r"output o = 0 .*minimum", text) and re.search(r"output o = 1 .*maximum", text)
    assert "field(o + 2) = field(o) + 1" in text
    n, bad = bad_steps(text, "u")
    assert n >= 6 and not bad, bad


@pytest.mark.parametrize("nid", ["u", "c2", "m"])
def test_intervals_shown_are_the_oracles(nid):
    """Each shown interval is the field of that phase: at an interior output position q·P + o
    the oracle's box is the shown [lo, hi] moved by q·J."""
    from .oracle import oracle_boxes, prepared
    m = model_of(UP, shape=(2, 16, 16))
    text = m.explain(nid)
    shown = per_position(text)
    f = m.graph.nodes[nid].meta["rf"].fields["out"][0]
    assert sorted(shown) == list(range(f.P)) and f.P > 1
    (J,) = {int(j) for j in re.findall(r"field\(o \+ \d+\) = field\(o\) \+ (\d+)", text)}
    q = 5
    pos = [(q * f.P + o, q * f.P + o) for o in sorted(shown)]
    got = oracle_boxes(m, nid, pos, gm=prepared(m))
    for o, box in zip(sorted(shown), got):
        lo, hi, r = shown[o]
        assert r == hi - lo + 1
        assert box[0] == box[1] == (lo + q * J, hi + q * J), (nid, o, box, shown[o])
    sizes = [r for _, _, r in shown.values()]
    s = RF.layer_rf(m.graph.nodes[nid])[0][0]
    assert (min(sizes), max(sizes)) == (s["size_min"], s["size_max"])
    n, bad = bad_steps(text, nid)
    assert not bad, bad


def test_rf_node_shows_the_positions(tmp_path):
    from click.testing import CliRunner
    from archviz.backends.rf_commands import rf
    import json
    spec = tmp_path / "u.yaml"
    spec.write_text(json.dumps({"archviz": 1, "name": "u", "inputs": {"x": {"shape": [2, 12, 12]}},
                                "nodes": UP[:3]}))
    r = CliRunner().invoke(rf, [str(spec), "--node", "c2"])
    assert r.exit_code == 0, r.output
    # c: [o − 1, o + 1]; u: o = 0 → c position 0 → [−1, 1], o = 1 → c positions 0..1 → [−1, 2];
    # c2 (3×3, p = 1): o = 0 reads u −1..1 → [−1 − 1, 1 + 1] = [−2, 2] (r 5), o = 1 reads u 0..2 →
    # [−1, 2] ∪ [−1, 1] ∪ [0, 2] = [−1, 2] (r 4)
    assert per_position(r.output) == {0: (-2, 2, 5), 1: (-1, 2, 4)}


@pytest.mark.parametrize("layer", [
    {"op": "upsample", "mode": "nearest", "scale": 2},
    {"op": "upsample", "mode": "nearest", "size": [11, 5]},
    {"op": "upsample", "mode": "bilinear", "scale": 2},
    {"op": "upsample", "mode": "bilinear", "scale": 2, "align_corners": True},
    {"op": "upsample", "mode": "bilinear", "size": [13, 6], "align_corners": True},
    {"op": "conv_transpose2d", "out": 2, "kernel": 4, "stride": 2, "padding": 1},
    {"op": "conv_transpose2d", "out": 2, "kernel": 3, "stride": 2, "dilation": 2},
    {"op": "conv_transpose2d", "out": 2, "kernel": 3, "stride": 3, "output_padding": 2},
])
def test_every_periodic_map_is_explained(layer):
    """Every position-dependent map shows its positions; the numbers add up; the intervals are
    the pass's, whose min and max are the reported sizes."""
    m = model_of([{"id": "c", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1}, dict(layer, id="up"),
                  {"id": "c2", "op": "conv2d", "out": 2, "kernel": 3, "padding": 1}], shape=(2, 7, 8))
    for nid in ("up", "c2"):
        text = m.explain(nid)
        n, bad = bad_steps(text, nid)
        assert not bad, bad
        fields = m.graph.nodes[nid].meta["rf"].fields["out"]
        seen = set()
        for line in explain_lines(m, nid):
            w = re.match(r"receptive field ([A-Z, ]+), position o = (\d+)$", line.what)
            if not w:
                continue
            o = int(w.group(2))
            if "reads nothing" in line.formula:          # a hole: a dilated transposed conv's empty phase
                want = None
            else:
                ((o2, (lo, hi, r)),) = per_position(line.formula).items()
                assert o2 == o and r == hi - lo + 1
                want = (lo, hi)
            for name in w.group(1).split(", "):
                a = "HW".index(name)
                assert fields[a].at(o) == want, (name, o)
                seen.add((a, o))
        for a, f in enumerate(fields):   # every phase of a short period; else the first, a min, a max
            got = {o for b, o in seen if b == a}
            if f.P <= LIST_CAP:
                assert got == (set(range(f.P)) if f.P > 1 else set()), (a, f.P)
                continue
            sizes = [f.at(o)[1] - f.at(o)[0] + 1 for o in range(f.P)]
            assert 0 in got and {sizes[o] for o in got} >= {min(sizes), max(sizes)}
