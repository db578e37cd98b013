"""ONNX export of a batch norm without running statistics: torch's TorchScript exporter
asserted ("batch_size and channel_size must be non-None") under a symbolic batch axis, an
uncaught AssertionError traceback.  The export now keeps the traced batch for such layers
(as for recurrent ones) and ONNX's reference evaluator agrees with torch; any other failure
of torch's exporter is a LoweringError."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import archviz  # noqa: E402
from archviz.backends.torch.export import export_onnx  # noqa: E402
from archviz.backends.torch.lower import example_inputs, to_torch  # noqa: E402
from archviz.errors import LoweringError  # noqa: E402

SPEC = """archviz: 1
name: bnfree
inputs:
  x: {shape: [3, 8, 8]}
nodes:
  - {id: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {id: bn, op: batchnorm2d, track_running_stats: false}
  - {id: relu, op: relu}
"""


@pytest.mark.parametrize("batch", [1, 2])
def test_onnx_export_of_batchnorm_without_running_stats(tmp_path, batch):
    p = tmp_path / "bn.yaml"
    p.write_text(SPEC)
    m = archviz.load(str(p), batch=batch)
    out = str(tmp_path / "bn.onnx")
    export_onnx(m, out)
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    from onnx.reference import ReferenceEvaluator
    (x,) = example_inputs(m)
    got = ReferenceEvaluator(model).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        want = to_torch(m, seed=0).eval()(x)
    assert got.shape == tuple(want.shape)
    assert torch.allclose(torch.from_numpy(got), want, atol=1e-4)


def test_an_exporter_failure_is_a_lowering_error(tmp_path, monkeypatch):
    p = tmp_path / "bn.yaml"
    p.write_text(SPEC)
    m = archviz.load(str(p))

    def fail(*a, **k):
        raise AssertionError("synthetic exporter assertion")
    monkeypatch.setattr(torch.onnx, "export", fail)
    out = tmp_path / "bn.onnx"
    with pytest.raises(LoweringError, match="ONNX exporter failed.*synthetic exporter assertion"):
        export_onnx(m, str(out))
    assert not out.exists() and list(tmp_path.iterdir()) == [p]
