"""Shared weights (`share:`): one tensor used by two layers, counted once, as torch's
`parameters()` deduplicates it.

The truths: GPT-2's parameter count by arithmetic (Radford et al. 2019; the LM head is
tied to the token embedding, `lm_head.weight is wte.weight` in Hugging Face's GPT2LMHeadModel),
a GPT-2-like model written here in torch, and a siamese pair (one module applied twice)."""
from __future__ import annotations

import json

import pytest

import archviz
from archviz.codes import E

GPT = """\
archviz: 1
name: gpt_tiny
doc: a GPT-2-like decoder stack (pre-norm, no causal mask), its LM head tied to the token embedding
params: {vocab: 97, T: 8, d: 16, heads: 2, L: 2}
blocks:
  block:
    params: {d: {type: int}, heads: {type: int}}
    inputs: [x]
    nodes:
      - {id: ln_1, op: layernorm}
      - {id: attn, op: multihead_attention, heads: "${heads}"}
      - {id: add1, op: add, in: [x, attn]}
      - {id: ln_2, op: layernorm}
      - {id: c_fc, op: linear, out: "${4 * d}"}
      - {id: act, op: gelu}
      - {id: c_proj, op: linear, out: "${d}"}
      - {id: add2, op: add, in: [add1, c_proj]}
    outputs: {out: add2}
inputs:
  tokens: {shape: ["${T}"], dtype: int64}
nodes:
  - {id: wte, op: embedding, num: "${vocab}", dim: "${d}"}
  - {id: wpe, op: parameter, shape: ["${T}", "${d}"], in: wte}
  - {id: embed, op: add, in: [wte, wpe]}
  - {id: h, op: block, repeat: "${L}", d: "${d}", heads: "${heads}"}
  - {id: ln_f, op: layernorm}
  - {id: lm_head, op: linear, out: "${vocab}", bias: false, share: wte}
outputs:
  logits: {from: lm_head, expect: ["${T}", "${vocab}"]}
"""


def gpt2_params(V: int, T: int, d: int, L: int) -> int:
    """GPT-2's parameters with the LM head tied: the token and position embeddings, per block
    ln_1 (2d) + attention (in 3d² + 3d, out d² + d) + ln_2 (2d) + MLP (d·4d + 4d + 4d·d + d)
    = 12d² + 13d, and the final layer norm (2d); the head adds nothing."""
    return V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d


def _load(tmp_path, text, name="s.yaml", **kw):
    p = tmp_path / name
    p.write_text(text)
    return archviz.load(str(p), **kw)


def test_gpt2_count_formula():
    # the figure the issue gives for GPT-2 small (vocab 50257, context 1024, d 768, 12 layers),
    # and the untied count it reports archviz gave before sharing (the head's V·d more)
    assert gpt2_params(50257, 1024, 768, 12) == 124_439_808
    assert gpt2_params(50257, 1024, 768, 12) + 50257 * 768 == 163_037_184


def test_tied_head_counts_once(tmp_path):
    m = _load(tmp_path, GPT)
    assert m.totals["params"] == gpt2_params(97, 8, 16, 2)
    assert m.totals["trainable_params"] == m.totals["params"]
    head = m.layer("lm_head")
    assert head.params.total == 0                       # its weight is counted at wte
    assert head.macs == 8 * 16 * 97                     # it still computes: T·d·V multiply-adds
    assert m.layer("wte").params.total == 97 * 16


def test_gpt2_small_count(tmp_path):
    m = _load(tmp_path, GPT, vocab=50257, T=1024, d=768, heads=12, L=12)
    assert m.totals["params"] == 124_439_808
    assert m.totals["param_bytes"] == 4 * 124_439_808


