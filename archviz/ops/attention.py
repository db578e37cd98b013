"""Attention: `attention` (one head; dot, scaled_dot, general/Luong, additive/concat/Bahdanau)
and `multihead_attention` (torch.nn.MultiheadAttention semantics, batch first).

Ports in: query (N, Tq, d_q) — or (N, d_q) for one query per example (a decoder step) —,
key (N, Tk, d_k), value (N, Tk, d_v); value defaults to key, and for multihead_attention
key defaults to query (self-attention).  Ports out: ``out`` (N, Tq, d_v) and ``weights``
(N, Tq, Tk), the softmax-normalised attention weights α (rows sum to 1).

Score functions (Luong, Pham & Manning 2015, §3.1; Bahdanau, Cho & Bengio 2015, App. A;
Vaswani et al. 2017, §3.2):

    dot         s = qᵀk
    scaled_dot  s = qᵀk / √d_k
    general     s = qᵀ W_a k          W_a: (d_q, d_k), applied to the query
    additive    s = v_aᵀ tanh(W_a q + U_a k)   W_a: (A, d_q), U_a: (A, d_k), v_a: (A)
    concat      = additive (Luong's name: W_a[q; k] is W_a q + U_a k with W_a split)

MACs, labelled per part (bias adds not counted):

    query projection  general: N·Tq·d_q·d_k;   additive: N·Tq·d_q·A
    key projection    additive: N·Tk·d_k·A (once per key, shared by every query)
    scores            dot, scaled_dot, general: N·Tq·Tk·d_k;  additive: N·Tq·Tk·A (v_aᵀ ·)
    weighted sum      N·Tq·Tk·d_v           (out = α · V)
    multi-head adds the in-projections N·Tq·E·E, N·Tk·kdim·E, N·Tk·vdim·E and the output
    projection N·Tq·E·E; its scores and weighted sum are N·Tq·Tk·E (summed over heads).

Element-wise operations: softmax 3 per score (exp, sum, divide); scaled_dot: 1 per score
(the scale); additive: 2 per score and attention unit (the add and the tanh);
multihead: the query scaling N·Tq·E, softmax 3·N·heads·Tq·Tk, and with averaged weights
the head average N·heads·Tq·Tk; with a causal mask, one more per score (masked work
is counted dense, as torch computes it).  Padding masks are not modelled.
"""
from __future__ import annotations

from math import prod

from archviz.errors import OpError
from archviz.ops.base import UNBATCHED, Attr, Line, Op, fmt_shape, keep_extra, keep_in, keep_out, register_op
from archviz.ops.saved import TIME_MAJOR
from archviz.ops.terms import C, Fold, Parts, Prod, Tag, V, tight
from archviz.ops.describe import Keeps, Role, lowered
from archviz.ops.transformer import MASKS, mask_check, mask_text, time_map

_SCORE_DOC = {
    "dot": "s = qᵀk",
    "scaled_dot": "s = qᵀk / √d_k",
    "general": "s = qᵀ W_a k (Luong)",
    "additive": "s = v_aᵀ tanh(W_a q + U_a k) (Bahdanau)",
    "concat": "s = v_aᵀ tanh(W_a [q; k]) (Luong's concat = additive)",
}


def _qkv(ins, self_default=False):
    """(query, key, value) shapes from 1–3 inputs: value defaults to key, key to query."""
    q = ins[0]
    k = ins[1] if len(ins) > 1 else (q if self_default else None)
    v = ins[2] if len(ins) > 2 else k
    return q, k, v


def _proj_in(ins, i, need):
    """Input i as a linear projection keeps it: itself, or a contiguous copy of a 3-D input
    that is not contiguous."""
    if len(ins[i]) > 2 and need.is_strided(i):
        return keep_extra(f"input {i}, a contiguous copy", prod(ins[i]))
    return keep_in(ins, i)


