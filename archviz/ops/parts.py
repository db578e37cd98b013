"""Taking a tensor apart and rearranging it: split and chunk (one output port per part,
named 0, 1, …: read them as `s.0`, `s.1`), slice, channel_shuffle, pixel_shuffle and
pixel_unshuffle.

Sources: the documentation of torch.split, torch.chunk, Python/torch basic slicing,
torch.nn.ChannelShuffle (Zhang et al. 2018, ShuffleNet §3.1), torch.nn.PixelShuffle and
PixelUnshuffle (Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution…", §2.2).

All of them move data and compute nothing: 0 MACs, 0 element-wise operations.  archviz's
axis 0 is always the batch (implicit in a spec), so none of them may cut along it.
"""
from __future__ import annotations

from archviz.errors import OpError
from archviz.ops.base import UNBATCHED, Attr, KeepsNothing, Line, NoMacs, NoParams, Op, SameShape, fmt_shape, register_op
from archviz.ops.describe import Keeps, Role, lowered
from archviz.ops.rfmaps import _Irregular
from archviz.ops.rfmaps_core import _per_position
from archviz.ops.terms import C
from archviz.ops.tensor import BATCH, _axis


class _Parts(KeepsNothing, NoParams, NoMacs, Op):
    family = "tensor"
    role = Role.SHAPE
    keeps = Keeps.NOTHING       # moving data: the gradient is moved back, no values needed

    def elementwise_terms(self, a, ins, outs):
        return C(0)


def _cut_axis(a, x) -> int:
    ax = _axis(a.dim, len(x), "dim")
    if ax == 0:
        raise OpError(f"cutting along the batch axis: {BATCH}", attr="dim", hint="cut along an axis after the batch (1..)")
    return ax


MAX_PARTS = 4096        # parts of one split or chunk: each is an output port of its own


class _AnyPart(tuple):
    """The ports of a split whose part count is not known: every part index, none listed."""

    def __contains__(self, port):
        return isinstance(port, str) and port.isdigit()