def _torch_gpt(V, T, d, heads, L):
    """GPT-2's structure in plain torch (no mask, as the spec), head tied as in GPT2LMHeadModel."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
            self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            a = self.ln_1(x)
            x = x + self.attn(a, a, a, need_weights=False)[0]
            return x + self.c_proj(nn.functional.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, d)
            self.wpe = nn.Parameter(torch.randn(T, d))
            self.h = nn.ModuleList([Block() for _ in range(L)])
            self.ln_f = nn.LayerNorm(d)
            self.lm_head = nn.Linear(d, V, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, tokens):
            x = self.wte(tokens) + self.wpe
            for b in self.h:
                x = b(x)
            return self.lm_head(self.ln_f(x))

    return GPT()


def test_tied_head_is_torchs(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    m = _load(tmp_path, GPT, batch=3)
    gm = to_torch(m, seed=0).double().eval()
    assert gm.lm_head.weight is gm.wte.weight
    assert sum(p.numel() for p in gm.parameters()) == m.totals["params"]
    torch.manual_seed(1)
    ref = _torch_gpt(97, 8, 16, 2, 2).double().eval()
    assert sum(p.numel() for p in ref.parameters()) == m.totals["params"]
    sd = {("wpe.weight" if k == "wpe" else k): v for k, v in ref.state_dict().items()}
    gm.load_state_dict(sd, strict=True)
    assert gm.lm_head.weight is gm.wte.weight          # loading keeps the tie
    tokens = torch.randint(0, 97, (3, 8))
    with torch.no_grad():
        want = ref(tokens)
        got = gm(tokens)
    got = got["logits"] if isinstance(got, dict) else got
    assert (got - want).abs().max().item() <= 1e-9
    # one tensor: a step on the head moves the embedding too (a gradient reaches it from both uses)
    gm.train()
    out = gm(tokens)
    (out["logits"] if isinstance(out, dict) else out).sum().backward()
    assert gm.wte.weight.grad is not None and gm.lm_head.weight.grad is gm.wte.weight.grad


SIAMESE = """\
archviz: 1
name: siamese
inputs: {a: {shape: [3, 8, 8]}, b: {shape: [3, 8, 8]}}
nodes:
  - {id: conv_a, op: conv2d, in: a, out: 4, kernel: 3}
  - {id: bn_a, op: batchnorm2d}
  - {id: conv_b, op: conv2d, in: b, out: 4, kernel: 3, share: conv_a}
  - {id: bn_b, op: batchnorm2d, share: bn_a}
  - {id: both, op: concat, axis: 1, in: [bn_a, bn_b]}
"""


def test_same_layer_applied_twice(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    m = _load(tmp_path, SIAMESE)
    # one conv (4·3·3·3 + 4) and one batch norm (2·4 params, 2·4 + 1 buffers), as torch counts a
    # module called twice
    conv, bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)
    assert m.totals["params"] == sum(p.numel() for p in [*conv.parameters(), *bn.parameters()]) == 120
    assert m.totals["buffers"] == sum(b.numel() for b in bn.buffers()) == 9
    assert m.totals["macs"] == 2 * (4 * 6 * 6 * 3 * 3 * 3)     # both applications compute
    gm = to_torch(m, seed=0).eval()
    assert gm.conv_b.weight is gm.conv_a.weight and gm.conv_b.bias is gm.conv_a.bias
    assert gm.bn_b.running_mean is gm.bn_a.running_mean     # "the same layer": its statistics too
    assert sum(p.numel() for p in gm.parameters()) == 120
    assert sum(b.numel() for b in gm.buffers()) == 9
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = gm(x, x)
    out = out["out"] if isinstance(out, dict) else out
    assert torch.equal(out[:, :4], out[:, 4:])      # the same function on the same input


def test_share_one_parameter_keeps_the_rest(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    text = GPT.replace("bias: false, share: wte", "share: {weight: wte}")
    m = _load(tmp_path, text)
    assert m.totals["params"] == gpt2_params(97, 8, 16, 2) + 97    # the head's own bias
    assert m.layer("lm_head").params.total == 97
    gm = to_torch(m)
    assert gm.lm_head.weight is gm.wte.weight and gm.lm_head.bias is not gm.wte.weight
    assert sum(p.numel() for p in gm.parameters()) == m.totals["params"]
    # the same, naming the owner's parameter
    m2 = _load(tmp_path, GPT.replace("bias: false, share: wte", "share: {weight: wte.weight}"), "t.yaml")
    assert m2.totals["params"] == m.totals["params"]


def test_every_copy_of_a_repeat_shares(tmp_path):
    text = """\
archviz: 1
name: universal
inputs: {x: {shape: [5, 8]}}
nodes:
  - {id: fc0, op: linear, out: 8}
  - {id: fc, op: linear, out: 8, repeat: 3, share: fc0}
  - {id: back, op: linear, out: 8, share: "fc[1]"}
