"""What an op's backward keeps from its forward pass, and the work its backward does.

Two op rules (on :class:`archviz.ops.base.Op`), asked only for a layer whose backward runs
(some input needs a gradient, or its parameters are trainable):

``saved(a, ins, outs, need)``        -> [Saved]: the tensors autograd keeps for backward
``backward_macs_terms(a, ins, outs, need)`` -> a Term: the MACs of the backward pass

Each :class:`Saved` names where its tensor comes from: input ``i``, output ``port`` or an
op-internal ``extra`` (dropout's mask, max-pool's indices, a norm's mean and 1/std), with its
element count and a dtype kind: ``"act"`` (the activation dtype), ``"opmath"`` (the dtype torch
computes statistics in: float32 for 16-bit activations, else the activation dtype) or a fixed
dtype (``"bool"``, ``"int64"``).  Parameters and buffers that backward reads (a linear's weight,
batch norm's running statistics) are model state, not activations: no rule lists them.  An input
or output is named by its source so that one tensor kept by two layers (a ReLU's output that
is the next conv's input) counts once (archviz.passes.backward).

:class:`Need` says which gradients the backward computes: for each input, whether it needs
one (a graph input or token ids never do; a layer with no trainable layer upstream does not),
and whether the op's parameters are trainable.  torch keeps a tensor only for a gradient it
computes (a frozen linear on a trainable input keeps nothing but its weight), so the rules
read `need`.

The truth the rules follow is torch on CPU in train mode (the lowered modules of
archviz.backends.torch, oneDNN off), seen by ``torch.autograd.graph.saved_tensors_hooks``; the
deliberate exceptions are in docs/sizing.md ("What backward keeps") and tests/ops/test_backward.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

# the fixed dtype kinds a Saved may have, with their bytes ("act" and "opmath" follow the
# activation dtype: kind_bytes)
FIXED_BYTES = {"bool": 1, "int64": 8}


def kind_bytes(kind: str, act_bytes: int) -> int:
    """Bytes per element of a dtype kind when activations take `act_bytes`."""
    if kind == "act":
        return act_bytes
    if kind == "opmath":
        return max(act_bytes, 4)
    return FIXED_BYTES[kind]


@dataclass(frozen=True, slots=True)
class Saved:
    """One tensor backward keeps: exactly one of `input` (index), `port` (an output) or
    `extra` (a name) is set."""
    numel: int
    input: int | None = None
    port: str | None = None
    extra: str | None = None
    dtype: str = "act"

    @property
    def source(self) -> str:
        if self.input is not None:
            return f"input {self.input}"
        if self.port is not None:
            return "output" if self.port == "out" else f"output '{self.port}'"
        return self.extra


def keep_in(ins: list, i: int = 0, dtype: str = "act") -> Saved:
    return Saved(prod(ins[i]), input=i, dtype=dtype)


def keep_out(outs: dict, port: str = "out") -> Saved:
    return Saved(prod(outs[port]), port=port)


def keep_extra(name: str, numel: int, dtype: str = "act") -> Saved:
    return Saved(int(numel), extra=name, dtype=dtype)


# the layout of a batch-first (N, T, ...) view of a time-major tensor (a recurrent layer's output):
# transposing its axes 0 and 1 makes it contiguous
TIME_MAJOR = "time-major"


@dataclass(frozen=True, slots=True)
class Need:
    """Which gradients a layer's backward computes: `inputs[i]` for input i, `weights` for
    its parameters.  `same[i]` is the index of the first input that is the same tensor as
    input i (torch's multi-head attention takes another path for `query is key`); empty when
    all inputs are distinct.  `strided[i]`: input i is not contiguous, so a linear layer on it
    (3-D or more) keeps a contiguous copy rather than the input itself."""
    inputs: tuple
    weights: bool = False
    same: tuple = ()
    strided: tuple = ()         # strided[i]: input i's layout when not contiguous (TIME_MAJOR, or True)

    def is_strided(self, i: int) -> bool:
        return i < len(self.strided) and bool(self.strided[i])

    def strided_as(self, i: int):
        """Input i's layout: None (contiguous), TIME_MAJOR or True (another)."""
        return self.strided[i] if i < len(self.strided) and self.strided[i] else None

    def is_same(self, i: int, j: int) -> bool:
        return i == j or (bool(self.same) and self.same[i] == self.same[j])

    @property
    def any(self) -> bool:
        return self.weights or any(self.inputs)

    def input(self, i: int = 0) -> bool:
        return i < len(self.inputs) and bool(self.inputs[i])


def all_need(ins: list, weights: bool = True) -> Need:
    """Every input needs a gradient (the registry tests' default)."""
    return Need(tuple(True for _ in ins), weights)
