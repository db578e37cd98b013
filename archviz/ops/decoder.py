"""`attention_gru`: a GRU decoder whose attention context is fed back into the recurrence,
as in Bahdanau, Cho & Bengio 2015 ("Neural machine translation by jointly learning to
align and translate", §3.1 and Appendix A.2):

    e_ij = v_aᵀ tanh(W_a s_{i−1} + U_a h_j)        the previous state scores each annotation
    α_i  = softmax_j(e_ij)                          attention weights over the source
    c_i  = Σ_j α_ij h_j                             the context of step i
    s_i  = GRU([y_{i−1}; c_i], s_{i−1})             the context enters the recurrence

The decoder's input at step i is the embedding of the previous target token y_{i−1}
(teacher forcing: the whole target sequence is given), so x is
(N, T, E) — the spec's target input holds y_0..y_T−1, the target shifted right by the
data — the annotations ("memory") (N, Tk, M), and an optional initial state s_0 (N, h)
(the paper: s_0 = tanh(W_s ←h_1), built in the spec; zeros when absent).  Outputs: ``out``
(N, T, h) the states s_1..s_T, ``context`` (N, T, M) the c_i, ``weights`` (N, T, Tk) the α_i.

Parameters: the attention's W_a (A, h) (+ bias), U_a (A, M), v_a (1, A); the GRU cell's
weight_ih (3h, E + M), weight_hh (3h, h) and torch's two bias vectors (3h each).

MACs (bias adds not counted).  U_a h_j does not depend on i: it is computed once
(the paper, App. A.1.2: "U_a h_j can be pre-computed").  Per step: the query projection
N·h·A, the scores N·Tk·A (v_aᵀ ·), the context N·Tk·M and the GRU cell
N·3h·(E + M + h); times T.

Element-wise, per step: the additive score's add and tanh 2·N·Tk·A, the softmax 3·N·Tk,
the GRU's 11·N·h (see ops/recurrent.py); times T.
"""
from __future__ import annotations

from math import prod

from archviz.errors import OpError
from archviz.ops.base import Attr, Line, Op, fmt_shape, keep_extra, keep_in, register_op
from archviz.ops.terms import C, Parts, Prod, V, tight
from archviz.ops.describe import Cell, Keeps, Recurrence, Role, lowered
from archviz.ops.recurrent import recurrent_caption