class _Split(_Parts):
    """Cut along `dim` into parts of the sizes `_sizes(a, x)`; port k is part k."""
    aliases = train_view = True  # each part is a view of the input

    def output_ports(self, attrs=None):
        """'0', '1', … one per part; while the count is unknown (no attributes, or an attribute
        whose error is reported), any part index, so a reference to a part adds no error."""
        n = self._count(attrs) if attrs is not None else None
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= MAX_PARTS:
            return _AnyPart()           # (too many parts: the shape rule says so, at its place)
        return tuple(str(k) for k in range(n))

    def check(self, a, ins):
        n = self._count(a)
        if n > MAX_PARTS:
            raise OpError(f"{n:,} parts: at most {MAX_PARTS:,} (each part is an output of its own)",
                          attr="sizes" if "sizes" in self.attrs else "chunks", hint="cut into fewer parts")

    def infer_shape(self, a, ins):
        x = ins[0]
        ax = _cut_axis(a, x)
        return {str(k): tuple(n if i != ax else s for i, n in enumerate(x))
                for k, s in enumerate(self._sizes(a, x, ax))}

    def explain_shape(self, a, ins, outs):
        x = ins[0]
        ax = _cut_axis(a, x)
        sizes = self._sizes(a, x, ax)
        return [Line("output shapes", self.shape_rule,
                     f"{fmt_shape(x)} → " + ", ".join(f"{k}: {fmt_shape(o)}" for k, o in outs.items()), sizes)]

    def torch_spec(self, a, ins, outs):
        x = ins[0]
        ax = _cut_axis(a, x)
        return lowered("Split", tuple(self._sizes(a, x, ax)), ax)

    def receptive_field(self, a, ins, outs):
        """Part k reads its own segment: position o along `dim` reads o + offset_k."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        ax = _cut_axis(a, x)
        out, off = {}, 0
        for k, s in enumerate(self._sizes(a, x, ax)):
            out[str(k)] = [R.along(x, {ax: R.Window(1, 1, -off)})]
            off += s
        return out


@register_op
class Split(_Split):
    name = "split"
    doc = ("Cut along `dim` into parts of the given `sizes` (torch.split with a list): one output port per "
           "part, 0, 1, …, read as `s.0`, `s.1`. The sizes must add up to the axis.")
    attrs = {"sizes": Attr("ints", doc="the size of each part along dim (each >= 1, adding up to the axis)"),
             "dim": Attr("int", 1, "the axis to cut (not 0, the batch)")}
    samples = [{"attrs": {"sizes": [2, 4]}, "inputs": [(2, 6, 5, 5)]},
               {"attrs": {"sizes": [1, 3, 1], "dim": -1}, "inputs": [(3, 4, 5)]}]
    shape_rule = "part k has sizes[k] along dim"

    def _count(self, a):
        return len(a["sizes"]) if isinstance(a.get("sizes"), (list, tuple)) else None

    def _sizes(self, a, x, ax):
        if any(s < 1 for s in a.sizes):
            raise OpError(f"sizes {list(a.sizes)}: every part needs at least 1 element (torch returns an empty "
                          "part; in a spec it is a mistake, refused on purpose)", attr="sizes")
        if sum(a.sizes) != x[ax]:
            raise OpError(f"sizes {list(a.sizes)} add up to {sum(a.sizes)}, but axis {a.dim} of {fmt_shape(x)} "
                          f"has {x[ax]}", attr="sizes", hint=f"give sizes that add up to {x[ax]}")
        return list(a.sizes)


@register_op
class Chunk(_Split):
    name = "chunk"
    doc = ("Cut along `dim` into `chunks` parts (torch.chunk): each ⌈n / chunks⌉ long, the last one "
           "shorter; one output port per part, 0, 1, … (ShuffleNetV2's channel split is chunks: 2).")
    attrs = {"chunks": Attr("pos_int", doc="the number of parts"),
             "dim": Attr("int", 1, "the axis to cut (not 0, the batch)")}
    samples = [{"attrs": {"chunks": 2}, "inputs": [(2, 6, 4, 4)]},
               {"attrs": {"chunks": 3, "dim": 2}, "inputs": [(1, 2, 7)]}]
    shape_rule = "parts of ⌈n / chunks⌉, the last one what is left"

    def _count(self, a):
        return a.get("chunks")

    def _sizes(self, a, x, ax):
        n, c = x[ax], a.chunks
        step = -(-n // c)
        sizes = [min(step, n - k * step) for k in range(-(-n // step))]
        if len(sizes) != c:
            raise OpError(f"torch.chunk cuts {n} into {len(sizes)} part(s) of {step}, not {c}: the number of "
                          f"outputs would depend on the size (refused on purpose)", attr="chunks",
                          hint=f"use split with explicit sizes, or a chunk count that leaves no part empty")
        return sizes


@register_op
class Slice(_Parts):
    train_view = True
    name = "slice"
    doc = ("x[..., start:end:step, ...] along `dim` (Python/torch slicing: negative from the end, bounds "
           "clamped); select one index with select_step.")
    aliases = True
    attrs = {"dim": Attr("int", doc="the axis to slice (not 0, the batch)"),
             "start": Attr("int", None, "first index (default 0; negative from the end)"),
             "end": Attr("int", None, "one past the last index (default the end; negative from the end)"),
             "step": Attr("pos_int", 1, "the stride")}
    samples = [{"attrs": {"dim": 1, "start": 1, "end": 4}, "inputs": [(2, 6, 3)]},
               {"attrs": {"dim": -1, "start": -5, "step": 2}, "inputs": [(3, 4, 9)]},
               {"attrs": {"dim": 2, "end": -1}, "inputs": [(1, 2, 5, 5)]}]

    def _range(self, a, x):
        ax = _cut_axis(a, x)
        r = range(x[ax])[a.start:a.end:a.step]
        if not len(r):
            raise OpError(f"the slice [{'' if a.start is None else a.start}:{'' if a.end is None else a.end}"
                          f":{a.step}] of an axis of {x[ax]} is empty (torch returns an empty tensor; in a spec "
                          "it is a mistake, refused on purpose)", attr="start" if a.start is not None else "end")
        return ax, r

    def check(self, a, ins):
        self._range(a, ins[0])

    def caption(self, a):
        s = lambda v: "" if v is None else str(v)    # noqa: E731
        return f"dim {a.get('dim')}: [{s(a.get('start'))}:{s(a.get('end'))}" + \
            (f":{a['step']}" if a.get("step", 1) != 1 else "") + "]"

    def infer_shape(self, a, ins):
        x = ins[0]
        ax, r = self._range(a, x)
        return {"out": tuple(len(r) if i == ax else n for i, n in enumerate(x))}

    def explain_shape(self, a, ins, outs):
        x, o = ins[0], outs["out"]
        ax, r = self._range(a, x)
        return [Line("output shape", "len(range(n)[start:end:step]) along dim",
                     f"indices {r.start}, {r.start + r.step}, … {r[-1]}: {len(r)} → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        ax, r = self._range(a, ins[0])
        return lowered("Slice", ax, r.start, r.stop, r.step)

    def receptive_field(self, a, ins, outs):
        """Position o along dim reads start + o·step."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        ax, r = self._range(a, x)
        return {"out": [R.along(x, {ax: R.Window(1, r.step, -r.start)})]}


