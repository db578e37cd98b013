"""The op registry: one class per op holding every rule of that op side by side.

An op declares its attribute schema (:class:`Attr`), its arity and output ports, and
implements rules:

``infer_shape(a, ins)``       -> output shape, or {port: shape} for several outputs
``param_tensors(a, ins)``     -> [(name, shape, kind)], kind "param" or "buffer"
                                 (names follow the torch module's state-dict names)
``count_macs(a, ins, outs)``  -> multiply-accumulates (int)
``count_elementwise(...)``    -> element-wise operations (int), documented per op
``explain_shape / explain_macs / explain_elementwise`` -> [Line]
``receptive_field`` / ``torch_spec``  (other passes and backends)

``torch_spec(a, ins, outs)`` describes, as data (no torch import), the ``nn.Module`` that
computes the op: its ``forward`` takes the node's inputs positionally (in input order) and
returns a tensor, or a dict {port: tensor} when the op has several output ports.  Its
parameter and buffer names must equal ``param_tensors``' names.  What consumers ask of an
op (role, label, resampling, recurrence...) is in :mod:`archviz.ops.describe`.

``a`` is an :class:`Attrs` (normalised attributes, with defaults), ``ins`` the list of
input shapes (batch first).  A rule an op does not define raises
:class:`MissingRuleError` naming op and rule: it is never counted as 0.  Ops with no
parameters or no MACs say so by mixing in :class:`NoParams` / :class:`NoMacs`.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, ClassVar

from archviz.codes import E
from archviz.errors import MissingRuleError, OpError
from archviz.ops.describe import Keeps, Merge, Recurrence, Role
from archviz.ops.terms import Line, Parts, Term, V, line  # noqa: F401  (explained numbers)
from archviz.ops.saved import Need, Saved, keep_extra, keep_in, keep_out  # noqa: F401  (what backward keeps)
from archviz.ops.schema import ATTR_TYPES, REQUIRED, Attr, Attrs, normalise  # noqa: F401  (the attribute schema)



# Stacked recurrent layers: every rule walks the layers (one weight set each), so a count of
# 10⁹ cost 13 s and 3 GB before it failed.  torch sets no bound; archviz refuses more than
# this with a located error (no published network comes near it).
MAX_LAYERS = 1000

# Deliberate refusals (the README lists them) that torch accepts: archviz's axis 0 is always the
# batch, implicit in a spec and set by --batch.
UNBATCHED = ("torch would read it as one unbatched example; archviz's axis 0 is always the batch "
             "(implicit in a spec, set by --batch), so it refuses this on purpose")
BATCH_AXIS_WHY = ("the batch axis is implicit in a spec and set by --batch, and a layer's parameters "
                  "never depend on it (torch accepts this; archviz refuses it on purpose)")

@dataclass(slots=True)      # one per layer
class Params:
    trainable: int = 0
    non_trainable: int = 0
    buffers: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __add__(self, o: "Params") -> "Params":
        return Params(self.trainable + o.trainable, self.non_trainable + o.non_trainable,
                      self.buffers + o.buffers)


_TP_PASS_ROLES = frozenset({Role.ACTIVATION, Role.MERGE, Role.SHAPE, Role.EMBEDDING})


def numel(shape) -> int:
    return prod(shape)


def fmt_shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


class Op:
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    attrs: ClassVar[dict] = {}
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    outputs: ClassVar[tuple] = ("out",)
    # names accepted in a mapping `in:`, in slot order: ins[i] is always input_ports[i]; the
    # first min_inputs are required, and an optional port cannot be skipped before a given one
    input_ports: ClassVar[tuple | None] = None
    # sample cases for registry-driven tests: {"attrs": {...}, "inputs": [shape, ...]}
    samples: ClassVar[list] = []

    # -- what consumers ask (archviz.ops.describe) ---------------------------
    role: ClassVar[Role | None] = None          # required: a registry test names an op without one
    label: ClassVar[str] = ""                   # textbook name in a figure ("" = the op's name)
    merge: ClassVar[Merge | None] = None
    features_last: ClassVar[bool] = False       # reads a 3-D input as a sequence (N, T, F)
    passthrough: ClassVar[bool] = False         # the identity at inference
    aliases: ClassVar[bool] = False             # the output may be a view of input 0
    size_inputs: ClassVar[tuple] = ()           # inputs read only for their size
    keeps: ClassVar[Keeps | None] = None        # what backward keeps (see backward_keeps)
    train_view: ClassVar[bool] = False          # in training its output(s) share input 0's storage
    state_output: ClassVar[bool] = False        # its output is (a view of) a parameter or buffer

    @property
    def title(self) -> str:
        return self.label or self.name

    def caption(self, a: dict) -> str:
        """The attributes a figure shows: the non-default ones as k=v.  `a` may hold only
        some of the attributes (a figure asks for the kernel alone)."""
        out = []
        for k, spec in self.attrs.items():
            if k not in a or k == "shape":
                continue
            v = a[k]
            if not spec.required and v == spec.default:
                continue
            out.append(f"{k}={list(v) if isinstance(v, tuple) else v}")
        return ", ".join(out)

    def resample(self, a: Attrs, ins: list, outs: dict) -> tuple | None:
        """Output positions per input position along each spatial axis (a Fraction each);
        None when the op does not resample space."""
        return None

    def recurrence(self, a: Attrs) -> Recurrence | None:
        return None

    def tensor_bytes(self, a: Attrs, name: str) -> int | None:
        """Bytes per element of one of its param_tensors when its dtype is fixed (an int64
        counter); None: the model's dtype."""
        return None

    def is_embedding(self, a: Attrs) -> bool:
        """Whether its params are an embedding table (a token or position table), which
        `archviz size` counts apart from the rest."""
        return self.role is Role.EMBEDDING

    def token_vocab(self, a: Attrs) -> int | None:
        """The vocabulary size when input 0 holds token ids."""
        return None

    def selects(self, a: Attrs, ins: list) -> tuple | None:
        """(axis, index), both normalised to non-negative, when the op picks one index
        along an axis of input 0 (that axis disappears); else None."""
        return None

    def train_views(self, a: Attrs) -> bool:
        """Whether, in training, its output(s) share input 0's storage (views: a reshape, a
        split; dropout with p = 0)."""
        return self.train_view

    keeps_layout: ClassVar[bool] = False        # element-wise: its output has its input's strides

    def strided_out(self, a: Attrs, ins: list, outs: dict, port: str, strided: tuple):
        """Output `port`'s layout in training when it is not contiguous (`strided[i]`: input i's):
        a transpose (True), a batch-first recurrent output (TIME_MAJOR); a view and an element-wise
        op (torch's outputs follow their input's strides) keep input 0's; else None."""
        if self.train_views(a) or self.keeps_layout:
            return strided[0] if strided else None
        return None

    def backward_keeps(self, a: Attrs) -> Keeps:
        if self.keeps is None:
            self._missing("backward_keeps")
        return self.keeps

    # -- schema --------------------------------------------------------------
    def output_ports(self, attrs: dict | None = None) -> tuple:
        return self.outputs

    def check(self, a: Attrs, ins: list) -> None:
        """Cross-attribute / input-rank checks (raise OpError); optional."""

    def static_batch(self, a: Attrs) -> bool:
        """Whether torch's ONNX exporter bakes the traced batch size into this layer's graph
        (then an export keeps the batch axis fixed)."""
        return False

    def train_check(self, a: Attrs, ins: list) -> None:
        """Raise OpError where torch runs the layer at inference (what archviz analyses) but
        cannot train it at these shapes (batch norm with one value per channel); optional."""

    def lint(self, a: Attrs, ins: list) -> str | None:
        """A use that torch runs but that is almost always a mistake (a linear layer on a 4-D
        feature map): the message of a spec warning (W0704), or None; optional."""
        return None

    # -- rules (override) ----------------------------------------------------
    def _missing(self, rule: str):
        raise MissingRuleError(f"op '{self.name}' has no '{rule}' rule", code=E.MISSING_RULE)

    def infer_shape(self, a: Attrs, ins: list):
        self._missing("infer_shape")

    def param_tensors(self, a: Attrs, ins: list) -> list:
        self._missing("param_tensors")

    def macs_terms(self, a: Attrs, ins: list, outs: dict):
        """The MACs as a Term (archviz.ops.terms) or Parts: one formula gives the count and
        its explanation."""
        self._missing("macs_terms")

    def elementwise_terms(self, a: Attrs, ins: list, outs: dict):
        """The element-wise operations as a Term or Parts (documented per op)."""
        self._missing("elementwise_terms")

    def count_macs(self, a: Attrs, ins: list, outs: dict) -> int:
        return int(self.macs_terms(a, ins, outs).value())

    def count_elementwise(self, a: Attrs, ins: list, outs: dict) -> int:
        return int(self.elementwise_terms(a, ins, outs).value())

    def explain_shape(self, a: Attrs, ins: list, outs: dict) -> list:
        self._missing("explain_shape")

    # -- serving a decoder (archviz size): one new token per sequence, keys/values cached ----
    def decode_macs(self, a: Attrs, ins: list, outs: dict, tokens: int, context: int) -> int:
        """The MACs of one decode step: each of the N sequences adds one token, with `context`
        keys and values cached, where the analysed graph runs `tokens` positions at once.  An op
        without multiply-accumulates costs 0; one with them needs its own rule (raise OpError
        where it cannot decode: it reads later tokens, or it has no token axis)."""
        if self.count_macs(a, ins, outs) == 0:
            return 0
        self._missing("decode_macs")

    # -- tensor parallelism (archviz size --tensor-parallel T), Megatron-style ------------
    # whether a tensor split over the devices (its features or heads) passes through this op
    # unchanged, each device computing its part (element-wise work, sums and products, shape
    # ops on heads); None: by its role
    tp_passes: ClassVar[bool | None] = None

    def tensor_parallel(self, a: Attrs, ins: list, outs: dict, split: tuple, t: int) -> tuple:
        """({param tensor name: the axis it is split along over the t devices, or None: whole},
        {output port: split}) when input i is split (its features or heads) where split[i]
        (a device holds ceil(size / t) of the axis: Megatron pads a vocabulary).  Whole inputs: the op is replicated,
        its params whole.  Split inputs pass through an op without params that says so
        (tp_passes); any other op needs its own rule (linear: column- or row-parallel)."""
        split = tuple(s for i, s in enumerate(split) if i not in self.size_inputs)
        if not any(split):
            return {n: None for n, _s, _k in self.param_tensors(a, ins)}, {p: False for p in outs}
        passes = self.tp_passes if self.tp_passes is not None else self.role in _TP_PASS_ROLES
        if not passes or self.param_tensors(a, ins):
            raise OpError(f"reads a tensor split over the {t} tensor-parallel devices, and {self.name} has no "
                          "rule to run on a part of it", hint="Megatron splits the attention and MLP blocks "
                          "between a column-parallel and a row-parallel linear; keep norms and reductions outside")
        if not all(split):
            raise OpError(f"mixes a tensor split over the {t} tensor-parallel devices with a whole one",
                          hint="a residual add takes the row-parallel linear's (whole) output")
        return {}, {p: True for p in outs}

    def kv_cache(self, a: Attrs, ins: list, outs: dict) -> tuple | None:
        """(elements cached per token per sequence, window or None) for a causal self-attention
        layer: the keys and values a decoder keeps for every earlier token; None for others."""
        return None

    def explain_macs(self, a: Attrs, ins: list, outs: dict) -> list:
        t = self.macs_terms(a, ins, outs)
        return t.lines() if isinstance(t, Parts) else [line("MACs", t, self.macs_note)]

    macs_note: ClassVar[str] = ""       # after the MACs formula, e.g. " (bias adds not counted)"

    def receptive_field(self, a: Attrs, ins: list, outs: dict):
        self._missing("receptive_field")

    # -- training (archviz.ops.saved; asked only where the layer's backward runs) ----------
    def saved(self, a: Attrs, ins: list, outs: dict, need: Need) -> list:
        """The tensors autograd keeps for this layer's backward ([Saved]), parameters and
        buffers excluded, for the gradients `need` asks for."""
        self._missing("saved")

    def backward_macs_terms(self, a: Attrs, ins: list, outs: dict, need: Need):
        """The backward pass's MACs as a Term or Parts (grad of each input that needs one,
        grad of trainable weights), as torch's kernels compute them."""
        self._missing("backward_macs_terms")

    def inner_graph(self, a: Attrs, ins: list):
        """(graph, times) where the layer runs an analysed graph of its own, `times` over its
        input's tokens in all (a mixture of experts: its expert, top_k): archviz.passes.backward
        adds that graph's backward, as train_costs finds it, `times` over; else None."""
        return None

    def count_backward_macs(self, a: Attrs, ins: list, outs: dict, need: Need) -> int:
        return int(self.backward_macs_terms(a, ins, outs, need).value())

    def explain_backward(self, a: Attrs, ins: list, outs: dict, need: Need) -> list:
        """Two lines: what backward keeps (elements by source) and its MACs."""
        kept = self.saved(a, ins, outs, need)
        n = sum(s.numel for s in kept)
        text = " + ".join(s.source + ("" if s.dtype == "act" else f" ({s.dtype})") for s in kept)
        nums = " + ".join(f"{s.numel:,}" for s in kept) + (f" = {n:,}" if len(kept) > 1 else "")
        lines = [Line("backward keeps (elements)", text or "nothing", nums or "0", n)]
        t = self.backward_macs_terms(a, ins, outs, need)
        if isinstance(t, Parts):
            t.what = "backward MACs"
            return lines + t.lines()
        return lines + [line("backward MACs", t)]

    def torch_spec(self, a: Attrs, ins: list, outs: dict):
        """The torch module computing this op, as data (archviz.ops.describe.TorchSpec)."""
        self._missing("torch_spec")

    # -- derived -------------------------------------------------------------
    def attrs_of(self, raw: dict) -> "Attrs":
        """Normalised attributes from plain values (defaults filled, types checked); raises
        the first problem.  For ops composed of other ops and for tests."""
        a, errors = normalise(self, dict(raw), {}, None, f"attributes of '{self.name}'")
        if errors:
            raise errors[0]
        return a

    def evaluate(self, a: Attrs, ins: list) -> dict:
        """`check` then `infer_shape`: the output shapes {port: tuple of ints}, exactly the
        op's output ports, in their order.  What the shape pass, composite ops and the
        tests call."""
        self.check(a, ins)
        out = self.infer_shape(a, ins)
        ports = tuple(self.output_ports(a))
        if not isinstance(out, dict) or set(out) != set(ports):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise MissingRuleError(f"op '{self.name}': infer_shape must return {{port: shape}} for its output "
                                   f"ports {list(ports)}, got {got}", code=E.INTERNAL)
        return {p: tuple(int(d) for d in out[p]) for p in ports}

    def count_params(self, a: Attrs, ins: list, frozen: bool = False) -> Params:
        p = Params()
        for _name, shape, kind in self.param_tensors(a, ins):
            n = numel(shape)
            if kind == "buffer":
                p.buffers += n
            elif frozen:
                p.non_trainable += n
            else:
                p.trainable += n
        return p

    def active_params(self, a: Attrs, ins: list) -> int | None:
        """The params one token uses (a mixture of experts: the router and top_k experts);
        None: all of them."""
        return None

    def explain_params(self, a: Attrs, ins: list) -> list:
        """Generic: one line per parameter tensor (from `param_tensors`), then the sum."""
        tensors = self.param_tensors(a, ins)
        params = [(n, s) for n, s, kind in tensors if kind != "buffer"]
        bufs = [(n, s) for n, s, kind in tensors if kind == "buffer"]
        if not params:
            lines = [Line("params", "no parameters", "0", 0)]
        else:
            lines = [Line(f"params: {n}", f"{n} {fmt_shape(s)}",
                          (" × ".join(map(str, s)) + f" = {numel(s):,}") if len(s) > 1 else f"{numel(s):,}",
                          numel(s)) for n, s in params]
            if len(params) > 1:
                total = sum(numel(s) for _, s in params)
                lines.append(Line("params", " + ".join(n for n, _ in params),
                                  " + ".join(f"{numel(s):,}" for _, s in params) + f" = {total:,}", total))
        if bufs:
            nb = sum(numel(s) for _, s in bufs)
            lines.append(Line("buffers (not parameters)", " + ".join(f"{n} {fmt_shape(s)}" for n, s in bufs),
                              " + ".join(str(numel(s)) for _, s in bufs) + f" = {nb:,}", nb))
        return lines

    def explain_elementwise(self, a: Attrs, ins: list, outs: dict) -> list:
        t = self.elementwise_terms(a, ins, outs)
        if not t.value():
            return []
        return t.lines() if isinstance(t, Parts) else [line("element-wise ops", t, self.elementwise_note)]

    elementwise_note: ClassVar[str] = ""   # after the element-wise formula: what the operations are

    def explain(self, a: Attrs, ins: list, outs: dict) -> list:
        return (self.explain_shape(a, ins, outs) + self.explain_params(a, ins)
                + self.explain_macs(a, ins, outs) + self.explain_elementwise(a, ins, outs))


