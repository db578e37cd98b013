"""The torch lowering: every op's own torch_spec rule against its static rules, and whole
specs through `archviz verify`. Truth: torch itself (shapes, numel, FlopCounterMode)."""
from __future__ import annotations

import glob
import math
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import archviz  # noqa: E402
from archviz.backends.torch.lower import example_inputs, to_torch  # noqa: E402
from archviz.backends.torch.verify import verify  # noqa: E402
from archviz.errors import MissingRuleError  # noqa: E402
from archviz.ops import registry  # noqa: E402
from tests.ops.samples import evaluate_sample  # noqa: E402
from archviz.ops.schema import normalise  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")))

CASES = [(name, i) for name in sorted(registry) if name != "input"
         for i in range(len(registry[name].samples))]


def _inputs_for(op, shapes):
    xs = []
    for s in shapes:
        if op.name == "embedding":
            xs.append(torch.randint(0, 10, s))
        else:
            xs.append(torch.randn(s, dtype=torch.float64))
    return xs


def test_every_op_has_samples_and_a_lowering():
    missing_samples = [n for n in registry if n != "input" and not registry[n].samples]
    assert not missing_samples, f"ops without sample cases: {missing_samples}"
    missing_lowering = []
    for name, i in CASES:
        op = registry[name]
        s = op.samples[i]
        a, _ins, outs = evaluate_sample(op, s)
        try:
            from archviz.backends.torch.table import module
            module(op, a, [tuple(x) for x in s["inputs"]], outs)
        except MissingRuleError:
            missing_lowering.append(name)
    assert not missing_lowering, f"ops without a torch lowering: {sorted(set(missing_lowering))}"


