"""Tensor ops: permute, transpose, reshape; mean, sum, max over axes; matmul; scale; and
tensors of their own: parameter (learned) and constant (fixed, a buffer).

Sources: torch.permute / transpose / reshape / mean / sum / amax / matmul documentation.

archviz's axis 0 is always the batch (implicit in a spec, set by --batch), so these ops may
not move, merge or reduce it: torch would accept it, archviz refuses it with a located error
(its reshape, like an input's `shape`, gives the axes after the batch).  Views cost nothing;
a reduction costs one operation per element it folds in; matmul costs one multiply-add per
output element and contracted index.
"""
from __future__ import annotations

from math import prod

from archviz.errors import OpError
from archviz.ops.base import (UNBATCHED, Attr, KeepsNothing, Line, NoMacs, NoParams, Op, fmt_shape, keep_extra,
                              keep_in, keep_out, register_op)
from archviz.ops.describe import Keeps, Role, lowered
from archviz.ops.terms import C, Numel, Prod, Tag, V

BATCH = ("archviz's axis 0 is always the batch (implicit in a spec, set by --batch), so it refuses "
         "this on purpose (torch accepts it)")


def _axis(axis: int, rank: int, attr: str) -> int:
    if not -rank <= axis < rank:
        raise OpError(f"axis {axis} is out of range for a {rank}-D input", attr=attr)
    return axis % rank


class _View(KeepsNothing, NoParams, NoMacs, Op):
    """Rearranges elements without computing: a view (or a copy) of its input."""
    family = "tensor"
    role = Role.SHAPE
    aliases = train_view = True
    keeps = Keeps.NOTHING

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", self.shape_rule, f"{fmt_shape(ins[0])} → {fmt_shape(o)}", o)]


class _Reorder(_View):
    """Reorders the axes by the permutation `_perm(a, x)` (output axis i is input axis perm[i])."""

    def check(self, a, ins):
        self._perm(a, ins[0])

    def strided_out(self, a, ins, outs, port, strided):
        """Not contiguous once it moves an axis of size > 1 past another (or its input is not)."""
        x = ins[0]
        moved = [d for d in self._perm(a, x) if x[d] > 1]
        return True if moved != sorted(moved) or (strided and strided[0]) else None

    def infer_shape(self, a, ins):
        x = ins[0]
        return {"out": tuple(x[d] for d in self._perm(a, x))}

    def receptive_field(self, a, ins, outs):
        """Output axis i is input axis perm[i], position for position."""
        from archviz.ops import rfmaps as R
        perm = self._perm(a, ins[0])
        return {"out": [R.Deps([(perm.index(i), R.IDENTITY) for i in range(len(perm))])]}


@register_op
class Permute(_Reorder):
    name = "permute"
    doc = "Reorder the axes: out.shape[i] = x.shape[dims[i]] (torch.permute); the batch axis stays first."
    attrs = {"dims": Attr("ints", doc="a permutation of the input's axes, batch axis 0 first")}
    samples = [{"attrs": {"dims": [0, 2, 3, 1]}, "inputs": [(2, 3, 4, 5)]},
               {"attrs": {"dims": [0, -1, 1]}, "inputs": [(3, 6, 7)]}]
    shape_rule = "out.shape[i] = x.shape[dims[i]]"

    def _perm(self, a, x):
        r = len(x)
        if len(a.dims) != r:
            raise OpError(f"dims {list(a.dims)} name {len(a.dims)} axes for a {r}-D input {fmt_shape(x)}",
                          attr="dims", hint=f"give a permutation of 0..{r - 1}")
        perm = [_axis(d, r, "dims") for d in a.dims]
        if sorted(perm) != list(range(r)):
            raise OpError(f"dims {list(a.dims)} is not a permutation of the axes 0..{r - 1} (an axis repeats)",
                          attr="dims", hint=f"name each of 0..{r - 1} once")
        if perm[0] != 0:
            raise OpError(f"dims {list(a.dims)} moves the batch axis: {BATCH}", attr="dims",
                          hint="keep 0 first and permute the other axes")
        return perm

    def torch_spec(self, a, ins, outs):
        return lowered("Call", "permute", *self._perm(a, ins[0]), method=True)