class _AttnBase(Op):
    family = "attention"
    role = Role.ATTENTION
    features_last = True
    keeps = Keeps.INPUTS     # the projections' inputs (and the attention weights, internal)
    outputs = ("out", "weights")
    input_ports = ("query", "key", "value")

    def macs_terms(self, a, ins, outs):
        return Parts(self.mac_parts(a, ins), " (bias adds not counted)")

    def receptive_field(self, a, ins, outs):
        """Output (and weight) row t reads query t and every key and value: global over the
        keys' sequence, unless a causal mask (multi-head: `mask`) keeps the prefix 0..t or a
        window of it; self-attention with one input is global."""
        from archviz.ops import rfmaps as R
        if a.get("mask", "none") != "none":
            q, k, v = _qkv(ins, self_default=True)
            t = time_map(a, q[1], k[1])
            feats = R.All(q[-1])

            def keys(s):
                return R.Deps([(0, R.IDENTITY), (None if t.const else 1, t), (None, R.All(s[-1]))])
            if len(ins) == 1:       # one tensor: query, key and value at once; t reads 0..t
                return {p: [keys(q)] for p in outs}
            qd = R.along(q, {len(q) - 1: feats})
            deps = [qd] + [keys(s) for s in ins[1:]]
            return {"out": deps, "weights": [qd, keys(k)] + [None] * (len(ins) - 2)}
        if len(ins) == 1:
            return {p: ["global"] for p in outs}
        q = ins[0]
        qd = R.along(q, {len(q) - 1: R.All(q[-1])})
        kv = ["global"] * (len(ins) - 1)
        return {p: [qd] + (kv if p == "out" else ["global"] + [None] * (len(ins) - 2)) for p in outs}


