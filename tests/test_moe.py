"""The `moe` op: a block as expert, analysed by the ordinary passes; its lowering routes.

The function is checked against a reference written here from the equations (Switch
Transformer, Fedus et al. 2021, eq. 1-2; Mixtral, Jiang et al. 2024, sec. 2.1), token by
token in float64:

    p = softmax(W_g x),  S = TopK(p, k),  g_i = p_i / sum_{j in S} p_j  (Mixtral; Switch: g_i = p_i)
    y = sum_{i in S} g_i * E_i(x),  E_i(x) = W2_i (silu(W1_i x) * (W3_i x))   (SwiGLU experts)
"""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import ArchvizError

torch = pytest.importorskip("torch")

SPEC = """\
archviz: 1
name: moe_layer
params: {{d: 12, ffn: 20, E: {E}, k: {k}, renorm: {renorm}}}
inputs:
  x: {{shape: [7, "${{d}}"]}}
blocks:
  swiglu:
    params: {{ffn: {{type: int}}}}
    inputs: [x]
    nodes:
      - {{id: w1, op: linear, in: x, out: "${{ffn}}", bias: false}}
      - {{id: act, op: silu}}
      - {{id: w3, op: linear, in: x, out: "${{ffn}}", bias: false}}
      - {{id: gated, op: mul, in: [act, w3]}}
      - {{id: w2, op: linear, out: "${{shape(x)[-1]}}", bias: false}}
nodes:
  - {{id: moe, op: moe, experts: "${{E}}", top_k: "${{k}}", renormalize: "${{renorm}}", expert: {{op: swiglu, ffn: "${{ffn}}"}}}}
"""


def load(tmp_path, E=4, k=2, renorm="true", batch=3):
    p = tmp_path / "moe_layer.yaml"
    p.write_text(SPEC.format(E=E, k=k, renorm=renorm))
    return archviz.load(str(p), batch=batch)


def reference(x, sd, E, k, renorm):
    """The equations above, one token at a time (weights read by name from the state dict)."""
    rows = x.reshape(-1, x.shape[-1])
    out = torch.zeros_like(rows)
    for t in range(rows.shape[0]):
        p = torch.softmax(sd["moe.gate.weight"] @ rows[t], dim=0)
        top, idx = torch.topk(p, k)
        g = top / top.sum() if renorm else top
        for j in range(k):
            e = f"moe.experts.{int(idx[j])}."
            h = torch.nn.functional.silu(sd[e + "w1.weight"] @ rows[t]) * (sd[e + "w3.weight"] @ rows[t])
            out[t] += g[j] * (sd[e + "w2.weight"] @ h)
    return out.reshape(x.shape)


