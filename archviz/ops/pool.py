"""Pooling: maxpool2d, avgpool2d, adaptive_avgpool2d, global_avgpool.

Source: torch.nn.MaxPool2d / AvgPool2d / AdaptiveAvgPool2d documentation (output sizes,
ceil_mode rule) and aten/src/ATen/native/Pool.h (pool2d_shape_check: padding at most
⌊kernel / 2⌋, the kernel size itself even when dilated; pooling_output_shape).
"""
from __future__ import annotations

from fractions import Fraction
from math import gcd, prod

from archviz.errors import OpError
from archviz.ops.base import (UNBATCHED, Attr, Line, NoMacs, NoParams, Op, conv_out_len, fmt_shape, keep_extra,
                              keep_in, numel, register_op)
from archviz.ops.terms import C, Prod, V
from archviz.ops.describe import Keeps, Role, is_one, kernel_text, lowered, pair, step_text


class _Pool(NoParams, NoMacs, Op):
    family = "pool"
    role = Role.POOL
    keeps = Keeps.INPUTS     # max: the input (and indices); avg: autograd saves the input too

    def saved(self, a, ins, outs, need):
        """Its input (avg_pool2d's and max_pool2d_with_indices' autograd keep it)."""
        return [keep_in(ins)]

    def caption(self, a):
        """'3×3' or '3×3, /2' when the stride is not the kernel."""
        if a.get("kernel") is None:
            return ""
        st = a.get("stride") or a.get("kernel")
        same = pair(st) == pair(a["kernel"])
        return kernel_text(a["kernel"]) + ("" if same or is_one(st) else f", /{step_text(st)}")

    def resample(self, a, ins, outs):
        """One output position per `stride` (default: the kernel) input positions."""
        return tuple(Fraction(1, s) for s in self._geom(a)[1])

    def _geom(self, a):
        stride = a.stride if a.stride is not None else a.kernel
        dil = a.get("dilation", (1, 1))
        return a.kernel, stride, a.padding, dil

    def infer_shape(self, a, ins):
        x = ins[0]
        if len(x) != 4:
            raise OpError(f"expects a 4-D input (N, C, H, W), got {fmt_shape(x)}"
                          + (f" (a 3-D input: {UNBATCHED})" if len(x) == 3 else ""))
        k, s, p, d = self._geom(a)
        for kk, pp in zip(k, p):
            # torch (aten Pool.h, pool2d_shape_check): kW/2 >= padW, with the kernel size
            # itself, not the dilated window
            if pp > kk // 2:
                raise OpError(f"padding {pp} is more than half the kernel size {kk} (⌊{kk}/2⌋ = {kk // 2}; "
                              f"torch forbids it, whatever the dilation)", attr="padding")
        sp = [conv_out_len(n, kk, ss, 2 * pp, dd, a.ceil_mode) for n, kk, ss, pp, dd in zip(x[2:], k, s, p, d)]
        return {"out": (x[0], x[1], *sp)}

    def explain_shape(self, a, ins, outs):
        x, o = ins[0], outs["out"]
        k, s, p, d = self._geom(a)
        rnd = "⌈" if a.ceil_mode else "⌊"
        rnd2 = "⌉" if a.ceil_mode else "⌋"
        lines = []
        for i, nm in enumerate(("H", "W")):
            n, kk, ss, pp, dd = x[2 + i], k[i], s[i], p[i], d[i]
            formula = f"{nm}_out = {rnd}({nm} + 2p − d·(k − 1) − 1) / s{rnd2} + 1"
            numbers = f"{rnd}({n} + 2·{pp} − {dd}·({kk} − 1) − 1) / {ss}{rnd2} + 1"
            if a.ceil_mode:
                formula += ", less 1 if the last window would start past the input (at (out − 1)·s ≥ H + p)"
                raw = -(-(n + 2 * pp - dd * (kk - 1) - 1) // ss) + 1
                if raw != o[2 + i]:     # torch drops a last window that starts in the right padding or beyond
                    numbers += (f" = {raw}; the last window would start at ({raw} − 1)·{ss} = {(raw - 1) * ss}"
                                f" ≥ {n} + {pp}: dropped, {raw} − 1")
            lines.append(Line(f"output {nm}", formula, f"{numbers} = {o[2 + i]}", o[2 + i]))
        lines.append(Line("output shape", "(N, C, H_out, W_out)", fmt_shape(o), o))
        return lines

    def receptive_field(self, a, ins, outs):
        """Window(k, s, p, d) per spatial axis, per channel (a ceil_mode window that overhangs
        the input reads what is there)."""
        from archviz.ops import rfmaps as R
        k, s, p, d = self._geom(a)
        return {"out": [[R.Window(kk, ss, pp, dd) for kk, ss, pp, dd in zip(k, s, p, d)]]}


_POOL_ATTRS = {
    "kernel": Attr("pos_int2", doc="window size"),
    "stride": Attr("int2_opt", None, "stride (default: the kernel size)"),
    "padding": Attr("int2", 0, "implicit padding per side (at most ⌊kernel / 2⌋)"),
    "ceil_mode": Attr("bool", False, "round the output size up instead of down"),
}


@register_op
class MaxPool2d(_Pool):
    name = "maxpool2d"
    label = "max pool"
    doc = "2-D max pooling (torch.nn.MaxPool2d); overlapping windows when stride < kernel."
    attrs = {**_POOL_ATTRS, "dilation": Attr("pos_int2", 1, "window dilation")}
    elementwise_note = " comparisons"
    samples = [
        {"attrs": {"kernel": 3, "stride": 2}, "inputs": [(1, 96, 55, 55)]},
        {"attrs": {"kernel": 2}, "inputs": [(2, 3, 9, 8)]},
        {"attrs": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}, "inputs": [(1, 4, 14, 15)]},
        {"attrs": {"kernel": [3, 2], "stride": [2, 1], "dilation": 2}, "inputs": [(1, 2, 12, 10)]},
    ]

    def elementwise_terms(self, a, ins, outs):
        return _nchw(outs["out"], "_out") * ((V("kh", a.kernel[0]) * V("kw", a.kernel[1])) - C(1))

    def saved(self, a, ins, outs, need):
        """Its input and the argmax of each window, an int64 per output element."""
        return [keep_in(ins), keep_extra("indices", prod(outs["out"]), "int64")]

    def torch_spec(self, a, ins, outs):
        k, s, p, d = self._geom(a)
        return lowered("nn.MaxPool2d", tuple(k), stride=tuple(s), padding=tuple(p), dilation=tuple(d),
                    ceil_mode=a.ceil_mode)