class NoParams:
    """Mixin: the op has no parameters and no buffers (declared, not defaulted)."""

    def param_tensors(self, a, ins):
        return []


class NoMacs:
    """Mixin: the op does no multiply-accumulates (its work is element-wise), forward or
    backward."""
    no_macs_why: ClassVar[str] = "no multiply-accumulates (element-wise work counted apart)"

    def macs_terms(self, a, ins, outs):
        return V(self.no_macs_why, 0)

    def backward_macs_terms(self, a, ins, outs, need):
        return V(self.no_macs_why, 0)


class KeepsNothing:
    """Mixin: backward keeps no tensor (it moves or sums the gradient: add, concat, views)."""

    def saved(self, a, ins, outs, need):
        return []


class KeepsInput:
    """Mixin: backward keeps input 0 (most activations: GELU, SiLU, ... read their input)."""

    def saved(self, a, ins, outs, need):
        return [keep_in(ins, 0)]


class KeepsOutput:
    """Mixin: backward keeps the output (ReLU, sigmoid, tanh, softmax read their result)."""

    def saved(self, a, ins, outs, need):
        return [keep_out(outs)]


def weight_backward(fwd, need: Need, i: int = 0, weight_fwd=None):
    """Backward MACs of a layer linear in its input and its weight (conv, linear): the
    gradient of input `i` (if it needs one) and of the weight (if trainable) each cost the
    forward's MACs (torch's convolution_backward / mm backward)."""
    parts = []
    if need.input(i):
        parts.append(("grad input", fwd))
    if need.weights:
        parts.append(("grad weight", weight_fwd if weight_fwd is not None else fwd))
    return Parts(parts) if parts else V("no gradient computed", 0)


