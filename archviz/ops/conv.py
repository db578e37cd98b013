"""Convolutions: conv1d, conv2d, conv_transpose2d.

Sources: torch.nn.Conv1d / Conv2d / ConvTranspose2d documentation (output-size formulas,
weight layouts); Dumoulin & Visin, "A guide to convolution arithmetic" (2016).
"""
from __future__ import annotations

from fractions import Fraction
from math import prod

from archviz.errors import OpError
from archviz.ops.base import (UNBATCHED, Attr, Line, Op, conv_out_len, fmt_shape, keep_in, numel, register_op,
                              weight_backward)
from archviz.ops.terms import C, Fold, Prod, V
from archviz.ops.describe import Keeps, Role, is_one, kernel_text, lowered, step_text


def _spatial_names(n):
    return ("L",) if n == 1 else ("H", "W")


class _ConvBase(Op):
    family = "conv"
    role = Role.WEIGHT
    label = "conv"
    keeps = Keeps.INPUTS
    nd = 2
    stride_mark = "/"        # a stride divides the resolution

    def elementwise_terms(self, a, ins, outs):
        return C(0)          # bias adds are not counted (DESIGN: MACs exclude bias; not element-wise work)

    def saved(self, a, ins, outs, need):
        """Its input, whichever gradient is asked: torch's convolution autograd saves input and
        weight together (the weight is a parameter, not counted)."""
        return [keep_in(ins)]

    def backward_macs_terms(self, a, ins, outs, need):
        """grad input = a transposed convolution of the output gradient, grad weight = a
        convolution of the input with it: each the forward's MACs (the weight gradient of a
        grouped convolution too; torch's FlopCounterMode counts that one as if ungrouped,
        × groups: docs/sizing.md)."""
        return weight_backward(self.macs_terms(a, ins, outs), need)

    def caption(self, a):
        """'3×3, 64, /2' (textbook order: kernel, width, stride, dilation, groups)."""
        parts = [kernel_text(a["kernel"]) if "kernel" in a else "", str(a.get("out", ""))]
        if not is_one(a.get("stride", 1)):
            parts.append(self.stride_mark + step_text(a["stride"]))
        if not is_one(a.get("dilation", 1)):
            parts.append(f"dil {step_text(a['dilation'])}")
        if a.get("groups", 1) not in (1, None):
            parts.append(f"groups {a['groups']}")
        return ", ".join(p for p in parts if p)

    def resample(self, a, ins, outs):
        """One output position per `stride` input positions."""
        return tuple(Fraction(1, s) for s in a.stride)

    def _check_input(self, a, x):
        if len(x) != self.nd + 2:
            want = "(N, C, L)" if self.nd == 1 else "(N, C, H, W)"
            raise OpError(f"expects a {self.nd + 2}-D input {want}, got {fmt_shape(x)}"
                          + (f" (a {len(x)}-D input: {UNBATCHED})" if len(x) == self.nd + 1 else ""))
        c = x[1]
        if c % a.groups:
            raise OpError(f"input channels {c} are not divisible by groups={a.groups}", attr="groups")
        if a.out % a.groups:
            raise OpError(f"out={a.out} is not divisible by groups={a.groups}", attr="groups")


