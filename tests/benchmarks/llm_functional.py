"""Same function, not just the same counts: specs/gpt2.yaml against Hugging Face's
GPT2LMHeadModel (random init from a small config, eval, float64), and the full-size count
on the meta device.  Outside the project's dependencies: run it in a scratch venv with
transformers, from the checkout's root:

    PYTHONPATH=$PWD /path/to/venv/bin/python tests/benchmarks/llm_functional.py

Results (transformers 5.25.0, torch 2.14.1): GPT-2 max |delta| 4.4e-16 (float64), 108,544 =
108,544 params; GPT2Config() on meta: 124,439,808.  Llama with grouped-query attention (4 query
heads over 2 key/value heads): max |delta| 1.5e-7 in float32, 6.1e-8 in float64 (both sides turn
RoPE's angles in float32), 102,720 = 102,720 params; the Llama-2-7B config on meta:
6,738,415,616.  BERT (BertModel with its pooler): max |delta| 8.9e-16 in float64, 112,832 =
112,832 params; BertConfig() on meta: 109,482,240.  Mixtral (4 experts, top 2, grouped-query attention
4/2; the reference's eager expert loop): max |delta| 1.3e-7 in float32, 5.1e-8 in float64 (RoPE's angles
in float32 again), 189,248 = 189,248 params (115,520 active per token); MixtralConfig() (Mixtral-8x7B) on
meta: 46,702,792,704, of which 12,879,925,248 active per token.  GPT-2's Conv1D weights are (in, out): transposed here; Llama's state dict
loads as is, its keys without the leading "model.".
"""
import sys

import torch

try:
    import transformers
except ImportError:
    sys.exit("transformers is not installed (a scratch venv only; never a dependency of archviz)")

import archviz
from archviz.backends.torch.lower import to_torch
torch.manual_seed(0)
cfg = transformers.GPT2Config(vocab_size=100, n_positions=32, n_embd=64, n_layer=2, n_head=4)
ref = transformers.GPT2LMHeadModel(cfg).double().eval()
m = archviz.load("specs/gpt2.yaml", batch=2, vocab=100, positions=32, seq=20, d=64, layers=2, heads=4)
gm = to_torch(m, seed=1).double().eval()
sd = ref.state_dict()
ours = {}
T = lambda t: t.t().contiguous()
ours["wte.weight"] = sd["transformer.wte.weight"]; ours["wpe.weight"] = sd["transformer.wpe.weight"]
for i in range(2):
    p = f"transformer.h.{i}."
    for n in ("ln_1", "ln_2"):
        ours[f"h.{i}.{n}.weight"] = sd[p + n + ".weight"]; ours[f"h.{i}.{n}.bias"] = sd[p + n + ".bias"]
    ours[f"h.{i}.attn.in_proj_weight"] = T(sd[p + "attn.c_attn.weight"]); ours[f"h.{i}.attn.in_proj_bias"] = sd[p + "attn.c_attn.bias"]
    ours[f"h.{i}.attn.out_proj.weight"] = T(sd[p + "attn.c_proj.weight"]); ours[f"h.{i}.attn.out_proj.bias"] = sd[p + "attn.c_proj.bias"]
    ours[f"h.{i}.c_fc.weight"] = T(sd[p + "mlp.c_fc.weight"]); ours[f"h.{i}.c_fc.bias"] = sd[p + "mlp.c_fc.bias"]
    ours[f"h.{i}.c_proj.weight"] = T(sd[p + "mlp.c_proj.weight"]); ours[f"h.{i}.c_proj.bias"] = sd[p + "mlp.c_proj.bias"]
ours["ln_f.weight"] = sd["transformer.ln_f.weight"]; ours["ln_f.bias"] = sd["transformer.ln_f.bias"]
want_keys = set(gm.state_dict())
assert set(ours) | {"lm_head.weight"} >= want_keys, want_keys - set(ours)
gm.load_state_dict({k: v for k, v in ours.items() if k in want_keys}, strict=False)
assert gm.get_submodule("lm_head").weight is gm.get_submodule("wte").weight
x = torch.randint(0, 100, (2, 20))
with torch.no_grad():
    d = (gm(x) - ref(x).logits).abs().max().item()
print("gpt2 (small config) max |delta| =", d, "| params", sum(p.numel() for p in gm.parameters()), "vs HF", sum(p.numel() for p in ref.parameters()))
with torch.device("meta"):
    full = transformers.GPT2LMHeadModel(transformers.GPT2Config())
print("HF GPT-2 small on meta:", sum(p.numel() for p in full.parameters()))


# -- Llama (grouped-query attention, RoPE, RMSNorm, SwiGLU) ---------------------------------------
cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                               max_position_embeddings=64, rope_theta=10000.0)
for dtype in (torch.float64, torch.float32):
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(cfg).to(dtype).eval()
    m = archviz.load("specs/llama.yaml", batch=2, vocab=128, d_model=64, layers=2, heads=4, kv_heads=2,
                     ffn=160, seq=20)
    gm = to_torch(m, seed=1).to(dtype).eval()
    sd = {k.removeprefix("model."): v for k, v in ref.state_dict().items()}
    missing = set(gm.state_dict()) - set(sd)
    assert not missing, missing
    gm.load_state_dict({k: sd[k] for k in gm.state_dict()}, strict=True)
    x = torch.randint(0, 128, (2, 20))
    with torch.no_grad():
        d = (gm(x) - ref(x).logits).abs().max().item()
    print(f"llama (small config, GQA 4/2, {dtype}) max |delta| = {d:.3g}",
          "| params", sum(p.numel() for p in gm.parameters()), "vs HF", sum(p.numel() for p in ref.parameters()))
