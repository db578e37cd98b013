"""The attention of decoder LLMs, in pieces a block composes: `sdpa` (scaled dot-product
attention over heads, causal or sliding-window masks, grouped-query and multi-query
attention) and `rope` (rotary position embeddings).

Sources: torch.nn.functional.scaled_dot_product_attention (its math reference: softmax(QKᵀ ·
scale + mask) V, `enable_gqa` repeating each key/value head over H / H_kv query heads);
Ainslie et al. 2023 (GQA); Beltagy et al. 2020 and Jiang et al. 2023 (sliding windows:
query t sees keys t − w + 1 … t); Su et al. 2021, RoFormer (rotary embeddings), in the
"rotate half" layout of GPT-NeoX and Hugging Face's Llama: dims i and i + r/2 of the first
r = fraction·d dims are rotated together by the angle t · base^(−2i/r).

Masked work is counted dense, as torch computes it: every score is computed, then masked.
"""
from __future__ import annotations

from math import prod

from archviz.errors import OpError
from archviz.ops.base import (UNBATCHED, Attr, Line, NoMacs, NoParams, Op, SameShape, fmt_shape, keep_extra,
                              keep_in, keep_out, register_op)
from archviz.ops.describe import Keeps, Role, lowered
from archviz.ops.rfmaps import _Irregular
from archviz.ops.rfmaps_core import _per_position
from archviz.ops.terms import C, Parts, Prod, Tag, V, tight

MASKS = ("none", "causal")


def mask_check(a) -> None:
    """`window` needs the causal mask (it cuts the prefix a causal query sees)."""
    if a.window is not None and a.mask != "causal":
        raise OpError("a sliding `window` applies to the causal mask: add mask: causal", attr="window")


def time_map(a, tq: int, tk: int):
    """What query t reads along the keys' axis: all of it, the prefix 0..t (causal), or the
    last `window` keys t − w + 1 … t."""
    from archviz.ops import rfmaps as R
    if a.mask == "causal":
        return R.Window(a.window, 1, a.window - 1) if a.window is not None else R.Prefix(tq)
    return R.All(tk)


def mask_text(a) -> str:
    if a.get("mask") != "causal":
        return ""
    return f"causal, window {a['window']}" if a.get("window") is not None else "causal"