@pytest.mark.parametrize("E, k, renorm", [(4, 2, True), (8, 2, True), (5, 1, False), (3, 3, True), (1, 1, True)])
def test_function_shapes_and_params_equal_the_equations(tmp_path, E, k, renorm):
    m = load(tmp_path, E, k, str(renorm).lower())
    gm = archviz.to_torch(m, seed=0).double().eval()
    sd = gm.state_dict()
    # params: the router E x d and E experts of three d x ffn matrices, named as the spec names them
    want = {"moe.gate.weight": (E, 12)}
    for e in range(E):
        want |= {f"moe.experts.{e}.w1.weight": (20, 12), f"moe.experts.{e}.w3.weight": (20, 12),
                 f"moe.experts.{e}.w2.weight": (12, 20)}
    assert {n: tuple(t.shape) for n, t in sd.items()} == want
    assert m.totals["params"] == E * 12 + E * 3 * 12 * 20 == sum(t.numel() for t in gm.parameters())
    assert m.totals["active_params"] == E * 12 + k * 3 * 12 * 20
    x = torch.randn(3, 7, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = gm(x)
    assert tuple(y.shape) == m.output_shapes["out"] == (3, 7, 12)
    assert (y - reference(x, sd, E, k, renorm)).abs().max().item() <= 1e-9


def test_one_expert_is_the_expert_itself(tmp_path):
    """E = k = 1, renormalised: the weight is p / p = 1, the layer is its expert."""
    m = load(tmp_path, 1, 1)
    gm = archviz.to_torch(m, seed=0).double().eval()
    x = torch.randn(3, 7, 12, dtype=torch.float64)
    e = gm.get_submodule("moe.experts.0")
    with torch.no_grad():
        assert (gm(x) - e(x)).abs().max().item() <= 1e-12


def test_macs_are_the_router_and_top_k_experts_per_token_as_torch_counts_them(tmp_path):
    from torch.utils.flop_counter import FlopCounterMode
    m = load(tmp_path, 8, 2)
    tokens = 3 * 7
    assert m.totals["macs"] == tokens * 12 * 8 + 2 * tokens * 3 * 12 * 20
    gm = archviz.to_torch(m, seed=0).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        gm(torch.randn(3, 7, 12))
    assert fc.get_total_flops() == 2 * m.totals["macs"]      # real routing: each token ran 2 experts


def test_verify_on_the_meta_device_and_pt2_export(tmp_path):
    from click.testing import CliRunner
    from archviz.cli import main
    p = tmp_path / "moe_layer.yaml"
    p.write_text(SPEC.format(E=4, k=2, renorm="true"))
    r = CliRunner().invoke(main, ["verify", str(p)])
    assert r.exit_code == 0, r.output
    assert "FLOPs agree" in r.stdout
    r = CliRunner().invoke(main, ["export", str(p), "-o", str(tmp_path / "m.pt2")])
    assert r.exit_code == 0, r.output
    prog = torch.export.load(str(tmp_path / "m.pt2"))
    m = archviz.load(str(p))
    gm = archviz.to_torch(m, seed=0).eval()
    x = torch.randn(1, 7, 12)
    with torch.no_grad():
        assert (prog.module()(x) - gm(x)).abs().max().item() <= 1e-6


BAD = """\
archviz: 1
name: bad
inputs:
  x: {{shape: [5, 8]}}
blocks:
  up:
    params: {{f: {{type: int}}}}
    nodes:
      - {{id: fc, op: linear, out: "${{f}}"}}
nodes:
  - {{id: moe, op: moe, experts: 4, top_k: 2, expert: {expert}}}
"""


@pytest.mark.parametrize("expert, message, hint", [
    ("{op: up, f: 6}", "the expert up(f=6) maps (1, 5, 8) to (1, 5, 6)", "projection back to the input's features"),
    ("{op: up, f: 8, in: x}", "'in' has no meaning there", "remove 'in'"),
    ("{op: upp, f: 8}", "unknown op 'upp'", "did you mean 'up'"),
    ("{op: up, g: 8}", "block 'up' has no param 'g'", "params: f"),
    ("{op: linear, out: 8, kernel: 3}", "unknown attribute 'kernel' for op 'linear'", None),
    ("[up]", "expected a mapping {op: BLOCK, its params...}", None),
])
def test_a_bad_expert_is_a_located_error(tmp_path, expert, message, hint):
    p = tmp_path / "bad.yaml"
    p.write_text(BAD.format(expert=expert))
    with pytest.raises(ArchvizError) as ei:
        archviz.load(str(p))
    e = ei.value
    errs = getattr(e, "errors", [e])
    hit = [x for x in errs if message in x.message]
    assert hit, [x.message for x in errs]
    assert hit[0].span is not None and hit[0].span.file == str(p) and hit[0].span.line == 11
    if hint:
        assert hint in (hit[0].hint or "")


def test_an_expert_outside_a_spec_is_one_op():
    """Python (and the registry samples) give the expert as a mapping: one registered op."""
    from archviz.ops import registry
    op = registry["moe"]
    a = op.attrs_of({"experts": 2, "top_k": 1, "expert": {"op": "linear", "out": 4, "bias": False}})
    assert op.count_params(a, [(2, 3, 4)]).total == 2 * 4 + 2 * 16
    a = op.attrs_of({"experts": 2, "top_k": 1, "expert": {"op": "llama.mlp", "ffn": 4}})
    from archviz.errors import OpError
    with pytest.raises(OpError, match="outside a spec an expert is one op"):
        op.evaluate(a, [(2, 3, 4)])


def test_standalone_py_export_of_mixtral_is_the_same_function(tmp_path):
    """The .py file writes each distinct expert as a class of its own (and copies the helper
    functions its classes call: SDPA's causal mask); the lowered module's weights load into it
    by the same names and give the same logits."""
    import importlib.util

    from click.testing import CliRunner
    from archviz.cli import main
    cfg = dict(layers=2, vocab=50, d_model=32, heads=4, kv_heads=2, ffn=48, experts=4, top_k=2, seq=6)
    out = tmp_path / "mixtral_small.py"
    r = CliRunner().invoke(main, ["export", "mixtral", "-o", str(out)] + [x for k, v in cfg.items() for x in ("-p", f"{k}={v}")])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.count("class Expert") == 1 and "expert=Expert1" in text and "\ndef attention_mask(" in text
    spec = importlib.util.spec_from_file_location("mixtral_small", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    gm = archviz.to_torch(archviz.load("mixtral", **cfg), seed=0).double().eval()
    standalone = mod.Mixtral().double().eval()
    standalone.load_state_dict(gm.state_dict(), strict=True)
    x = torch.randint(0, 50, (1, 6))
    with torch.no_grad():
        assert (standalone(x) - gm(x)).abs().max().item() <= 1e-12
