"""Ops' lowerings, described as data (archviz.ops.describe.TorchSpec), turned into torch
modules: the one place that maps a constructor name to a class.  `lower` and `export` both
build through it, and no op imports torch or this package."""
from __future__ import annotations

from torch import nn

from archviz.backends.torch import modules, moe_module, seq_modules
from archviz.backends.torch.modules import make
from archviz.codes import E
from archviz.errors import LoweringError
from archviz.ops.describe import TorchSpec


def resolve(ctor: str):
    """"nn.Conv2d" → torch.nn.Conv2d; "SeqLSTM" → archviz's own module of that name."""
    if ctor.startswith("nn."):
        cls = getattr(nn, ctor[3:], None)
    else:
        cls = getattr(modules, ctor, None) or getattr(seq_modules, ctor, None) or getattr(moe_module, ctor, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise LoweringError(f"no torch module '{ctor}' (an op's lowering names it)", code=E.NO_TORCH_RULE)
    return cls


def build(spec: TorchSpec):
    """The module a TorchSpec describes (constructed with `make`, so `export` can write it)."""
    return make(resolve(spec.ctor), *spec.args, **spec.kwargs)


def module(op, a, ins: list, outs: dict):
    """The torch module of op `op` with attributes `a` at these shapes."""
    return build(op.torch_spec(a, ins, outs))
