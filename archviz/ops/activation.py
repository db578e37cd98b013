"""Activations and other shape-preserving element-wise ops: relu, leaky_relu, elu, gelu,
silu, sigmoid, tanh, hardswish, softmax, dropout, identity.

Element-wise count: one operation per output element per application of the function
(softmax: three — exp, the sum, the divide).  Dropout counts 0: archviz analyses the
inference graph, where dropout is the identity.
"""
from __future__ import annotations

from archviz.errors import OpError
from archviz.ops.base import Attr, NoMacs, NoParams, Op, SameShape, numel, register_op


class _Act(SameShape, NoParams, NoMacs, Op):
    family = "activation"
    attrs = {}
    per_element = 1
    elementwise_formula = "numel (one per element)"
    samples = [{"attrs": {}, "inputs": [(2, 8, 5, 5)]}, {"attrs": {}, "inputs": [(3, 10)]}]

    torch_module = ""   # torch.nn class name; the op's attributes are its keyword arguments

    def count_elementwise(self, a, ins, outs):
        return self.per_element * numel(ins[0])

    def to_torch(self, a, ins, outs):
        from torch import nn
        from archviz.backends.torch.modules import make
        return make(getattr(nn, self.torch_module), **{k: a[k] for k in self.attrs})

    def receptive_field(self, a, ins, outs):
        """Element-wise: each output element reads the same element of the input."""
        from archviz.ops import rfmaps as R
        return [R.pointwise(ins[0])]


def _act(name, torch_module, doc, attrs=None):
    cls = type(torch_module, (_Act,), {"name": name, "doc": doc, "attrs": attrs or {},
                                       "torch_module": torch_module})
    return register_op(cls)


_act("relu", "ReLU", "max(0, x) (torch.nn.ReLU).")
_act("leaky_relu", "LeakyReLU", "x if x > 0 else slope·x (torch.nn.LeakyReLU).",
     {"negative_slope": Attr("float", 0.01, "slope for x < 0")})
_act("elu", "ELU", "x if x > 0 else alpha·(eˣ − 1) (torch.nn.ELU).", {"alpha": Attr("float", 1.0, "alpha")})
_act("gelu", "GELU", "x·Φ(x) (torch.nn.GELU).",
     {"approximate": Attr("str", "none", "'none' or 'tanh'", ("none", "tanh"))})
_act("silu", "SiLU", "x·σ(x) (torch.nn.SiLU).")
_act("sigmoid", "Sigmoid", "1 / (1 + e⁻ˣ) (torch.nn.Sigmoid).")
_act("tanh", "Tanh", "tanh(x) (torch.nn.Tanh).")
_act("hardswish", "Hardswish", "x·relu6(x + 3)/6 (torch.nn.Hardswish).")


@register_op
class Softmax(_Act):
    name = "softmax"
    torch_module = "Softmax"
    doc = "exp(x_i) / Σ_j exp(x_j) along `dim` (torch.nn.Softmax)."
    attrs = {"dim": Attr("int", -1, "axis to normalise (batch axis is 0)")}
    per_element = 3
    elementwise_formula = "3 · numel: exp, sum, divide"

    def infer_shape(self, a, ins):
        if not -len(ins[0]) <= a.dim < len(ins[0]):
            raise OpError(f"dim={a.dim} is out of range for a {len(ins[0])}-D input", attr="dim")
        return tuple(ins[0])

    def receptive_field(self, a, ins, outs):
        """Every element reads the whole `dim` (the normalising sum); the other dims pass through."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return [R.along(x, {a.dim % len(x): R.All(x[a.dim])})]


@register_op
class Dropout(_Act):
    name = "dropout"
    torch_module = "Dropout"
    doc = "Randomly zero elements with probability p in training; the identity at inference."
    attrs = {"p": Attr("float", 0.5, "drop probability")}
    per_element = 0
    elementwise_formula = "0 (identity at inference)"

    def infer_shape(self, a, ins):
        if not 0 <= a.p <= 1:
            raise OpError(f"p={a.p} must be in [0, 1]", attr="p")
        return tuple(ins[0])


@register_op
class Identity(_Act):
    name = "identity"
    torch_module = "Identity"
    doc = "Passes its input through (torch.nn.Identity)."
    per_element = 0
    elementwise_formula = "0"
