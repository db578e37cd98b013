"""Small torch modules for ops torch.nn has no module for, and `make`, which records
how a module was constructed so `archviz export` can write a standalone .py file.

Every class here is self-contained (it uses only `torch`, `nn` and `F`): the exporter
copies its source into the generated file.
"""
from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn


def _plain(v):
    """Exact Fractions (from `/` in spec expressions) become floats for torch."""
    if isinstance(v, Fraction):
        return float(v)
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return v


def make(cls, *args, **kwargs):
    """Construct `cls(*args, **kwargs)` and remember the call for the exporter."""
    args = tuple(_plain(a) for a in args)
    kwargs = {k: _plain(v) for k, v in kwargs.items()}
    mod = cls(*args, **kwargs)
    object.__setattr__(mod, "_archviz_ctor", (cls, args, kwargs))
    return mod


def set_inplace(mod) -> bool:
    """Switch a module that supports it (nn.ReLU, Add) to in-place; keep the exporter's
    record in step. Returns whether it did."""
    if not isinstance(mod, (nn.ReLU, Add)):
        return False
    mod.inplace = True
    cls, args, kwargs = mod._archviz_ctor
    object.__setattr__(mod, "_archviz_ctor", (cls, args, {**kwargs, "inplace": True}))
    return True


class Add(nn.Module):
    """Element-wise sum of all inputs (broadcasting). With inplace=True the sum is written
    into the first input (the lowering allows it only where nothing else reads that tensor)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out.add_(x) if self.inplace else out + x
        return out


class Mul(nn.Module):
    """Element-wise product of all inputs (broadcasting)."""

    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(nn.Module):
    """torch.cat of all inputs along `dim`."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)


class CenterCrop(nn.Module):
    """Crop x's trailing spatial axes to ref's size, offset ⌊(H1 − H2)/2⌋ (U-Net copy-and-crop)."""

    def forward(self, x, ref):
        idx = [slice(None), slice(None)]
        for d1, d2 in zip(x.shape[2:], ref.shape[2:]):
            o = (d1 - d2) // 2
            idx.append(slice(o, o + d2))
        return x[tuple(idx)]


class Pad(nn.Module):
    """torch.nn.functional.pad with fixed pads/mode/value."""

    def __init__(self, pads, mode: str = "constant", value: float = 0.0):
        super().__init__()
        self.pads, self.mode, self.value = tuple(pads), mode, value

    def forward(self, x):
        if self.mode == "constant":
            return F.pad(x, self.pads, mode="constant", value=self.value)
        return F.pad(x, self.pads, mode=self.mode)


class Call(nn.Module):
    """A tensor method or torch function as a module: ``x.permute(*args)`` (method=True) or
    ``torch.matmul(*inputs, *args, **kwargs)``; ops whose lowering is one call need no class
    of their own."""

    def __init__(self, fn: str, *args, method: bool = False, **kwargs):
        super().__init__()
        self.fn, self.args, self.method, self.kwargs = fn, args, method, kwargs

    def forward(self, *xs):
        if self.method:
            return getattr(xs[0], self.fn)(*self.args, *xs[1:], **self.kwargs)
        return getattr(torch, self.fn)(*xs, *self.args, **self.kwargs)

    def extra_repr(self) -> str:
        return f"{'x.' if self.method else 'torch.'}{self.fn}{self.args or ''}"


class StochasticDepth(nn.Module):
    """Stochastic depth (Huang et al. 2016), as torchvision.ops.StochasticDepth: in training,
    zero the input with probability p per example ('row') or for the whole batch ('batch') and
    scale what survives by 1/(1 − p); the identity at inference."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class OwnTensor(nn.Module):
    """A tensor of the layer's own, expanded over the batch of its input (read for its size
    only): a learned `weight` (nn.Parameter) or a fixed `table` (a buffer: zeros, ones or the
    sinusoidal position table of Vaswani et al. 2017, §3.5)."""

    def __init__(self, shape, init: str = "zeros", learned: bool = True):
        super().__init__()
        shape = tuple(shape)
        if init == "sinusoid":
            t, d = shape
            pos = torch.arange(t, dtype=torch.float64).unsqueeze(1)
            freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
            value = torch.zeros(t, d, dtype=torch.float64)
            value[:, 0::2] = torch.sin(pos * freq)
            value[:, 1::2] = torch.cos(pos * freq)
            value = value.to(torch.get_default_dtype())
        elif init == "normal":
            value = torch.randn(shape) * 0.02
        else:
            value = torch.ones(shape) if init == "ones" else torch.zeros(shape)
        if learned:
            self.weight = nn.Parameter(value)
        else:
            self.register_buffer("table", value)
        self.learned = learned

    def forward(self, x):
        v = self.weight if self.learned else self.table
        if not torch.is_grad_enabled():     # a view of a leaf under no_grad keeps requires_grad
            v = v.detach()                  # without a grad_fn, which torch's module hooks refuse
        return v.expand(x.shape[0], *v.shape)



class Split(nn.Module):
    """torch.split(x, sizes, dim) as a dict of parts {'0': …, '1': …} (one output port each)."""

    def __init__(self, sizes, dim: int):
        super().__init__()
        self.sizes, self.dim = list(sizes), dim

    def forward(self, x):
        return {str(k): t for k, t in enumerate(torch.split(x, self.sizes, self.dim))}

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dim={self.dim}"


class Slice(nn.Module):
    """x[..., start:stop:step] along `dim` (basic slicing: a view)."""

    def __init__(self, dim: int, start: int, stop: int, step: int = 1):
        super().__init__()
        self.dim, self.start, self.stop, self.step = dim, start, stop, step

    def forward(self, x):
        return x[(slice(None),) * self.dim + (slice(self.start, self.stop, self.step),)]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, [{self.start}:{self.stop}:{self.step}]"


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle (Zhang et al. 2018), as torchvision writes it: view the
    channels as (groups, C/groups), swap the two, flatten back (exportable to ONNX, unlike
    torch's native channel_shuffle)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c = x.shape[0], x.shape[1]
        rest = x.shape[2:]
        return x.reshape(n, self.groups, c // self.groups, *rest).transpose(1, 2).reshape(n, c, *rest)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class UpsampleLike(nn.Module):
    """F.interpolate(x, size=like.shape[2:]): upsample to the spatial size of another tensor
    (a decoder meeting its skip connection)."""

    def __init__(self, mode: str = "nearest", align_corners: bool | None = None):
        super().__init__()
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x, like):
        return F.interpolate(x, size=like.shape[2:], mode=self.mode, align_corners=self.align_corners)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