"""
    m = _load(tmp_path, text)
    assert m.totals["params"] == 8 * 8 + 8
    assert m.totals["macs"] == 5 * 5 * 8 * 8
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    gm = to_torch(m)
    assert all(getattr(gm.fc, str(k)).weight is gm.fc0.weight for k in range(3))
    assert gm.back.weight is gm.fc0.weight
    assert sum(p.numel() for p in gm.parameters()) == 72


def test_frozen_owner(tmp_path):
    m = _load(tmp_path, GPT.replace("{id: wte, op: embedding,", "{id: wte, op: embedding, frozen: true,")
              .replace("bias: false, share: wte", "bias: false, frozen: true, share: wte"))
    assert m.totals["non_trainable_params"] == 97 * 16
    assert m.totals["params"] == gpt2_params(97, 8, 16, 2)


def test_summary_json_and_explain_mark_the_tie(tmp_path):
    m = _load(tmp_path, GPT)
    d = json.loads(m.summary("json"))
    head = next(l for l in d["layers"] if l["id"] == "lm_head")
    assert head["params"] == 0
    assert head["shared"] == {"weight": "wte.weight"}
    wte = next(l for l in d["layers"] if l["id"] == "wte")
    assert "shared" not in wte and wte["shared_by"] == {"weight": ["lm_head.weight"]}
    assert not {"shared", "shared_by"} & set(next(l for l in d["layers"] if l["id"] == "ln_f"))
    assert d["totals"]["params"] == gpt2_params(97, 8, 16, 2)
    text = m.summary("table")
    assert "lm_head" in text and "wte.weight" in text
    ex = str(m.explain("lm_head"))
    assert "weight" in ex and "shared with wte.weight" in ex and "(97, 16)" in ex
    assert "counted at wte" in ex
    assert "used also by lm_head" in str(m.explain("wte"))
    md = m.summary("markdown")
    assert "wte.weight" in md


def test_export_py_and_onnx_keep_the_tie(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.export import export_onnx, to_python
    m = _load(tmp_path, GPT)
    src = to_python(m)
    assert "self.lm_head.weight = self.wte.weight" in src
    ns: dict = {}
    exec(compile(src, "gpt_tiny.py", "exec"), ns)
    mod = ns["Gpt_tiny"]()
    assert mod.lm_head.weight is mod.wte.weight
    assert sum(p.numel() for p in mod.parameters()) == m.totals["params"]
    pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    export_onnx(m, str(out))
    import onnx
    model = onnx.load(str(out))
    n = sum(int(__import__("math").prod(t.dims)) for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT)
    assert n >= m.totals["params"] and n < m.totals["params"] + 97 * 16   # the table once


def test_diagram_marks_the_tie(tmp_path):
    from archviz.backends.render import to_dot
    m = _load(tmp_path, GPT)
    dot = to_dot(m, "graph")
    line = next(l for l in dot.splitlines() if "wte" in l and "lm_head" in l and "->" in l)
    assert "dashed" in line and "shares" in line


def _err(tmp_path, nodes: str, inputs="{x: {shape: [5, 8]}}"):
    from tests.spec_errors import one_error
    p = tmp_path / "e.yaml"
    p.write_text(f"archviz: 1\nname: e\ninputs: {inputs}\nnodes:\n{nodes}")
    return one_error(str(p))


# each case: nodes, code, words of the message, the line and the text the caret is under (its
# last occurrence on that line), words of the hint
@pytest.mark.parametrize("nodes, code, words, line, at, hint", [
    # a tie between different shapes: (4, 8) is not (8, 8)
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 4, share: a}\n",
     E.SHARE_SHAPE, "'b' shares 'weight' with 'a.weight', but their shapes differ: (4, 8) and (8, 8)", 6, "a}",
     "the same shape"),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 8, share: c}\n",
     E.UNKNOWN_NODE, "unknown node 'c'", 6, "c}", "names in scope: x, a, b"),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: relu, share: a}\n",
     E.SHARE_NO_PARAM, "'b' (relu) has no parameters to share", 6, "a}", None),
    ("  - {id: a, op: embedding, num: 9, dim: 8}\n  - {id: b, op: linear, out: 9, share: a}\n",
     E.SHARE_NO_PARAM, "'a' (embedding) has no parameter 'bias'", 6, "a}", "share: {weight: a}"),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 8, share: {scale: a}}\n",
     E.SHARE_NO_PARAM, "'b' (linear) has no parameter 'scale'", 6, "a}", "weight, bias"),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 8, share: {weight: a.scale}}\n",
     E.SHARE_NO_PARAM, "'a' (linear) has no parameter 'scale'", 6, "a.scale", "weight, bias"),
    ("  - {id: a, op: linear, out: 8, share: a}\n",
     E.SHARE_CYCLE, "'a' shares its weights with itself", 5, "a}", None),
    ("  - {id: a, op: linear, out: 8, share: b}\n  - {id: b, op: linear, out: 8, share: a}\n",
     E.SHARE_CYCLE, "a cycle of shared weights: a -> b -> a", 5, "b}", "owns"),
    ("  - {id: a, op: linear, out: 8, when: false}\n  - {id: b, op: linear, out: 8, share: a}\n",
     E.SHARE_NO_PARAM, "'a' is bypassed (when: false)", 6, "a}", None),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 8, share: x}\n",
     E.SHARE_NO_PARAM, "'x' is an input of the spec", 6, "x}", None),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 8, share: [a]}\n",
     E.BAD_SHARE, "`share` must name a node", 6, "[a]", "share: NODE"),
    ("  - {id: a, op: linear, out: 8}\n  - {id: b, op: linear, out: 8, share: a.out.x-1}\n",
     E.BAD_SHARE, "malformed `share` reference", 6, "a.out", "share: NODE"),
    ("  - {id: a, op: linear, out: 8, frozen: true}\n  - {id: b, op: linear, out: 8, share: a}\n",
     E.SHARE_FROZEN, "frozen in 'a' but trainable in 'b'", 6, "a}", "frozen"),
    ("  - {id: a, op: batchnorm1d}\n  - {id: p, op: parameter, in: a, shape: [8]}\n"
     "  - {id: b, op: constant, in: a, init: ones, shape: [8], share: {table: p.weight}}\n",
     E.SHARE_KIND, "'b.table' is a buffer but 'p.weight' is a parameter", 7, "p.weight", "a buffer a buffer"),
])
def test_share_errors_are_located(tmp_path, nodes, code, words, line, at, hint):
    e = _err(tmp_path, nodes)
    assert e.code == code, str(e)
    assert words in e.message, e.message
    text = (tmp_path / "e.yaml").read_text().splitlines()[line - 1]
    assert e.span is not None and (e.span.line, e.span.col) == (line, text.rindex(at) + 1), str(e.span)
    if hint:
        assert hint in (e.hint or ""), e.hint
    from archviz.errors import format_error
    assert f"error[{code}]" in format_error(e)       # compiler style, with its code


TRANSFORMER = """\
archviz: 1
name: transformer_base
doc: Vaswani et al. 2017, base model, with one embedding shared by source, target and output (§3.4)
params: {vocab: 37000, d: 512, heads: 8, ff: 2048, N: 6, S: 10, T: 9}
blocks:
  enc:
    params: {d: {type: int}, heads: {type: int}, ff: {type: int}}
    inputs: [x]
    nodes:
      - {id: self_attn, op: multihead_attention, heads: "${heads}"}
      - {id: add1, op: add, in: [x, self_attn]}
      - {id: norm1, op: layernorm}
      - {id: linear1, op: linear, out: "${ff}"}
      - {id: act, op: relu}
      - {id: linear2, op: linear, out: "${d}"}
      - {id: add2, op: add, in: [norm1, linear2]}
      - {id: norm2, op: layernorm}
  dec:
    params: {d: {type: int}, heads: {type: int}, ff: {type: int}}
    inputs: [x, memory]
    nodes:
      - {id: self_attn, op: multihead_attention, in: x, heads: "${heads}"}
      - {id: add1, op: add, in: [x, self_attn]}
      - {id: norm1, op: layernorm}
      - {id: multihead_attn, op: multihead_attention, in: {query: norm1, key: memory, value: memory},
         heads: "${heads}"}
      - {id: add2, op: add, in: [norm1, multihead_attn]}
      - {id: norm2, op: layernorm}
      - {id: linear1, op: linear, out: "${ff}"}
      - {id: act, op: relu}
      - {id: linear2, op: linear, out: "${d}"}
      - {id: add3, op: add, in: [norm2, linear2]}
      - {id: norm3, op: layernorm}