@register_op
class AttentionGRU(Op):
    name = "attention_gru"
    family = "recurrent"
    role = Role.RECURRENT
    label = "GRU + attention"
    features_last = True
    keeps = Keeps.INPUTS
    doc = ("GRU decoder with additive attention fed back (Bahdanau et al. 2015): per step, "
           "c_i = Σ α_ij h_j with α from v_aᵀ tanh(W_a s_i−1 + U_a h_j), s_i = GRU([y_i−1; c_i], s_i−1). "
           "Inputs x (N, T, E), memory (N, Tk, M), optional h0 (N, h); outputs out (N, T, h), "
           "context (N, T, M), weights (N, T, Tk).")
    attrs = {
        "out": Attr("pos_int", doc="hidden size h of the decoder GRU"),
        "dim": Attr("pos_int", None, "attention size A (default h)"),
        "bias": Attr("bool", True, "the GRU cell's biases (bias_ih and bias_hh)"),
        "score_bias": Attr("bool", False, "a bias on the query projection W_a"),
    }
    input_ports = ("x", "memory", "h0")
    outputs = ("out", "context", "weights")
    min_inputs, max_inputs = 2, 3
    samples = [
        {"attrs": {"out": 6}, "inputs": [(2, 4, 5), (2, 7, 8)]},
        {"attrs": {"out": 5, "dim": 3, "score_bias": True, "bias": False}, "inputs": [(3, 2, 4), (3, 6, 2), (3, 5)]},
    ]

    def caption(self, a):
        return recurrent_caption(a)

    def recurrence(self, a):
        """A GRU whose input at every step is [x_t; c_t], c_t attended over `memory`."""
        return Recurrence(Cell.GRU, a.out, a.out, state_in=("h0",), memory="memory")

    def _a(self, a):
        return a.dim or a.out

    def check(self, a, ins):
        x, mem = ins[0], ins[1]
        if len(x) != 3:
            raise OpError(f"x must be a sequence (N, T, E), got {fmt_shape(x)}", input_index=0)
        if len(mem) != 3:
            raise OpError(f"memory must be (N, Tk, M), got {fmt_shape(mem)}", input_index=1)
        if mem[0] != x[0]:
            raise OpError(f"memory batch {mem[0]} differs from x batch {x[0]}", input_index=1)
        if len(ins) > 2 and tuple(ins[2]) != (x[0], a.out):
            raise OpError(f"h0 must be (N, out) = {fmt_shape((x[0], a.out))}, got {fmt_shape(ins[2])}",
                          input_index=2)

    def infer_shape(self, a, ins):
        (n, t, _), (_, tk, m) = ins[0], ins[1]
        return {"out": (n, t, a.out), "context": (n, t, m), "weights": (n, t, tk)}

    # The numbers are the `attention` op's (additive score, one query per step: query
    # (N, T, h), keys and values the memory) and the `gru_cell` op's (N·T steps of input
    # E + M): each formula lives once.
    def _parts(self, a, ins):
        from archviz.ops.base import registry
        (n, t, e), mem = ins[0], ins[1]
        att, cell = registry["attention"], registry["gru_cell"]
        aa = att.attrs_of({"score": "additive", "dim": self._a(a), "bias": a.score_bias})
        ca = cell.attrs_of({"out": a.out, "bias": a.bias})
        return (att, aa, [(n, t, a.out), tuple(mem)]), (cell, ca, [(n * t, e + mem[-1])])

    def param_tensors(self, a, ins):
        (att, aa, ai), (cell, ca, ci) = self._parts(a, ins)
        return [("attn." + nm, s, k) for nm, s, k in att.param_tensors(aa, ai)] + \
            [("cell." + nm, s, k) for nm, s, k in cell.param_tensors(ca, ci)]

    def macs_terms(self, a, ins, outs):
        """The attention op's parts (its key projection once, over the memory) and the
        gru_cell op's MACs over N·T steps of input [y_i−1; c_i]: each formula lives once."""
        (att, aa, ai), (cell, ca, ci) = self._parts(a, ins)
        parts = [(w.replace("key projection U_a k", "key projection U_a h_j (once)"), t) for w, t in att.mac_parts(aa, ai)]
        parts.append(("GRU cell over [y_i−1; c_i] (N = N·T steps, x = E + M)", cell.macs_terms(ca, ci, {})))
        return Parts(parts, " (bias adds not counted)", total="key projection + T × (query, scores, context, GRU cell)")

    def _grads(self, a, ins, need):
        """(attention steps with a gradient, state steps with a gradient): step 0's scores need
        one only through trainable weights, the memory or h0; its state only through h0."""
        t, w = ins[0][1], need.weights
        h0 = len(ins) > 2 and need.input(2)
        att0 = w or need.input(1) or h0
        return t - (0 if att0 else 1), t - (0 if h0 else 1)

    def saved(self, a, ins, outs, need):
        """As the lowered module (seq_modules.AttentionGRU) keeps it on CPU: per step the
        tanh(W_a s + U_a h_j) (N·Tk·A) and α (N·Tk), the memory (read by every α·h_j), the
        GRU cell's hidden gates and three N·h tensors; for trainable weights the memory (U_a),
        the initial state, each cell input [y; c] and each state read by the next step."""
        (n, t, e), (_, tk, m) = ins[0], ins[1]
        h, A, w = a.out, self._a(a), need.weights
        att, _ = self._grads(a, ins, need)
        out = []
        if w:
            mem = keep_extra("memory, a contiguous copy", prod(ins[1])) if need.is_strided(1) else keep_in(ins, 1)
            out += [mem, keep_in(ins, 2) if len(ins) > 2 else keep_extra("zero h0", n * h),
                    keep_extra("cell inputs [y; c]", t * n * (e + m)), keep_extra("states s_1..s_T−1", (t - 1) * n * h)]
        if att:
            out += [keep_extra("tanh(W_a s + U_a h)", att * n * tk * A), keep_extra("α", att * n * tk), keep_in(ins, 1)]
        return out + [keep_extra("hidden gates", t * 3 * n * h), keep_extra("candidate and in-place factors", t * 3 * n * h)]

    def backward_macs_terms(self, a, ins, outs, need):
        """Each product's gradient for each operand that needs one, at its forward MACs: U_a h_j
        once; per step W_a s, v_aᵀ tanh, α·h_j and the GRU cell's W_ih [y; c] and W_hh s."""
        (n, t, e), (_, tk, m) = ins[0], ins[1]
        h, A, w = a.out, self._a(a), need.weights
        att, st = self._grads(a, ins, need)
        N, Tk, M, H, AA, T = V("N", n), V("Tk", tk), V("M", m), V("h", h), V("A", A), V("T", t)
        ua, wa, va, bm = Prod(N, Tk, M, AA), tight(N, H, AA), tight(N, Tk, AA), tight(N, Tk, M)
        ih, hh = tight(N, C(3), H, V("E + M", e + m)), tight(N, C(3), H, H)
        cell_in = t if need.input(0) else att
        rows = [("grad memory: U_a h_j", ua, 1, need.input(1)), ("grad U_a", ua, 1, w),
                ("grad s: W_a s", wa, st, True), ("grad W_a", wa, t, w),
                ("grad tanh: v_aᵀ", va, att, True), ("grad v_a", va, t, w),
                ("grad α: α·h_j", bm, att, True), ("grad memory: α·h_j", bm, t, need.input(1)),
                ("grad [y; c]: W_ih", ih, cell_in, True), ("grad W_ih", ih, t, w),
                ("grad s: W_hh", hh, st, True), ("grad W_hh", hh, t, w)]
        parts = [(p, term if k == 1 else Prod(V("steps", k), term)) for p, term, k, on in rows if on and k]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def elementwise_terms(self, a, ins, outs):
        (att, aa, ai), (cell, ca, ci) = self._parts(a, ins)
        return Parts([("attention (additive)", att.elementwise_terms(aa, ai, {})),
                      ("GRU cell (N = N·T steps)", cell.elementwise_terms(ca, ci, {}))], what="element-wise ops")

    def explain_shape(self, a, ins, outs):
        (_, t, e), (_, tk, m) = ins[0], ins[1]
        return [Line("recurrence", "s_i = GRU([y_i−1; c_i], s_i−1), c_i = Σ_j α_ij h_j, "
                     "α_i = softmax(v_aᵀ tanh(W_a s_i−1 + U_a h_j)), i = 1..T (teacher forcing)",
                     f"T = {t} steps over Tk = {tk} annotations", t),
                Line("GRU cell input", "[y_i−1; c_i]: E + M", f"{e} + {m} = {e + m}", e + m)] + \
            [Line(f"output '{p}'", doc, fmt_shape(outs[p]), outs[p]) for p, doc in
             (("out", "(N, T, h): the states s_1..s_T"), ("context", "(N, T, M): the contexts c_i"),
              ("weights", "(N, T, Tk): α_i, each row sums to 1"))]

    def receptive_field(self, a, ins, outs):
        """The state s_i reads the inputs x_0..x_i (a causal prefix); the context c_i and the
        weights α_i come from s_i−1, so they read x_0..x_i−1 (nothing of x at i = 0).  All
        read the whole memory (attention) and the initial state."""
        from archviz.ops import rfmaps as R
        x = ins[0]

        def seq(lag):
            return R.Deps([(0, R.IDENTITY), (1, R.Prefix(x[1], lag)), (None, R.All(x[2]))])
        return {p: [seq(0 if p == "out" else 1)] + ["global"] * (len(ins) - 1) for p in outs}

    def torch_spec(self, a, ins, outs):
        return lowered("AttentionGRU", ins[0][-1], ins[1][-1], a.out, dim=self._a(a), bias=a.bias,
                    score_bias=a.score_bias)
