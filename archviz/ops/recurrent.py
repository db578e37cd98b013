"""Recurrent ops: embedding; rnn, lstm, gru (whole sequences).  One step of them, the cells
rnn_cell, lstm_cell and gru_cell, are in archviz.ops.cells.

Sequences are batch-first (N, T, F).  The sequence ops follow torch.nn.RNN / LSTM / GRU
(batch_first=True) exactly — parameter names and shapes, output ports:

    out  (N, T, D·h_out)      every time step of the last layer (both directions concatenated)
    h    (L·D, N, h_out)      the final hidden state of every layer and direction (batch second!)
    c    (L·D, N, h)          LSTM only: the final cell state

with D = 2 if bidirectional else 1, L = num_layers, h_out = proj_size or h.  Optional
inputs (ports ``h0`` and, for LSTM, ``c0``) give the initial state; a (N, h) state is
accepted where L·D = 1.

Parameters.  torch keeps *two* bias vectors per gate set (b_ih and b_hh, whose sum is the
textbook's single bias b), so one layer and direction with G gate sets has

    G · (h·(x + h) + 2h)        G = 1 (RNN), 3 (GRU), 4 (LSTM)

while the textbook formula (one bias per gate) gives G · (h·(x + h) + h).  x is the layer's
input size: F for layer 0, D·h_out above it.  (torch.nn.RNN / LSTM / GRU docs, "Variables";
Goodfellow et al., Deep Learning, §10.2 and §10.10.)

MACs (bias adds not counted): per time step, per layer and direction, the two matrix
products W_ih·x_t and W_hh·h_{t−1}: G·h·(x + h_out), plus h·h_out for the LSTM projection
W_hr; times N·T.  The recurrence with no initial state still multiplies W_hh by the zero
state (torch does), so it is counted for every step.

Element-wise operations per hidden unit, per step, layer and direction (bias adds not
counted, as for MACs):

    RNN   2:  a = W_ih x + W_hh h (1 add), h' = tanh(a)
    GRU  11:  r, z: 2 adds + 2 σ;  n = tanh(W_in x + r ⊙ (W_hn h)): 1 mul, 1 add, 1 tanh;
              h' = (1 − z) ⊙ n + z ⊙ h: 1 sub, 2 mul, 1 add
    LSTM 13:  i, f, g, o: 4 adds, 3 σ, 1 tanh;  c' = f ⊙ c + i ⊙ g: 2 mul, 1 add;
              h' = o ⊙ tanh(c'): 1 tanh, 1 mul

Dropout between layers is the identity at inference and counts 0.  Embedding is a table
lookup: 0 MACs, 0 element-wise operations.
"""
from __future__ import annotations

from archviz.errors import OpError
from archviz.ops.base import (MAX_LAYERS, UNBATCHED, Attr, Line, NoMacs, Op, fmt_shape, keep_extra, keep_in, keep_out,
                              register_op)
from archviz.ops.terms import C, Fold, Parts, Prod, Sum, Tag, V, tight
from archviz.ops.describe import Cell, Keeps, Recurrence, Role, lowered
from archviz.ops.saved import TIME_MAJOR

GATES = {c.value: c.gates for c in Cell}     # gate sets per kind (W_ih has G·h rows)
_EW_PER_UNIT = {"rnn": 2, "gru": 11, "lstm": 13}
_GATE_NAMES = {"rnn": "the hidden update", "gru": "reset r, update z, candidate n",
               "lstm": "input i, forget f, candidate g, output o"}
# What the second bias means, per kind: for RNN and LSTM (and GRU's r, z) only b_ih + b_hh
# enters the computation; GRU's candidate n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn)) puts
# b_hn under the reset gate, so it is a different function from a GRU with one bias.
_BIAS_NOTE = {
    "rnn": "Only their sum b_ih + b_hh enters h_t: one of them is redundant.",
    "lstm": "Only their sums b_ih + b_hh enter the gates: one of them is redundant.",
    "gru": "For r and z only the sums b_ih + b_hh matter, but the candidate "
           "n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn)) puts b_hn under the reset gate: "
           "torch's GRU is not the one-bias GRU written differently.",
}