@register_op
class AvgPool2d(_Pool):
    name = "avgpool2d"
    label = "avg pool"
    doc = "2-D average pooling (torch.nn.AvgPool2d)."
    attrs = {**_POOL_ATTRS, "count_include_pad": Attr("bool", True, "count padded zeros in the average")}
    elementwise_note = "  (kh·kw − 1 adds and one divide per output)"
    samples = [
        {"attrs": {"kernel": 2, "stride": 2}, "inputs": [(1, 8, 16, 16)]},
        {"attrs": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}, "inputs": [(2, 3, 10, 11)]},
    ]

    def elementwise_terms(self, a, ins, outs):
        return _nchw(outs["out"], "_out") * V("kh", a.kernel[0]) * V("kw", a.kernel[1])

    def torch_spec(self, a, ins, outs):
        k, s, p, _ = self._geom(a)
        return lowered("nn.AvgPool2d", tuple(k), stride=tuple(s), padding=tuple(p), ceil_mode=a.ceil_mode,
                    count_include_pad=a.count_include_pad)



def _nchw(shape, suffix: str = ""):
    """N · C · H · W (or L, or D · H · W) of a shape, each axis a named term."""
    sp = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(len(shape) - 2) or \
        tuple(f"S{i}" for i in range(len(shape) - 2))
    return Prod(V("N", shape[0]), V("C", shape[1]), *(V(n + suffix, d) for n, d in zip(sp, shape[2:])))


def bins_total(n: int, o: int) -> int:
    """Σ of the sizes of o adaptive-pooling bins over n positions, bin i covering
    [⌊i·n/o⌋, ⌈(i+1)·n/o⌉) (torch): n + o − gcd(n, o), in O(1) whatever the size.

    Σ ⌈(i+1)·n/o⌉ − Σ ⌊i·n/o⌋ over i < o: with j = i + 1, ⌈j·n/o⌉ = ⌊j·n/o⌋ + 1 unless o
    divides j·n (for gcd(n, o) of the j in 1..o), and Σ_{j=1..o} ⌊j·n/o⌋ = Σ_{i<o} ⌊i·n/o⌋ + n;
    the floor sums cancel, leaving n + o − gcd(n, o)."""
    return n + o - gcd(n, o)