inputs:
  src: {shape: ["${S}"], dtype: int64}
  tgt: {shape: ["${T}"], dtype: int64}
nodes:
  - {id: src_embed, op: embedding, in: src, num: "${vocab}", dim: "${d}"}
  - {id: encoder, op: enc, repeat: "${N}", d: "${d}", heads: "${heads}", ff: "${ff}"}
  - {id: enc_norm, op: layernorm}
  - {id: tgt_embed, op: embedding, in: tgt, num: "${vocab}", dim: "${d}", share: src_embed}
  - {id: decoder, op: dec, in: [tgt_embed, enc_norm], repeat: "${N}", d: "${d}", heads: "${heads}", ff: "${ff}"}
  - {id: dec_norm, op: layernorm}
  - {id: generator, op: linear, out: "${vocab}", bias: false, share: src_embed}
"""


def test_transformer_base_with_shared_embeddings(tmp_path):
    torch = pytest.importorskip("torch")
    with torch.device("meta"):      # torch's own count, without 44M floats of storage
        body = sum(p.numel() for p in torch.nn.Transformer(512, 8, 6, 6, 2048, batch_first=True).parameters())
    table = 37000 * 512
    tied = _load(tmp_path, TRANSFORMER)
    untied = _load(tmp_path, TRANSFORMER.replace(", share: src_embed", ""), "u.yaml")
    assert tied.totals["params"] == body + table == 63_084_544
    assert untied.totals["params"] == body + 3 * table == 100_972_544
    assert tied.totals["macs"] == untied.totals["macs"]     # sharing saves memory, not work


TOWERS = """\
archviz: 1
name: towers
blocks:
  tower:
    params: {w: {type: int}}
    nodes:
      - {id: conv, op: conv2d, out: "${w}", kernel: 3, padding: 1}
      - {id: bn, op: batchnorm2d}
      - {id: relu, op: relu}
      - {id: pool, op: global_avgpool}
      - {id: flat, op: flatten}
      - {id: fc, op: linear, out: 5}