@register_op
class Transpose(_Reorder):
    name = "transpose"
    doc = "Swap two axes (torch.transpose); the batch axis stays first."
    attrs = {"dim0": Attr("int", doc="one axis"), "dim1": Attr("int", doc="the other axis")}
    samples = [{"attrs": {"dim0": 1, "dim1": 2}, "inputs": [(2, 3, 4)]},
               {"attrs": {"dim0": -1, "dim1": -2}, "inputs": [(2, 4, 5, 6)]}]
    shape_rule = "swap axes dim0 and dim1"

    def _perm(self, a, x):
        r = len(x)
        d0, d1 = _axis(a.dim0, r, "dim0"), _axis(a.dim1, r, "dim1")
        if 0 in (d0, d1) and d0 != d1:
            raise OpError(f"transposing axes {a.dim0} and {a.dim1} moves the batch axis: {BATCH}",
                          attr="dim0" if d0 == 0 else "dim1")
        perm = list(range(r))
        perm[d0], perm[d1] = d1, d0
        return perm

    def torch_spec(self, a, ins, outs):
        return lowered("Call", "transpose", a.dim0, a.dim1, method=True)



@register_op
class Reshape(_View):
    name = "reshape"
    doc = ("Give the axes after the batch a new shape with the same number of elements (torch.reshape); "
           "one size may be −1 (inferred).")
    attrs = {"shape": Attr("ints", doc="the new shape without the batch axis; one entry may be -1")}
    samples = [{"attrs": {"shape": [4, -1]}, "inputs": [(2, 3, 4, 2)]},
               {"attrs": {"shape": [6, 2, 2]}, "inputs": [(1, 24)]}]
    shape_rule = "(N, *shape), one −1 inferred from the element count"

    def infer_shape(self, a, ins):
        x = ins[0]
        n = prod(x[1:])
        free = [i for i, d in enumerate(a.shape) if d == -1]
        if len(free) > 1 or any(d < -1 or d == 0 for d in a.shape):
            raise OpError(f"shape {list(a.shape)}: sizes must be >= 1, with at most one -1", attr="shape")
        known = prod(d for d in a.shape if d != -1)
        if free:
            if n % known:
                raise OpError(f"cannot reshape {fmt_shape(x)} to (N, {', '.join(map(str, a.shape))}): "
                              f"{n} elements per example are not a multiple of {known}", attr="shape",
                              hint="the sizes after the batch must multiply to the input's per-example count")
            shape = tuple(n // known if d == -1 else d for d in a.shape)
        elif known != n:
            raise OpError(f"cannot reshape {fmt_shape(x)} to (N, {', '.join(map(str, a.shape))}): "
                          f"{n} elements per example, the new shape holds {known}", attr="shape",
                          hint="the sizes after the batch must multiply to the input's per-example count")
        else:
            shape = tuple(a.shape)
        return {"out": (x[0], *shape)}

    def torch_spec(self, a, ins, outs):
        return lowered("Call", "reshape", -1, *outs["out"][1:], method=True)     # the batch stays free


class _Reduce(NoParams, NoMacs, Op):
    """Reduce over axes (never the batch axis), keeping them as size 1 with keepdim."""
    family = "tensor"
    role = Role.REDUCE
    attrs = {"dims": Attr("axes", doc="the axis or axes to reduce (not 0, the batch)"),
             "keepdim": Attr("bool", False, "keep the reduced axes as size 1")}
    samples = [{"attrs": {"dims": 1}, "inputs": [(2, 5, 7)]},
               {"attrs": {"dims": [2, 3], "keepdim": True}, "inputs": [(2, 4, 6, 5)]},
               {"attrs": {"dims": -1}, "inputs": [(3, 8)]}]
    torch_fn = ""

    def _dims(self, a, x):
        r = len(x)
        ds = sorted({_axis(d, r, "dims") for d in a.dims})
        if len(ds) != len(a.dims):
            raise OpError(f"dims {list(a.dims)} names an axis twice", attr="dims")
        if 0 in ds:
            raise OpError(f"reducing over the batch axis: {BATCH}", attr="dims",
                          hint="reduce over the axes after the batch (1..)")
        return ds

    def check(self, a, ins):
        self._dims(a, ins[0])

    def infer_shape(self, a, ins):
        x = ins[0]
        ds = self._dims(a, x)
        return {"out": tuple(1 if i in ds else n for i, n in enumerate(x) if a.keepdim or i not in ds)}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "the reduced axes " + ("kept as size 1" if a.keepdim else "removed"),
                     f"{fmt_shape(ins[0])} → {fmt_shape(o)}", o)]

    def elementwise_terms(self, a, ins, outs):
        """One operation per element folded into another: numel(in) − numel(out)."""
        return Tag(Numel(ins[0], "numel(in)") - Numel(outs["out"], "numel(out)"), self.folds)

    folds = "adds"

    def torch_spec(self, a, ins, outs):
        return lowered("Call", self.torch_fn, method=True, dim=tuple(self._dims(a, ins[0])), keepdim=a.keepdim)

    def receptive_field(self, a, ins, outs):
        """Every output element reads the whole of each reduced axis; the others pass through."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        ds = self._dims(a, x)
        dims, j = [], 0
        for i, n in enumerate(x):
            if i in ds:
                dims.append((j if a.keepdim else None, R.All(n)))
                j += 1 if a.keepdim else 0
            else:
                dims.append((j, R.IDENTITY))
                j += 1
        return {"out": [R.Deps(dims)]}


@register_op
class Mean(_Reduce):
    name = "mean"
    doc = "Mean over axes (torch.mean); e.g. average a sequence over time: dims: 1 of (N, T, F)."
    torch_fn = "mean"
    keeps = Keeps.NOTHING       # the gradient is 1/n everywhere: only the shape is needed

    def saved(self, a, ins, outs, need):
        return []

    def elementwise_terms(self, a, ins, outs):
        return super().elementwise_terms(a, ins, outs) + Tag(Numel(outs["out"], "numel(out)"), "divides")


@register_op
class Sum(_Reduce):
    name = "sum"
    doc = "Sum over axes (torch.sum)."
    torch_fn = "sum"
    keeps = Keeps.NOTHING

    def saved(self, a, ins, outs, need):
        return []


@register_op
class Max(_Reduce):
    name = "max"
    doc = "Maximum over axes (torch.amax: the values, not the indices)."
    torch_fn = "amax"
    keeps = Keeps.BOTH          # amax_backward compares the input with the result
    folds = "comparisons"

    def saved(self, a, ins, outs, need):
        """Its input and its result (amax's backward spreads the gradient over the maxima)."""
        return [keep_in(ins), keep_out(outs)]


def _folds(own: tuple, batch: tuple) -> bool:
    """Whether batch axes `own`, expanded to `batch` (a size-1 axis to a larger one: stride 0),
    merge into one axis without a copy: each pair of neighbouring axes of size > 1 has
    stride(i) = stride(i + 1) · size(i + 1)."""
    stride, strides = 1, []
    for o, b in zip(reversed(own), reversed(batch)):
        strides.append(0 if o != b else stride)
        stride *= o
    axes = [(b, st) for b, st in zip(batch, reversed(strides)) if b > 1]
    return all(st == nst * nb for (_, st), (nb, nst) in zip(axes, axes[1:]))


@register_op
class MatMul(NoParams, Op):
    name = "matmul"
    family = "tensor"
    role = Role.CONTRACT
    keeps = Keeps.INPUTS        # each input's gradient is the other input
    doc = ("Batched matrix product a @ b (torch.matmul): (N, ..., n, k) @ (N, ..., k, m) → (N, ..., n, m), "
           "the axes before the last two broadcast; each input has the batch axis and a matrix.")
    min_inputs = max_inputs = 2
    input_ports = ("a", "b")
    attrs = {}
    samples = [{"attrs": {}, "inputs": [(2, 4, 3, 5), (2, 4, 5, 6)]},
               {"attrs": {}, "inputs": [(2, 7, 8), (1, 8, 3)]},
               {"attrs": {}, "inputs": [(3, 1, 4, 2), (3, 5, 2, 4)]}]

    def infer_shape(self, a, ins):
        x, y = ins
        for i, s in enumerate(ins):
            if len(s) < 3:
                raise OpError(f"expects the batch axis and a matrix (N, ..., rows, cols), got {fmt_shape(s)}"
                              + (f" ({UNBATCHED})" if len(s) == 1 else
                                 ": torch would read a 2-D input as one matrix, not a batch of vectors"),
                              input_index=i, hint="reshape a batch of vectors to (N, 1, k) or (N, k, 1)")
        if x[-1] != y[-2]:
            raise OpError(f"cannot multiply {fmt_shape(x)} by {fmt_shape(y)}: inner sizes {x[-1]} and {y[-2]} differ",
                          input_index=1)
        bx, by = x[:-2], y[:-2]
        r = max(len(bx), len(by))
        bx, by = (1,) * (r - len(bx)) + bx, (1,) * (r - len(by)) + by
        batch = []
        for p, q in zip(bx, by):
            if p != q and 1 not in (p, q):
                raise OpError(f"cannot broadcast the batch axes of {fmt_shape(x)} and {fmt_shape(y)} ({p} vs {q})",
                              input_index=1)
            batch.append(max(p, q))
        return {"out": (*batch, x[-2], y[-1])}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(broadcast batch axes, rows of a, cols of b)",
                     f"{fmt_shape(ins[0])} @ {fmt_shape(ins[1])} → {fmt_shape(o)}", o)]

    def macs_terms(self, a, ins, outs):
        """One multiply-add per output element and contracted index: numel(out) · k."""
        return Prod(Numel(outs["out"], "numel(out)"), V("k", ins[0][-1]))

    def saved(self, a, ins, outs, need):
        """Each input where the other needs a gradient, as torch's bmm sees it: broadcast over
        the batch axes, a view of the input where those axes still fold into one (else a copy)."""
        batch = outs["out"][:-2]
        out = []
        for i, (s, other) in enumerate(((ins[0], 1), (ins[1], 0))):
            if not need.input(other):
                continue
            full = (1,) * (len(batch) + 2 - len(s)) + tuple(s)
            if _folds(full[:-2], batch):
                out.append(keep_in(ins, i))
            else:
                out.append(keep_extra(f"input {i} broadcast", prod(batch) * prod(s[-2:])))
        return out

    def backward_macs_terms(self, a, ins, outs, need):
        """grad a = grad · bᵀ and grad b = aᵀ · grad, each the forward's MACs (bmm backward)."""
        from archviz.ops.terms import Parts
        fwd = self.macs_terms(a, ins, outs)
        parts = [(f"grad {p}", fwd) for i, p in enumerate(("a", "b")) if need.input(i)]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def elementwise_terms(self, a, ins, outs):
        return C(0)

    def torch_spec(self, a, ins, outs):
        return lowered("Call", "matmul")

    def receptive_field(self, a, ins, outs):
        """out[..., i, j] reads row i of a and column j of b, whole along k; batch axes broadcast."""
        from archviz.ops import rfmaps as R
        o = outs["out"]

        def deps(s, row: bool):
            off = len(o) - len(s)
            dims = [(off + i, R.Const(0) if n == 1 and o[off + i] != 1 else R.IDENTITY)
                    for i, n in enumerate(s[:-2])]
            k = (None, R.All(s[-1] if row else s[-2]))
            return R.Deps(dims + ([(len(o) - 2, R.IDENTITY), k] if row else [k, (len(o) - 1, R.IDENTITY)]))
        return {"out": [deps(ins[0], True), deps(ins[1], False)]}