class SameShape:
    """Mixin: output shape equals the (first) input shape."""

    def infer_shape(self, a, ins):
        return {"out": tuple(ins[0])}

    def explain_shape(self, a, ins, outs):
        s = outs["out"]
        return [Line("output shape", "same as input", fmt_shape(s), s)]


# -- registry ------------------------------------------------------------------
class Registry(dict):
    def register(self, cls):
        if not cls.name:
            raise TypeError(f"{cls.__name__} has no name")
        if cls.name in self:
            raise TypeError(f"op '{cls.name}' registered twice "
                            f"({type(self[cls.name]).__name__} and {cls.__name__})")
        self[cls.name] = cls()
        return cls


registry = Registry()


def register_op(cls):
    """Class decorator: add one instance of the op to the registry."""
    return registry.register(cls)


# -- shared formulas -------------------------------------------------------------
def conv_out_len(n: int, k: int, s: int, p_total: int, d: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a convolution/pooling window along one axis.

    L_out = floor((L + p_total − d·(k − 1) − 1) / s) + 1      (torch Conv2d docs)

    With ceil_mode (pooling): ceil instead of floor, and the last window must start
    inside the input or the left padding, else it is dropped (torch MaxPool2d docs;
    aten/src/ATen/native/Pool.h, pooling_output_shape).  So in ceil mode a window may
    overhang the padded input: only L_out < 1 is an error (as torch: "Output size is
    too small"), e.g. L = 2, k = 3, s = 2 gives ⌈(2 − 3)/2⌉ + 1 = 1.
    """
    eff = d * (k - 1) + 1
    span = n + p_total - eff
    if ceil_mode:
        out = -(-span // s) + 1          # ⌈span / s⌉ + 1 (span may be negative)
        p_left = p_total // 2
        if (out - 1) * s >= n + p_left:
            out -= 1
    else:
        out = span // s + 1              # ⌊span / s⌋ + 1
    if out < 1:
        raise OpError(f"window of {eff} (kernel {k}, dilation {d}) is larger than the "
                      f"padded input of {n + p_total}"
                      + (f" by {eff - n - p_total} (ceil_mode allows at most {s - 1} past the end)"
                         if ceil_mode else ""))
    return out


def pair(v, n: int = 2) -> tuple:
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,) * n
