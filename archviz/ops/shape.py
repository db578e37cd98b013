"""Shape and dense ops: input, flatten, linear, pad, center_crop, upsample.

Sources: torch.nn.Flatten / Linear / functional.pad / Upsample documentation; Ronneberger
et al., "U-Net" (2015), Fig. 1, for copy-and-crop.
"""
from __future__ import annotations

from fractions import Fraction
from math import prod

from archviz.errors import OpError
from archviz.ops.base import (UNBATCHED, Attr, KeepsNothing, Line, NoMacs, NoParams, Op, fmt_shape, keep_extra, keep_in, numel,
                              register_op, weight_backward)
from archviz.ops.terms import C, Numel, Prod, V
from archviz.ops.describe import Keeps, Role, kernel_text, lowered, step_text


@register_op
class Input(KeepsNothing, NoParams, NoMacs, Op):
    name = "input"
    family = "shape"
    role = Role.INPUT
    keeps = Keeps.NOTHING
    doc = "A graph input (declared under `inputs:`, not as a node)."
    attrs = {"shape": Attr("ints", doc="shape without batch"), "batch": Attr("pos_int", 1, "batch size")}
    min_inputs = max_inputs = 0

    def infer_shape(self, a, ins):
        return {"out": (a.batch, *a.shape)}

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(N, *shape)", fmt_shape(o), o)]