def _image(x, what) -> None:
    if len(x) < 4:
        raise OpError(f"expects (N, C, H, W), got {fmt_shape(x)}" + (f" ({UNBATCHED})" if len(x) == 3 else ""),
                      hint=f"{what} rearranges the channels and the last two axes")


class _ChannelPerm(_Irregular):
    """Channel shuffle along the channel axis: output channel j = a·g + b reads input channel
    b·(C/g) + a (view as (g, C/g), transpose, flatten)."""

    def __init__(self, c: int, g: int):
        self.n_out, self.g, self.n = c, g, c // g

    def src(self, j: int) -> int:
        return (j % self.g) * self.n + j // self.g

    gapless = False

    def _span(self, a, b):
        srcs = [self.src(j) for j in range(a, b + 1)]      # at most C channels
        return min(srcs), max(srcs)

    def image(self, ivs, n):
        return _per_position(self, ivs, n)

    def describe(self):
        return f"channel shuffle (groups {self.g})"


@register_op
class ChannelShuffle(SameShape, _Parts):
    name = "channel_shuffle"
    doc = ("Interleave the channels of `groups` groups (torch.nn.ChannelShuffle; ShuffleNet, Zhang et al. "
           "2018): view (N, g, C/g, …), swap the two, flatten back. Same shape.")
    attrs = {"groups": Attr("pos_int", doc="the number of groups (divides C)")}
    samples = [{"attrs": {"groups": 2}, "inputs": [(2, 6, 3, 3)]},
               {"attrs": {"groups": 3}, "inputs": [(1, 12, 2, 5)]}]

    def check(self, a, ins):
        x = ins[0]
        if len(x) < 3:
            raise OpError(f"expects (N, C, ...), got {fmt_shape(x)}: torch's channel_shuffle needs more than 2 axes")
        if x[1] % a.groups:
            raise OpError(f"{x[1]} channels cannot be shuffled in {a.groups} groups", attr="groups",
                          hint="groups must divide the channel count")

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "same as input (channels reordered)", fmt_shape(o), o)]

    def torch_spec(self, a, ins, outs):
        return lowered("ChannelShuffle", a.groups)

    def receptive_field(self, a, ins, outs):
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.along(x, {1: _ChannelPerm(x[1], a.groups)})]}


