"""Torch modules for the sequence ops (ops/recurrent.py, ops/sequence.py, ops/attention.py).

Every class is self-contained (it uses only ``torch``, ``nn`` and ``F``) so that
``archviz export`` can copy its source into a standalone file.  The recurrent wrappers
*subclass* the torch modules, so their parameters keep torch's own names at the top level
(``weight_ih_l0``, ``in_proj_weight``, ...), and only ``forward`` changes: it takes the
node's inputs positionally and returns a dict {port: tensor} for several output ports.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BatchFirstRecurrence:
    """Mixin for nn.RNN / nn.GRU: batch_first=True; forward(x, h0=None) -> {'out': (N, T, D·h),
    'h': (L·D, N, h)}. Parameters stay at the top level, named as torch names them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, batch_first=True, **kwargs)

    def forward(self, x, h0=None):
        if h0 is not None and h0.dim() == 2:  # (N, h) stands for (1, N, h) when layers · directions = 1
            h0 = h0.unsqueeze(0)
        out, h = super().forward(x, h0)
        return {"out": out, "h": h}


class SeqRNN(BatchFirstRecurrence, nn.RNN):
    """nn.RNN, batch first, returning {'out', 'h'}."""


class SeqGRU(BatchFirstRecurrence, nn.GRU):
    """nn.GRU, batch first, returning {'out', 'h'}."""


