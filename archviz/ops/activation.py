"""Activations and other shape-preserving element-wise ops: relu, leaky_relu, elu, gelu,
silu, sigmoid, tanh, hardswish, relu6, hardsigmoid, softplus, mish, hardtanh, softmax,
dropout, stochastic_depth, identity.

Element-wise count: one operation per output element per application of the function
(softmax: three — exp, the sum, the divide).  Dropout counts 0: archviz analyses the
inference graph, where dropout is the identity.
"""
from __future__ import annotations

from archviz.errors import OpError
from archviz.ops.base import Attr, NoMacs, NoParams, Op, SameShape, keep_extra, keep_in, keep_out, register_op
from archviz.ops.terms import C, Numel
from archviz.ops.describe import Keeps, Role, lowered


class _Act(SameShape, NoParams, NoMacs, Op):
    family = "activation"
    keeps_layout = True      # torch's element-wise output takes its input's strides
    role = Role.ACTIVATION
    keeps = Keeps.INPUTS     # most activations' gradient reads their input
    attrs = {}
    per_element = 1
    elementwise_note = " (one per element)"
    samples = [{"attrs": {}, "inputs": [(2, 8, 5, 5)]}, {"attrs": {}, "inputs": [(3, 10)]}]

    torch_module = ""   # torch.nn class name; the op's attributes are its keyword arguments

    def elementwise_terms(self, a, ins, outs):
        return Numel(ins[0]) if self.per_element == 1 else C(self.per_element) * Numel(ins[0])

    def saved(self, a, ins, outs, need):
        """Its input, or its output where torch's backward reads the result (`keeps`)."""
        return [keep_out(outs)] if self.keeps is Keeps.OUTPUT else [keep_in(ins)]

    def torch_spec(self, a, ins, outs):
        return lowered("nn." + self.torch_module, **{k: a[k] for k in self.attrs})

    def receptive_field(self, a, ins, outs):
        """Element-wise: each output element reads the same element of the input."""
        from archviz.ops import rfmaps as R
        return {"out": [R.pointwise(ins[0])]}


def _act(name, torch_module, doc, attrs=None, label="", keeps=Keeps.INPUTS):
    """One activation: its op name, the torch.nn class, the doc, its attributes (the
    class's keyword arguments), its label in a figure and what its backward keeps."""
    cls = type(torch_module, (_Act,), {"name": name, "doc": doc, "attrs": attrs or {},
                                       "torch_module": torch_module, "label": label, "keeps": keeps})
    return register_op(cls)


# torch's backward of relu, sigmoid and tanh reads their output (threshold_backward on the
# result, sigmoid_backward, tanh_backward); the others read their input
_act("relu", "ReLU", "max(0, x) (torch.nn.ReLU).", label="ReLU", keeps=Keeps.OUTPUT)
_act("leaky_relu", "LeakyReLU", "x if x > 0 else slope·x (torch.nn.LeakyReLU).",
     {"negative_slope": Attr("float", 0.01, "slope for x < 0")}, label="LeakyReLU")
_act("elu", "ELU", "x if x > 0 else alpha·(eˣ − 1) (torch.nn.ELU).", {"alpha": Attr("float", 1.0, "alpha")},
     label="ELU")
_act("gelu", "GELU", "x·Φ(x) (torch.nn.GELU).",
     {"approximate": Attr("str", "none", "'none' or 'tanh'", ("none", "tanh"))}, label="GELU")
_act("silu", "SiLU", "x·σ(x) (torch.nn.SiLU).", label="SiLU")
_act("sigmoid", "Sigmoid", "1 / (1 + e⁻ˣ) (torch.nn.Sigmoid).", label="σ", keeps=Keeps.OUTPUT)
_act("tanh", "Tanh", "tanh(x) (torch.nn.Tanh).", label="tanh", keeps=Keeps.OUTPUT)
_act("hardswish", "Hardswish", "x·relu6(x + 3)/6 (torch.nn.Hardswish).")
_act("relu6", "ReLU6", "min(max(0, x), 6) (torch.nn.ReLU6).", label="ReLU6")
_act("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6 (torch.nn.Hardsigmoid).")
_act("softplus", "Softplus", "log(1 + exp(beta·x)) / beta, x itself where beta·x > threshold (torch.nn.Softplus).",
     {"beta": Attr("float", 1.0, "beta"), "threshold": Attr("float", 20.0, "above it the identity")})
_act("mish", "Mish", "x·tanh(softplus(x)) (torch.nn.Mish; Misra 2019).", label="Mish")