class _Pixel(_Parts):
    attrs = {"factor": Attr("pos_int", doc="the upscale (or downscale) factor r")}

    def check(self, a, ins):
        x = ins[0]
        _image(x, self.name)
        self._check(a, x)

    def _check(self, a, x):
        pass

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", self.shape_rule, f"{fmt_shape(ins[0])} → {fmt_shape(o)}", o)]

    def torch_spec(self, a, ins, outs):
        return lowered(self.torch_ctor, a.factor)


@register_op
class PixelShuffle(_Pixel):
    name = "pixel_shuffle"
    doc = ("(N, C·r², H, W) → (N, C, H·r, W·r) (torch.nn.PixelShuffle; the sub-pixel convolution of Shi et "
           "al. 2016): the r² channels of a group become an r × r block of positions.")
    samples = [{"attrs": {"factor": 2}, "inputs": [(2, 8, 3, 4)]},
               {"attrs": {"factor": 3}, "inputs": [(1, 9, 2, 2)]}]
    shape_rule = "(N, C/r², H·r, W·r)"
    torch_ctor = "nn.PixelShuffle"

    def resample(self, a, ins, outs):
        from fractions import Fraction
        return (Fraction(a.factor),) * 2

    def _check(self, a, x):
        if x[-3] % (a.factor * a.factor):
            raise OpError(f"{x[-3]} channels are not a multiple of factor² = {a.factor ** 2}", attr="factor",
                          hint="pixel_shuffle turns each r² channels into an r × r block")

    def infer_shape(self, a, ins):
        x, r = ins[0], a.factor
        return {"out": (*x[:-3], x[-3] // (r * r), x[-2] * r, x[-1] * r)}

    def receptive_field(self, a, ins, outs):
        """Output position h reads input position ⌊h / r⌋ (a transposed window of r, stride r);
        output channel c reads the group of r² channels c·r² …"""
        from archviz.ops import rfmaps as R
        x, r = ins[0], a.factor
        lead = [(i, R.IDENTITY) for i in range(len(x) - 3)]
        c = len(x) - 3
        return {"out": [R.Deps(lead + [(c, R.Groups(x[c], x[c] // (r * r), x[c] // (r * r))),
                                       (c + 1, R.Transposed(r, r)), (c + 2, R.Transposed(r, r))])]}


@register_op
class PixelUnshuffle(_Pixel):
    name = "pixel_unshuffle"
    doc = ("(N, C, H·r, W·r) → (N, C·r², H, W) (torch.nn.PixelUnshuffle): each r × r block of positions "
           "becomes r² channels; the inverse of pixel_shuffle.")
    samples = [{"attrs": {"factor": 2}, "inputs": [(2, 3, 4, 6)]},
               {"attrs": {"factor": 3}, "inputs": [(1, 1, 9, 3)]}]
    shape_rule = "(N, C·r², H/r, W/r)"
    torch_ctor = "nn.PixelUnshuffle"

    def resample(self, a, ins, outs):
        from fractions import Fraction
        return (Fraction(1, a.factor),) * 2

    def _check(self, a, x):
        for n, ax in ((x[-2], "H"), (x[-1], "W")):
            if n % a.factor:
                raise OpError(f"{ax} = {n} is not a multiple of factor {a.factor}", attr="factor",
                              hint="pixel_unshuffle cuts the map into r × r blocks")

    def infer_shape(self, a, ins):
        x, r = ins[0], a.factor
        return {"out": (*x[:-3], x[-3] * r * r, x[-2] // r, x[-1] // r)}

    def receptive_field(self, a, ins, outs):
        """Output position h reads the r input positions h·r … h·r + r − 1 (over its r² channels);
        output channel c·r² + k reads input channel c."""
        from archviz.ops import rfmaps as R
        x, r = ins[0], a.factor
        lead = [(i, R.IDENTITY) for i in range(len(x) - 3)]
        c = len(x) - 3
        return {"out": [R.Deps(lead + [(c, R.Groups(x[c], x[c] * r * r, x[c])),
                                       (c + 1, R.Window(r, r)), (c + 2, R.Window(r, r))])]}