inputs: {a: {shape: [3, 8, 8]}, b: {shape: [3, 8, 8]}}
nodes:
  - {id: left, op: tower, in: a, w: 6}
  - {id: right, op: tower, in: b, w: 6, share: left}
  - {id: both, op: concat, axis: 1, in: [left, right]}
  - {id: head, op: linear, out: 5, share: "left"}
"""


def test_a_block_call_shares_another_call(tmp_path):
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    text = TOWERS.replace('  - {id: head, op: linear, out: 5, share: "left"}\n', "")
    m = _load(tmp_path, text)
    nn = torch.nn
    tower = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 5))
    # torch's siamese network: one tower module called on both inputs
    assert m.totals["params"] == sum(p.numel() for p in tower.parameters())
    assert m.totals["buffers"] == sum(b.numel() for b in tower.buffers())
    d = json.loads(m.summary("json"))
    assert next(l for l in d["layers"] if l["id"] == "right.conv")["shared"] == {"weight": "left.conv.weight",
                                                                                 "bias": "left.conv.bias"}
    assert "shared" not in next(l for l in d["layers"] if l["id"] == "right.relu")
    d1 = json.loads(m.summary("json", depth=1))
    right = next(l for l in d1["layers"] if l["id"] == "right")
    assert right["params"] == 0 and right["shared"]["fc.weight"] == "left.fc.weight"
    assert "0 ↔ left" in m.summary("table", depth=1)
    gm = to_torch(m, seed=0).eval()
    assert gm.right.fc.weight is gm.left.fc.weight and gm.right.bn.running_var is gm.left.bn.running_var
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = gm(x, x)
    out = out["out"] if isinstance(out, dict) else out
    assert torch.equal(out[:, :5], out[:, 5:])


def test_a_layer_cannot_share_a_call(tmp_path):
    from tests.spec_errors import one_error
    p = tmp_path / "t.yaml"
    p.write_text(TOWERS)
    e = one_error(str(p))
    assert e.code == E.BAD_SHARE and "'left' is a call of block 'tower'" in e.message and e.span.line == 18


def test_a_chain_of_shares_is_one_tensor(tmp_path):
    text = """\
archviz: 1
name: chain
inputs: {x: {shape: [4]}}
nodes:
  - {id: c, op: linear, out: 4, share: b}
  - {id: b, op: linear, out: 4, share: a}
  - {id: a, op: linear, out: 4}