# -- embedding ---------------------------------------------------------------------
@register_op
class Embedding(NoMacs, Op):
    name = "embedding"
    family = "recurrent"
    no_macs_why = "a table lookup (one-hot × W without the multiplications)"
    role = Role.EMBEDDING
    features_last = True
    keeps = Keeps.INPUTS     # the token ids (to scatter the gradient into the table)
    doc = ("Table lookup of integer token ids (torch.nn.Embedding): (N, ...) → (N, ..., dim); "
           "weight (num, dim).")
    attrs = {
        "num": Attr("pos_int", doc="vocabulary size (number of embeddings)"),
        "dim": Attr("pos_int", doc="embedding dimension"),
        "padding_idx": Attr("int", None, "index whose embedding is fixed at zero (still a parameter)"),
    }
    samples = [{"attrs": {"num": 50, "dim": 8}, "inputs": [(2, 7)]},
               {"attrs": {"num": 12, "dim": 5, "padding_idx": 0}, "inputs": [(3, 4, 2)]}]

    def caption(self, a):
        return f"{a.get('num')} → {a.get('dim')}"

    def token_vocab(self, a):
        return a.num

    def check(self, a, ins):
        if a.padding_idx is not None and not -a.num <= a.padding_idx < a.num:
            raise OpError(f"padding_idx={a.padding_idx} must be within the vocabulary of {a.num}",
                          attr="padding_idx")

    def infer_shape(self, a, ins):
        return {"out": (*ins[0], a.dim)}

    def param_tensors(self, a, ins):
        return [("weight", (a.num, a.dim), "param")]

    def tensor_parallel(self, a, ins, outs, split, t):
        """Megatron's vocabulary-parallel embedding: each device its rows (the vocabulary
        padded to a multiple of t), the output whole after an all-reduce."""
        return {"weight": 0}, {"out": False}

    def saved(self, a, ins, outs, need):
        """The token ids (int64), to scatter the gradient into the table: only for a trainable
        table (the ids need no gradient)."""
        return [keep_in(ins, 0, "int64")] if need.weights else []

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(N, ..., dim): one dim-vector per token id", fmt_shape(o), o)]


    def torch_spec(self, a, ins, outs):
        return lowered("nn.Embedding", a.num, a.dim, padding_idx=a.padding_idx)

    def receptive_field(self, a, ins, outs):
        """A lookup per token: each output vector reads its own token."""
        from archviz.ops import rfmaps as R
        return {"out": [R.pointwise(ins[0])]}


# -- whole-sequence recurrences ----------------------------------------------------------
def recurrent_caption(a) -> str:
    """'128', '128, 2 layers' or '128, bidirectional' (the hidden size first)."""
    if "out" not in a:
        return ""
    extra = [f"{a['num_layers']} layers"] if a.get("num_layers", 1) not in (None, 1) else []
    return ", ".join([str(a["out"])] + extra + (["bidirectional"] if a.get("bidirectional") is True else []))