@register_op
class Scale(KeepsNothing, NoParams, NoMacs, Op):
    name = "scale"
    family = "tensor"
    role = Role.ACTIVATION
    keeps = Keeps.NOTHING       # the gradient is the constant
    doc = "Multiply by a constant (an expression such as ${1 / sqrt(d)}): y = by · x."
    attrs = {"by": Attr("float", doc="the factor")}
    samples = [{"attrs": {"by": 0.125}, "inputs": [(2, 4, 5)]}]
    elementwise_note = " (one multiply per element)"

    def caption(self, a):
        return f"× {a['by']}" if "by" in a else ""

    def infer_shape(self, a, ins):
        return {"out": tuple(ins[0])}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "same as input", fmt_shape(o), o)]

    def elementwise_terms(self, a, ins, outs):
        return Numel(ins[0])

    def torch_spec(self, a, ins, outs):
        return lowered("Call", "mul", a.by, method=True)

    def receptive_field(self, a, ins, outs):
        from archviz.ops import rfmaps as R
        return {"out": [R.pointwise(ins[0])]}


class _OwnTensor(KeepsNothing, NoParams, NoMacs, Op):
    """A tensor of the layer's own, the same for every example: its output is the tensor
    expanded over the batch of its input, which it reads for its batch size only."""
    family = "tensor"
    size_inputs = (0,)
    keeps = Keeps.NOTHING
    aliases = True              # an expanded view of the one tensor
    state_output = True         # a view of a parameter or buffer: model state, not an activation

    def strided_out(self, a, ins, outs, port, strided):
        """Expanded over a batch of more than one: not contiguous (a linear layer copies it)."""
        return True if ins[0][0] > 1 else None

    def _shape(self, a):
        if not a.shape or any(d < 1 for d in a.shape):
            raise OpError(f"shape {list(a.shape)}: every size must be >= 1", attr="shape")
        return tuple(a.shape)

    def check(self, a, ins):
        self._shape(a)

    def infer_shape(self, a, ins):
        return {"out": (ins[0][0], *self._shape(a))}

    def explain_shape(self, a, ins, outs):
        o = outs["out"]
        return [Line("output shape", "(N, *shape): the one tensor for every example of the batch", fmt_shape(o), o)]

    def elementwise_terms(self, a, ins, outs):
        return C(0)             # expanded over the batch: a view, no work

    def receptive_field(self, a, ins, outs):
        """It reads no position of its input (only its batch size)."""
        return {"out": [None]}