@register_op
class Attention(_AttnBase):
    name = "attention"
    doc = ("One-head attention over keys/values with a chosen score: dot, scaled_dot, general (Luong), "
           "additive/concat (Bahdanau). Inputs query, key, value (value defaults to key); outputs out and "
           "weights (softmax over the keys).")
    attrs = {
        "score": Attr("str", "dot", "dot, scaled_dot, general, additive or concat",
                      ("dot", "scaled_dot", "general", "additive", "concat")),
        "dim": Attr("pos_int", None, "additive/concat: attention size A (default d_k)"),
        "bias": Attr("bool", False, "general/additive: a bias on the query projection W_a"),
    }
    min_inputs, max_inputs = 2, 3
    samples = [
        {"attrs": {"score": "dot"}, "inputs": [(2, 4, 8), (2, 6, 8)]},
        {"attrs": {"score": "scaled_dot"}, "inputs": [(2, 4, 8), (2, 6, 8), (2, 6, 5)]},
        {"attrs": {"score": "general"}, "inputs": [(2, 3, 7), (2, 5, 9)]},
        {"attrs": {"score": "general", "bias": True}, "inputs": [(3, 7), (3, 5, 9)]},
        {"attrs": {"score": "additive", "dim": 10}, "inputs": [(2, 3, 7), (2, 5, 9), (2, 5, 4)]},
        {"attrs": {"score": "concat", "bias": True}, "inputs": [(2, 6), (2, 5, 9)]},
    ]

    def caption(self, a):
        return str(a.get("score", ""))

    def _a(self, a, ins):
        return a.dim or ins[1][-1]

    def check(self, a, ins):
        q, k, v = _qkv(ins)
        if len(q) not in (2, 3):
            raise OpError(f"query must be (N, Tq, d_q) or (N, d_q), got {fmt_shape(q)}", input_index=0)
        if len(k) != 3:
            raise OpError(f"key must be (N, Tk, d_k), got {fmt_shape(k)}", input_index=1)
        if len(v) != 3 or v[:2] != k[:2]:
            raise OpError(f"value must be (N, Tk, d_v) with the key's N and Tk {fmt_shape(k[:2])}, "
                          f"got {fmt_shape(v)}", input_index=2)
        if q[0] != k[0]:
            raise OpError(f"query batch {q[0]} differs from key batch {k[0]}", input_index=1)
        if a.score in ("dot", "scaled_dot") and q[-1] != k[-1]:
            raise OpError(f"score '{a.score}' needs d_q == d_k, got {q[-1]} and {k[-1]}", attr="score",
                          hint="use score 'general' or 'additive' for different sizes")
        if a.dim is not None and a.score not in ("additive", "concat"):
            raise OpError(f"'dim' is the additive attention size; score '{a.score}' has none", attr="dim")
        if a.bias and a.score not in ("general", "additive", "concat"):
            raise OpError(f"score '{a.score}' has no parameters, so no bias", attr="bias")

    def infer_shape(self, a, ins):
        q, k, v = _qkv(ins)
        if len(q) == 2:
            return {"out": (q[0], v[-1]), "weights": (q[0], k[1])}
        return {"out": (q[0], q[1], v[-1]), "weights": (q[0], q[1], k[1])}

    def param_tensors(self, a, ins):
        q, k, _ = _qkv(ins)
        dq, dk = q[-1], k[-1]
        if a.score == "general":
            t = [("W_a.weight", (dk, dq), "param")]
            if a.bias:
                t.append(("W_a.bias", (dk,), "param"))
            return t
        if a.score in ("additive", "concat"):
            A = self._a(a, ins)
            t = [("W_a.weight", (A, dq), "param")]
            if a.bias:
                t.append(("W_a.bias", (A,), "param"))
            return t + [("U_a.weight", (A, dk), "param"), ("v_a.weight", (1, A), "param")]
        return []

    def mac_parts(self, a, ins):
        """[(part, MACs term)]: the projections the score needs, the scores, the weighted sum."""
        q, k, v = _qkv(ins)
        N, Tq, Tk = V("N", q[0]), V("Tq", q[1] if len(q) == 3 else 1), V("Tk", k[1])
        dq, dk, dv = V("d_q", q[-1]), V("d_k", k[-1]), V("d_v", v[-1])
        parts = []
        if a.score == "general":
            parts += [("query projection W_a q", Prod(N, Tq, dq, dk)), ("scores", Prod(N, Tq, Tk, dk))]
        elif a.score in ("additive", "concat"):
            A = V("A", self._a(a, ins))
            parts += [("query projection W_a q", Prod(N, Tq, dq, A)), ("key projection U_a k", Prod(N, Tk, dk, A)),
                      ("scores v_aᵀ tanh(·)", Prod(N, Tq, Tk, A))]
        else:
            parts.append(("scores qᵀk", Prod(N, Tq, Tk, dk)))
        return parts + [("weighted sum α·V", Prod(N, Tq, Tk, dv))]

    def elementwise_terms(self, a, ins, outs):
        q, k, _ = _qkv(ins)
        s = tight(V("N", q[0]), V("Tq", q[1] if len(q) == 3 else 1), V("Tk", k[1]))
        t = Tag(C(3) * s, "softmax: exp, sum, divide")
        if a.score == "scaled_dot":
            t = t + Tag(s, "the 1/√d_k scale")
        elif a.score in ("additive", "concat"):
            t = t + Tag(C(2) * tight(*s.factors, V("A", self._a(a, ins))), "the add and the tanh")
        return t

    def explain_shape(self, a, ins, outs):
        q, k, v = _qkv(ins)
        o, w = outs["out"], outs["weights"]
        lead = "(N, Tq, " if len(q) == 3 else "(N, "
        return [Line("score", _SCORE_DOC[a.score], _SCORE_DOC[a.score], a.score),
                Line("output 'out'", lead + "d_v): Σ_k α_k v_k", fmt_shape(o), o),
                Line("output 'weights'", lead + "Tk): α = softmax over the keys", fmt_shape(w), w)]

    def saved(self, a, ins, outs, need):
        """As the lowered module computes it (seq_modules.Attention): the projections' inputs
        for their weights' gradients, the projected query (general) or tanh(W_a q + U_a k)
        (additive), each product's operands where the other needs a gradient, the softmax's
        output (the `weights` port) and the values."""
        q, k, v = _qkv(ins)
        vi = 2 if len(ins) > 2 else 1
        qn, kn, vn, w = need.input(0), need.input(1), need.input(vi), need.weights
        n, tq, tk = q[0], (q[1] if len(q) == 3 else 1), k[1]
        out = []
        if a.score in ("additive", "concat"):
            if w:
                out += [_proj_in(ins, 0, need), _proj_in(ins, 1, need)]
            scores = qn or kn or w
            if scores:
                out.append(keep_extra("tanh(W_a q + U_a k)", n * tq * tk * self._a(a, ins)))
        else:
            general = a.score == "general"
            qg = qn or (general and w)
            if general and w:
                out.append(_proj_in(ins, 0, need))
            if kn:
                out.append(keep_extra("W_a q", n * tq * k[-1]) if general else keep_in(ins, 0))
            if qg:
                out.append(keep_in(ins, 1))
            scores = qg or kn
        if scores or vn:
            out.append(keep_out(outs, "weights"))
        if scores:
            out.append(keep_in(ins, vi))
        return out

    def backward_macs_terms(self, a, ins, outs, need):
        """Each product's gradient for each operand that needs one, at the product's forward MACs:
        a projection's input and weight, the scores' two operands, α and the values."""
        vi = 2 if len(ins) > 2 else 1
        qn, kn, vn, w = need.input(0), need.input(1), need.input(vi), need.weights
        fwd = dict(self.mac_parts(a, ins))
        parts = []
        if a.score in ("additive", "concat"):
            parts += [(f"grad {x}: W_a q", fwd["query projection W_a q"]) for x, on in (("q", qn), ("W_a", w)) if on]
            parts += [(f"grad {x}: U_a k", fwd["key projection U_a k"]) for x, on in (("k", kn), ("U_a", w)) if on]
            scores = qn or kn or w
            parts += [(f"grad {x}: v_aᵀ tanh", fwd["scores v_aᵀ tanh(·)"]) for x, on in (("tanh", scores), ("v_a", w)) if on]
        else:
            general = a.score == "general"
            qg = qn or (general and w)
            if general:
                parts += [(f"grad {x}: W_a q", fwd["query projection W_a q"]) for x, on in (("q", qn), ("W_a", w)) if on]
            sc = fwd["scores"] if general else fwd["scores qᵀk"]
            parts += [(f"grad {x}: scores", sc) for x, on in (("q", qg), ("k", kn)) if on]
            scores = qg or kn
        parts += [(f"grad {x}: α·V", fwd["weighted sum α·V"]) for x, on in (("α", scores), ("V", vn)) if on]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def torch_spec(self, a, ins, outs):
        q, k, _ = _qkv(ins)
        args = (a.score, q[-1], k[-1])
        if a.score in ("additive", "concat"):
            return lowered("Attention", *args, dim=self._a(a, ins), bias=a.bias)
        return lowered("Attention", *args, bias=a.bias)