@register_op
class Hardtanh(_Act):
    name = "hardtanh"
    torch_module = "Hardtanh"
    doc = "x clipped to [min_val, max_val] (torch.nn.Hardtanh)."
    attrs = {"min_val": Attr("float", -1.0, "the lower bound"), "max_val": Attr("float", 1.0, "the upper bound")}

    def check(self, a, ins):
        if a.max_val <= a.min_val:          # torch's own test (so a NaN bound passes, as in torch)
            raise OpError(f"max_val={a.max_val} must be greater than min_val={a.min_val} (as torch asserts)",
                          attr="max_val")


@register_op
class StochasticDepth(_Act):
    name = "stochastic_depth"
    torch_module = ""
    doc = ("Drops its input with probability p in training — per example ('row') or for the whole batch "
           "('batch') — and scales what survives by 1/(1 − p) (torchvision.ops.StochasticDepth; Huang et al. "
           "2016, \"Deep Networks with Stochastic Depth\"); the identity at inference, so 0 element-wise ops.")
    attrs = {"p": Attr("float", doc="drop probability, in [0, 1]"),
             "mode": Attr("str", "row", "row (per example) or batch", ("row", "batch"))}
    samples = [{"attrs": {"p": 0.1}, "inputs": [(2, 8, 5, 5)]}, {"attrs": {"p": 0.2, "mode": "batch"}, "inputs": [(3, 10)]}]
    per_element = 0             # the identity at inference
    passthrough = aliases = True
    keeps = Keeps.NOTHING       # at inference (training keeps its mask)

    def check(self, a, ins):
        if not 0 <= a.p <= 1:
            raise OpError(f"p={a.p} must be in [0, 1] (as torchvision checks)", attr="p")

    def train_views(self, a):
        return a.p == 0             # p = 0 returns its input

    def saved(self, a, ins, outs, need):
        """The keep/scale factor it multiplies by: one per example ('row') or one ('batch')."""
        if a.p == 0:
            return []
        return [keep_extra("noise", ins[0][0] if a.mode == "row" else 1)]

    def torch_spec(self, a, ins, outs):
        return lowered("StochasticDepth", a.p, a.mode)


@register_op
class Softmax(_Act):
    name = "softmax"
    tp_passes = False          # normalises along an axis: a part of it is not the part of the whole
    torch_module = "Softmax"
    doc = "exp(x_i) / Σ_j exp(x_j) along `dim` (torch.nn.Softmax)."
    keeps = Keeps.OUTPUT     # softmax_backward_data reads the output
    attrs = {"dim": Attr("int", -1, "axis to normalise (batch axis is 0)")}
    per_element = 3
    elementwise_note = ": exp, sum, divide"

    def infer_shape(self, a, ins):
        if not -len(ins[0]) <= a.dim < len(ins[0]):
            raise OpError(f"dim={a.dim} is out of range for a {len(ins[0])}-D input", attr="dim")
        return {"out": tuple(ins[0])}

    def receptive_field(self, a, ins, outs):
        """Every element reads the whole `dim` (the normalising sum); the other dims pass through."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.along(x, {a.dim % len(x): R.All(x[a.dim])})]}


@register_op
class Dropout(_Act):
    name = "dropout"
    torch_module = "Dropout"
    doc = "Randomly zero elements with probability p in training; the identity at inference."
    attrs = {"p": Attr("float", 0.5, "drop probability")}
    per_element = 0             # the identity at inference
    passthrough = aliases = True
    keeps = Keeps.NOTHING    # at inference (training keeps its mask)

    def caption(self, a):
        return f"p={a.get('p')}"

    def infer_shape(self, a, ins):
        if not 0 <= a.p <= 1:
            raise OpError(f"p={a.p} must be in [0, 1]", attr="p")
        return {"out": tuple(ins[0])}

    def train_views(self, a):
        return a.p == 0             # p = 0 returns its input

    def saved(self, a, ins, outs, need):
        """Its keep mask, one bool per element (CUDA's native_dropout; on CPU torch keeps the
        mask in the activation dtype: docs/sizing.md); p = 1 multiplies by a zero scalar."""
        if a.p == 0:
            return []
        if a.p == 1:
            return [keep_extra("zero", 1)]
        from math import prod
        return [keep_extra("mask", prod(ins[0]), "bool")]


@register_op
class Identity(_Act):
    name = "identity"
    torch_module = "Identity"
    doc = "Passes its input through (torch.nn.Identity)."
    per_element = 0
    passthrough = aliases = train_view = True
    keeps = Keeps.NOTHING

    def saved(self, a, ins, outs, need):
        return []
