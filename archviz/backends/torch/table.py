"""Ops' lowerings, described as data (archviz.ops.describe.TorchSpec), turned into torch
modules: the one place that maps a constructor name to a class.  `lower` and `export` both
build through it, and no op imports torch or this package."""
from __future__ import annotations

from functools import partial

from torch import nn

from archviz.backends.torch import modules, moe_module, seq_modules
from archviz.backends.torch.modules import make
from archviz.codes import E
from archviz.errors import LoweringError
from archviz.ir.graph import LayerGraph
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


# How an analysed graph becomes a module: archviz.backends.torch.lower registers its
# lower_graph here when it is imported (it imports this module, so this one cannot import it).
_GRAPH_LOWERING: list = []


def register_graph_lowering(fn) -> None:
    _GRAPH_LOWERING[:] = [fn]


def build(spec: TorchSpec):
    """The module a TorchSpec describes (constructed with `make`, so `export` can write it).  An
    argument that is an analysed graph (a mixture of experts' expert) is passed as a function
    that lowers it like a model (archviz.backends.torch.lower.lower_graph), a new module per call."""
    def arg(v):
        if isinstance(v, LayerGraph):
            if not _GRAPH_LOWERING:
                raise LoweringError("a sub-network needs archviz.backends.torch.lower (import it first: it "
                                    "registers how a graph is lowered)", code=E.NO_TORCH_RULE)
            return partial(_GRAPH_LOWERING[0], v, "Expert")
        return v
    return make(resolve(spec.ctor), *map(arg, spec.args), **{k: arg(v) for k, v in spec.kwargs.items()})


def module(op, a, ins: list, outs: dict):
    """The torch module of op `op` with attributes `a` at these shapes."""
    return build(op.torch_spec(a, ins, outs))
