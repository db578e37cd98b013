"""Independent torch references for every archviz op (tests only).

``REFS[op_name](a, input_shapes) -> (fn, inputs)``: ``fn`` is a ``torch.nn.Module`` (its
parameters and buffers are what archviz's ``param_tensors`` must describe) or a plain
callable (no parameters); ``inputs`` is the list of input tensors to call it with.

These are written from torch's documentation, *not* from archviz's own ``torch_spec``
lowerings, so the registry tests compare archviz against a second, separate reading of
torch.  The op ``input`` has no reference (it is a graph input, not a layer).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _x(shape):
    return torch.randn(*shape)


def _xs(ins):
    return [_x(s) for s in ins]


def _one(module_factory):
    """Reference for a single-input op whose module depends only on the attributes."""
    def ref(a, ins):
        return module_factory(a), _xs(ins)
    return ref


REFS: dict = {}


def ref(name):
    def deco(fn):
        REFS[name] = fn
        return fn
    return deco


# -- activations -------------------------------------------------------------------
REFS["relu"] = _one(lambda a: nn.ReLU())
REFS["leaky_relu"] = _one(lambda a: nn.LeakyReLU(negative_slope=a.negative_slope))
REFS["elu"] = _one(lambda a: nn.ELU(alpha=a.alpha))
REFS["gelu"] = _one(lambda a: nn.GELU(approximate=a.approximate))
REFS["silu"] = _one(lambda a: nn.SiLU())
REFS["sigmoid"] = _one(lambda a: nn.Sigmoid())
REFS["tanh"] = _one(lambda a: nn.Tanh())
REFS["hardswish"] = _one(lambda a: nn.Hardswish())
REFS["relu6"] = _one(lambda a: lambda x: torch.clamp(x, 0.0, 6.0))     # its definition, not nn.ReLU6
REFS["hardsigmoid"] = _one(lambda a: lambda x: torch.clamp(x + 3.0, 0.0, 6.0) / 6.0)
REFS["softplus"] = _one(lambda a: nn.Softplus(beta=float(a.beta), threshold=float(a.threshold)))
REFS["mish"] = _one(lambda a: lambda x: x * torch.tanh(F.softplus(x)))
REFS["hardtanh"] = _one(lambda a: nn.Hardtanh(float(a.min_val), float(a.max_val)))


def _stochastic_depth(a):
    """torchvision.ops.stochastic_depth's checks, then the identity (inference)."""
    if not 0.0 <= float(a.p) <= 1.0 or a.mode not in ("row", "batch"):
        raise ValueError(f"bad stochastic depth p={a.p} mode={a.mode}")
    return lambda x: x


REFS["stochastic_depth"] = _one(_stochastic_depth)
REFS["softmax"] = _one(lambda a: nn.Softmax(dim=a.dim))
REFS["dropout"] = _one(lambda a: nn.Dropout(p=a.p))
REFS["identity"] = _one(lambda a: nn.Identity())


# -- convolutions ------------------------------------------------------------------
def _conv_padding(p):
    return p if isinstance(p, str) else tuple(p)


@ref("conv2d")
def _conv2d(a, ins):
    m = nn.Conv2d(ins[0][1], a.out, tuple(a.kernel), stride=tuple(a.stride), padding=_conv_padding(a.padding),
                  dilation=tuple(a.dilation), groups=a.groups, bias=a.bias)
    return m, _xs(ins)


@ref("conv1d")
def _conv1d(a, ins):
    m = nn.Conv1d(ins[0][1], a.out, tuple(a.kernel), stride=tuple(a.stride), padding=_conv_padding(a.padding),
                  dilation=tuple(a.dilation), groups=a.groups, bias=a.bias)
    return m, _xs(ins)


@ref("conv_transpose2d")
def _conv_t2d(a, ins):
    m = nn.ConvTranspose2d(ins[0][1], a.out, tuple(a.kernel), stride=tuple(a.stride), padding=tuple(a.padding),
                           output_padding=tuple(a.output_padding), groups=a.groups, bias=a.bias,
                           dilation=tuple(a.dilation))
    return m, _xs(ins)


