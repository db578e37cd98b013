"""The gradient oracle (shared/notes/receptive-fields.md): backpropagate a one-hot gradient
at one output position to the input and take the bounding box of the non-zero input
gradient, per axis.

Traps handled: positive weights (uniform in [0.5, 1.5] / fan_in — positive like the
constant 1/fan_in, and also non-symmetric, so a softmax or a layer norm over channels
cannot cancel a uniform gradient to exactly 0), zero biases, positive inputs (ReLUs stay
open; ReLU6 and hardtanh, which close above their ceiling, become ReLUs), max-pool replaced by a positive window sum of the same geometry (dilation and
ceil_mode included; nn.AvgPool2d has no dilation), batch norm and dropout by identity,
float64.  One output position per sample; all channels of that position are seeded, so
the box is the hull over channels, as the static field is.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archviz.backends.torch.lower import to_torch
from archviz.ir import meta as M
from archviz.passes import rf as RF, run
from archviz.passes.rf_exact import field_of


class WindowSum(nn.Module):
    """A positive stand-in for MaxPool2d with the same windows (and output size)."""

    def __init__(self, mp: nn.MaxPool2d):
        super().__init__()
        pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        self.k, self.s = pair(mp.kernel_size), pair(mp.stride if mp.stride is not None else mp.kernel_size)
        self.p, self.d, self.mp = pair(mp.padding), pair(mp.dilation), mp

    def forward(self, x):
        with torch.no_grad():
            out = self.mp(x.detach()).shape[2:]
        pads = []
        for ax in (1, 0):                       # F.pad order: last axis first
            n = x.shape[2 + ax]
            need = (out[ax] - 1) * self.s[ax] + self.d[ax] * (self.k[ax] - 1) + 1
            extra = max(0, need - (n + 2 * self.p[ax]))
            pads += [self.p[ax], self.p[ax] + extra]
        x = F.pad(x, pads)
        c = x.shape[1]
        w = torch.ones(c, 1, *self.k, dtype=x.dtype) / (self.k[0] * self.k[1])
        return F.conv2d(x, w, stride=self.s, dilation=self.d, groups=c)


def _set(gm, name, mod):
    parent, _, leaf = name.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, leaf, mod)


def prepared(model, seed: int = 0):
    """The lowered module, made gradient-transparent (see the module docstring)."""
    gm = to_torch(model, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for name, mod in list(gm.named_modules()):
        if not name:
            continue
        if isinstance(mod, nn.MaxPool2d):
            _set(gm, name, WindowSum(mod))
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout)):
            _set(gm, name, nn.Identity())
        elif isinstance(mod, nn.Hardtanh):      # ReLU6 too: it saturates (gradient 0) once residual
            _set(gm, name, nn.ReLU())           # sums pass 6; with positive inputs a ReLU is open
    for name, p in gm.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        with torch.no_grad():
            if "bias" in leaf:
                p.zero_()
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_((torch.rand(p.shape, generator=gen) + 0.5) / fan_in)
    return gm.double().eval()


class _Stop(Exception):
    pass


def oracle_boxes(model, node_id: str, positions: list, port: str = "out", gm=None, seed: int = 0):
    """Per position (one per axis of the primary input): the per-axis (lo, hi) box of the
    non-zero input gradient, or None per axis if the gradient is zero."""
    ctx = run(model.graph, "rf")
    gx = input_gradient(model, node_id, [[pos] for pos in positions], port, gm, seed)
    out = []
    for s in range(len(positions)):
        nz = gx[s] != 0
        boxes = []
        for ax in ctx.axes:
            d = ax.dim - 1                       # gx[s] has no batch dim
            other = [k for k in range(nz.dim()) if k != d]
            line = nz.permute(d, *other).reshape(nz.shape[d], -1).any(1)
            idx = torch.nonzero(line).flatten()
            boxes.append(None if len(idx) == 0 else (int(idx.min()), int(idx.max())))
        out.append(boxes)
    return out


def input_gradient(model, node_id: str, seed_sets: list, port: str = "out", gm=None, seed: int = 0):
    """The gradient with respect to the primary input, one sample per entry of ``seed_sets``:
    sample s seeds a one-hot gradient (all channels) at every position of ``seed_sets[s]``.
    Everything is positive (see the module docstring), so nothing cancels: the non-zero set
    of a sample is the union of its positions' sets."""
    g = model.graph
    ctx = run(g, "rf")
    node = g.nodes[node_id]
    fields = node.meta[M.RF].fields[port]
    gm = gm or prepared(model, seed)
    primary = list(model.input_shapes).index(ctx.input)
    gen = torch.Generator().manual_seed(seed + 1)
    b = len(seed_sets)
    xs = []
    for i, (name, shape) in enumerate(model.input_shapes.items()):
        x = torch.rand((b, *shape[1:]), generator=gen, dtype=torch.float64) + 0.5
        xs.append(x.requires_grad_(i == primary))
    captured = {}

    def hook(mod, args, out):
        captured["out"] = out[port] if isinstance(out, dict) else out
        raise _Stop

    h = gm.get_submodule(node_id).register_forward_hook(hook)
    try:
        gm(*xs)
    except _Stop:
        pass
    finally:
        h.remove()
    y = captured["out"]
    seed_grad = torch.zeros_like(y)
    for s, group in enumerate(seed_sets):
        for pos in group:
            idx = [slice(None)] * y.dim()
            idx[0] = s
            for f, p in zip(fields, pos):
                if f.dim is not None and f.kind != "fixed":
                    idx[f.dim] = p
            seed_grad[tuple(idx)] = 1.0
    (gx,) = torch.autograd.grad(y, xs[primary], seed_grad)
    return gx


def static_boxes(model, node_id, positions, port="out"):
    return [field_of(model, node_id, pos, port=port, clip=True) for pos in positions]