@register_op
class SDPA(NoParams, Op):
    name = "sdpa"
    family = "attention"
    role = Role.ATTENTION
    label = "attention"
    features_last = True
    keeps = Keeps.BOTH          # torch's fused CPU kernel saves q, k, v and its output for backward
    doc = ("Scaled dot-product attention over heads (F.scaled_dot_product_attention): q (N, H, T, d), "
           "k (N, H_kv, S, d), v (N, H_kv, S, d_v) → (N, H, T, d_v). H_kv < H is grouped-query attention "
           "(1: multi-query), each key/value head serving H / H_kv query heads. mask: causal (query t sees "
           "keys 0..t), with `window` w only the last w of them.")
    input_ports = ("query", "key", "value")
    min_inputs = max_inputs = 3
    attrs = {"mask": Attr("str", "none", "none or causal", MASKS),
             "window": Attr("pos_int", None, "with mask: causal, a sliding window of this many keys"),
             "scale": Attr("float", None, "the score scale (default 1/sqrt(d))")}
    samples = [{"attrs": {"mask": "causal"}, "inputs": [(2, 4, 6, 8), (2, 4, 6, 8), (2, 4, 6, 8)]},
               {"attrs": {}, "inputs": [(1, 6, 5, 4), (1, 2, 7, 4), (1, 2, 7, 3)]},
               {"attrs": {"mask": "causal", "window": 3, "scale": 0.5}, "inputs": [(2, 4, 7, 2), (2, 1, 7, 2),
                                                                                   (2, 1, 7, 2)]}]

    def caption(self, a):
        return mask_text(a)

    def check(self, a, ins):
        mask_check(a)
        q, k, v = ins
        for i, (s, what) in enumerate(((q, "query"), (k, "key"), (v, "value"))):
            if len(s) != 4:
                raise OpError(f"{what} must be (N, heads, T, d), got {fmt_shape(s)}"
                              + (f" ({UNBATCHED})" if len(s) == 3 else ""), input_index=i,
                              hint="reshape (N, T, heads·d) to (N, T, heads, d), then transpose axes 1 and 2")
        if k[0] != q[0] or v[0] != q[0]:
            raise OpError(f"query, key and value must have the same batch: {fmt_shape(q)}, {fmt_shape(k)}, "
                          f"{fmt_shape(v)}", input_index=1)
        if k[-1] != q[-1]:
            raise OpError(f"key's head size {k[-1]} differs from the query's {q[-1]}", input_index=1)
        if v[1:3] != k[1:3]:
            raise OpError(f"value must have the key's heads and length {fmt_shape(k[1:3])}, got {fmt_shape(v)}",
                          input_index=2)
        if q[1] % k[1]:
            raise OpError(f"{q[1]} query heads cannot share {k[1]} key/value heads", input_index=1,
                          hint="the query heads must be a multiple of the key/value heads (grouped-query attention)")

    def infer_shape(self, a, ins):
        q, _, v = ins
        return {"out": (*q[:3], v[-1])}

    def explain_shape(self, a, ins, outs):
        q, k, _ = ins
        o = outs["out"]
        g = q[1] // k[1]
        return [Line("groups", "query heads per key/value head, H / H_kv", f"{q[1]} / {k[1]} = {g}", g),
                Line("output shape", "(N, H, T, d_v)", fmt_shape(o), o)]

    def macs_terms(self, a, ins, outs):
        q, k, v = ins
        N, H, T, S = V("N", q[0]), V("H", q[1]), V("T", q[2]), V("S", k[2])
        return Parts([("scores QKᵀ", Prod(N, H, T, S, V("d", q[-1]))),
                      ("weighted sum α·V", Prod(N, H, T, S, V("d_v", v[-1])))],
                     " (dense: masked scores are computed, as torch does)")

    def saved(self, a, ins, outs, need):
        """As torch's CPU kernels keep them.  Key and value heads shared by g > 1 query heads
        are repeated first (copies).  Equal head sizes take the flash kernel: q, k, v, the
        output, each query row's logsumexp (in opmath) and, with a mask, the mask as an additive
        (T, S) tensor.  Otherwise the math path: q and k each scaled by √scale (each where the
        other needs a gradient), the attention weights and v."""
        q, k, v = ins
        g = q[1] // k[1]
        kk = keep_in(ins, 1) if g == 1 else keep_extra("repeated keys", q[0] * q[1] * k[2] * k[3])
        vv = keep_in(ins, 2) if g == 1 else keep_extra("repeated values", q[0] * q[1] * v[2] * v[3])
        if q[-1] == v[-1]:
            out = [keep_in(ins, 0), kk, vv, keep_out(outs), keep_extra("logsumexp", prod(q[:3]), "opmath")]
            return out + ([keep_extra("mask", q[2] * k[2])] if a.mask != "none" else [])
        qn, kn, vn = need.input(0), need.input(1), need.input(2)
        scores = qn or kn
        out = ([keep_extra("scaled q", prod(q))] if kn else []) + (
            [keep_extra("scaled k", q[0] * q[1] * k[2] * k[3])] if qn else [])
        return out + ([keep_extra("attention weights", prod(q[:3]) * k[2])] if scores or vn else []) + (
            [vv] if scores else [])

    def backward_macs_terms(self, a, ins, outs, need):
        """The gradients of the two products, as torch's math kernel (the one FlopCounterMode sees
        on the meta device): grad q and grad k from the scores QKᵀ, grad α and grad v from α·V,
        each where needed: 4 · N·H·T·S·d if d = d_v and all are.  The flash kernels also recompute the scores (+N·H·T·S·d)."""
        q, k, v = ins
        N, H, T, S = V("N", q[0]), V("H", q[1]), V("T", q[2]), V("S", k[2])
        qk, av = Prod(N, H, T, S, V("d", q[-1])), Prod(N, H, T, S, V("d_v", v[-1]))
        qn, kn, vn = need.input(0), need.input(1), need.input(2)
        parts = [(p, t) for p, t, on in (("grad q (QKᵀ)", qk, qn), ("grad k (QKᵀ)", qk, kn),
                                         ("grad α (α·V)", av, qn or kn), ("grad v (α·V)", av, vn)) if on]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def elementwise_terms(self, a, ins, outs):
        q, k, _ = ins
        scores = tight(V("N", q[0]), V("H", q[1]), V("T", q[2]), V("S", k[2]))
        t = Tag(scores, "scale") + Tag(C(3) * scores, "softmax")
        return t + Tag(scores, "mask") if a.mask != "none" else t

    def tensor_parallel(self, a, ins, outs, split, t):
        """Each device attends with its heads: query, key and value split alike, the key/value
        heads too (grouped-query attention keeps whole groups on a device)."""
        if not any(split):
            return {}, {"out": False}
        q, k, _ = ins
        if not all(split):
            raise OpError("query, key and value must all be split over the tensor-parallel devices")
        if q[1] % t or k[1] % t:
            raise OpError(f"{q[1]} query heads and {k[1]} key/value heads cannot both be split over {t} devices",
                          hint="the tensor-parallel degree must divide the key/value heads")
        return {}, {"out": True}

    def decode_macs(self, a, ins, outs, tokens, context):
        """One new query per sequence against min(context, window) cached keys:
        N · H · keys · (d + d_v)."""
        q, k, v = ins
        if a.mask != "causal":
            raise OpError("not causal: a decoder's attention has a causal mask", attr="mask",
                          hint="decode_step is for decoder-only models (mask: causal)")
        keys = min(context, a.window) if a.window is not None else context
        return q[0] * q[1] * keys * (q[-1] + v[-1])

    def kv_cache(self, a, ins, outs):
        """Per token: its key (H_kv · d) and value (H_kv · d_v) elements."""
        if a.mask != "causal":
            return None
        _, k, v = ins
        return k[1] * k[-1] + v[1] * v[-1], a.window

    def torch_spec(self, a, ins, outs):
        return lowered("SDPA", a.mask, a.window, None if a.scale is None else float(a.scale))

    def receptive_field(self, a, ins, outs):
        """Head h reads its query head and key/value head h // (H / H_kv); position t reads
        query t and the keys its mask lets through; the head dims are read whole."""
        from archviz.ops import rfmaps as R
        q, k, v = ins
        heads = R.Groups(k[1], q[1], k[1])
        t = time_map(a, q[2], k[2])
        qd = R.Deps([(0, R.IDENTITY), (1, R.IDENTITY), (2, R.IDENTITY), (None, R.All(q[3]))])

        def kv(s):
            return R.Deps([(0, R.IDENTITY), (1, heads), (None if t.const else 2, t), (None, R.All(s[3]))])
        return {"out": [qd, kv(k), kv(v)]}