@pytest.mark.parametrize("name,i", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_op_lowering_agrees(name, i):
    op = registry[name]
    s = op.samples[i]
    a, ins, outs = evaluate_sample(op, s)
    from archviz.backends.torch.table import module
    mod = module(op, a, ins, outs).double().eval()
    xs = _inputs_for(op, ins)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        y = mod(*xs)
    got = {k: tuple(v.shape) for k, v in y.items()} if isinstance(y, dict) else {"out": tuple(y.shape)}
    assert got == {k: tuple(v) for k, v in outs.items()}
    static = {n: tuple(sh) for n, sh, _ in op.param_tensors(a, ins)}
    runtime = {k: tuple(v.shape) for k, v in list(mod.named_parameters()) + list(mod.named_buffers())}
    assert static == runtime
    p = op.count_params(a, ins)
    assert p.total == sum(t.numel() for t in mod.parameters())
    assert p.buffers == sum(t.numel() for t in mod.buffers())
    macs = op.count_macs(a, ins, outs)
    torch_flops = fc.get_total_flops()
    if torch_flops:  # torch counts this op: it must agree exactly
        assert 2 * macs == torch_flops
    else:  # torch counts nothing: archviz counts MACs only for ops torch's counter ignores
        assert macs == 0 or name in NOT_COUNTED_BY_TORCH, (name, macs)


# ops with real MACs that FlopCounterMode (CPU, torch 2.13) does not see: nn.LSTM runs a
# fused oneDNN kernel on the CPU (the meta device counts it; `verify` uses meta); F.scaled_dot_product_attention
# picks a fused flash kernel on the CPU that the counter does not register
NOT_COUNTED_BY_TORCH = {"lstm", "sdpa"}   # sdpa: the fused flash kernel for CPU


def test_lrn_follows_the_paper_formula():
    """AlexNet paper, section 3.3: b_c = a_c / (k + alpha · Σ a_j²)^beta, the sum over the
    n = 5 channels around c (zero beyond the edges). Worked case: activations 5, 8, 10, 6, 4
    at one position, the centre channel (a = 10)."""
    n, k, alpha, beta = 5, 2.0, 1e-4, 0.75
    acts = [5.0, 8.0, 10.0, 6.0, 4.0]
    expected_centre = 10.0 / (k + alpha * sum(v * v for v in acts)) ** beta
    op = registry["lrn"]
    a, _ = normalise(op, {"size": n, "k": k, "alpha": alpha, "beta": beta}, {}, None, "lrn")
    from archviz.backends.torch.table import module
    mod = module(op, a, [(1, 5, 1, 1)], {"out": (1, 5, 1, 1)}).double()
    x = torch.tensor(acts, dtype=torch.float64).reshape(1, 5, 1, 1)
    y = mod(x).flatten().tolist()
    assert math.isclose(y[2], expected_centre, rel_tol=1e-12)
    # an edge channel sums only the neighbours that exist: channel 0 sees channels 0..2
    expected_edge = 5.0 / (k + alpha * (25 + 64 + 100)) ** beta
    assert math.isclose(y[0], expected_edge, rel_tol=1e-12)
    # torch's own alpha would be divided by n: the unscaled module gives a different value
    plain = torch.nn.LocalResponseNorm(n, alpha=alpha, beta=beta, k=k).double()(x).flatten()[2].item()
    assert not math.isclose(plain, expected_centre, rel_tol=1e-9)


def _write(tmp_path, text, name="m.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


RESNETISH = """
archviz: 1
name: resnetish
inputs: {image: {shape: [3, 32, 32]}, aux: {shape: [8, 16, 16]}}
blocks:
  basic:
    params: {out: {type: int}, stride: {type: int, default: 1}}
    inputs: [x]
    nodes:
      - {id: conv1, op: conv2d, out: "${out}", kernel: 3, stride: "${stride}", padding: 1, bias: false}
      - {id: bn1, op: batchnorm2d}
      - {id: relu1, op: relu}
      - {id: conv2, op: conv2d, out: "${out}", kernel: 3, padding: 1, bias: false}
      - {id: bn2, op: batchnorm2d}
      - {id: down, op: conv2d, in: x, out: "${out}", kernel: 1, stride: "${stride}", bias: false, when: "${stride > 1}"}
      - {id: add, op: add, in: [bn2, down]}
      - {id: relu2, op: relu}
nodes:
  - {id: stem, op: conv2d, in: image, out: 8, kernel: 3, padding: 1}
  - {id: layer1, op: basic, repeat: {n: 2, var: i}, out: 8, stride: "${2 if i == 0 else 1}"}
  - {id: cat, op: concat, in: [layer1, aux]}
  - {id: pool, op: global_avgpool}
  - {id: flat, op: flatten}
  - {id: fc, op: linear, out: 10}
outputs:
  logits: {from: fc}
  features: {from: cat}
"""


def test_fx_module_names_and_outputs(tmp_path):
    m = archviz.load(_write(tmp_path, RESNETISH))
    gm = archviz.to_torch(m, seed=0)          # the public entry point the README documents
    assert isinstance(gm, torch.fx.GraphModule)
    keys = set(gm.state_dict())
    assert "layer1.0.conv1.weight" in keys and "layer1.1.bn2.running_mean" in keys
    assert "layer1.0.down.weight" in keys and "layer1.1.down.weight" not in keys
    img, aux = example_inputs(m)
    out = gm(img, aux)
    assert isinstance(out, dict) and set(out) == {"logits", "features"}
    assert tuple(out["logits"].shape) == m.output_shapes["logits"]
    assert tuple(out["features"].shape) == m.output_shapes["features"]
    # by name too
    out2 = gm(image=img, aux=aux)
    assert torch.equal(out2["logits"], out["logits"])
    # seed reproducibility
    assert torch.equal(archviz.to_torch(m, seed=3).stem.weight, to_torch(m, seed=3).stem.weight)
    v = verify(m)
    assert v.ok, v.problems


def test_verify_catches_a_wrong_static_rule(tmp_path, monkeypatch):
    """verify must be able to fail: break conv2d's MAC rule and it reports the node."""
    m = archviz.load(_write(tmp_path, RESNETISH))
    conv = registry["conv2d"]
    for n in m.graph.nodes.values():
        if n.id == "stem":
            n.meta["macs"] += 1
    v = verify(m)
    assert not v.ok and any("'stem'" in p and "FLOPs" in p for p in v.problems)


@pytest.mark.parametrize("spec", SPECS, ids=[os.path.basename(s) for s in SPECS])
def test_every_spec_verifies(spec):
    m = archviz.load(spec)
    v = verify(m)
    assert v.ok, v.problems
    assert v.params[0] == v.params[1]


def test_export_py_runs_standalone(tmp_path):
    m = archviz.load(_write(tmp_path, RESNETISH))
    from archviz.backends.torch.export import to_python
    src = to_python(m)
    assert "archviz" not in src.split('"""', 2)[2]  # no archviz import in the code
    f = tmp_path / "model.py"
    f.write_text(src)
    r = subprocess.run([sys.executable, str(f)], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env={**os.environ, "PYTHONPATH": ""})
    assert r.returncode == 0, r.stderr
    assert "logits (1, 10)" in r.stdout and "features (1, 16, 16, 16)" in r.stdout
    # same state-dict keys and shapes as the fx module
    ns = {"__name__": "generated"}
    exec(compile(src, str(f), "exec"), ns)
    cls = ns["Resnetish"]
    sd_py = {k: tuple(v.shape) for k, v in cls().state_dict().items()}
    sd_fx = {k: tuple(v.shape) for k, v in to_torch(m).state_dict().items()}
    assert sd_py == sd_fx


def test_export_onnx_and_pt2(tmp_path):
    onnx = pytest.importorskip("onnx")
    from archviz.backends.torch.export import export_onnx, export_pt2
    m = archviz.load(_write(tmp_path, RESNETISH))
    p = str(tmp_path / "m.onnx")
    export_onnx(m, p)
    model = onnx.load(p)
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    # the batch axis is symbolic: ONNX's reference evaluator runs it at batch 3 and agrees with torch
    assert [i.type.tensor_type.shape.dim[0].dim_param for i in model.graph.input] == ["batch", "batch"]
    from onnx.reference import ReferenceEvaluator
    gm = to_torch(m, seed=0).eval()
    img, aux = torch.randn(3, 3, 32, 32), torch.randn(3, 8, 16, 16)
    got = ReferenceEvaluator(model).run(None, {"image": img.numpy(), "aux": aux.numpy()})
    with torch.no_grad():
        want = gm(img, aux)
    assert got[0].shape == (3, 10) and torch.allclose(torch.from_numpy(got[0]), want["logits"], atol=1e-4)
    q = str(tmp_path / "m.pt2")
    export_pt2(m, q)
    prog = torch.export.load(q)
    img, aux = example_inputs(m)
    out = prog.module()(img, aux)
    assert tuple(out["logits"].shape) == (1, 10)


def test_soft_dice_formula():
    """Soft Dice = 1 − (2·Σ p·g + ε)/(Σ p + Σ g + ε) per class, averaged; written out by hand."""
    from archviz.backends.torch.bench import soft_dice_loss
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (N=1, C=2, H=1, W=2)
    target = torch.tensor([[[0, 1]]])
    p = torch.softmax(logits, dim=1)[0, :, 0, :]  # (C, W)
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    per_class = [1 - (2 * (p[c] * g[c]).sum() + 1) / (p[c].sum() + g[c].sum() + 1) for c in range(2)]
    expected = (per_class[0] + per_class[1]) / 2
    assert torch.isclose(soft_dice_loss(logits, target), expected)


def test_train_smoke_loss_goes_down(tmp_path):
    from archviz.backends.torch.bench import train_smoke
    m = archviz.load(_write(tmp_path, RESNETISH), batch=4)
    losses = train_smoke(m, steps=15, lr=1e-2)
    assert losses[-1] < losses[0]


def test_exact_fractions_reach_torch_as_floats(tmp_path):
    """`/` in a spec gives an exact Fraction; torch constructors get a float."""
    p = _write(tmp_path, """archviz: 1
inputs: {x: {shape: [3, 8, 8]}}
nodes:
  - {id: conv, op: conv2d, out: 4, kernel: 3}
  - {id: bn, op: batchnorm2d, momentum: "${1 / 10}"}
  - {id: drop, op: dropout, p: "${1 / 3}"}
""")
    m = archviz.load(p)
    gm = to_torch(m)
    assert gm.drop.p == pytest.approx(1 / 3) and isinstance(gm.drop.p, float)
    assert verify(m).ok
    from archviz.backends.torch.export import to_python
    assert "p=0.3333333333333333" in to_python(m)


def test_ids_that_shadow_module_attributes_are_rejected(tmp_path):
    from archviz.errors import LoweringError
    p = _write(tmp_path, "archviz: 1\ninputs: {x: {shape: [4]}}\nnodes:\n  - {id: train, op: linear, out: 2}\n")
    with pytest.raises(LoweringError) as ei:
        to_torch(archviz.load(p))
    assert ei.value.code == "E0603" and ei.value.span.line == 4


def test_verify_on_meta_costs_nothing_whatever_the_input_size(tmp_path):
    """A 64 × 3 × 65536 × 65536 float32 input would be 3.3 TB: on the meta device verify
    builds its inputs without storage (creating them on the CPU first would fail)."""
    p = _write(tmp_path, """\
archviz: 1
name: huge
inputs: {image: [3, 65536, 65536]}
nodes:
  - {id: conv, op: conv2d, out: 8, kernel: 3, stride: 2}
  - {id: pool, op: global_avgpool}
""")
    m = archviz.load(p, batch=64)
    v = verify(m, device="meta")
    assert v.ok, v.problems
    assert [c.torch_shapes["out"] for c in v.nodes if c.id == "conv"] == [(64, 8, 32767, 32767)]