class _Conv(_ConvBase):
    def _pads(self, a):
        """Total padding per axis and the left part (torch 'same': left = floor(total/2))."""
        if a.padding == "valid":
            return [(0, 0)] * self.nd
        if a.padding == "same":
            tot = [d * (k - 1) for k, d in zip(a.kernel, a.dilation)]
            return [(t, t // 2) for t in tot]
        return [(2 * p, p) for p in a.padding]

    def infer_shape(self, a, ins):
        x = ins[0]
        self._check_input(a, x)
        if a.padding == "same" and any(s != 1 for s in a.stride):
            raise OpError("padding='same' needs stride 1 (as in torch)", attr="padding")
        sp = [conv_out_len(n, k, s, pt, d) for n, k, s, (pt, _), d in
              zip(x[2:], a.kernel, a.stride, self._pads(a), a.dilation)]
        return {"out": (x[0], a.out, *sp)}

    def param_tensors(self, a, ins):
        c = ins[0][1]
        t = [("weight", (a.out, c // a.groups, *a.kernel), "param")]
        if a.bias:
            t.append(("bias", (a.out,), "param"))
        return t

    def macs_terms(self, a, ins, outs):
        """MACs = N · C_out · Π out_spatial · (C_in / groups) · Π kernel."""
        o = outs["out"]
        sp = [V(f"{n}_out", d) for n, d in zip(_spatial_names(self.nd), o[2:])]
        ks = [V(k, d) for k, d in zip(("kh", "kw") if self.nd == 2 else ("k",), a.kernel)]
        return Prod(V("N", o[0]), V("C_out", o[1]), *sp, Fold(V("C_in", ins[0][1]) / V("groups", a.groups)), *ks)

    def explain_shape(self, a, ins, outs):
        x, o = ins[0], outs["out"]
        lines = []
        for i, nm in enumerate(_spatial_names(self.nd)):
            n, k, s, d = x[2 + i], a.kernel[i], a.stride[i], a.dilation[i]
            pt, _ = self._pads(a)[i]
            formula = f"{nm}_out = ⌊({nm} + 2p − d·(k − 1) − 1) / s⌋ + 1"
            ptxt = f"2·{a.padding[i]}" if isinstance(a.padding, tuple) else str(pt)
            nums = f"⌊({n} + {ptxt} − {d}·({k} − 1) − 1) / {s}⌋ + 1 = {o[2 + i]}"
            if a.padding == "same":
                formula += "   (padding='same': 2p = d·(k − 1))"
            lines.append(Line(f"output {nm}", formula, nums, o[2 + i]))
        lines.append(Line("output shape", "(N, out, " + ", ".join(f"{n}_out" for n in _spatial_names(self.nd)) + ")",
                          fmt_shape(o), o))
        return lines

    def torch_spec(self, a, ins, outs):
        cls = "nn.Conv2d" if self.nd == 2 else "nn.Conv1d"
        pad = a.padding if isinstance(a.padding, str) else tuple(a.padding)
        return lowered(cls, ins[0][1], a.out, kernel_size=tuple(a.kernel), stride=tuple(a.stride), padding=pad,
                    dilation=tuple(a.dilation), groups=a.groups, bias=a.bias)

    def receptive_field(self, a, ins, outs):
        """Window(k, s, p_left, d) per spatial axis: output o reads [o·s − p, o·s − p + d·(k − 1)]
        (padding='same': p_left = ⌊d·(k − 1)/2⌋, as torch); each output channel reads the
        channels of its group."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        maps = [R.Window(k, s, left, d) for k, s, (_, left), d in zip(a.kernel, a.stride, self._pads(a), a.dilation)]
        ch = R.Groups(x[1], a.out, a.groups) if a.groups > 1 else R.All(x[1])
        return {"out": [R.spatial(x, maps, ch)]}



_CONV_DOC = ("out: output channels; kernel, stride, dilation: int or per-axis list; padding: int, "
             "per-axis list, 'same' (stride 1) or 'valid'; groups: channel groups; bias.")


@register_op
class Conv2d(_Conv):
    name = "conv2d"
    nd = 2
    doc = "2-D convolution (torch.nn.Conv2d). " + _CONV_DOC
    attrs = {
        "out": Attr("pos_int", doc="output channels"),
        "kernel": Attr("pos_int2", doc="kernel size, k or [kh, kw]"),
        "stride": Attr("pos_int2", 1, "stride"),
        "padding": Attr("padding2", 0, "zero padding per side, [ph, pw], 'same' or 'valid'"),
        "dilation": Attr("pos_int2", 1, "dilation"),
        "groups": Attr("pos_int", 1, "channel groups (in and out must divide)"),
        "bias": Attr("bool", True, "add a learned bias"),
    }
    samples = [
        {"attrs": {"out": 64, "kernel": 3, "padding": 1}, "inputs": [(2, 3, 32, 32)]},
        {"attrs": {"out": 96, "kernel": 11, "stride": 4}, "inputs": [(1, 3, 227, 227)]},
        {"attrs": {"out": 8, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2], "dilation": [2, 1],
                   "groups": 2, "bias": False}, "inputs": [(1, 4, 17, 19)]},
        {"attrs": {"out": 6, "kernel": 4, "padding": "same", "dilation": 2}, "inputs": [(1, 3, 10, 9)]},
        {"attrs": {"out": 5, "kernel": 3, "padding": "valid"}, "inputs": [(1, 2, 7, 8)]},
    ]


@register_op
class Conv1d(_Conv):
    name = "conv1d"
    nd = 1
    doc = "1-D convolution over (N, C, L) (torch.nn.Conv1d). " + _CONV_DOC
    attrs = {
        "out": Attr("pos_int", doc="output channels"),
        "kernel": Attr("int1", doc="kernel size"),
        "stride": Attr("int1", 1, "stride"),
        "padding": Attr("padding1", 0, "zero padding per side, 'same' or 'valid'"),
        "dilation": Attr("int1", 1, "dilation"),
        "groups": Attr("pos_int", 1, "channel groups"),
        "bias": Attr("bool", True, "add a learned bias"),
    }
    samples = [
        {"attrs": {"out": 16, "kernel": 5, "stride": 2, "padding": 2}, "inputs": [(2, 4, 50)]},
        {"attrs": {"out": 4, "kernel": 3, "padding": "same", "dilation": 3, "groups": 2}, "inputs": [(1, 2, 20)]},
    ]


@register_op
class ConvTranspose2d(_ConvBase):
    name = "conv_transpose2d"
    nd = 2
    label = "up-conv"
    stride_mark = "×"        # a transposed conv's stride multiplies the resolution
    doc = ("2-D transposed convolution (torch.nn.ConvTranspose2d): "
           "H_out = (H − 1)·s − 2p + d·(k − 1) + output_padding + 1.")
    attrs = {
        "out": Attr("pos_int", doc="output channels"),
        "kernel": Attr("pos_int2", doc="kernel size"),
        "stride": Attr("pos_int2", 1, "stride (the upsampling factor)"),
        "padding": Attr("int2", 0, "implicit padding removed from each side of the output"),
        "output_padding": Attr("int2", 0, "extra size added to one side of the output"),
        "dilation": Attr("pos_int2", 1, "dilation"),
        "groups": Attr("pos_int", 1, "channel groups"),
        "bias": Attr("bool", True, "add a learned bias"),
    }
    samples = [
        {"attrs": {"out": 512, "kernel": 2, "stride": 2}, "inputs": [(1, 1024, 28, 28)]},
        {"attrs": {"out": 8, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}, "inputs": [(2, 4, 7, 9)]},
        {"attrs": {"out": 6, "kernel": 4, "stride": 2, "padding": 1, "groups": 2, "bias": False},
         "inputs": [(1, 4, 5, 5)]},
    ]

    def infer_shape(self, a, ins):
        x = ins[0]
        self._check_input(a, x)
        sp = []
        for n, k, s, p, op_, d in zip(x[2:], a.kernel, a.stride, a.padding, a.output_padding, a.dilation):
            if op_ >= max(s, d):
                raise OpError(f"output_padding {op_} must be smaller than stride or dilation "
                              f"(max({s}, {d}))", attr="output_padding")
            o = (n - 1) * s - 2 * p + d * (k - 1) + op_ + 1
            if o < 1:
                raise OpError(f"output size {o} is not positive (padding {p} too large)", attr="padding")
            sp.append(o)
        return {"out": (x[0], a.out, *sp)}

    def resample(self, a, ins, outs):
        """`stride` output positions per input position."""
        return tuple(Fraction(s) for s in a.stride)

    def param_tensors(self, a, ins):
        c = ins[0][1]
        t = [("weight", (c, a.out // a.groups, *a.kernel), "param")]
        if a.bias:
            t.append(("bias", (a.out,), "param"))
        return t

    def macs_terms(self, a, ins, outs):
        """Every input element is multiplied by a (C_out/groups)·kh·kw slice of the kernel:
        MACs = N · C_in · H_in · W_in · (C_out / groups) · kh · kw."""
        x = ins[0]
        return Prod(V("N", x[0]), V("C_in", x[1]), V("H_in", x[2]), V("W_in", x[3]),
                    Fold(V("C_out", a.out) / V("groups", a.groups)), V("kh", a.kernel[0]), V("kw", a.kernel[1]))

    def explain_shape(self, a, ins, outs):
        x, o = ins[0], outs["out"]
        lines = []
        for i, nm in enumerate(("H", "W")):
            n, k, s, p, op_, d = x[2 + i], a.kernel[i], a.stride[i], a.padding[i], a.output_padding[i], a.dilation[i]
            lines.append(Line(f"output {nm}", f"{nm}_out = ({nm} − 1)·s − 2p + d·(k − 1) + output_padding + 1",
                              f"({n} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op_} + 1 = {o[2 + i]}", o[2 + i]))
        lines.append(Line("output shape", "(N, out, H_out, W_out)", fmt_shape(o), o))
        return lines

    def torch_spec(self, a, ins, outs):
        return lowered("nn.ConvTranspose2d", ins[0][1], a.out, kernel_size=tuple(a.kernel), stride=tuple(a.stride),
                    padding=tuple(a.padding), output_padding=tuple(a.output_padding), groups=a.groups,
                    bias=a.bias, dilation=tuple(a.dilation))

    def receptive_field(self, a, ins, outs):
        """Transposed(k, s, p, d) per axis: output o reads ⌈(o + p − d(k − 1))/s⌉ ≤ i ≤ ⌊(o + p)/s⌋
        — the field depends on the output position (output_padding only adds positions)."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        maps = [R.Transposed(k, s, p, d) for k, s, p, d in zip(a.kernel, a.stride, a.padding, a.dilation)]
        ch = R.Groups(x[1], a.out, a.groups) if a.groups > 1 else R.All(x[1])
        return {"out": [R.spatial(x, maps, ch)]}