class _Recurrent(Op):
    family = "recurrent"
    role = Role.RECURRENT
    features_last = True
    keeps = Keeps.BOTH       # cuDNN's backward reads the input and the output sequence
    kind = ""                 # rnn / gru / lstm
    min_inputs, max_inputs = 1, 2
    outputs = ("out", "h")
    input_ports = ("x", "h0")
    torch_class = ""

    @property
    def label(self):
        return Cell(self.kind).title

    def caption(self, a):
        return recurrent_caption(a)

    def recurrence(self, a):
        d, ho = self._dims(a)
        return Recurrence(Cell(self.kind), a.out, ho, a.num_layers, d, state_in=self.input_ports[1:],
                          state_out=self.outputs[1:])

    def static_batch(self, a):
        """torch's exporter builds the zero initial states with the traced batch size."""
        return True

    def _dims(self, a):
        """(D, h_out): directions and the size of the emitted hidden state."""
        d = 2 if a.bidirectional else 1
        return d, (a.get("proj_size") or a.out)

    def _layers(self, a, f):
        """[(layer, input size)]: layer 0 reads F, layer l > 0 reads D·h_out."""
        d, ho = self._dims(a)
        return [(l, f if l == 0 else d * ho) for l in range(a.num_layers)]

    def _state_shapes(self, a, x):
        d, ho = self._dims(a)
        hs = (a.num_layers * d, x[0], ho)
        cs = (a.num_layers * d, x[0], a.out)
        return hs, cs

    def check(self, a, ins):
        x = ins[0]
        if len(x) != 3:
            raise OpError(f"expects a batch-first sequence (N, T, F), got {fmt_shape(x)}"
                          + (f" (a 2-D input: {UNBATCHED})" if len(x) == 2 else ""), input_index=0)
        if not 0 <= a.dropout <= 1:   # torch: "dropout should be a number in range [0, 1]"
            raise OpError(f"dropout={a.dropout} must be in [0, 1]", attr="dropout")
        hs, cs = self._state_shapes(a, x)
        names = self.input_ports[1:]
        for i, (s, want) in enumerate(zip(ins[1:], (hs, cs)[:len(names)]), start=1):
            ok = tuple(s) == want or (want[0] == 1 and tuple(s) == want[1:])
            if not ok:
                alt = f" or {fmt_shape(want[1:])}" if want[0] == 1 else ""
                raise OpError(f"initial state '{names[i - 1]}' must be (num_layers·D, N, size) = "
                              f"{fmt_shape(want)}{alt}, got {fmt_shape(s)}", input_index=i,
                              hint="the state layout is torch's: layers·directions first, batch second")

    def infer_shape(self, a, ins):
        x = ins[0]
        d, ho = self._dims(a)
        hs, cs = self._state_shapes(a, x)
        out = {"out": (x[0], x[1], d * ho), "h": hs}
        if self.kind == "lstm":
            out["c"] = cs
        return out

    # -- parameters ------------------------------------------------------------
    def param_tensors(self, a, ins):
        g = GATES[self.kind]
        d, ho = self._dims(a)
        t = []
        for l, xin in self._layers(a, ins[0][-1]):
            for sfx in ("", "_reverse")[:d]:
                t.append((f"weight_ih_l{l}{sfx}", (g * a.out, xin), "param"))
                t.append((f"weight_hh_l{l}{sfx}", (g * a.out, ho), "param"))
                if a.bias:
                    t.append((f"bias_ih_l{l}{sfx}", (g * a.out,), "param"))
                    t.append((f"bias_hh_l{l}{sfx}", (g * a.out,), "param"))
                if a.get("proj_size"):
                    t.append((f"weight_hr_l{l}{sfx}", (ho, a.out), "param"))
        return t

    def explain_params(self, a, ins):
        g = GATES[self.kind]
        d, ho = self._dims(a)
        h = a.out
        nb = 2 if a.bias else 0
        proj = a.get("proj_size") or 0
        lines = []
        total = textbook = 0
        for l, xin in self._layers(a, ins[0][-1]):
            per = g * (h * (xin + ho) + nb * h) + proj * h
            tb = g * (h * (xin + ho) + (1 if a.bias else 0) * h) + proj * h
            total += d * per
            textbook += d * tb
            bias_f = " + 2h" if a.bias else ""
            pf = " + p·h (W_hr)" if proj else ""
            pn = f" + {proj}·{h}" if proj else ""
            hh = "p" if proj else "h"
            lines.append(Line(
                f"params: layer {l}" + (" (each of 2 directions)" if d == 2 else ""),
                f"G·(h·(x + {hh}){bias_f}){pf}   G = {g} ({_GATE_NAMES[self.kind]}), "
                f"x = {'F' if l == 0 else 'D·' + hh}",
                f"{g}·({h}·({xin} + {ho})" + (f" + 2·{h}" if a.bias else "") + f"){pn} = {per:,}"
                + (f";  × 2 directions = {2 * per:,}" if d == 2 else ""), d * per))
        lines.append(Line("params", "Σ layers × directions (= Σ numel of torch's weight_*/bias_* tensors)",
                          f"{total:,}", total))
        if a.bias:
            lines.append(Line(
                "params: torch vs textbook",
                "torch keeps two biases per gate set (bias_ih and bias_hh): "
                "G·(h·(x + h) + 2h); the textbook's single bias b gives G·(h·(x + h) + h). " + _BIAS_NOTE[self.kind],
                f"torch {total:,} vs textbook {textbook:,} (difference L·D·G·h = "
                f"{a.num_layers}·{d}·{g}·{h} = {total - textbook:,})", textbook))
        return lines

    # -- MACs ------------------------------------------------------------------
    def _layer_step_macs(self, a, xin):
        g = GATES[self.kind]
        _, ho = self._dims(a)
        return g * a.out * (xin + ho) + (a.get("proj_size") or 0) * a.out

    def macs_terms(self, a, ins, outs):
        """MACs = N · T · D · Σ_layers [G·h·(x_l + h_out) (+ h·p)], one part per layer."""
        n, t = ins[0][0], ins[0][1]
        g, (d, ho), proj = GATES[self.kind], self._dims(a), a.get("proj_size") or 0
        G, h = V("G", g), V("h", a.out)
        parts = []
        for l, xin in self._layers(a, ins[0][-1]):
            step = Sum(Tag(tight(G, h, V("x", xin)), "W_ih x_t"), Tag(tight(G, h, V("h_out", ho)), "W_hh h_t−1"),
                       *([tight(h, V("p", proj))] if proj else []))
            head = Prod(V("N", n), V("T", t), V("D", d))
            parts.append((f"layer {l}", head * step, "   per step × T", (head * Fold(step, result=True),)))
        return Parts(parts, " (bias adds not counted)", total="Σ layers")

    def decode_macs(self, a, ins, outs, tokens, context):
        """One step per new token: MACs / T (its state, not a cache, carries the past)."""
        if a.bidirectional:
            raise OpError("a bidirectional layer reads later tokens: it cannot decode one token at a time",
                          attr="bidirectional")
        if ins[0][1] != tokens:
            raise OpError(f"runs over {ins[0][1]} steps, not the model's {tokens} tokens")
        return self.count_macs(a, ins, outs) // tokens

    # -- training (the CPU kernel's step-by-step decomposition, aten/native/RNN.cpp) --------
    def strided_out(self, a, ins, outs, port, strided):
        """`out` is the time-major result transposed to batch first: not contiguous when N, T > 1."""
        return TIME_MAJOR if port == "out" and ins[0][0] > 1 and ins[0][1] > 1 else None

    def saved(self, a, ins, outs, need):
        """What torch's CPU kernel (oneDNN off) keeps, per layer and direction over T steps:
        RNN each step's output; GRU the hidden gates (3·N·h) and three N·h tensors a step (the
        candidate, and the two factors its in-place updates needed), and each new state for
        W_hh; LSTM the gates (4·N·h), tanh(c_t) and c_t−1 a step, and each h_t for W_hh (and
        the pre-projection h for W_hr).  For trainable weights, each layer's input (layer 0's
        transposed input is copied per direction unless N or T is 1) and the initial hidden state;
        an LSTM always keeps its initial cell state.  Dropout between layers keeps its mask
        (the activation dtype, as on CPU).  On CUDA, cuDNN keeps a reserve space instead."""
        n, t, f = ins[0]
        d, ho = self._dims(a)
        h, layers, w = a.out, a.num_layers, need.weights
        steps, nh = layers * d * t, n * h
        chain = layers * d * (t - 1)            # states carried to a next step
        out = []
        if w:
            out.append(keep_in(ins, 1) if len(ins) > 1 else keep_extra("zero h0", layers * d * n * ho))
            view = n == 1 or t == 1 or need.strided_as(0) == TIME_MAJOR      # its transpose is contiguous
            out.append(keep_in(ins, 0) if view else keep_extra("layer 0 input, (T, N, F) copies", d * n * t * f))
            if layers > 1:
                out.append(keep_extra("inputs of layers 1..L−1", (layers - 1) * n * t * d * ho))
        if self.kind == "rnn":
            out.append(keep_extra("step outputs", steps * nh))
        elif self.kind == "gru":
            out.append(keep_extra("hidden gates W_hh h + b_hh", steps * 3 * nh))
            out.append(keep_extra("candidate and in-place factors", steps * 3 * nh))
            if w:
                out.append(keep_extra("states h_t read by W_hh", chain * nh))
        else:
            if len(ins) < 3:
                out.append(keep_extra("zero c0", layers * d * n * h))
            elif w or need.input(0) or need.input(1) or layers > 1:     # f·c0 keeps c0 where f needs a gradient
                out.append(keep_in(ins, 2))
            out.append(keep_extra("gates", steps * 4 * nh))
            out.append(keep_extra("tanh(c_t)", steps * nh))
            out.append(keep_extra("cell states c_t read by the next step", chain * nh))
            if w:
                out.append(keep_extra("states h_t read by W_hh", chain * n * ho))
                if a.proj_size:
                    out.append(keep_extra("h before the projection W_hr", steps * nh))
        if layers > 1 and a.dropout > 0:        # p = 1 multiplies by a zero scalar
            out.append(keep_extra("dropout masks between layers", (layers - 1) * (1 if a.dropout == 1 else n * t * d * ho)))
        return out

    def backward_macs_terms(self, a, ins, outs, need):
        """Per layer: W_ih x over all steps (grad of the layer's input, grad W_ih), W_hh h per
        step (grad of h_t−1 on every step but the first, and on the first where an initial
        state needs one; grad W_hh), and an LSTM projection W_hr (grad h, grad W_hr); each
        at the forward MACs of its product."""
        n, t = ins[0][0], ins[0][1]
        g, (d, ho), proj = GATES[self.kind], self._dims(a), a.get("proj_size") or 0
        w = need.weights
        h0 = 1 if len(ins) > 1 and need.input(1) else 0
        G, h, N, T, D = V("G", g), V("h", a.out), V("N", n), V("T", t), V("D", d)
        parts = []
        for l, xin in self._layers(a, ins[0][-1]):
            ih = Prod(N, T, D, G, h, V("x", xin))
            hh = tight(G, h, V("h_out", ho))
            if l > 0 or need.input(0):
                parts.append((f"layer {l}: grad input", ih))
            if w:
                parts.append((f"layer {l}: grad W_ih", ih))
            steps = t - 1 + h0
            if steps:
                parts.append((f"layer {l}: grad h_t−1", Prod(N, V("steps", steps), D, hh)))
            if w:
                parts.append((f"layer {l}: grad W_hh", Prod(N, T, D, hh)))
            if proj:
                hr = Prod(N, T, D, h, V("p", proj))
                parts += [(f"layer {l}: grad h (W_hr)", hr)] + ([(f"layer {l}: grad W_hr", hr)] if w else [])
        return Parts(parts)

    def elementwise_terms(self, a, ins, outs):
        n, t = ins[0][0], ins[0][1]
        d, _ = self._dims(a)
        return Prod(C(_EW_PER_UNIT[self.kind]), V("N", n), V("T", t), V("D", d), V("L", a.num_layers), V("h", a.out))

    @property
    def elementwise_note(self):
        return f" ({_EW_PER_UNIT[self.kind]} gate operations per hidden unit and step; see ops/recurrent.py)"


    def explain_shape(self, a, ins, outs):
        x = ins[0]
        d, ho = self._dims(a)
        lines = [Line("output 'out'", "(N, T, D·h_out): every step of the last layer, directions concatenated",
                      f"({x[0]}, {x[1]}, {d}·{ho}) = {fmt_shape(outs['out'])}", outs["out"]),
                 Line("output 'h'", "(L·D, N, h_out): final hidden state per layer and direction (torch layout)",
                      f"({a.num_layers}·{d}, {x[0]}, {ho}) = {fmt_shape(outs['h'])}", outs["h"])]
        if "c" in outs:
            lines.append(Line("output 'c'", "(L·D, N, h): final cell state per layer and direction",
                              f"({a.num_layers}·{d}, {x[0]}, {a.out}) = {fmt_shape(outs['c'])}", outs["c"]))
        return lines

    def _torch_kwargs(self, a):
        return dict(num_layers=a.num_layers, bias=a.bias, dropout=float(a.dropout),
                    bidirectional=a.bidirectional)

    def torch_spec(self, a, ins, outs):
        return lowered(self.torch_class, ins[0][-1], a.out, **self._torch_kwargs(a))

    def receptive_field(self, a, ins, outs):
        """`out` at step t reads steps 0..t (unidirectional: a causal prefix) or every step
        (bidirectional), all features; the final states `h`/`c` read every step; an initial
        state is read whole."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        rest = ["global"] * (len(ins) - 1)
        if len(x) != 3:
            return {p: ["global"] + rest for p in outs}
        t = R.All(x[1]) if a.bidirectional else R.Prefix(x[1])
        seq = R.Deps([(0, R.IDENTITY), (None, t) if t.const else (1, t), (None, R.All(x[2]))])
        return {p: ([seq] if p == "out" else ["global"]) + rest for p in outs}


_SEQ_ATTRS = {
    "out": Attr("pos_int", doc="hidden size h (torch: hidden_size)"),
    "num_layers": Attr("pos_int", 1, f"stacked recurrent layers (at most {MAX_LAYERS})", max=MAX_LAYERS),
    "bidirectional": Attr("bool", False, "also run right-to-left; outputs concatenate both directions"),
    "bias": Attr("bool", True, "learn the biases (torch keeps two per gate set: bias_ih and bias_hh)"),
    "dropout": Attr("float", 0.0, "dropout between layers in training (identity at inference)"),
}


@register_op
class RNN(_Recurrent):
    name = "rnn"
    kind = "rnn"
    torch_class = "SeqRNN"
    doc = ("Elman RNN over (N, T, F) (torch.nn.RNN, batch_first): h_t = tanh(W_ih x_t + b_ih + W_hh h_t−1 "
           "+ b_hh). Ports: out (N, T, D·h), h (L·D, N, h). Inputs: x, optional h0.")
    attrs = {**_SEQ_ATTRS, "nonlinearity": Attr("str", "tanh", "tanh or relu", ("tanh", "relu"))}
    samples = [
        {"attrs": {"out": 16}, "inputs": [(2, 5, 10)]},
        {"attrs": {"out": 8, "num_layers": 2, "bidirectional": True, "nonlinearity": "relu"},
         "inputs": [(3, 4, 6), (4, 3, 8)]},
        {"attrs": {"out": 7, "bias": False}, "inputs": [(1, 3, 5), (1, 7)]},
    ]

    def _torch_kwargs(self, a):
        return {**super()._torch_kwargs(a), "nonlinearity": a.nonlinearity}


@register_op
class GRU(_Recurrent):
    name = "gru"
    kind = "gru"
    torch_class = "SeqGRU"
    doc = ("GRU over (N, T, F) (torch.nn.GRU, batch_first): reset r, update z, candidate n; "
           "h_t = (1 − z)⊙n + z⊙h_t−1. Ports: out (N, T, D·h), h (L·D, N, h). Inputs: x, optional h0.")
    attrs = dict(_SEQ_ATTRS)
    samples = [
        {"attrs": {"out": 12}, "inputs": [(2, 6, 9)]},
        {"attrs": {"out": 6, "num_layers": 3, "bidirectional": True, "dropout": 0.2}, "inputs": [(2, 3, 5)]},
        {"attrs": {"out": 5, "num_layers": 2}, "inputs": [(3, 4, 4), (2, 3, 5)]},
    ]


@register_op
class LSTM(_Recurrent):
    name = "lstm"
    kind = "lstm"
    torch_class = "SeqLSTM"
    outputs = ("out", "h", "c")
    input_ports = ("x", "h0", "c0")
    min_inputs, max_inputs = 1, 3
    doc = ("LSTM over (N, T, F) (torch.nn.LSTM, batch_first): gates i, f, g, o; c_t = f⊙c_t−1 + i⊙g, "
           "h_t = o⊙tanh(c_t). Ports: out (N, T, D·h_out), h (L·D, N, h_out), c (L·D, N, h). "
           "Inputs: x, optional h0 and c0 (both). proj_size adds torch's projection W_hr (h_out = proj_size).")
    attrs = {**_SEQ_ATTRS, "proj_size": Attr("nonneg_int", 0, "LSTM projection size p < h (0: none)")}
    samples = [
        {"attrs": {"out": 16}, "inputs": [(2, 5, 10)]},
        {"attrs": {"out": 8, "num_layers": 2, "bidirectional": True}, "inputs": [(3, 4, 6)]},
        {"attrs": {"out": 6, "num_layers": 2}, "inputs": [(2, 3, 4), (2, 2, 6), (2, 2, 6)]},
        {"attrs": {"out": 9, "proj_size": 4, "bidirectional": True, "num_layers": 2, "bias": False},
         "inputs": [(2, 3, 5)]},
        {"attrs": {"out": 4}, "inputs": [(2, 3, 5), (1, 2, 4), (1, 2, 4)]},
    ]

    def check(self, a, ins):
        if len(ins) == 2:
            raise OpError("give both initial states h0 and c0, or neither (torch takes the pair)",
                          input_index=1)
        if a.proj_size and a.proj_size >= a.out:
            raise OpError(f"proj_size={a.proj_size} must be smaller than the hidden size out={a.out} (as in torch)",
                          attr="proj_size")
        super().check(a, ins)

    def _torch_kwargs(self, a):
        kw = super()._torch_kwargs(a)
        if a.proj_size:
            kw["proj_size"] = a.proj_size
        return kw
