"""Recurrent cells: rnn_cell, lstm_cell, gru_cell (torch.nn.RNNCell / LSTMCell / GRUCell):
one time step, x (N, F) and an optional state → the next state.  Gates, parameters, MACs
and element-wise counts as for the whole-sequence ops (see archviz.ops.recurrent), for
one step, one layer and one direction.
"""
from __future__ import annotations

from archviz.errors import OpError
from archviz.ops.base import UNBATCHED, Attr, Line, Op, fmt_shape, keep_extra, keep_in, keep_out, register_op
from archviz.ops.terms import C, Parts, Prod, Sum, Tag, V, tight
from archviz.ops.describe import Cell, Keeps, Recurrence, Role, lowered
from archviz.ops.recurrent import _BIAS_NOTE, _EW_PER_UNIT, GATES, recurrent_caption

class _Cell(Op):
    """One time step: x (N, F) and an optional state → the next state."""
    family = "recurrent"
    role = Role.CELL
    features_last = True
    keeps = Keeps.INPUTS
    kind = ""
    min_inputs, max_inputs = 1, 2
    input_ports = ("x", "h")

    @property
    def label(self):
        return Cell(self.kind).title + " cell"

    def caption(self, a):
        return recurrent_caption(a)

    def recurrence(self, a):
        return Recurrence(Cell(self.kind), a.out, a.out, step=True, state_in=self.input_ports[1:],
                          state_out=self.outputs)

    def check(self, a, ins):
        x = ins[0]
        if len(x) != 2:
            raise OpError(f"a cell takes one time step (N, F), got {fmt_shape(x)}"
                          + (f" (a 1-D input: {UNBATCHED})" if len(x) == 1 else ""),
                          input_index=0, hint="select a step of a sequence with `select_step`")
        for i, s in enumerate(ins[1:], start=1):
            if tuple(s) != (x[0], a.out):
                raise OpError(f"state '{self.input_ports[i]}' must be (N, out) = {fmt_shape((x[0], a.out))}, "
                              f"got {fmt_shape(s)}", input_index=i)

    def infer_shape(self, a, ins):
        s = (ins[0][0], a.out)
        return {p: s for p in self.outputs}

    def param_tensors(self, a, ins):
        g = GATES[self.kind]
        t = [("weight_ih", (g * a.out, ins[0][-1]), "param"), ("weight_hh", (g * a.out, a.out), "param")]
        if a.bias:
            t += [("bias_ih", (g * a.out,), "param"), ("bias_hh", (g * a.out,), "param")]
        return t

    def explain_params(self, a, ins):
        g, h, x = GATES[self.kind], a.out, ins[0][-1]
        lines = Op.explain_params(self, a, ins)
        if a.bias:
            torch_n = g * (h * (x + h) + 2 * h)
            tb = g * (h * (x + h) + h)
            lines.append(Line("params: torch vs textbook",
                              "torch: G·(h·(x + h) + 2h) (bias_ih and bias_hh); textbook, one bias: G·(h·(x + h) + h). "
                              + _BIAS_NOTE[self.kind],
                              f"{g}·({h}·({x} + {h}) + 2·{h}) = {torch_n:,} vs {g}·({h}·({x} + {h}) + {h}) = {tb:,}",
                              tb))
        return lines

    def macs_terms(self, a, ins, outs):
        """MACs = N · G·h·(x + h); the W_hh product is computed (on zeros) even with no state."""
        G, h = V("G", GATES[self.kind]), V("h", a.out)
        return V("N", ins[0][0]) * Sum(Tag(tight(G, h, V("x", ins[0][-1])), "W_ih x"), Tag(tight(G, h, h), "W_hh h"))

    def saved(self, a, ins, outs, need):
        """As torch's CPU cell (aten/native/RNN.cpp): for trainable weights x and h (zeros when
        not given: LSTMCell's h and c are one zero tensor); RNN its output; GRU the hidden gates
        (3·N·h) and three N·h tensors (the candidate and the factors its in-place updates
        needed); LSTM the gates (4·N·h), tanh(c') and c (where the gates need a gradient)."""
        n, h, w = ins[0][0], a.out, need.weights
        state = keep_in(ins, 1) if len(ins) > 1 else keep_extra("zero state", n * h)
        out = [keep_in(ins, 0), state] if w else []
        if self.kind == "rnn":
            return out + [keep_out(outs)]
        if self.kind == "gru":
            return out + [keep_extra("hidden gates", 3 * n * h), keep_extra("candidate and in-place factors", 3 * n * h)]
        gates = w or need.input(0) or need.input(1)      # f·c keeps c where f needs a gradient
        c = [keep_in(ins, 2) if len(ins) > 2 else state] if gates else []
        return out + [keep_extra("gates", 4 * n * h), keep_extra("tanh(c')", n * h)] + c

    def backward_macs_terms(self, a, ins, outs, need):
        """W_ih x: grad x, grad W_ih; W_hh h: grad h (where a given state needs one), grad W_hh;
        each at its product's forward MACs."""
        G, h, N = V("G", GATES[self.kind]), V("h", a.out), V("N", ins[0][0])
        ih, hh = Prod(N, G, h, V("x", ins[0][-1])), Prod(N, G, h, h)
        w = need.weights
        parts = [(p, t) for p, t, on in (("grad x", ih, need.input(0)), ("grad W_ih", ih, w),
                                         ("grad h", hh, len(ins) > 1 and need.input(1)), ("grad W_hh", hh, w)) if on]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def elementwise_terms(self, a, ins, outs):
        return Prod(C(_EW_PER_UNIT[self.kind]), V("N", ins[0][0]), V("h", a.out))

    @property
    def elementwise_note(self):
        return f" ({_EW_PER_UNIT[self.kind]} gate operations per hidden unit; see ops/recurrent.py)"


    def explain_shape(self, a, ins, outs):
        return [Line(f"output '{p}'", "(N, out)", fmt_shape(s), s) for p, s in outs.items()]

    def receptive_field(self, a, ins, outs):
        """One step: every output unit reads all of x and of the state."""
        return {p: ["global"] * len(ins) for p in outs}


