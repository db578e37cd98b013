"""`archviz size` and Model.size(): params, FLOPs, inference and training memory, per device.

Truths, none from archviz:
- Hugging Face transformers 5.25 (scratch venv, never a dependency; /work/scratch/size/hf*.py,
  recorded in docs/sizing.md): `num_parameters(exclude_embeddings=True)` of GPT2LMHeadModel,
  BertModel and LlamaForCausalLM built from their configs on the meta device; the bytes of
  the keys and values in the DynamicCache after a forward with use_cache=True; FlopCounterMode
  over one decode step with a KV cache (eager attention, so the score matmuls are counted).
- torch.optim's state after one step (here, in CI), and the keys and values the lowered
  module hands to F.scaled_dot_product_attention (here, in CI).
- ZeRO (Rajbhandari et al. 2020, §3): mixed-precision Adam keeps 2Ψ + 2Ψ + 12Ψ bytes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import ArchvizError

SMALL_LLAMA = dict(vocab=100, d_model=64, ffn=96, layers=3, heads=8, kv_heads=2, seq=16)
SMALL_GPT2 = dict(vocab=100, d=64, layers=3, heads=4, positions=32, seq=16)


# -- params -------------------------------------------------------------------------
@pytest.mark.parametrize("spec, kw, total, non_embedding", [
    ("gpt2", {"seq": 8}, 124_439_808, 85_056_000),             # HF GPT2LMHeadModel(GPT2Config())
    ("bert_base", {"seq": 8}, 109_482_240, 85_646_592),        # HF BertModel(BertConfig()) with pooler
    ("llama", {"seq": 8}, 6_738_415_616, 6_607_343_616),       # HF Llama-2-7B config
    ("llama", {"seq": 8, "d_model": 8192, "layers": 80, "heads": 64, "kv_heads": 8, "ffn": 28672},
     68_976_648_192, 68_714_504_192),                          # HF Llama-2-70B config
])
def test_params_against_hugging_face(spec, kw, total, non_embedding):
    p = archviz.load(spec, **kw).size().params
    assert (p["total"], p["non_embedding"]) == (total, non_embedding)
    assert p["embedding"] == total - non_embedding
    assert p["trainable"] == total and p["active"] == total      # dense, nothing frozen


# -- serving --------------------------------------------------------------------------
@pytest.mark.parametrize("spec, kw, dtype, per_token", [
    ("llama", SMALL_LLAMA, "float32", 384),      # HF DynamicCache: 7,680 B for 2 sequences × 10 tokens
    ("llama", SMALL_LLAMA, "bfloat16", 192),
    ("gpt2", SMALL_GPT2, "float32", 1536),       # 30,720 B for 2 × 10
    ("gpt2", SMALL_GPT2, "bfloat16", 768),
])
def test_kv_cache_against_hugging_face(spec, kw, dtype, per_token):
    m = archviz.load(spec, batch=3, dtype=dtype, **kw)
    inf = m.size(context=11).inference
    assert inf["kv_cache_bytes_per_token"] == per_token
    assert inf["kv_cache_bytes"] == 3 * 11 * per_token


def test_kv_cache_of_llama_2_7b():
    """32 layers × (K + V) × 4,096 × 2 bytes: the 0.5 MiB per token everyone quotes."""
    inf = archviz.load("llama", seq=8).size(dtype="bfloat16", context=4096).inference
    assert inf["kv_cache_bytes_per_token"] == 524_288
    assert inf["kv_cache_bytes"] == 2 ** 31


def test_kv_cache_equals_what_the_lowered_attention_reads():
    """The keys and values the lowered attention layers receive (before any grouped-query
    expansion), per token, are what size says a decoder caches."""
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import example_inputs, to_torch
    m = archviz.load("llama", batch=2, **SMALL_LLAMA)
    gm = to_torch(m, seed=0)
    seen = []
    for i in range(3):
        attn = gm.get_submodule(f"layers.{i}.self_attn.attn")
        attn.register_forward_pre_hook(lambda mod, args: seen.append(
            sum(t.numel() * t.element_size() for t in args[1:3])))
    with torch.no_grad():
        gm(*example_inputs(m))
    assert len(seen) == 3
    assert sum(seen) // (2 * 16) == m.size().inference["kv_cache_bytes_per_token"] == 384


@pytest.mark.parametrize("spec, kw, batch, context, flops", [
    # FlopCounterMode over HF's forward of one new token with use_cache (eager attention)
    ("llama", SMALL_LLAMA, 1, 11, 193_280),      # 10 cached + the new one
    ("llama", SMALL_LLAMA, 2, 21, 401_920),
    ("gpt2", SMALL_GPT2, 1, 11, 316_160),
])
def test_decode_step_against_hugging_face(spec, kw, batch, context, flops):
    assert archviz.load(spec, batch=batch, **kw).size(context=context).flops["decode_step"] == flops


def test_decode_step_by_hand():
    """Llama: per token 2·(q d² + k,v 2·d·d·kv/h + o d² + 3·d·ffn) per layer + 2·d·V, and the
    scores and weighted sum over L keys: 2·h·L·2·(d/h) per layer."""
    d, h, kv, f, V, layers, L = 4096, 32, 8, 14336, 128256, 32, 8192
    per_layer = d * d + 2 * d * d * kv // h + d * d + 3 * d * f + 2 * h * L * (d // h)
    want = 2 * (layers * per_layer + d * V)
    m = archviz.load("llama", seq=8, vocab=V, kv_heads=kv, ffn=f)
    assert m.size(context=L).flops["decode_step"] == want


def test_forward_per_token_and_no_tokens():
    m = archviz.load("llama", batch=2, **SMALL_LLAMA)
    f = m.size().flops
    assert f["forward_per_token"] * 2 * 16 == f["forward"] == m.totals["flops"]
    s = archviz.load("resnet18").size()
    assert s.flops["forward_per_token"] is None and s.flops["decode_step"] is None
    assert s.inference["kv_cache_bytes"] is None
    assert "no tokens" in s.notes["flops.decode_step"]


def test_decode_refused_for_an_encoder():
    s = archviz.load("bert_base", seq=8).size()
    assert s.flops["decode_step"] is None
    assert "causal" in s.notes["flops.decode_step"]
    assert s.inference["kv_cache_bytes"] is None


# -- training -------------------------------------------------------------------------
def _optimizer_state_bytes(torch, gm, name, master: bool):
    """Bytes in torch.optim's state after one step (and the fp32 master copy, if asked)."""
    params = [p for p in gm.parameters() if p.requires_grad]
    if master:
        params = [p.detach().float().requires_grad_() for p in params]
    opt = {"sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
           "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
           "adam": lambda ps: torch.optim.Adam(ps), "adamw": lambda ps: torch.optim.AdamW(ps)}[name](params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    total = sum(t.numel() * t.element_size() for st in opt.state.values() for t in st.values()
                if isinstance(t, torch.Tensor))
    return total + (sum(p.numel() * 4 for p in params) if master else 0)


@pytest.mark.parametrize("spec, kw", [("gpt2", SMALL_GPT2), ("resnet18", {})])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("dtype, mixed", [("float32", False), ("bfloat16", False), ("bfloat16", True)])
def test_optimizer_state_equals_torch_optim(spec, kw, optimizer, dtype, mixed):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    m = archviz.load(spec, **kw)
    gm = to_torch(m, seed=0, dtype=getattr(torch, dtype), train=True)
    want = _optimizer_state_bytes(torch, gm, optimizer, mixed)
    s = m.size(dtype=dtype, optimizer=optimizer, mixed_precision=mixed)
    assert s.training["optimizer_bytes"] == want
    assert s.training["grads_bytes"] == sum(p.numel() * p.element_size() for p in gm.parameters() if p.requires_grad)
    held = list(gm.parameters()) + list(gm.buffers())     # parameters(): a tied tensor once
    assert s.training["weights_bytes"] == sum(t.numel() * t.element_size() for t in held)


def test_zero_paper_accounting():
    """Mixed-precision Adam: 2Ψ weights + 2Ψ grads + 12Ψ state (+ a 4-byte step per tensor)."""
    m = archviz.load("llama", **SMALL_LLAMA)
    s = m.size(dtype="bfloat16", mixed_precision=True, optimizer="adam")
    psi = s.params["trainable"]
    tensors = 3 * 9 + 3           # per layer: 2 norms, q k v o, gate up down; then embed, the final norm, lm_head
    assert s.training["weights_bytes"] == 2 * psi and s.training["grads_bytes"] == 2 * psi
    assert s.training["optimizer_bytes"] == 12 * psi + 4 * tensors


# -- per device ------------------------------------------------------------------------
@pytest.mark.parametrize("strategy, sharded", [("ddp", ()), ("zero1", ("optimizer",)),
                                               ("zero2", ("optimizer", "grads")),
                                               ("zero3", ("optimizer", "grads", "weights")),
                                               ("fsdp", ("optimizer", "grads", "weights"))])
def test_per_device_strategies(strategy, sharded):
    m = archviz.load("llama", **SMALL_LLAMA)
    s = m.size(devices=8, strategy=strategy, dtype="bfloat16", mixed_precision=True, optimizer="adam")
    steps = 4 * (3 * 9 + 3)      # adam's float32 step per tensor: every device keeps each of its shards' step
    for k in ("weights", "grads", "optimizer"):
        whole = s.training[f"{k}_bytes"] - (steps if k == "optimizer" else 0)
        extra = steps if k == "optimizer" else 0
        assert s.per_device[f"{k}_bytes"] == (-(-whole // 8) if k in sharded else whole) + extra
    assert s.per_device["activations_bytes"] == s.training["activations_bytes"]
    assert s.per_device["total_bytes"] == sum(s.per_device[f"{k}_bytes"] for k in
                                              ("weights", "grads", "optimizer", "activations"))


def test_fits_and_headroom():
    m = archviz.load("llama", **SMALL_LLAMA)
    need = m.size().per_device["total_bytes"]
    ok = m.size(device_memory=need).per_device
    assert ok["fits"] is True and ok["headroom_bytes"] == 0
    short = m.size(device_memory=need - 1).per_device
    assert short["fits"] is False and short["headroom_bytes"] == -1


@pytest.mark.parametrize("opts, says", [
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
    ({"strategy": "zero4"}, "unknown strategy 'zero4'"),
    ({"devices": 6, "tensor_parallel": 4}, "6 devices cannot hold tensor-parallel groups of 4"),
    ({"mixed_precision": True}, "mixed precision computes in a 16-bit dtype"),
    ({"devices": 0}, "devices must be a positive integer"),
])
def test_bad_options_are_clear_errors(opts, says):
    m = archviz.load("llama", **SMALL_LLAMA)
    with pytest.raises(ArchvizError) as e:
        m.size(**opts)
    assert says in e.value.message and e.value.hint


# -- the command -----------------------------------------------------------------------
CONTRACT = {"params": {"total", "trainable", "embedding", "non_embedding", "active"},
            "flops": {"forward", "forward_per_token", "train_step", "decode_step"},
            "inference": {"weights_bytes", "kv_cache_bytes_per_token", "kv_cache_bytes"},
            "training": {"weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "total_bytes"}}


def test_cli_json_contract():
    args = ["size", "llama", "-f", "json", "--dtype", "bfloat16", "--devices", "4", "--strategy", "zero2",
            "--device-memory", "80GiB"] + [f"-p{k}={v}" for k, v in SMALL_LLAMA.items()]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for sec, keys in CONTRACT.items():
        assert set(d[sec]) == keys
    assert d["per_device"]["device_memory_bytes"] == 80 * 2 ** 30 and d["per_device"]["fits"] is True
    assert d["per_device"]["strategy"] == "zero2" and d["per_device"]["devices"] == 4


def test_cli_table_explains_and_says_if_it_fits():
    args = ["size", "llama", "--device-memory", "1MiB"] + [f"-p{k}={v}" for k, v in SMALL_LLAMA.items()]
    r = CliRunner().invoke(main, args, terminal_width=160)
    assert r.exit_code == 0, r.output
    assert "adamw keeps 2 moments per parameter" in r.output
    assert "does NOT fit" in r.output and "short by" in r.output


@pytest.mark.parametrize("args, says", [
    (["--device-memory", "80XB"], "expected an amount such as 80GiB"),
    (["--strategy", "zero4"], "zero4"),
    (["--devices", "3", "--tensor-parallel", "2"], "3 devices cannot hold tensor-parallel groups of 2"),
])
def test_cli_bad_options(args, says):
    r = CliRunner().invoke(main, ["size", "llama"] + args)
    assert r.exit_code != 0 and says in r.output and "Traceback" not in r.output


def test_memory_amounts():
    from archviz.backends.size_cmd import parse_memory
    assert parse_memory("80GiB") == 80 * 2 ** 30
    assert parse_memory("40GB") == 40 * 10 ** 9
    assert parse_memory("1.5 KiB") == 1536
    assert parse_memory("123") == 123


# -- tensor parallelism (Megatron-LM, Shoeybi et al. 2019, §3) ----------------------------
def _gpt2_tp_params(t, V=50257, P=1024, d=768, L=12):
    """Per device: the embedding's rows padded to ceil(V/t) (vocabulary-parallel, the tied head
    with it), the position table and every norm whole; per layer the qkv projection (weight
    and bias) and the MLP's first linear split by rows, the attention output and the MLP's
    second linear split by columns with their biases whole."""
    per_layer = (2 * d + 3 * d * d // t + 3 * d // t + d * d // t + d
                 + 2 * d + 4 * d * d // t + 4 * d // t + 4 * d * d // t + d)
    return -(-V // t) * d + P * d + L * per_layer + 2 * d


def _llama_tp_params(t, V=32000, d=4096, L=32, h=32, kv=32, f=11008):
    hd = d // h
    per_layer = (d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * f) // t + 2 * d
    return 2 * V * d // t + L * per_layer + d


@pytest.mark.parametrize("spec, kw, t, want", [
    ("gpt2", {"seq": 8}, 4, _gpt2_tp_params(4)),
    ("gpt2", {"seq": 8}, 2, _gpt2_tp_params(2)),
    ("llama", {"seq": 8}, 2, _llama_tp_params(2)),
    ("llama", {"seq": 8, "kv_heads": 8}, 8, _llama_tp_params(8, kv=8)),
])
def test_tensor_parallel_weights_per_device(spec, kw, t, want):
    m = archviz.load(spec, **kw)
    pd = m.size(dtype="bfloat16", devices=t, tensor_parallel=t).per_device
    assert pd["weights_bytes"] == 2 * want
    assert pd["data_parallel"] == 1 and pd["tensor_parallel"] == t


def test_tensor_parallel_then_zero3():
    m = archviz.load("llama", seq=8)
    tp = m.size(dtype="bfloat16", devices=2, tensor_parallel=2).per_device
    both = m.size(dtype="bfloat16", devices=16, tensor_parallel=2, strategy="zero3").per_device
    assert both["data_parallel"] == 8
    assert both["weights_bytes"] == -(-tp["weights_bytes"] // 8)


def test_tensor_parallel_refusals_are_located():
    m = archviz.load("llama", seq=8, kv_heads=4)
    with pytest.raises(ArchvizError) as e:
        m.size(devices=8, tensor_parallel=8)
    assert "4 key/value heads cannot both be split over 8 devices" in e.value.message
    assert e.value.span is not None and e.value.hint
    g = archviz.load("gpt2", seq=8)
    with pytest.raises(ArchvizError) as e:
        g.size(devices=8, tensor_parallel=8)
    assert "12 heads cannot be split over 8" in e.value.message


def test_notebook_and_text_views():
    s = archviz.load("llama", **SMALL_LLAMA).size(dtype="bfloat16")
    text = str(s)
    assert "kv_cache_bytes_per_token" in text and "(192)" in text
    html = s._repr_html_()
    assert "<table" in html and "the key and value every causal attention layer keeps" in html


def test_mixtral_active_params_and_decode():
    """Mixtral-8x7B (HF MixtralForCausalLM on meta: 46,702,792,704 params; active per token =
    total − 32 layers · 6 unused experts · 176,160,768). Decode by hand, per token: per layer
    q, o (d²), k, v (d · d/4), the router (d · 8), 2 experts of 3 · d · ffn, and the scores and
    sum over L keys (32 heads · 128 · 2 · L); then the LM head d · V."""
    m = archviz.load("mixtral", seq=8)
    L, d, f = 4096, 4096, 14336
    s = m.size(context=L)
    assert s.params["total"] == 46_702_792_704
    assert s.params["active"] == 46_702_792_704 - 32 * 6 * 176_160_768 == 12_879_925_248
    per_layer = 2 * d * d + 2 * d * d // 4 + d * 8 + 2 * 3 * d * f + 32 * 128 * 2 * L
    assert s.flops["decode_step"] == 2 * (32 * per_layer + d * 32000)
    with pytest.raises(ArchvizError) as e:
        m.size(devices=2, tensor_parallel=2)
    assert "mixture of experts" in e.value.message and e.value.hint


def test_compare_puts_the_sizing_rows_side_by_side():
    """Llama with 8 key/value heads against 2: the KV cache is exactly 4× (8 / 2)."""
    r = CliRunner().invoke(main, ["compare", "llama", "llama", "--pa", "kv_heads=8", "--pb", "kv_heads=2", "--size",
                                  "-f", "json"] + [f"-p{k}={v}" for k, v in SMALL_LLAMA.items() if k != "kv_heads"])
    assert r.exit_code == 0, r.output
    rows = {row["quantity"]: row for row in json.loads(r.output)["rows"]}
    assert rows["inference.kv_cache_bytes_per_token"]["ratio_exact"] == "4"
    assert rows["params.active"]["a"] > rows["params.active"]["b"]
    assert {"flops.decode_step", "training.total_bytes", "params.embedding"} <= set(rows)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_per_device_figures_equal_a_distributed_run(strategy):
    """Two ranks under torch.distributed (train-smoke --nproc 2): each rank's parameters, grads,
    Adam state and the activations autograd saved (saved_tensors_hooks, state excluded) are
    size's per-device figures; torch keeps a dropout mask at the activation dtype on CPU where
    archviz counts CUDA's bool, so the spec here has no dropout."""
    pytest.importorskip("torch")
    from archviz.backends.torch.distributed import train_smoke_distributed
    m = archviz.load("llama", batch=2, **SMALL_LLAMA)
    ranks = train_smoke_distributed(m, nproc=2, strategy=strategy, steps=2).to_dict()["ranks"]
    pd = m.size(devices=2, strategy=strategy, optimizer="adam").per_device
    logits = 2 * 16 * 100 * 4 + 2 * 16 * 8 + 4      # the loss: log-softmax of the logits, the targets, the mean
    for r in ranks:
        assert (r["weights_bytes"], r["grads_bytes"], r["optimizer_bytes"]) == \
            (pd["weights_bytes"], pd["grads_bytes"], pd["optimizer_bytes"])
        assert r["activations_bytes"] == pd["activations_bytes"] + logits


@pytest.mark.parametrize("spec, kw", [("llama", SMALL_LLAMA), ("gpt2", SMALL_GPT2), ("resnet18", {"size": 64})])
def test_train_step_equals_flop_counter_over_forward_and_backward(spec, kw):
    """FlopCounterMode over one forward and backward of the lowered module on the meta device."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from archviz.backends.torch.lower import example_inputs, to_torch
    m = archviz.load(spec, batch=2, **kw)
    gm = to_torch(m, seed=0, train=True, device="meta")
    with FlopCounterMode(display=False) as fc:
        gm(*example_inputs(m, device="meta")).sum().backward()
    assert m.size().flops["train_step"] == fc.get_total_flops()
