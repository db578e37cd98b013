"""Independent torch references for the sequence ops (tests only), in the format of
tests/ops/torch_ref.py: ``REFS[op](a, input_shapes) -> (fn, inputs)``.

Written from torch's documentation — plain nn.RNN / LSTM / GRU / *Cell / Embedding /
MultiheadAttention and hand-written score formulas — not from archviz's ``torch_spec``.
A reference returns a dict {port: tensor} where the op has several output ports.
"""
from __future__ import annotations

import torch
from torch import nn

REFS: dict = {}

# ops whose MACs torch.utils.flop_counter counts on the CPU (2 FLOPs per MAC)
FLOP_COUNTED_CPU = {"rnn", "gru", "rnn_cell", "gru_cell", "lstm_cell", "attention", "multihead_attention"}
# counted only on the meta device: on the CPU nn.LSTM runs a fused kernel the counter does not see
FLOP_COUNTED_META = {"lstm"}


def ref(name):
    def deco(fn):
        REFS[name] = fn
        return fn
    return deco


def _x(shape):
    return torch.randn(*shape)


@ref("embedding")
def _embedding(a, ins):
    return nn.Embedding(a.num, a.dim, padding_idx=a.padding_idx), [torch.randint(0, a.num, ins[0])]


def _recurrent(cls, with_c=False, **extra):
    def build(a, ins):
        kw = dict(num_layers=a.num_layers, bias=a.bias, dropout=a.dropout, bidirectional=a.bidirectional,
                  batch_first=True)
        for k in extra:
            kw[k] = a[k]
        if a.get("proj_size"):
            kw["proj_size"] = a.proj_size
        m = cls(ins[0][-1], a.out, **kw)
        xs = [_x(s) for s in ins]

        class Ref(type(m)):
            def forward(self, x, *state):
                state = [s if s.dim() == 3 else s.unsqueeze(0) for s in state]
                hx = None if not state else (tuple(state) if with_c else state[0])
                out, hn = super().forward(x, hx)
                if with_c:
                    return {"out": out, "h": hn[0], "c": hn[1]}
                return {"out": out, "h": hn}
        m.__class__ = Ref
        return m, xs
    return build


REFS["rnn"] = _recurrent(nn.RNN, nonlinearity=None)
REFS["gru"] = _recurrent(nn.GRU)
REFS["lstm"] = _recurrent(nn.LSTM, with_c=True)


def _cell(cls, **extra):
    def build(a, ins):
        m = cls(ins[0][-1], a.out, bias=a.bias, **{k: a[k] for k in extra})
        xs = [_x(s) for s in ins]
        if cls is nn.LSTMCell:
            class Ref(nn.LSTMCell):
                def forward(self, x, *state):
                    h, c = super().forward(x, tuple(state) if state else None)
                    return {"out": h, "c": c}
            m.__class__ = Ref
        return m, xs
    return build


REFS["rnn_cell"] = _cell(nn.RNNCell, nonlinearity=None)
REFS["gru_cell"] = _cell(nn.GRUCell)
REFS["lstm_cell"] = _cell(nn.LSTMCell)


@ref("select_step")
def _select_step(a, ins):
    return (lambda x: x.select(a.axis, a.index)), [_x(s) for s in ins]


@ref("last_step")
def _last_step(a, ins):
    return (lambda x: x[:, -1]), [_x(s) for s in ins]


@ref("reverse")
def _reverse(a, ins):
    return (lambda x: torch.flip(x, [a.axis])), [_x(s) for s in ins]


@ref("attention")
def _attention(a, ins):
    """Luong / Bahdanau scores written out with einsum/matmul (parameters as in the op's docs)."""
    q_shape, k_shape = ins[0], ins[1]
    dq, dk = q_shape[-1], k_shape[-1]

    class Ref(nn.Module):
        def __init__(self):
            super().__init__()
            if a.score == "general":
                self.W_a = nn.Linear(dq, dk, bias=a.bias)
            elif a.score in ("additive", "concat"):
                dim = a.dim or dk
                self.W_a = nn.Linear(dq, dim, bias=a.bias)
                self.U_a = nn.Linear(dk, dim, bias=False)
                self.v_a = nn.Linear(dim, 1, bias=False)

        def forward(self, q, k, v=None):
            v = k if v is None else v
            q3 = q if q.dim() == 3 else q[:, None, :]
            if a.score in ("dot", "scaled_dot"):
                s = q3 @ k.transpose(1, 2)
                if a.score == "scaled_dot":
                    s = s / dk ** 0.5
            elif a.score == "general":
                s = self.W_a(q3) @ k.transpose(1, 2)
            else:
                s = self.v_a(torch.tanh(self.W_a(q3)[:, :, None, :] + self.U_a(k)[:, None, :, :]))[..., 0]
            w = s.softmax(-1)
            out = w @ v
            if q.dim() == 2:
                return {"out": out[:, 0], "weights": w[:, 0]}
            return {"out": out, "weights": w}
    return Ref(), [_x(s) for s in ins]


@ref("multihead_attention")
def _mha(a, ins):
    q = ins[0]
    k = ins[1] if len(ins) > 1 else q
    v = ins[2] if len(ins) > 2 else k
    e = q[-1]
    kw = {}
    if k[-1] != e or v[-1] != e:
        kw = dict(kdim=k[-1], vdim=v[-1])
    m = nn.MultiheadAttention(e, a.heads, dropout=a.dropout, bias=a.bias, batch_first=True, **kw)
    xs = [_x(s) for s in ins]

    class Ref(nn.MultiheadAttention):
        def forward(self, query, key=None, value=None):
            key = query if key is None else key
            value = key if value is None else value
            mask = None
            if a.mask == "causal":      # position i attends to keys 0..i (and only the last `window` of them)
                t, s = query.shape[1], key.shape[1]
                i, j = torch.arange(t)[:, None], torch.arange(s)[None, :]
                banned = (j > i) | ((j <= i - a.window) if a.window is not None else False)
                mask = banned               # nn.MultiheadAttention: True = not attended
            out, w = super().forward(query, key, value, need_weights=True, attn_mask=mask,
                                     average_attn_weights=a.average_weights)
            return {"out": out, "weights": w}
    m.__class__ = Ref
    return m, xs