@register_op
class Parameter(_OwnTensor):
    name = "parameter"
    role = Role.PARAMETER
    doc = ("A learned tensor of `shape` (torch.nn.Parameter), the same for every example: ViT's class token "
           "and position embedding, ConvNeXt's layer scale (with mul). `in:` gives the batch only.")
    attrs = {"shape": Attr("ints", doc="the tensor's shape (no batch axis)"),
             "init": Attr("str", "zeros", "zeros, ones or normal (std 0.02) at construction",
                          ("zeros", "ones", "normal")),
             "embedding": Attr("bool", False, "a learned position table: `archviz size` counts it with the "
                               "embeddings (as Hugging Face counts GPT-2's wpe, an nn.Embedding)")}
    samples = [{"attrs": {"shape": [1, 8]}, "inputs": [(2, 5, 8)]},
               {"attrs": {"shape": [4, 1, 1], "init": "ones"}, "inputs": [(3, 4, 6, 6)]}]

    def param_tensors(self, a, ins):
        return [("weight", self._shape(a), "param")]

    def is_embedding(self, a):
        return bool(a.embedding)

    def torch_spec(self, a, ins, outs):
        return lowered("OwnTensor", self._shape(a), a.init, True)


@register_op
class Constant(_OwnTensor):
    name = "constant"
    role = Role.BUFFER
    doc = ("A fixed tensor of `shape`, a buffer (not a parameter): zeros, ones, or the sinusoidal position "
           "table of Vaswani et al. 2017, §3.5, for shape [T, d]: PE(t, 2i) = sin(t / 10000^(2i/d)), "
           "PE(t, 2i+1) = cos(t / 10000^(2i/d)). `in:` gives the batch only.")
    attrs = {"shape": Attr("ints", doc="the tensor's shape (no batch axis)"),
             "init": Attr("str", "sinusoid", "sinusoid (shape [T, d], d even), zeros or ones",
                          ("sinusoid", "zeros", "ones"))}
    samples = [{"attrs": {"shape": [6, 8]}, "inputs": [(2, 6, 8)]},
               {"attrs": {"shape": [3], "init": "ones"}, "inputs": [(4, 3)]}]

    def check(self, a, ins):
        shape = self._shape(a)
        if a.init == "sinusoid" and (len(shape) != 2 or shape[1] % 2):
            raise OpError(f"a sinusoidal table has shape [T, d] with d even, got {list(shape)}", attr="shape")

    def param_tensors(self, a, ins):
        return [("table", self._shape(a), "buffer")]

    def torch_spec(self, a, ins, outs):
        return lowered("OwnTensor", self._shape(a), a.init, False)