@register_op
class AdaptiveAvgPool2d(NoParams, NoMacs, Op):
    name = "adaptive_avgpool2d"
    family = "pool"
    role = Role.POOL
    label = "adaptive avg pool"
    keeps = Keeps.INPUTS
    doc = "Adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)."
    attrs = {"size": Attr("pos_int2", doc="output size, s or [h, w]")}
    elementwise_note = ("  (Σbin: the bins' sizes along an axis, in + out − gcd(in, out); bins may overlap; "
                        "one add per element of a bin, one divide per output)")
    samples = [{"attrs": {"size": 6}, "inputs": [(1, 256, 13, 13)]},
               {"attrs": {"size": [3, 2]}, "inputs": [(2, 4, 7, 5)]}]

    def infer_shape(self, a, ins):
        x = ins[0]
        if len(x) != 4:
            raise OpError(f"expects a 4-D input (N, C, H, W), got {fmt_shape(x)}"
                          + (f" (a 3-D input: {UNBATCHED})" if len(x) == 3 else
                             " (torch takes it only through its shortcut for output size 1, a mean over the "
                             "last two axes, and refuses every other size; archviz follows torch's 3-D/4-D rule)"
                             if tuple(a.size) == (1, 1) else ""))
        return {"out": (x[0], x[1], *a.size)}

    def saved(self, a, ins, outs, need):
        """Its input; nothing for a 1×1 output, which torch computes as a mean."""
        return [] if all(d == 1 for d in outs["out"][2:]) else [keep_in(ins)]

    def elementwise_terms(self, a, ins, outs):
        x = ins[0]
        return Prod(V("N", x[0]), V("C", x[1]), V("Σbin_h", bins_total(x[2], a.size[0])),
                    V("Σbin_w", bins_total(x[3], a.size[1])))

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(N, C, size_h, size_w)", fmt_shape(o), o)]

    def caption(self, a):
        return f"→ {kernel_text(a['size'])}" if a.get("size") is not None else ""

    def resample(self, a, ins, outs):
        """size / input size per axis (the bins' mean stride is input / size)."""
        return tuple(Fraction(m, n) for n, m in zip(ins[0][2:], outs["out"][2:]))

    def torch_spec(self, a, ins, outs):
        return lowered("nn.AdaptiveAvgPool2d", tuple(a.size))

    def receptive_field(self, a, ins, outs):
        """Bin o reads [⌊o·in/out⌋, ⌈(o + 1)·in/out⌉ − 1]: a plain window when out divides in,
        else position-dependent (periodic with ratio in/out)."""
        from archviz.ops import rfmaps as R
        x, o = ins[0], outs["out"]
        return {"out": [[R.Window(n // m, n // m) if n % m == 0 else R.AdaptiveWindow(n, m) for n, m in zip(x[2:], o[2:])]]}



@register_op
class GlobalAvgPool(NoParams, NoMacs, Op):
    name = "global_avgpool"
    family = "pool"
    role = Role.POOL
    label = "global avg pool"
    keeps = Keeps.INPUTS
    doc = "Average over all spatial positions, keeping (N, C, 1, 1) (torch.nn.AdaptiveAvgPool2d(1))."
    attrs = {}
    elementwise_note = "  (one add per element less one, and one divide, per channel)"
    samples = [{"attrs": {}, "inputs": [(2, 512, 7, 7)]}]

    def infer_shape(self, a, ins):
        x = ins[0]
        if len(x) < 3:
            raise OpError(f"expects an input with spatial axes (N, C, ...), got {fmt_shape(x)}")
        return {"out": (x[0], x[1]) + (1,) * (len(x) - 2)}

    def elementwise_terms(self, a, ins, outs):
        return _nchw(ins[0])

    def saved(self, a, ins, outs, need):
        """Nothing: torch computes it as a mean, whose gradient needs only the shape."""
        return []

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(N, C, 1, 1)", fmt_shape(o), o)]

    def resample(self, a, ins, outs):
        """One output position for the whole axis."""
        return tuple(Fraction(1, n) for n in ins[0][2:])

    def torch_spec(self, a, ins, outs):
        if len(ins[0]) == 3:
            return lowered("nn.AdaptiveAvgPool1d", 1)
        if len(ins[0]) == 5:
            return lowered("nn.AdaptiveAvgPool3d", 1)
        return lowered("nn.AdaptiveAvgPool2d", 1)

    def receptive_field(self, a, ins, outs):
        """Global: every output reads every spatial position of its channel."""
        from archviz.ops import rfmaps as R
        return {"out": [[R.All(n) for n in ins[0][2:]]]}