@register_op
class Flatten(KeepsNothing, NoParams, NoMacs, Op):
    name = "flatten"
    family = "shape"
    role = Role.SHAPE
    aliases = train_view = True           # a view of its input
    keeps = Keeps.NOTHING
    doc = "Merge axes start_dim..end_dim into one (torch.nn.Flatten; default keeps the batch axis)."
    attrs = {"start_dim": Attr("int", 1, "first axis merged"), "end_dim": Attr("int", -1, "last axis merged")}
    samples = [{"attrs": {}, "inputs": [(2, 256, 6, 6)]}, {"attrs": {"start_dim": 2}, "inputs": [(1, 3, 4, 5)]}]

    def infer_shape(self, a, ins):
        x = ins[0]
        r = len(x)
        s, e = a.start_dim % r if -r <= a.start_dim < r else None, a.end_dim % r if -r <= a.end_dim < r else None
        if s is None or e is None or s > e:
            raise OpError(f"cannot flatten axes {a.start_dim}..{a.end_dim} of a {r}-D input {fmt_shape(x)}")
        return {"out": (*x[:s], prod(x[s:e + 1]), *x[e + 1:])}

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        x, o = ins[0], outs["out"]
        return [Line("output shape", f"merge axes {a.start_dim}..{a.end_dim}",
                     f"{fmt_shape(x)} → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        return lowered("nn.Flatten", a.start_dim, a.end_dim)

    def receptive_field(self, a, ins, outs):
        """Flat index f of the merged axes reads the one position it came from (unravelled)."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        r = len(x)
        s, e = a.start_dim % r, a.end_dim % r
        if s == e:
            return {"out": [R.pointwise(x)]}
        dims = ([(i, R.IDENTITY) for i in range(s)] + [(s, R.Unravel(x[s:e + 1], i - s)) for i in range(s, e + 1)]
                + [(i - (e - s), R.IDENTITY) for i in range(e + 1, r)])
        return {"out": [R.Deps(dims)]}



@register_op
class Linear(Op):
    name = "linear"
    family = "dense"
    doc = "y = x·Wᵀ + b over the last axis (torch.nn.Linear)."
    attrs = {"out": Attr("pos_int", doc="output features"), "bias": Attr("bool", True, "add a learned bias")}
    samples = [{"attrs": {"out": 10}, "inputs": [(4, 32)]},
               {"attrs": {"out": 7, "bias": False}, "inputs": [(2, 5, 12)]}]
    # what consumers ask (archviz.ops.describe)
    role = Role.WEIGHT
    label = "fc"
    features_last = True
    keeps = Keeps.INPUTS

    def caption(self, a):
        return str(a["out"]) if "out" in a else ""

    def infer_shape(self, a, ins):
        x = ins[0]
        if len(x) < 2:
            raise OpError(f"expects (N, ..., features), got {fmt_shape(x)} (a 1-D input: {UNBATCHED})")
        return {"out": (*x[:-1], a.out)}

    def lint(self, a, ins):
        """torch's Linear acts on the last axis only; on (N, C, H, W) that mixes W alone, which
        is almost always a missing flatten (or global pooling) before a classifier."""
        x = ins[0]
        if len(x) >= 4:
            return (f"linear on a {len(x)}-D input {fmt_shape(x)} acts on the last axis only "
                    f"({x[-1]} features), once per position of the others; add a flatten (or a global "
                    f"pooling) before it if it is meant to see the whole feature map")
        return None

    def param_tensors(self, a, ins):
        t = [("weight", (a.out, ins[0][-1]), "param")]
        if a.bias:
            t.append(("bias", (a.out,), "param"))
        return t

    def macs_terms(self, a, ins, outs):
        """MACs = (rows: N · Π middle axes) · in_features · out_features."""
        x = ins[0]
        return Prod(Numel(x[:-1], "rows"), V("in_features", x[-1]), V("out_features", a.out))

    def saved(self, a, ins, outs, need):
        """Its input, for the weight's gradient (addmm keeps mat1 only where mat2 needs a
        gradient): nothing when frozen; a 3-D input is kept as a 2-D view of itself, or as a
        contiguous copy when it is not contiguous (a transposed or batch-first RNN output)."""
        if not need.weights:
            return []
        return [keep_extra("input, a contiguous copy", prod(ins[0])) if len(ins[0]) > 2 and need.is_strided(0)
                else keep_in(ins)]

    def backward_macs_terms(self, a, ins, outs, need):
        """grad input = grad · W, grad weight = gradᵀ · x: each the forward's MACs."""
        return weight_backward(self.macs_terms(a, ins, outs), need)

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(..., out)", fmt_shape(o), o)]

    def tensor_parallel(self, a, ins, outs, split, t):
        """Megatron: a whole input makes it column-parallel (weight rows and bias split, the
        output split: an LM head's vocabulary padded to a multiple of t); a split input
        row-parallel (weight columns split, the bias whole, the output whole after an
        all-reduce)."""
        if split[0]:
            return {"weight": 1, "bias": None}, {"out": False}
        return {"weight": 0, "bias": 0}, {"out": True}

    def decode_macs(self, a, ins, outs, tokens, context):
        """Per token: applied to each position on its own, so one token costs MACs / T."""
        x = ins[0]
        if len(x) < 3 or x[1] != tokens:
            raise OpError(f"reads {fmt_shape(x)}, with no token axis of length {tokens} after the batch: "
                          "it does not run once per token")
        return self.count_macs(a, ins, outs) // tokens

    def torch_spec(self, a, ins, outs):
        return lowered("nn.Linear", ins[0][-1], a.out, bias=a.bias)

    def receptive_field(self, a, ins, outs):
        """Every output feature reads every input feature (the last axis); other axes pass
        through — after flatten that makes the field global."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.along(x, {len(x) - 1: R.All(x[-1])})]}



@register_op
class Pad(NoParams, NoMacs, Op):
    name = "pad"
    family = "shape"
    role = Role.SHAPE
    keeps = Keeps.NOTHING
    doc = ("Pad the trailing axes (torch.nn.functional.pad order: [left, right] for the last axis, "
           "then [top, bottom] for the one before, ...); constant mode may pad every axis, the batch "
           "axis too (as torch).")
    attrs = {"pads": Attr("ints", doc="[left, right, top, bottom, ...] (torch order, last axis first)"),
             "mode": Attr("str", "constant", "constant, reflect or replicate", ("constant", "reflect", "replicate")),
             "value": Attr("float", 0, "fill value for constant mode")}
    samples = [{"attrs": {"pads": [1, 2, 3, 4]}, "inputs": [(1, 2, 5, 6)]},
               {"attrs": {"pads": [1, 1, 2, 0], "mode": "reflect"}, "inputs": [(2, 3, 8, 8)]}]

    def saved(self, a, ins, outs, need):
        """Nothing for constant padding (the gradient is a slice); reflect and replicate keep
        their input."""
        return [] if a.mode == "constant" else [keep_in(ins)]

    def infer_shape(self, a, ins):
        x = list(ins[0])
        # torch's own rules (F.pad): pairs, at most one per axis
        if len(a.pads) % 2:
            raise OpError(f"pads {list(a.pads)} must come in pairs [before, after] per axis "
                          f"(torch: 'Padding length must be divisible by 2')", attr="pads")
        if len(a.pads) // 2 > len(x):
            raise OpError(f"pads {list(a.pads)} give {len(a.pads) // 2} pairs for a {len(x)}-D input "
                          f"(torch: 'Padding length should be less than or equal to two times the input "
                          f"dimension')", attr="pads")
        # constant mode pads any axis, the batch axis included (as torch; like concat on axis 0,
        # the output's batch is then no longer --batch)
        k = len(a.pads) // 2
        if a.mode != "constant" and k not in {len(x) - 2, len(x) - 1} & {1, 2, 3}:
            raise OpError(f"{a.mode} padding of a {len(x)}-D input pads its last {max(len(x) - 2, 1)} "
                          f"axis/axes (or one more without a batch axis), not {k} (torch's rule)", attr="pads")
        for i in range(k):
            ax = len(x) - 1 - i
            lo, hi = a.pads[2 * i], a.pads[2 * i + 1]
            if a.mode == "reflect" and (lo >= x[ax] or hi >= x[ax]):
                raise OpError(f"reflect padding {lo},{hi} must be smaller than the axis size {x[ax]}", attr="pads")
            # constant mode crops the negative pads off the input first (torch narrows, then
            # pads), so they alone must not remove more than the axis has
            if a.mode == "constant" and x[ax] + min(lo, 0) + min(hi, 0) < 0:
                raise OpError(f"negative pads {lo},{hi} crop more than the axis size {x[ax]}", attr="pads")
            x[ax] = x[ax] + lo + hi
            if x[ax] < 1:
                raise OpError(f"padding leaves axis {ax} empty", attr="pads")
        return {"out": tuple(x)}

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "each padded axis grows by its two pads", fmt_shape(o), o)]

    def torch_spec(self, a, ins, outs):
        return lowered("Pad", tuple(a.pads), a.mode, float(a.value))

    def receptive_field(self, a, ins, outs):
        """Constant padding: Window(1, 1, left) on each padded axis (a negative pad crops).
        Reflect/replicate: the same in theory (the field reaches into the padding); exactly, a
        padded position reads the reflected / clamped index."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        ch = {}
        for i in range(len(a.pads) // 2):
            ax, left = len(x) - 1 - i, a.pads[2 * i]
            ch[ax] = R.Window(1, 1, left) if a.mode == "constant" else R.Reflect(x[ax], left, a.mode)
        return {"out": [R.along(x, ch)]}



@register_op
class CenterCrop(KeepsNothing, NoParams, NoMacs, Op):
    name = "center_crop"
    family = "shape"
    role = Role.SHAPE
    label = "crop"
    aliases = train_view = True           # a slice of its first input
    size_inputs = (1,)       # the second input gives only the target size
    keeps = Keeps.NOTHING
    doc = ("Crop the first input's spatial axes to the second input's size, centred "
           "(U-Net copy-and-crop). Offset per axis: ⌊(H₁ − H₂) / 2⌋.")
    attrs = {}
    min_inputs = max_inputs = 2
    samples = [{"attrs": {}, "inputs": [(1, 512, 64, 64), (1, 512, 56, 56)]}]

    def infer_shape(self, a, ins):
        x, ref = ins
        if len(x) != len(ref) or len(x) < 3:
            raise OpError(f"cannot crop {fmt_shape(x)} to the spatial size of {fmt_shape(ref)}")
        for d1, d2 in zip(x[2:], ref[2:]):
            if d2 > d1:
                raise OpError(f"cannot crop {fmt_shape(x)} to a larger size {fmt_shape(ref[2:])}")
        return {"out": (*x[:2], *ref[2:])}

    def offsets(self, ins):
        return [(d1 - d2) // 2 for d1, d2 in zip(ins[0][2:], ins[1][2:])]

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        offs = self.offsets(ins)
        return [Line("output shape", "(N, C₁, H₂, W₂), offsets ⌊(H₁ − H₂)/2⌋",
                     f"{fmt_shape(o)}, offsets {offs}", o)]

    def torch_spec(self, a, ins, outs):
        return lowered("CenterCrop")

    def receptive_field(self, a, ins, outs):
        """A crop of c leading positions is Window(1, 1, −c); the reference input gives only its
        size (no dependence on its values)."""
        from archviz.ops import rfmaps as R
        return {"out": [[R.Window(1, 1, -c) for c in self.offsets(ins)], None]}



# torch converts the output size to int64 and refuses what does not fit (c10::checked_convert)
_INT64_LIMIT = float(2 ** 63)


def upsample_len(n: int, scale) -> int:
    """torch's output length for a scale factor (aten/src/ATen/native/UpSample.cpp,
    compute_output_size): ``(int64_t)(double(n) · double(scale))`` — the product is taken in
    IEEE double and truncated, not computed exactly.  So 11 · 15/11 gives
    11 · 1.3636363636363635 = 14.999999999999998 → 14 (exactly 15 in rationals), and
    49 · 1/49 gives 0.9999999999999999 → 0, which torch then refuses."""
    try:
        s = float(scale)
    except OverflowError:           # a Fraction beyond the double range
        s = float("inf")
    odim = float(n) * s
    if not odim < _INT64_LIMIT:
        raise OpError(f"{n} · scale {scale} = {odim} overflows torch's output size (an int64; torch: "
                      "'value cannot be converted to type int64_t without overflow')", attr="scale")
    out = int(odim)
    if out < 1:
        raise OpError(f"output size ⌊{n} · {s!r}⌋ = ⌊{odim!r}⌋ = {out}: torch refuses it (\"Input and output "
                      "sizes should be greater than 0\")", attr="scale",
                      hint="torch multiplies in floating point: a scale such as 1/49 gives 0.999…, not 1")
    return out


@register_op
class Upsample(KeepsNothing, NoParams, NoMacs, Op):
    name = "upsample"
    family = "shape"
    role = Role.RESAMPLE
    keeps = Keeps.NOTHING    # nearest and bilinear backward need only the sizes
    doc = ("Upsample (N, C, H, W) by `scale`, to `size`, or to the spatial size of a second input "
           "(`in: [x, skip]`: F.interpolate(x, size=skip.shape[2:]), as a decoder meets its skip) "
           "(torch.nn.Upsample): H_out = ⌊H · scale⌋, the product taken in floating point as torch does "
           "(11 · 15/11 gives 14).")
    max_inputs = 2
    size_inputs = (1,)       # a second input gives only the target size
    attrs = {"scale": Attr("scale2", None, "scale factor, s or [sh, sw]"),
             "size": Attr("int2_opt", None, "output size (instead of scale)"),
             "mode": Attr("str", "nearest", "nearest or bilinear", ("nearest", "bilinear")),
             "align_corners": Attr("bool", None, "bilinear only (default false); torch refuses it, "
                                                 "even false, in nearest mode")}
    elementwise_note = " (bilinear: 4 multiplies and 3 adds per output; nearest is a gather: 0)"
    samples = [{"attrs": {"scale": 2}, "inputs": [(1, 3, 5, 7)]},
               {"attrs": {"size": [9, 4], "mode": "bilinear"}, "inputs": [(2, 2, 4, 4)]},
               {"attrs": {"scale": [2, 3], "mode": "bilinear", "align_corners": True}, "inputs": [(1, 2, 5, 3)]},
               {"attrs": {"mode": "bilinear"}, "inputs": [(2, 3, 4, 5), (2, 1, 9, 11)]}]

    def caption(self, a):
        """'×2', '×2, bilinear' or '→ 9×4'."""
        if a.get("scale") is not None:
            return f"×{step_text(a['scale'])}" + (f", {a['mode']}" if a.get("mode") not in (None, "nearest") else "")
        return f"→ {kernel_text(a['size'])}" if a.get("size") is not None else ""

    def resample(self, a, ins, outs):
        """Output positions per input position: the inverse of the receptive field's ratio
        (1/scale, in/out, or (in − 1)/(out − 1) with align_corners), so the two rules cannot
        drift; out/in where an axis is read whole (an output of one position)."""
        maps = self.receptive_field(a, ins, outs)["out"][0]
        return tuple(1 / m.ratio if m.ratio else Fraction(m_out, n)
                     for m, n, m_out in zip(maps, ins[0][2:], outs["out"][2:]))

    def check(self, a, ins):
        if a.align_corners is not None and a.mode == "nearest":
            raise OpError("align_corners applies only to interpolating modes (bilinear): torch refuses it "
                          "in nearest mode, even as false", attr="align_corners",
                          hint="remove align_corners, or use mode: bilinear")

    def infer_shape(self, a, ins):
        x = ins[0]
        self.check(a, ins)
        if len(x) != 4:
            raise OpError(f"expects (N, C, H, W), got {fmt_shape(x)}"
                          + (" (torch also interpolates a 3-D (N, C, L) or 5-D (N, C, D, H, W) input with one "
                             "scale or size for every axis; archviz does not support that)" if len(x) in (3, 5) else ""))
        if len(ins) == 2:
            like = ins[1]
            if a.scale is not None or a.size is not None:
                raise OpError("a second input gives the size: leave out `scale` and `size`",
                              attr="scale" if a.scale is not None else "size")
            if len(like) != 4:
                raise OpError(f"the second input gives the size (N, C, H, W); got {fmt_shape(like)}", input_index=1)
            return {"out": (*x[:2], *like[2:])}
        if (a.scale is None) == (a.size is None):
            raise OpError("give exactly one of `scale` and `size` (or a second input whose size to take)",
                          attr="scale")
        if a.size is not None:
            return {"out": (*x[:2], *a.size)}
        return {"out": (*x[:2], *(upsample_len(n, s) for n, s in zip(x[2:], a.scale)))}

    def elementwise_terms(self, a, ins, outs):
        return C(0) if a.mode == "nearest" else C(7) * Numel(outs["out"], "numel(out)")

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        if len(ins) == 2:
            return [Line("output shape", "(N, C) of x, (H, W) of the second input", fmt_shape(o), o)]
        if a.size is not None:
            return [Line("output shape", "(N, C, size_h, size_w)", fmt_shape(o), o)]
        x = ins[0]
        parts = []
        for n, s, m in zip(x[2:], a.scale, o[2:]):
            exact = n * s
            txt = f"⌊{n} · {s}⌋ = {m}"
            if float(n) * float(s) != exact:      # the floating-point product is not the exact one
                txt = f"⌊{n} · {float(s)!r}⌋ = ⌊{float(n) * float(s)!r}⌋ = {m} (exactly {exact} in rationals)"
            parts.append(txt)
        return [Line("output shape", "H_out = ⌊H · scale⌋ (in double precision, as torch)",
                     ", ".join(parts) + f" → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        kw = {"mode": a.mode}
        if a.mode == "bilinear":
            kw["align_corners"] = bool(a.align_corners)
        if len(ins) == 2:
            return lowered("UpsampleLike", **kw)
        if a.size is not None:
            return lowered("nn.Upsample", size=tuple(a.size), **kw)
        return lowered("nn.Upsample", scale_factor=tuple(float(s) for s in a.scale), **kw)

    def receptive_field(self, a, ins, outs):
        """Nearest: o reads ⌊o·in/out⌋; bilinear: the two neighbours of torch's source index —
        position-dependent (see archviz.ops.rfmaps.Nearest / Bilinear)."""
        from archviz.ops import rfmaps as R
        x, o = ins[0], outs["out"]
        sc = a.scale if a.scale is not None else (None,) * (len(x) - 2)
        if a.mode == "nearest":
            maps = [R.Nearest(n, m, s) for n, m, s in zip(x[2:], o[2:], sc)]
        elif a.mode == "bilinear":
            maps = [R.Bilinear(n, m, bool(a.align_corners), s) for n, m, s in zip(x[2:], o[2:], sc)]
        else:
            raise NotImplementedError(f"no receptive-field rule for mode '{a.mode}'")
        return {"out": [maps] + [None] * (len(ins) - 1)}      # a second input: its size only

