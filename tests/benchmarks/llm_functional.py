"""Same function, not just the same counts: specs/gpt2.yaml against Hugging Face's
GPT2LMHeadModel (random init from a small config, eval, float64), and the full-size count
on the meta device.  Outside the project's dependencies: run it in a scratch venv with
transformers, from the checkout's root:

    PYTHONPATH=$PWD /path/to/venv/bin/python tests/benchmarks/llm_functional.py

Result (transformers 5.25.0, torch 2.14.1): max |delta| 4.4e-16, 108,544 = 108,544 params;
GPT2Config() on meta: 124,439,808.  GPT-2's Conv1D weights are (in, out): transposed here.
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