class _RotaryPairs(_Irregular):
    """Along the head dims: a rotated dim i < r reads itself and its partner i ± r/2; the
    dims past r pass through."""
    gapless = False

    def __init__(self, d: int, r: int):
        self.n_out, self.r = d, r

    def _span(self, a, b):
        ps = [p for i in range(a, b + 1) for p in ((i, (i + self.r // 2) % self.r) if i < self.r else (i,))]
        return min(ps), max(ps)

    def image(self, ivs, n):
        return _per_position(self, ivs, n)

    def describe(self):
        return f"rotary pairs (i, i ± {self.r // 2})"


@register_op
class RoPE(SameShape, NoParams, NoMacs, Op):
    name = "rope"
    family = "attention"
    role = Role.EMBEDDING
    label = "RoPE"
    features_last = True
    keeps = Keeps.NOTHING       # a rotation by fixed angles: the gradient rotates back
    doc = ("Rotary position embedding (Su et al. 2021) of (N, heads, T, d), the 'rotate half' layout of "
           "GPT-NeoX and Llama: of the first r = fraction·d dims, i and i + r/2 turn by the angle "
           "t·base^(−2i/r) at position t; the rest pass. No parameters.")
    attrs = {"base": Attr("float", 10000.0, "the angle base θ"),
             "fraction": Attr("float", 1.0, "the share of each head's dims rotated (GPT-NeoX's rotary_pct)")}
    samples = [{"attrs": {}, "inputs": [(2, 4, 6, 8)]},
               {"attrs": {"fraction": 0.25, "base": 500000.0}, "inputs": [(1, 2, 5, 16)]}]
    elementwise_note = " (per rotated element: two multiplies and an add, x·cos + rotate_half(x)·sin)"

    def saved(self, a, ins, outs, need):
        """Its cos and sin tables, (T, r) each: x · cos + rotate_half(x) · sin keeps them for
        the gradient of x."""
        x = ins[0]
        r = self.rotated(a, x)
        return [keep_extra("cos", x[-2] * r), keep_extra("sin", x[-2] * r)]

    def caption(self, a):
        f = a.get("fraction", 1.0)
        return f"θ={a.get('base')}" + (f", {f} of dims" if f != 1.0 else "")

    def rotated(self, a, x) -> int:
        r = a.fraction * x[-1]
        if not 0 < a.fraction <= 1 or r != int(r) or int(r) % 2:
            raise OpError(f"fraction {a.fraction} of {x[-1]} dims rotates {r} dims: it must be a positive even "
                          "number (dims turn in pairs)", attr="fraction",
                          hint=f"e.g. fraction {2 / x[-1]:g} … 1 in steps that give an even count")
        if not a.base > 0:
            raise OpError(f"base {a.base} must be positive", attr="base")
        return int(r)

    def check(self, a, ins):
        x = ins[0]
        if len(x) != 4:
            raise OpError(f"expects (N, heads, T, d), got {fmt_shape(x)}",
                          hint="reshape (N, T, heads·d) to (N, T, heads, d), then transpose axes 1 and 2")
        self.rotated(a, x)

    def explain_shape(self, a, ins, outs):
        x = ins[0]
        r = self.rotated(a, x)
        return [Line("rotated dims", "r = fraction · d", f"{a.fraction} · {x[-1]} = {r}", r),
                Line("output shape", "same as input", fmt_shape(outs["out"]), outs["out"])]

    def elementwise_terms(self, a, ins, outs):
        x = ins[0]
        r = self.rotated(a, x)
        return C(3) * tight(V("N", x[0]), V("H", x[1]), V("T", x[2]), V("r", r))

    def torch_spec(self, a, ins, outs):
        return lowered("RoPE", float(a.base), self.rotated(a, ins[0]))

    def receptive_field(self, a, ins, outs):
        """Pointwise over batch, heads and positions; along the dims, each rotated dim reads its pair."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.along(x, {3: _RotaryPairs(x[3], self.rotated(a, x))})]}