"""
    m = _load(tmp_path, text)
    assert m.totals["params"] == 20
    assert json.loads(m.summary("json"))["layers"][0]["shared"] == {"weight": "a.weight", "bias": "a.bias"}
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    gm = to_torch(m)
    assert gm.c.weight is gm.a.weight and gm.b.bias is gm.a.bias
    assert sum(p.numel() for p in gm.parameters()) == 20


def test_the_owner_may_be_an_expression(tmp_path):
    # two weight sets alternating over six copies (copy i uses set i % 2)
    text = """\
archviz: 1
name: alternating
inputs: {x: {shape: [4]}}
nodes:
  - {id: even, op: linear, out: 4}
  - {id: odd, op: linear, out: 4}
  - {id: layer, op: linear, out: 4, repeat: {n: 6, var: i}, share: "${'even' if i % 2 == 0 else 'odd'}"}
"""
    m = _load(tmp_path, text)
    assert m.totals["params"] == 2 * 20
    d = {l["id"]: l.get("shared", {}).get("weight") for l in json.loads(m.summary("json"))["layers"]}
    assert [d[f"layer.{i}"] for i in range(6)] == ["even.weight", "odd.weight"] * 3


def test_a_call_shares_only_a_call_built_the_same_way(tmp_path):
    from tests.spec_errors import one_error
    text = TOWERS.replace('  - {id: head, op: linear, out: 5, share: "left"}\n', "").replace(
        "      - {id: bn, op: batchnorm2d}", "      - {id: bn, op: batchnorm2d, when: \"${w > 6}\"}").replace(
        "{id: right, op: tower, in: b, w: 6, share: left}", "{id: right, op: tower, in: b, w: 8, share: left}")
    p = tmp_path / "t.yaml"
    p.write_text(text)
    e = one_error(str(p))
    assert e.code == E.SHARE_NO_PARAM and "'left' has no layer 'bn' to share with 'right.bn'" in e.message
    assert e.span.line == 16
    # built the same way but wider: the first tensor that differs is a located shape error
    p.write_text(TOWERS.replace('  - {id: head, op: linear, out: 5, share: "left"}\n', "").replace(
        "in: b, w: 6, share: left", "in: b, w: 8, share: left"))
    e = one_error(str(p))
    assert e.code == E.SHARE_SHAPE and "'right.conv' shares 'weight' with 'left.conv.weight'" in e.message
    assert e.span.line == 16


def test_lstm_lm_tied_is_pytorchs_word_language_model(tmp_path):
    """PyTorch's examples/word_language_model RNNModel(LSTM, ntoken, ninp, nhid, nlayers,
    tie_weights=True): encoder = nn.Embedding, rnn = nn.LSTM, decoder = nn.Linear(nhid, ntoken)
    with `self.decoder.weight = self.encoder.weight` (its bias stays its own)."""
    torch = pytest.importorskip("torch")
    from archviz.backends.torch.lower import to_torch
    nn = torch.nn
    V, d, L = 50, 12, 2
    encoder, rnn, decoder = nn.Embedding(V, d), nn.LSTM(d, d, L), nn.Linear(d, V)
    decoder.weight = encoder.weight
    want = sum(p.numel() for p in nn.ModuleList([encoder, rnn, decoder]).parameters())
    tied = archviz.load("lstm_lm", T=7, vocab=V, emb=d, hidden=d, layers=L, tied=True)
    untied = archviz.load("lstm_lm", T=7, vocab=V, emb=d, hidden=d, layers=L)
    assert tied.totals["params"] == want == untied.totals["params"] - V * d
    gm = to_torch(tied)
    assert gm.decoder.weight is gm.embed.weight and sum(p.numel() for p in gm.parameters()) == want
    # the paper's condition: a tie needs the embedding and hidden sizes equal
    with pytest.raises(archviz.errors.ArchvizError) as ei:
        archviz.load("lstm_lm", emb=400, tied=True)
    assert ei.value.code == E.SHARE_SHAPE and "(10000, 650) and (10000, 400)" in ei.value.message
    assert ei.value.span.file.endswith("lstm_lm.yaml")


def test_share_false_shares_nothing(tmp_path):
    text = GPT.replace("bias: false, share: wte", "bias: false, share: false")
    assert _load(tmp_path, text).totals["params"] == gpt2_params(97, 8, 16, 2) + 97 * 16