# -- merges --------------------------------------------------------------------------
@ref("add")
def _add(a, ins):
    def fn(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = torch.add(out, x)
        return out
    return fn, _xs(ins)


@ref("mul")
def _mul(a, ins):
    def fn(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = torch.mul(out, x)
        return out
    return fn, _xs(ins)


@ref("concat")
def _concat(a, ins):
    return (lambda *xs: torch.cat(xs, dim=a.axis)), _xs(ins)


# -- tensor ops (torch's functions, as their docs define them) ---------------------------
@ref("rmsnorm")
def _rmsnorm(a, ins):
    eps = None if a.eps is None else float(a.eps)
    return nn.RMSNorm(tuple(ins[0][-a.dims:]), eps=eps, elementwise_affine=a.elementwise_affine), _xs(ins)


REFS["permute"] = _one(lambda a: lambda x: torch.permute(x, tuple(a.dims)))
REFS["transpose"] = _one(lambda a: lambda x: torch.transpose(x, a.dim0, a.dim1))
REFS["reshape"] = _one(lambda a: lambda x: torch.reshape(x, (x.shape[0], *a.shape)))
def _axes(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


REFS["mean"] = _one(lambda a: lambda x: torch.mean(x, dim=_axes(a.dims), keepdim=a.keepdim))
REFS["sum"] = _one(lambda a: lambda x: torch.sum(x, dim=_axes(a.dims), keepdim=a.keepdim))
REFS["max"] = _one(lambda a: lambda x: torch.amax(x, dim=_axes(a.dims), keepdim=a.keepdim))
REFS["scale"] = _one(lambda a: lambda x: x * float(a.by))

# parts: torch.split / torch.chunk return tuples; archviz's ports are the parts' indices
REFS["split"] = _one(lambda a: lambda x: {str(k): t for k, t in enumerate(torch.split(x, list(a.sizes), a.dim))})
REFS["chunk"] = _one(lambda a: lambda x: {str(k): t for k, t in enumerate(torch.chunk(x, a.chunks, a.dim))})
REFS["slice"] = _one(lambda a: lambda x: torch.ops.aten.slice.Tensor(x, a.dim, a.start, a.end, a.step))  # x[.., s:e:k]
REFS["channel_shuffle"] = _one(lambda a: nn.ChannelShuffle(a.groups))     # torch's native kernel
REFS["pixel_shuffle"] = _one(lambda a: nn.PixelShuffle(a.factor))
REFS["pixel_unshuffle"] = _one(lambda a: lambda x: F.pixel_unshuffle(x, a.factor))


class _Own(nn.Module):
    """A tensor of the layer's own expanded over the batch (from the op docs, not archviz)."""

    def __init__(self, value, learned):
        super().__init__()
        if learned:
            self.weight = nn.Parameter(value)
        else:
            self.register_buffer("table", value)

    def forward(self, x):
        v = self.weight if hasattr(self, "weight") else self.table
        return v.unsqueeze(0).expand(x.shape[0], *v.shape)


def _sinusoid(t, d):
    """Vaswani et al. 2017, §3.5, term by term (pairs of sin and cos: d must be even)."""
    import math
    if d % 2 or t < 1:
        raise ValueError(f"a sinusoidal table needs T >= 1 and an even d, got {t}, {d}")
    return torch.tensor([[math.sin(p / 10000 ** (i / d)) if i % 2 == 0 else math.cos(p / 10000 ** ((i - 1) / d))
                          for i in range(d)] for p in range(t)])


@ref("parameter")
def _parameter(a, ins):
    return _Own(torch.zeros(tuple(a.shape)), True), _xs(ins)


@ref("constant")
def _constant(a, ins):
    shape = tuple(a.shape)
    if a.init == "sinusoid":
        value = _sinusoid(*shape)
    else:
        value = torch.ones(shape) if a.init == "ones" else torch.zeros(shape)
    return _Own(value, False), _xs(ins)


@ref("matmul")
def _matmul(a, ins):
    return (lambda x, y: torch.matmul(x, y)), _xs(ins)


# -- normalisation ---------------------------------------------------------------------
def _bn(cls):
    def fn(a, ins):
        return cls(ins[0][1], eps=a.eps, momentum=a.momentum, affine=a.affine,
                   track_running_stats=a.track_running_stats), _xs(ins)
    return fn


REFS["batchnorm2d"] = _bn(nn.BatchNorm2d)
REFS["batchnorm1d"] = _bn(nn.BatchNorm1d)


@ref("layernorm")
def _layernorm(a, ins):
    return nn.LayerNorm(tuple(ins[0][-a.dims:]), eps=a.eps, elementwise_affine=a.elementwise_affine,
                        bias=a.bias), _xs(ins)


# torch.nn.LocalResponseNorm divides alpha by n; archviz's alpha is the paper's (not divided)
REFS["lrn"] = _one(lambda a: nn.LocalResponseNorm(a.size, alpha=a.alpha * a.size, beta=a.beta, k=a.k))


# -- pooling -----------------------------------------------------------------------------
def _stride(a):
    return tuple(a.kernel) if a.stride is None else tuple(a.stride)


REFS["maxpool2d"] = _one(lambda a: nn.MaxPool2d(tuple(a.kernel), stride=_stride(a), padding=tuple(a.padding),
                                                dilation=tuple(a.dilation), ceil_mode=a.ceil_mode))
REFS["avgpool2d"] = _one(lambda a: nn.AvgPool2d(tuple(a.kernel), stride=_stride(a), padding=tuple(a.padding),
                                                ceil_mode=a.ceil_mode, count_include_pad=a.count_include_pad))
REFS["adaptive_avgpool2d"] = _one(lambda a: nn.AdaptiveAvgPool2d(tuple(a.size)))


@ref("global_avgpool")
def _gap(a, ins):
    cls = {3: nn.AdaptiveAvgPool1d, 4: nn.AdaptiveAvgPool2d, 5: nn.AdaptiveAvgPool3d}[len(ins[0])]
    return cls(1), _xs(ins)


# -- shape and dense ------------------------------------------------------------------------
REFS["flatten"] = _one(lambda a: nn.Flatten(a.start_dim, a.end_dim))


@ref("linear")
def _linear(a, ins):
    return nn.Linear(ins[0][-1], a.out, bias=a.bias), _xs(ins)


@ref("pad")
def _pad(a, ins):
    if a.mode == "constant":
        return (lambda x: F.pad(x, list(a.pads), mode="constant", value=float(a.value))), _xs(ins)
    return (lambda x: F.pad(x, list(a.pads), mode=a.mode)), _xs(ins)


@ref("center_crop")
def _center_crop(a, ins):
    big, small = ins
    # U-Net copy-and-crop: only ever shrinks, and both inputs have the same rank (plain
    # slicing would silently clamp or ignore axes)
    if len(big) != len(small) or len(big) < 3 or any(h2 > h1 for h1, h2 in zip(big[2:], small[2:])):
        raise ValueError(f"cannot centre-crop {big} to the spatial size of {small}")

    def fn(x, r):
        idx = [slice(None), slice(None)]
        for h1, h2 in zip(big[2:], small[2:]):
            off = (h1 - h2) // 2
            idx.append(slice(off, off + h2))
        return x[tuple(idx)]
    return fn, _xs(ins)


@ref("upsample")
def _upsample(a, ins):
    kw = {"mode": a.mode}
    if a.align_corners is not None:        # torch refuses it, even false, in nearest mode
        kw["align_corners"] = a.align_corners
    size = None if a.size is None else tuple(a.size)
    scale = None if a.scale is None else tuple(float(s) for s in a.scale)
    if len(ins) == 2:       # to the spatial size of a second tensor (its values unused)
        if size is not None or scale is not None:
            raise ValueError("only one of size or scale_factor should be defined")
        return (lambda x, like: F.interpolate(x, size=tuple(like.shape[2:]), **kw)), _xs(ins)
    return nn.Upsample(size=size, scale_factor=scale, **kw), _xs(ins)      # torch checks exactly one



@ref("sdpa")
def _sdpa(a, ins):
    """torch's own kernel with its own GQA and a float mask of -inf (the docs' math reference)."""
    def fn(q, k, v):
        if a.window is not None and (a.mask != "causal" or a.window < 1):   # archviz's op: a window cuts a prefix
            raise ValueError("a sliding window of at least 1 key needs the causal mask")
        m = None
        if a.mask == "causal":
            t, s = q.shape[-2], k.shape[-2]
            m = torch.ones(t, s, dtype=torch.bool).tril()
            if a.window is not None:
                m = m & ~torch.ones(t, s, dtype=torch.bool).tril(-a.window)
        scale = None if a.scale is None else float(a.scale)
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel(SDPBackend.MATH):      # the math path: matmuls FlopCounterMode counts (fused kernels: 0)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale,
                                                  enable_gqa=q.shape[1] != k.shape[1])
    return fn, _xs(ins)


@ref("rope")
def _rope(a, ins):
    """RoFormer's rotation written as complex multiplication on the (i, i + r/2) pairs."""
    def fn(x):
        d = x.shape[-1]
        r = int(a.fraction * d)
        if r % 2 or r <= 0 or r != a.fraction * d or not float(a.base) > 0:
            raise ValueError("rotary dims must be a positive even count, the base positive")
        t = torch.arange(x.shape[-2], dtype=torch.float64)
        theta = t[:, None] * float(a.base) ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
        z = torch.complex(x[..., :r // 2].double(), x[..., r // 2:r].double()) * torch.polar(torch.ones_like(theta), theta)
        return torch.cat([z.real.to(x.dtype), z.imag.to(x.dtype), x[..., r:]], dim=-1)
    return fn, _xs(ins)

# -- recurrent ------------------------------------------------------------------------------
# Subclasses keep torch's own parameter names (weight_ih_l0, ...) at the top level; only
# forward changes: the node's inputs positionally, a dict {port: tensor} back.  A 2-D
# initial state (N, h) stands for (1, N, h) when layers · directions = 1 (archviz's rule).
def _state3(h):
    return None if h is None else (h.unsqueeze(0) if h.dim() == 2 else h)


class _RNN(nn.RNN):
    def forward(self, x, h0=None):
        out, h = super().forward(x, _state3(h0))
        return {"out": out, "h": h}


class _GRU(nn.GRU):
    def forward(self, x, h0=None):
        out, h = super().forward(x, _state3(h0))
        return {"out": out, "h": h}


class _LSTM(nn.LSTM):
    def forward(self, x, h0=None, c0=None):
        out, (h, c) = super().forward(x, None if h0 is None else (_state3(h0), _state3(c0)))
        return {"out": out, "h": h, "c": c}


def _seq_kwargs(a):
    return dict(num_layers=a.num_layers, bias=a.bias, dropout=float(a.dropout),
                bidirectional=a.bidirectional, batch_first=True)


@ref("rnn")
def _rnn(a, ins):
    return _RNN(ins[0][-1], a.out, nonlinearity=a.nonlinearity, **_seq_kwargs(a)), _xs(ins)


@ref("gru")
def _gru(a, ins):
    return _GRU(ins[0][-1], a.out, **_seq_kwargs(a)), _xs(ins)


@ref("lstm")
def _lstm(a, ins):
    return _LSTM(ins[0][-1], a.out, proj_size=a.proj_size, **_seq_kwargs(a)), _xs(ins)


class _LSTMCell(nn.LSTMCell):
    def forward(self, x, h=None, c=None):
        h1, c1 = super().forward(x, None if h is None else (h, c))
        return {"out": h1, "c": c1}


@ref("rnn_cell")
def _rnn_cell(a, ins):
    return nn.RNNCell(ins[0][-1], a.out, bias=a.bias, nonlinearity=a.nonlinearity), _xs(ins)


@ref("gru_cell")
def _gru_cell(a, ins):
    return nn.GRUCell(ins[0][-1], a.out, bias=a.bias), _xs(ins)


@ref("lstm_cell")
def _lstm_cell(a, ins):
    return _LSTMCell(ins[0][-1], a.out, bias=a.bias), _xs(ins)


@ref("embedding")
def _embedding(a, ins):
    return nn.Embedding(a.num, a.dim, padding_idx=a.padding_idx), [torch.randint(0, a.num, ins[0])]


# -- sequence views -------------------------------------------------------------------------
@ref("select_step")
def _select_step(a, ins):
    return (lambda x: torch.select(x, a.axis, a.index)), _xs(ins)


@ref("last_step")
def _last_step(a, ins):
    return (lambda x: x[:, -1]), _xs(ins)


@ref("reverse")
def _reverse(a, ins):
    return (lambda x: torch.flip(x, [a.axis])), _xs(ins)


# -- attention ------------------------------------------------------------------------------
class _OneHeadAttention(nn.Module):
    """Luong et al. 2015 §3.1 / Bahdanau et al. 2015 scores, written out with matmuls."""

    def __init__(self, score, dq, dk, dim, bias):
        super().__init__()
        self.score = score
        if score == "general":                       # s = qᵀ W_a k: W_a maps the query to d_k
            self.W_a = nn.Linear(dq, dk, bias=bias)
        elif score in ("additive", "concat"):        # s = v_aᵀ tanh(W_a q + U_a k)
            self.W_a = nn.Linear(dq, dim, bias=bias)
            self.U_a = nn.Linear(dk, dim, bias=False)
            self.v_a = nn.Linear(dim, 1, bias=False)

    def forward(self, q, k, v=None):
        v = k if v is None else v
        # the documented inputs (archviz's own op, no torch layer): keys and values are batched
        # sequences; torch's matmul would broadcast other ranks into something else
        if k.dim() != 3 or v.dim() != 3 or q.dim() not in (2, 3):
            raise ValueError(f"query (N, Tq, d_q) or (N, d_q), key and value (N, Tk, d): got "
                             f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
        one = q.dim() == 2
        if one:
            q = q[:, None, :]
        if self.score in ("additive", "concat"):
            s = self.v_a(torch.tanh(self.W_a(q)[:, :, None, :] + self.U_a(k)[:, None, :, :]))[..., 0]
        else:
            qq = self.W_a(q) if self.score == "general" else q
            s = torch.matmul(qq, k.transpose(-1, -2))
            if self.score == "scaled_dot":
                s = s / k.shape[-1] ** 0.5
        w = F.softmax(s, dim=-1)
        out = torch.matmul(w, v)
        if one:
            out, w = out[:, 0], w[:, 0]
        return {"out": out, "weights": w}


@ref("attention")
def _attention(a, ins):
    dim = a.dim if a.dim is not None else ins[1][-1]
    return _OneHeadAttention(a.score, ins[0][-1], ins[1][-1], dim, a.bias), _xs(ins)


class _MHA(nn.MultiheadAttention):
    def __init__(self, *args, average, mask="none", window=None, **kw):
        super().__init__(*args, **kw)
        self.average, self.mask, self.window = average, mask, window

    def forward(self, q, k=None, v=None):
        k = q if k is None else k
        v = k if v is None else v
        if self.window is not None and (self.mask != "causal" or self.window < 1):  # archviz's attribute
            raise ValueError("a sliding window of at least 1 key needs the causal mask")
        m = None
        if self.mask == "causal":     # torch's own square subsequent mask (float, -inf above the diagonal)
            t, s = q.shape[1], k.shape[1]
            m = torch.full((t, s), float("-inf")).triu(1)
            if self.window is not None:         # and keys more than window - 1 back
                m = m + torch.full((t, s), float("-inf")).tril(-self.window)
        out, w = super().forward(q, k, v, need_weights=True, average_attn_weights=self.average, attn_mask=m)
        return {"out": out, "weights": w}


@ref("multihead_attention")
def _mha(a, ins):
    e = ins[0][-1]
    kd = ins[1][-1] if len(ins) > 1 else e
    vd = ins[2][-1] if len(ins) > 2 else kd
    return _MHA(e, a.heads, dropout=float(a.dropout), bias=a.bias, kdim=kd, vdim=vd, batch_first=True,
                average=a.average_weights, mask=a.mask, window=a.window), _xs(ins)


class _BahdanauDecoder(nn.Module):
    """Bahdanau, Cho & Bengio 2015, App. A.2.2, with torch's GRUCell for f and the paper's
    note that U_a h_j is pre-computed: e_ij = v_aᵀ tanh(W_a s_{i−1} + U_a h_j),
    α_ij = exp(e_ij) / Σ_k exp(e_ik), c_i = Σ_j α_ij h_j, s_i = f(s_{i−1}, y_{i−1}, c_i)."""

    def __init__(self, e, m, h, dim, bias, score_bias):
        super().__init__()
        self.attn = nn.Module()
        self.attn.W_a = nn.Linear(h, dim, bias=score_bias)
        self.attn.U_a = nn.Linear(m, dim, bias=False)
        self.attn.v_a = nn.Linear(dim, 1, bias=False)
        self.cell = nn.GRUCell(e + m, h, bias=bias)
        self.h = h

    def forward(self, y, ann, s0=None):
        n, t, _ = y.shape
        s = torch.zeros(n, self.h) if s0 is None else s0
        ua_h = self.attn.U_a(ann)
        states, contexts, alphas = [], [], []
        for i in range(t):
            e = self.attn.v_a(torch.tanh(self.attn.W_a(s)[:, None, :] + ua_h))[..., 0]
            alpha = torch.exp(e) / torch.exp(e).sum(-1, keepdim=True)
            # Σ_j α_ij h_j as a batched matrix product (einsum turns a one-key sum into a multiply
            # that FlopCounterMode does not count)
            c = torch.bmm(alpha[:, None, :], ann)[:, 0]
            s = self.cell(torch.cat([y[:, i], c], -1), s)
            states.append(s)
            contexts.append(c)
            alphas.append(alpha)
        return {"out": torch.stack(states, 1), "context": torch.stack(contexts, 1), "weights": torch.stack(alphas, 1)}


@ref("attention_gru")
def _attention_gru(a, ins):
    return _BahdanauDecoder(ins[0][-1], ins[1][-1], a.out, a.dim if a.dim is not None else a.out, a.bias,
                            a.score_bias), _xs(ins)


class _MixtureOfExperts(nn.Module):
    """Switch / Mixtral routing written token by token from the equations: p = softmax(W_g x),
    S = top_k(p), g_i = p_i / sum_S p (Mixtral; Switch keeps p_i), y = sum_S g_i E_i(x).  Each
    expert here is the sample's one op (a linear layer), named as archviz names a one-op expert."""

    def __init__(self, d, E, k, renormalize, expert: dict):
        super().__init__()
        assert expert["op"] == "linear", "the moe samples' experts are linear layers"
        self.k, self.renormalize = k, renormalize
        self.gate = nn.Linear(d, E, bias=False)
        self.experts = nn.ModuleList(nn.ModuleDict({"linear": nn.Linear(d, expert["out"], bias=expert.get("bias", True))})
                                     for _ in range(E))

    def forward(self, x):
        rows = x.reshape(-1, x.shape[-1])
        out = []
        for t in rows:
            p = torch.softmax(self.gate(t), dim=-1)
            top, idx = torch.topk(p, self.k)
            g = top / top.sum() if self.renormalize else top
            out.append(sum(g[j] * self.experts[int(idx[j])]["linear"](t[None])[0] for j in range(self.k)))
        return torch.stack(out).reshape(x.shape)


@ref("moe")
def _moe(a, ins):
    expert = a.expert.written if hasattr(a.expert, "written") else a.expert     # the fuzzer passes the mapping
    return _MixtureOfExperts(ins[0][-1], a.experts, a.top_k, a.renormalize, expert), _xs(ins)


# ops whose MACs torch.utils.flop_counter counts (as 2 FLOPs per MAC); every other op must
# report 0 MACs and torch must count 0 FLOPs for it
# (run with grad enabled and oneDNN off, so that nn.LSTM and nn.MultiheadAttention take
# their decomposed paths instead of fused kernels the counter cannot see)
FLOP_COUNTED = {"conv1d", "conv2d", "conv_transpose2d", "linear", "rnn", "gru", "lstm", "rnn_cell", "attention_gru",
                "gru_cell", "lstm_cell", "attention", "multihead_attention", "matmul", "sdpa", "moe"}

# ops that are not layers and need no reference
NO_REF = {"input"}
