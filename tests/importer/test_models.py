"""archviz.from_torch on hand-written torch models (tests/importer/models.py): the imported spec's
params, buffers, output shapes and 2 × MACs equal torch's own counts (parameters(), buffers(),
FlopCounterMode on meta), the module lowered from it has the original's state_dict keys and,
loaded with its state_dict, computes the same outputs (float64, max |Δ| ≤ 1e-9); and bad input
gets a clear error, never a traceback."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import archviz  # noqa: E402
from archviz.backends.torch.importer import from_torch, load_text, to_spec  # noqa: E402
from archviz.backends.torch.importer.check import check  # noqa: E402
from archviz.codes import E  # noqa: E402
from archviz.errors import TorchImportError  # noqa: E402
from tests.importer.models import MODELS, example  # noqa: E402
from torch import nn  # noqa: E402


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip(name):
    model, xs = example(name)
    m = from_torch(model, xs)
    c = check(model, xs, m)             # raises E0616 on any difference
    assert c.ok and c.max_delta <= 1e-9
    assert sorted(archviz.to_torch(m).state_dict()) == sorted(model.state_dict())
    assert m.totals["params"] == sum(p.numel() for p in model.parameters())     # tied weights counted once


def test_the_spec_reads_like_a_hand_written_one():
    model, xs = example("gpt")
    text = to_spec(from_torch(model, xs))
    assert "params: {vocab: 64}" in text                          # the width a user changes
    assert '{id: wte, op: embedding, in: idx, num: "${vocab}", dim: 32}' in text
    assert "share: {weight: wte}" in text                          # lm_head.weight = wte.weight stays tied
    assert "{id: attn__sdpa, op: sdpa" in text and "mask: causal" in text
    assert "{id: mlp__1, op: gelu, approximate: tanh}" in text   # defaults left out, the rest kept
    assert "{id: h, op: gptblock, repeat: 2}" in text             # the ModuleList of blocks: one block, repeated
    # the text compiles on its own, and -p changes the vocabulary everywhere at once
    m = load_text(text.replace("params: {vocab: 64}", "params: {vocab: 100}"), batch=2)
    assert m.output_shapes["out"] == (2, 10, 100)


def test_repeated_submodules_become_a_block():
    # torchvision's layout: layer2 = [BasicBlock with a strided downsample, BasicBlock]; the ReLU
    # module called twice gets a second node (relu_2); ids stay the qualified names
    model, xs = example("resnet")
    text = to_spec(from_torch(model, xs))
    assert "{id: layer2, op: basic_block_2, repeat: {n: 2, var: i}, i: \"${i}\"}" in text
    assert '{id: conv1, op: conv2d, in: x, out: 16, kernel: 3, stride: "${[2, 1][i]}", padding: 1, bias: false}' in text
    assert '{id: downsample__0, op: conv2d, in: x, out: 16, kernel: 1, stride: 2, bias: false, when: "${i == 0}"}' \
        in text
    assert "{id: relu_2, op: relu}" in text
    m = load_text(text, batch=2)
    assert "layer2.0.downsample__0" in m.graph.nodes and "layer2.1.downsample__0" not in m.graph.nodes


def test_the_check_is_not_vacuous():
    model, xs = example("gpt")
    text = to_spec(from_torch(model, xs))
    wrong = load_text(text.replace("approximate: tanh", "approximate: none"), batch=2)
    with pytest.raises(TorchImportError) as e:
        check(model, xs, wrong)
    assert e.value.code == E.IMPORT_CHECK and "same function" in " ".join(e.value.notes)
    wider = load_text(text.replace("out: 128", "out: 129"), batch=2)
    with pytest.raises(TorchImportError) as e:
        check(model, xs, wider, function=False)
    assert "params" in " ".join(e.value.notes)


class Unmappable(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.GroupNorm(2, 4)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(self.norm(x))
        return torch.exp(y - x)


def test_every_unmapped_call_in_one_error():
    with pytest.raises(TorchImportError) as e:
        from_torch(Unmappable(), torch.randn(2, 4, 8, 8))
    err = e.value
    assert err.code == E.IMPORT_UNMAPPED
    notes = "\n".join(err.notes)
    assert len(err.notes) == 3
    assert "norm (torch.nn.modules.normalization.GroupNorm): torch.nn.GroupNorm has no archviz op" in notes
    assert "(top) (Unmappable): sub: sub of two tensors" in notes and "(top) (Unmappable): exp: exp has no" in notes
    assert "test_models.py:" in notes       # the line of the model's code
    assert err.hint


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:          # data-dependent control flow
            return y
        return x


def test_data_dependent_control_flow_names_the_line():
    import inspect
    line = inspect.getsourcelines(Branchy.forward)[1] + 2
    with pytest.raises(TorchImportError) as e:
        from_torch(Branchy(), torch.randn(2, 4))
    assert e.value.code == E.IMPORT_DATA_FLOW and f"test_models.py:{line}" in e.value.message


def test_inputs_that_do_not_fit():
    with pytest.raises(TorchImportError) as e:
        from_torch(nn.Conv2d(3, 8, 3), torch.randn(2, 4, 8, 8))
    assert e.value.code == E.IMPORT_INPUTS and "RuntimeError" in e.value.message and e.value.hint


def test_batch_second_recurrence_is_refused_with_a_hint():
    with pytest.raises(TorchImportError) as e:
        from_torch(nn.LSTM(4, 8), torch.randn(5, 2, 4))
    assert "batch_first=False" in "\n".join(e.value.notes) and "batch_first=True" in "\n".join(e.value.notes)


def test_meta_module_imports_without_weights():
    # a model built on the meta device (no storage at all) imports; counts still hold
    with torch.device("meta"):
        model = MODELS["gpt"][0]()
    xs = {"idx": torch.empty(2, 10, dtype=torch.int64, device="meta")}
    m = from_torch(model, xs)
    c = check(model, xs, m)
    assert c.ok and c.max_delta is None          # no weights: counts only


def test_a_sequential_model_keeps_its_keys():
    # a root nn.Sequential names its layers 0, 1, ...: ids _0, _1 (an id cannot start with a digit),
    # lowered back to the module names 0, 1
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    xs = {"x": torch.randn(2, 3, 8, 8)}
    m = from_torch(model, xs)
    assert "{id: _0, op: conv2d, in: x, out: 4, kernel: 3}" in to_spec(m)
    assert sorted(archviz.to_torch(m).state_dict()) == sorted(model.state_dict())
    assert check(model, xs, m).max_delta == 0
