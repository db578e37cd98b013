"""Tensors of a layer's own: `parameter` (learned, counted in params) and `constant` (a
buffer), each the same for every example of the batch — ViT's class token and position
embedding, the sinusoidal table of Vaswani et al. 2017."""
from __future__ import annotations

import math

import pytest

import archviz

VIT_HEAD = """\
archviz: 1
name: vit_tokens
params: {T: 4, D: 6}
inputs: {x: {shape: ["${T}", "${D}"]}}
nodes:
  - {id: cls, op: parameter, shape: [1, "${D}"], in: x, init: normal}
  - {id: tokens, op: concat, axis: 1, in: [cls, x]}
  - {id: pos, op: parameter, shape: ["${T + 1}", "${D}"], in: x, init: normal}
  - {id: embedded, op: add, in: [tokens, pos]}
outputs: {out: {from: embedded}}
"""


def _load(tmp_path, text, **kw):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return archviz.load(str(p), **kw)


def test_class_token_and_position_embedding_counts(tmp_path):
    m = _load(tmp_path, VIT_HEAD, batch=3)
    # torchvision's VisionTransformer: class_token (1, 1, D), pos_embedding (1, T + 1, D)
    assert m.totals["params"] == 6 + 5 * 6 and m.totals["buffers"] == 0
    assert m.output_shapes == {"out": (3, 5, 6)}
    assert m.totals["macs"] == 0


def test_class_token_is_the_same_function_as_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    m = _load(tmp_path, VIT_HEAD, batch=3)
    gm = to_torch(m, seed=0).double().eval()
    cls, pos = torch.randn(1, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    gm.load_state_dict({"cls.weight": cls, "pos.weight": pos}, strict=True)
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    # torchvision's VisionTransformer: cat(class_token.expand(n, -1, -1), x) + pos_embedding
    want = torch.cat([cls.expand(3, 1, 6), x], dim=1) + pos
    got = gm(x)
    got = got["out"] if isinstance(got, dict) else got
    assert torch.equal(got, want)


def test_sinusoidal_table_is_the_papers(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    text = ("archviz: 1\nname: pe\ninputs: {x: {shape: [7, 8]}}\nnodes:\n"
            "  - {id: pe, op: constant, shape: [7, 8], in: x}\n  - {id: y, op: add, in: [x, pe]}\n")
    m = _load(tmp_path, text)
    assert m.totals["params"] == 0 and m.totals["buffers"] == 56
    table = to_torch(m).pe.table
    for t in range(7):
        for i in range(0, 8, 2):            # PE(t, 2i) = sin(t / 10000^(2i/d)), PE(t, 2i+1) = cos(...)
            assert table[t, i].item() == pytest.approx(math.sin(t / 10000 ** (i / 8)), abs=1e-6)
            assert table[t, i + 1].item() == pytest.approx(math.cos(t / 10000 ** (i / 8)), abs=1e-6)


@pytest.mark.parametrize("node, words", [
    ("{id: p, op: parameter, shape: [0, 4], in: x}", "every size must be >= 1"),
    ("{id: p, op: constant, shape: [7, 5], in: x}", "d even"),
])
def test_bad_shapes_are_located_errors(tmp_path, node, words):
    from tests.spec_errors import one_error
    p = tmp_path / "s.yaml"
    p.write_text(f"archviz: 1\nname: s\ninputs: {{x: {{shape: [7, 8]}}}}\nnodes:\n  - {node}\n")
    e = one_error(str(p))
    assert words in str(e) and e.span is not None and e.span.line == 5