class SeqLSTM(nn.LSTM):
    """nn.LSTM(batch_first=True): forward(x, h0=None, c0=None) -> {'out', 'h', 'c'}."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, batch_first=True, **kwargs)

    def forward(self, x, h0=None, c0=None):
        if h0 is not None and h0.dim() == 2:  # (N, h) stands for (1, N, h) when layers · directions = 1
            h0, c0 = h0.unsqueeze(0), c0.unsqueeze(0)
        hx = None if h0 is None else (h0, c0)
        out, (h, c) = super().forward(x, hx)
        return {"out": out, "h": h, "c": c}


class SeqLSTMCell(nn.LSTMCell):
    """nn.LSTMCell: forward(x, h=None, c=None) -> {'out': h', 'c': c'}."""

    def forward(self, x, h=None, c=None):
        h1, c1 = super().forward(x, None if h is None else (h, c))
        return {"out": h1, "c": c1}


class SelectStep(nn.Module):
    """x.select(axis, index): one time step of (N, T, F) (axis 1), or one slice of another axis."""

    def __init__(self, index: int = -1, axis: int = 1):
        super().__init__()
        self.index, self.axis = index, axis

    def forward(self, x):
        return x.select(self.axis, self.index)


class Reverse(nn.Module):
    """torch.flip along `axis` (default: the time axis of (N, T, F))."""

    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return torch.flip(x, (self.axis,))


class Attention(nn.Module):
    """Single-head attention with a chosen score function; forward(query, key, value=None).

    dot:        s = q · k
    scaled_dot: s = q · k / √d_k
    general:    s = qᵀ W_a k       (Luong; W_a applied to the query: W_a.weight is (d_k, d_q))
    additive:   s = v_aᵀ tanh(W_a q + U_a k)   (Bahdanau; Luong's 'concat')
    α = softmax(s) over the keys; out = Σ α · value.  query (N, Tq, d_q) or (N, d_q).
    Returns {'out': (N, Tq, d_v), 'weights': (N, Tq, Tk)} (Tq axis dropped for a 2-D query).
    """

    def __init__(self, score: str, query_dim: int, key_dim: int, dim: int = 0, bias: bool = False):
        super().__init__()
        self.score = score
        if score == "general":
            self.W_a = nn.Linear(query_dim, key_dim, bias=bias)
        elif score in ("additive", "concat"):
            self.W_a = nn.Linear(query_dim, dim, bias=bias)
            self.U_a = nn.Linear(key_dim, dim, bias=False)
            self.v_a = nn.Linear(dim, 1, bias=False)

    def forward(self, query, key, value=None):
        if value is None:
            value = key
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query
        if self.score in ("additive", "concat"):
            e = torch.tanh(self.W_a(q).unsqueeze(2) + self.U_a(key).unsqueeze(1))
            s = self.v_a(e).squeeze(-1)
        else:
            if self.score == "general":
                q = self.W_a(q)
            s = torch.bmm(q, key.transpose(1, 2))
            if self.score == "scaled_dot":
                s = s * key.shape[-1] ** -0.5
        w = torch.softmax(s, dim=-1)
        out = torch.bmm(w, value)
        if single:
            out, w = out.squeeze(1), w.squeeze(1)
        return {"out": out, "weights": w}


class BatchFirstMHA(nn.MultiheadAttention):
    """nn.MultiheadAttention(batch_first=True): forward(query, key=None, value=None) ->
    {'out': (N, Tq, E), 'weights': (N, Tq, Tk) or (N, heads, Tq, Tk)}.

    Always takes torch's reference ("slow") path, F.multi_head_attention_forward, with the
    weights returned: the fused inference fast path gives the same numbers but is invisible
    to torch.utils.flop_counter.
    """

    def __init__(self, embed_dim, num_heads, average_weights: bool = True, mask: str = "none", window=None,
                 **kwargs):
        super().__init__(embed_dim, num_heads, batch_first=True, **kwargs)
        self.average_weights, self.mask, self.window = average_weights, mask, window

    def forward(self, query, key=None, value=None):
        key = query if key is None else key
        value = key if value is None else value
        # keep the `is` identities: they select torch's packed in-projection
        if key is value:
            if query is key:
                query = key = value = query.transpose(1, 0)
            else:
                query, key = (x.transpose(1, 0) for x in (query, key))
                value = key
        else:
            query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        kw = {}
        if not self._qkv_same_embed_dim:
            kw = dict(use_separate_proj_weight=True, q_proj_weight=self.q_proj_weight,
                      k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight)
        keep = attention_mask(self.mask, self.window, query.shape[0], key.shape[0], query.device)
        if keep is not None:
            kw["attn_mask"] = ~keep         # nn.MultiheadAttention's boolean mask: True = not attended
        out, w = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight,
            self.out_proj.bias, training=self.training, need_weights=True,
            average_attn_weights=self.average_weights, **kw)
        return {"out": out.transpose(1, 0), "weights": w}


class AttentionGRU(nn.Module):
    """GRU decoder with additive attention fed back (Bahdanau et al. 2015, App. A.2).
    forward(x (N, T, E), memory (N, Tk, M), h0 (N, h) or None) ->
    {'out': (N, T, h), 'context': (N, T, M), 'weights': (N, T, Tk)}; per step i:
    α_i = softmax(v_aᵀ tanh(W_a s_i−1 + U_a h_j)), c_i = Σ_j α_ij h_j, s_i = GRU([x_i; c_i], s_i−1).
    U_a h_j is computed once for all steps."""

    def __init__(self, in_dim: int, mem_dim: int, hidden: int, dim: int, bias: bool = True,
                 score_bias: bool = False):
        super().__init__()
        self.attn = nn.Module()       # attn.W_a, attn.U_a, attn.v_a: the names of the `attention` op
        self.attn.W_a = nn.Linear(hidden, dim, bias=score_bias)
        self.attn.U_a = nn.Linear(mem_dim, dim, bias=False)
        self.attn.v_a = nn.Linear(dim, 1, bias=False)
        self.cell = nn.GRUCell(in_dim + mem_dim, hidden, bias=bias)

    def forward(self, x, memory, h0=None):
        s = h0 if h0 is not None else x.new_zeros(x.shape[0], self.cell.hidden_size)
        keys = self.attn.U_a(memory)                                   # (N, Tk, A), once
        outs, ctxs, ws = [], [], []
        for i in range(x.shape[1]):
            e = self.attn.v_a(torch.tanh(self.attn.W_a(s).unsqueeze(1) + keys)).squeeze(-1)   # (N, Tk)
            w = torch.softmax(e, dim=-1)
            c = torch.bmm(w.unsqueeze(1), memory).squeeze(1)           # (N, M)
            s = self.cell(torch.cat([x[:, i], c], dim=-1), s)
            outs.append(s)
            ctxs.append(c)
            ws.append(w)
        return {"out": torch.stack(outs, 1), "context": torch.stack(ctxs, 1), "weights": torch.stack(ws, 1)}


def attention_mask(mask: str, window, tq: int, tk: int, device):
    """The boolean mask F.scaled_dot_product_attention takes (True: attend), or None: causal,
    query i sees keys j <= i (top-left aligned, as torch's is_causal); a window w keeps
    only j > i - w."""
    if mask != "causal":
        return None
    i = torch.arange(tq, device=device).unsqueeze(1)
    j = torch.arange(tk, device=device).unsqueeze(0)
    keep = j <= i
    if window is not None:
        keep = keep & (j > i - window)
    return keep


class SDPA(nn.Module):
    """F.scaled_dot_product_attention(q, k, v) over (N, H, T, d), with archviz's mask and
    grouped-query attention (each key/value head repeated over H / H_kv query heads)."""

    def __init__(self, mask: str = "none", window=None, scale=None):
        super().__init__()
        self.mask, self.window, self.scale = mask, window, scale

    def forward(self, q, k, v):
        m = attention_mask(self.mask, self.window, q.shape[-2], k.shape[-2], q.device)
        g = q.shape[1] // k.shape[1]
        if g > 1:
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=self.scale)

    def extra_repr(self) -> str:
        return f"mask={self.mask!r}" + (f", window={self.window}" if self.window else "")


class RoPE(nn.Module):
    """Rotary position embedding of (N, H, T, d), 'rotate half' layout: the first `rotated`
    dims, i and i + rotated/2 paired, turn by t · base^(-2i/rotated); the rest pass."""

    def __init__(self, base: float, rotated: int):
        super().__init__()
        self.base, self.rotated = base, rotated

    def forward(self, x):
        r, t = self.rotated, x.shape[-2]
        inv = self.base ** -(torch.arange(0, r, 2, device=x.device, dtype=torch.float32) / r)
        ang = torch.arange(t, device=x.device, dtype=torch.float32).unsqueeze(1) * inv
        ang = torch.cat([ang, ang], dim=-1)
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        xr, rest = x[..., :r], x[..., r:]
        half = torch.cat([-xr[..., r // 2:], xr[..., :r // 2]], dim=-1)
        return torch.cat([xr * cos + half * sin, rest], dim=-1)

    def extra_repr(self) -> str:
        return f"base={self.base}, rotated={self.rotated}"