@register_op
class MultiheadAttention(_AttnBase):
    name = "multihead_attention"
    label = "multi-head attention"
    doc = ("Multi-head scaled dot-product attention (torch.nn.MultiheadAttention, batch_first): "
           "E = the query's features, head size E/heads; kdim/vdim from key and value. Inputs query, "
           "key, value (key defaults to query, value to key); outputs out (N, Tq, E) and weights.")
    attrs = {
        "heads": Attr("pos_int", doc="number of heads (must divide E)"),
        "bias": Attr("bool", True, "biases of the in- and out-projections"),
        "dropout": Attr("float", 0.0, "dropout on the weights in training (identity at inference)"),
        "average_weights": Attr("bool", True, "weights averaged over heads (N, Tq, Tk); false: (N, heads, Tq, Tk)"),
        "mask": Attr("str", "none", "none or causal (query t attends keys 0..t: a decoder, GPT)", MASKS),
        "window": Attr("pos_int", None, "with mask: causal, a sliding window of this many keys"),
    }
    min_inputs, max_inputs = 1, 3
    samples = [
        {"attrs": {"heads": 4}, "inputs": [(2, 5, 16)]},
        {"attrs": {"heads": 2, "average_weights": False}, "inputs": [(2, 3, 8), (2, 6, 8)]},
        {"attrs": {"heads": 3, "bias": False}, "inputs": [(2, 4, 12), (2, 7, 5), (2, 7, 9)]},
        {"attrs": {"heads": 1}, "inputs": [(1, 3, 6), (1, 4, 6), (1, 4, 6)]},
        {"attrs": {"heads": 2, "mask": "causal"}, "inputs": [(2, 5, 8)]},
        {"attrs": {"heads": 2, "mask": "causal", "window": 2, "average_weights": False}, "inputs": [(1, 6, 4)]},
    ]

    def caption(self, a):
        return f"{a.get('heads')} heads" + (f", {mask_text(a)}" if mask_text(a) else "")

    def check(self, a, ins):
        mask_check(a)
        q, k, v = _qkv(ins, self_default=True)
        if len(q) != 3:
            raise OpError(f"query must be (N, Tq, E), got {fmt_shape(q)}"
                          + (f" (a 2-D query: {UNBATCHED})" if len(q) == 2 else ""), input_index=0)
        if len(k) != 3 or k[0] != q[0]:
            raise OpError(f"key must be (N, Tk, kdim) with the query's batch {q[0]}, got {fmt_shape(k)}",
                          input_index=1)
        if len(v) != 3 or v[:2] != k[:2]:
            raise OpError(f"value must be (N, Tk, vdim) with the key's N and Tk {fmt_shape(k[:2])}, "
                          f"got {fmt_shape(v)}", input_index=2)
        if q[-1] % a.heads:
            raise OpError(f"embedding size E={q[-1]} is not divisible by heads={a.heads}", attr="heads")

    def train_check(self, a, ins):
        """torch's MultiheadAttention takes any dropout and ignores it at inference; in training it
        drops the weights only when p > 0, and F.dropout refuses p > 1."""
        if a.dropout > 1:
            raise OpError(f"dropout={a.dropout}: torch refuses a dropout probability above 1 in training "
                          f"(\"dropout probability has to be between 0 and 1\")", attr="dropout")

    def infer_shape(self, a, ins):
        q, k, _ = _qkv(ins, self_default=True)
        w = (q[0], q[1], k[1]) if a.average_weights else (q[0], a.heads, q[1], k[1])
        return {"out": tuple(q), "weights": w}

    def param_tensors(self, a, ins):
        q, k, v = _qkv(ins, self_default=True)
        e = q[-1]
        if k[-1] == e and v[-1] == e:
            t = [("in_proj_weight", (3 * e, e), "param")]
        else:
            t = [("q_proj_weight", (e, e), "param"), ("k_proj_weight", (e, k[-1]), "param"),
                 ("v_proj_weight", (e, v[-1]), "param")]
        if a.bias:
            t.append(("in_proj_bias", (3 * e,), "param"))
        t.append(("out_proj.weight", (e, e), "param"))
        if a.bias:
            t.append(("out_proj.bias", (e,), "param"))
        return t

    def mac_parts(self, a, ins):
        q, k, v = _qkv(ins, self_default=True)
        N, Tq, Tk, E, H = V("N", q[0]), V("Tq", q[1]), V("Tk", k[1]), V("E", q[-1]), V("heads", a.heads)
        head = Fold(E / H)
        return [("query projection", Prod(N, Tq, E, E)), ("key projection", Prod(N, Tk, V("kdim", k[-1]), E)),
                ("value projection", Prod(N, Tk, V("vdim", v[-1]), E)),
                ("scores QKᵀ", Prod(N, H, Tq, Tk, head)), ("weighted sum α·V", Prod(N, H, Tq, Tk, head)),
                ("output projection", Prod(N, Tq, E, E))]

    def tensor_parallel(self, a, ins, outs, split, t):
        """Megatron: the q/k/v projections column-parallel (each device its heads), the output
        projection row-parallel (its bias whole): a whole input gives a whole output."""
        if any(split):
            raise OpError("multi-head attention reads a whole tensor under tensor parallelism")
        if a.heads % t:
            raise OpError(f"{a.heads} heads cannot be split over {t} tensor-parallel devices", attr="heads")
        axis = {"in_proj_weight": 0, "in_proj_bias": 0, "q_proj_weight": 0, "k_proj_weight": 0,
                "v_proj_weight": 0, "out_proj.weight": 1, "out_proj.bias": None}
        return ({n: axis[n] for n, _s, _k in self.param_tensors(a, ins)},
                {p: False for p in outs})

    def _causal_self(self, a, ins):
        if a.get("mask", "none") != "causal" or len(ins) != 1:
            raise OpError("not causal self-attention: a decoder's attention reads one sequence through a "
                          "causal mask", attr="mask", hint="decode_step is for decoder-only models (mask: causal)")

    def decode_macs(self, a, ins, outs, tokens, context):
        """One new token: its q/k/v and output projections (4·E² here, E = embed size), and its
        scores and weighted sum over the min(context, window) cached keys: 2 · E · keys."""
        self._causal_self(a, ins)
        x = ins[0]
        keys = min(context, a.window) if a.window is not None else context
        return x[0] * (4 * x[-1] * x[-1] + 2 * x[-1] * keys)

    def kv_cache(self, a, ins, outs):
        """A causal self-attention layer caches each token's key and value: 2 · E elements."""
        if a.get("mask", "none") != "causal" or len(ins) != 1:
            return None
        return 2 * ins[0][-1], a.window

    def elementwise_terms(self, a, ins, outs):
        q, k, _ = _qkv(ins, self_default=True)
        N, Tq, Tk = V("N", q[0]), V("Tq", q[1]), V("Tk", k[1])
        scores = tight(N, V("heads", a.heads), Tq, Tk)
        t = Tag(tight(N, Tq, V("E", q[-1])), "query scaling") + Tag(C(3) * scores, "softmax")
        if a.mask != "none":
            t = t + Tag(scores, "mask")
        return t + Tag(scores, "head average") if a.average_weights else t

    def explain_shape(self, a, ins, outs):
        q, k, _ = _qkv(ins, self_default=True)
        o, w = outs["out"], outs["weights"]
        e = q[-1]
        return [Line("heads", "head size d = E / heads", f"{e} / {a.heads} = {e // a.heads}", e // a.heads),
                Line("output 'out'", "(N, Tq, E)", fmt_shape(o), o),
                Line("output 'weights'", "(N, Tq, Tk), averaged over heads" if a.average_weights
                     else "(N, heads, Tq, Tk)", fmt_shape(w), w)]

    def strided_out(self, a, ins, outs, port, strided):
        """`out` is the time-major result transposed to batch first (N, T > 1)."""
        q = ins[0]
        return TIME_MAJOR if port == "out" and q[0] > 1 and q[1] > 1 else None

    def _modes(self, a, ins, need):
        q, k, v = _qkv(ins, self_default=True)
        n = len(ins)        # torch's paths: query is key is value; key is value; else separate
        kv_same = n == 2 or (n == 3 and need.is_same(1, 2))
        if n == 1 or (n == 3 and kv_same and need.is_same(0, 1)):
            mode = "self"
        else:
            mode = "kv" if kv_same and k[-1] == q[-1] else "sep"
        vi = 0 if mode == "self" else (2 if n > 2 and not need.is_same(1, 2) else 1)
        w = need.weights
        qg = need.input(0) or w
        kg = need.input(0 if mode == "self" else 1) or w
        vg = need.input(vi) or w
        return mode, vi, qg, kg, vg, qg or kg

    def saved(self, a, ins, outs, need):
        """As F.multi_head_attention_forward keeps them in training (need_weights): each
        in-projection's input (a copy: the batch-first input transposed to (T, N, E) is not
        contiguous unless N or T is 1), the projected keys and values (one (3, T, N, E) tensor for
        self-attention, (2, Tk, N, E) for a shared key/value input, else two), the scaled
        queries, the softmax's output (the `weights` port unless averaged over heads) and the
        out-projection's input; each only for a gradient that needs it."""
        q, k, v = _qkv(ins, self_default=True)
        mode, vi, qg, kg, vg, ag = self._modes(a, ins, need)
        n, tq, tk, e = q[0], q[1], k[1], q[-1]

        def x(i):
            if 1 in ins[i][:2] or need.strided_as(i) == TIME_MAJOR:     # its transpose is contiguous
                return keep_in(ins, i)
            return keep_extra(f"input {i} (T, N, E) copy", prod(ins[i]))
        out = []
        if need.weights:
            out += [x(0)] + ([x(1)] if mode != "self" else [])
            if mode == "sep":       # value = key read twice: two copies (one view when N = 1)
                out.append(x(vi) if vi == 2 or x(1).input is not None else keep_extra("value (T, N, E) copy", prod(ins[1])))
        if kg:
            out.append(keep_extra("scaled queries", n * tq * e))
        if mode == "self":
            out.append(keep_extra("q, k, v projections", 3 * n * tq * e))
        elif mode == "kv":
            out.append(keep_extra("k, v projections", 2 * n * tk * e))
        else:
            out += ([keep_extra("key projection", n * tk * e)] if qg else []) + (
                [keep_extra("value projection", n * tk * e)] if ag else [])
        if ag or vg:
            out.append(keep_extra("attention weights", n * a.heads * tq * tk) if a.average_weights
                       else keep_out(outs, "weights"))
            if a.dropout > 0:       # p = 1 multiplies by a zero scalar
                out += [keep_extra("zero", 1) if a.dropout >= 1 else
                        keep_extra("dropout mask", n * a.heads * tq * tk, "bool"),
                        keep_extra("dropped weights", n * a.heads * tq * tk)]
        if need.weights:
            out.append(keep_extra("out-projection input", n * tq * e))
        return out

    def backward_macs_terms(self, a, ins, outs, need):
        """Each product's gradient for each operand that needs one, at its forward MACs: the
        in-projections' inputs and weights, the scores' two operands, α and V, the
        out-projection's input and weight."""
        mode, vi, qg, kg, vg, ag = self._modes(a, ins, need)
        fwd = dict(self.mac_parts(a, ins))
        w = need.weights
        xin = {"query projection": need.input(0), "key projection": need.input(0 if mode == "self" else 1),
               "value projection": need.input(vi)}
        parts = []
        for p, on in xin.items():
            parts += [(f"grad {x}: {p}", fwd[p]) for x, on2 in (("input", on), ("weight", w)) if on2]
        parts += [(f"grad {x}: scores QKᵀ", fwd["scores QKᵀ"]) for x, on in (("Q", qg), ("K", kg)) if on]
        parts += [(f"grad {x}: α·V", fwd["weighted sum α·V"]) for x, on in (("α", ag), ("V", vg)) if on]
        parts += [(f"grad {x}: output projection", fwd["output projection"]) for x, on in (("input", ag or vg), ("weight", w)) if on]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def torch_spec(self, a, ins, outs):
        q, k, v = _qkv(ins, self_default=True)
        e = q[-1]
        kw = dict(dropout=float(a.dropout), bias=a.bias, average_weights=a.average_weights)
        if a.mask != "none":
            kw.update(mask=a.mask, window=a.window)
        if k[-1] != e or v[-1] != e:
            kw.update(kdim=k[-1], vdim=v[-1])
        return lowered("BatchFirstMHA", e, a.heads, **kw)
