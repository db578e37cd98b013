"""The tensor ops in specs: a sequence classifier that averages over time (the same function
as a torch model written by hand), and located errors with hints for the mistakes people make
with permute, reshape, matmul and reductions."""
from __future__ import annotations

import os

import pytest

import archviz
from tests.spec_errors import one_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFIER = os.path.join(ROOT, "specs", "lstm_classifier.yaml")


def test_classifier_counts():
    # embedding 20,000·300; a bidirectional LSTM layer per direction 4·(256·(300 + 256) + 2·256)
    # (torch.nn.LSTM: weight_ih, weight_hh, bias_ih, bias_hh); linear 512·5 + 5
    want = 20000 * 300 + 2 * 4 * (256 * (300 + 256) + 2 * 256) + (512 * 5 + 5)
    m = archviz.load(CLASSIFIER)
    assert m.totals["params"] == want == 7_145_349
    assert m.output_shapes == {"logits": (1, 5)}
    assert m.layer("pool").output_shape == (1, 512)


def test_classifier_is_the_same_function_as_torch():
    torch = pytest.importorskip("torch")
    from torch import nn

    class Ref(nn.Module):                      # written from the spec's doc, not from archviz
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(200, 12)
            self.lstm = nn.LSTM(12, 8, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(16, 3)

        def forward(self, tokens):
            out, _ = self.lstm(self.embed(tokens))
            return self.fc(out.mean(dim=1))

    from archviz.backends.torch.lower import to_torch
    m = archviz.load(CLASSIFIER, batch=3, T=7, vocab=200, emb=12, hidden=8, classes=3)
    torch.manual_seed(0)
    ref = Ref().double().eval()
    gm = to_torch(m, seed=1).double().eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    tokens = torch.randint(0, 200, (3, 7))
    with torch.no_grad():
        want = ref(tokens)
        got = gm(tokens)
    got = got["logits"] if isinstance(got, dict) else got
    assert got.shape == want.shape == (3, 3)
    assert torch.max(torch.abs(got - want)).item() <= 1e-12


SPEC = """\
archviz: 1
name: t
inputs: {{x: {{shape: [4, 6, 5]}}, y: {{shape: [4, 7, 3]}}}}
nodes:
  - {{id: op, {node}}}
outputs: {{o: {{from: op}}}}
"""


@pytest.mark.parametrize("node, code, words, hint", [
    ("op: permute, dims: [0, 1, 1, 3], in: x", "E0", "not a permutation", "once"),
    ("op: permute, dims: [1, 0, 2, 3], in: x", "E0", "moves the batch axis", "keep 0 first"),
    ("op: permute, dims: [0, 2, 1], in: x", "E0", "name 3 axes for a 4-D input", "permutation of 0..3"),
    ("op: transpose, dim0: 0, dim1: 2, in: x", "E0", "moves the batch axis", None),
    ("op: reshape, shape: [7, -1], in: x", "E0", "not a multiple of 7", "multiply"),
    ("op: reshape, shape: [5, 5], in: x", "E0", "120 elements per example, the new shape holds 25", "multiply"),
    ("op: reshape, shape: [-1, -1], in: x", "E0", "at most one -1", None),
    ("op: mean, dims: 0, in: x", "E0", "batch axis", "axes after the batch"),
    ("op: sum, dims: [1, -3], in: x", "E0", "names an axis twice", None),
    ("op: matmul, in: [x, y]", "E0", "inner sizes 5 and 7 differ", None),
])
def test_mistakes_get_located_errors(tmp_path, node, code, words, hint):
    p = tmp_path / "t.yaml"
    p.write_text(SPEC.format(node=node))
    e = one_error(str(p))
    text = str(e)
    assert e.code.startswith(code) and words in text, text
    assert e.span is not None and e.span.line == 5, text
    if hint:
        assert hint in (e.hint or ""), (e.hint, text)