_CELL_ATTRS = {"out": Attr("pos_int", doc="hidden size h"),
               "bias": Attr("bool", True, "learn bias_ih and bias_hh")}


@register_op
class RNNCell(_Cell):
    name = "rnn_cell"
    kind = "rnn"
    keeps = Keeps.OUTPUT     # h' is tanh's (or relu's) output, which their backward reads
    doc = "One Elman RNN step (torch.nn.RNNCell): h' = tanh(W_ih x + b_ih + W_hh h + b_hh). Inputs: x, optional h."
    attrs = {**_CELL_ATTRS, "nonlinearity": Attr("str", "tanh", "tanh or relu", ("tanh", "relu"))}
    samples = [{"attrs": {"out": 16}, "inputs": [(2, 10)]},
               {"attrs": {"out": 8, "nonlinearity": "relu", "bias": False}, "inputs": [(3, 5), (3, 8)]}]

    def torch_spec(self, a, ins, outs):
        return lowered("nn.RNNCell", ins[0][-1], a.out, bias=a.bias, nonlinearity=a.nonlinearity)


@register_op
class GRUCell(_Cell):
    name = "gru_cell"
    kind = "gru"
    doc = "One GRU step (torch.nn.GRUCell). Inputs: x, optional h."
    attrs = dict(_CELL_ATTRS)
    samples = [{"attrs": {"out": 12}, "inputs": [(2, 9)]},
               {"attrs": {"out": 6}, "inputs": [(4, 3), (4, 6)]}]

    def torch_spec(self, a, ins, outs):
        return lowered("nn.GRUCell", ins[0][-1], a.out, bias=a.bias)


@register_op
class LSTMCell(_Cell):
    name = "lstm_cell"
    kind = "lstm"
    doc = ("One LSTM step (torch.nn.LSTMCell). Inputs: x, optional h and c (both). "
           "Ports: out (the new h, N × out), c (the new cell state).")
    attrs = dict(_CELL_ATTRS)
    outputs = ("out", "c")
    input_ports = ("x", "h", "c")
    min_inputs, max_inputs = 1, 3
    samples = [{"attrs": {"out": 16}, "inputs": [(2, 10)]},
               {"attrs": {"out": 8, "bias": False}, "inputs": [(3, 5), (3, 8), (3, 8)]}]

    def check(self, a, ins):
        if len(ins) == 2:
            raise OpError("give both states h and c, or neither (torch takes the pair)", input_index=1)
        super().check(a, ins)

    def torch_spec(self, a, ins, outs):
        return lowered("SeqLSTMCell", ins[0][-1], a.out, bias=a.bias)