with torch.device("meta"):
    full = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32))
print("HF Llama-2-7B config on meta:", sum(p.numel() for p in full.parameters()))


# -- BERT-base (post-norm encoder, three embeddings, pooler) --------------------------------------
cfg = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=256, max_position_embeddings=32)
torch.manual_seed(0)
ref = transformers.BertModel(cfg).double().eval()
m = archviz.load("specs/bert_base.yaml", batch=2, vocab=100, positions=32, seq=20, d=64, layers=2, heads=4)
gm = to_torch(m, seed=1).double().eval()
sd = ref.state_dict()
e = "embeddings."
ours = {"word_embeddings.weight": sd[e + "word_embeddings.weight"],
        "position_embeddings.weight": sd[e + "position_embeddings.weight"],
        "token_type_embeddings.weight": sd[e + "token_type_embeddings.weight"],
        "embed_norm.weight": sd[e + "LayerNorm.weight"], "embed_norm.bias": sd[e + "LayerNorm.bias"],
        "pooler.weight": sd["pooler.dense.weight"], "pooler.bias": sd["pooler.dense.bias"]}
for i in range(2):
    p, q = f"encoder.layer.{i}.", f"layer.{i}."
    a = p + "attention.self."
    ours[q + "attention.in_proj_weight"] = torch.cat([sd[a + n + ".weight"] for n in ("query", "key", "value")])
    ours[q + "attention.in_proj_bias"] = torch.cat([sd[a + n + ".bias"] for n in ("query", "key", "value")])
    for ours_name, hf in (("attention.out_proj", "attention.output.dense"), ("attention_norm", "attention.output.LayerNorm"),
                          ("intermediate", "intermediate.dense"), ("output", "output.dense"),
                          ("output_norm", "output.LayerNorm")):
        ours[q + ours_name + ".weight"] = sd[p + hf + ".weight"]
        ours[q + ours_name + ".bias"] = sd[p + hf + ".bias"]
gm.load_state_dict(ours, strict=True)
x, tt = torch.randint(0, 100, (2, 20)), torch.randint(0, 2, (2, 20))
with torch.no_grad():
    got, want = gm(x, tt), ref(input_ids=x, token_type_ids=tt)
d1 = (got["last_hidden_state"] - want.last_hidden_state).abs().max().item()
d2 = (got["pooler_output"] - want.pooler_output).abs().max().item()
print(f"bert (small config, float64) max |delta| = {max(d1, d2):.3g} | params", sum(p.numel() for p in gm.parameters()),
      "vs HF", sum(p.numel() for p in ref.parameters()))
with torch.device("meta"):
    full = transformers.BertModel(transformers.BertConfig())
print("HF BertModel() on meta:", sum(p.numel() for p in full.parameters()))


# -- Mixtral (a sparse mixture of SwiGLU experts, top-2 of 4 here) --------------------------------
# Hugging Face (transformers 5) fuses each layer's experts: mlp.experts.gate_up_proj (E, 2·ffn, d),
# gate rows first (its forward chunks them in that order), and mlp.experts.down_proj (E, d, ffn);
# archviz keeps one module per expert (mlp.experts.{e}.gate_proj / up_proj / down_proj).
cfg = transformers.MixtralConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                 num_experts_per_tok=2, rms_norm_eps=1e-5, max_position_embeddings=64,
                                 rope_theta=1000000.0, experts_implementation="eager")   # the loop above, not grouped_mm
for dtype in (torch.float64, torch.float32):
    torch.manual_seed(0)
    ref = transformers.MixtralForCausalLM(cfg).to(dtype).eval()
    m = archviz.load("specs/mixtral.yaml", batch=2, vocab=128, d_model=64, layers=2, heads=4, kv_heads=2,
                     ffn=96, experts=4, top_k=2, seq=20)
    gm = to_torch(m, seed=1).to(dtype).eval()
    sd = {k.removeprefix("model."): v for k, v in ref.state_dict().items()}
    for i in range(2):
        p = f"layers.{i}.mlp.experts."
        gate_up, down = sd.pop(p + "gate_up_proj"), sd.pop(p + "down_proj")
        for e in range(4):
            sd[f"{p}{e}.gate_proj.weight"], sd[f"{p}{e}.up_proj.weight"] = gate_up[e].chunk(2, dim=0)
            sd[f"{p}{e}.down_proj.weight"] = down[e]
    assert set(sd) == set(gm.state_dict()), set(sd) ^ set(gm.state_dict())
    gm.load_state_dict(sd, strict=True)
    x = torch.randint(0, 128, (2, 20))
    with torch.no_grad():
        d = (gm(x) - ref(x).logits).abs().max().item()
    print(f"mixtral (small config, 4 experts top 2, {dtype}) max |delta| = {d:.3g}",
          "| params", sum(p.numel() for p in gm.parameters()), "vs HF", sum(p.numel() for p in ref.parameters()),
          "| archviz", m.totals["params"], "active", m.totals["active_params"])
with torch.device("meta"):
    full = transformers.MixtralForCausalLM(transformers.MixtralConfig())
L, E, k = 32, 8, 2
one_expert = sum(p.numel() for p in full.model.layers[0].mlp.experts.parameters()) // E
total = sum(p.numel() for p in full.parameters())
print("HF MixtralConfig() (Mixtral-8x7B) on meta:", total, "active per token:", total - L * (E - k) * one_expert)
