"""What an op tells the code that consumes it (diagrams, passes, lowering), so that no
consumer decides by an op's name.

Every op declares, next to its other rules (defaults on :class:`archviz.ops.base.Op`):

``role``            what kind of layer it is (:class:`Role`, a closed set)
``label``           its textbook name in a figure ("conv", "BN", "σ"; default the op name)
``caption(a)``      the attributes a figure shows, in textbook order ("3×3, 64, /2")
``resample(a, ins, outs)``  output positions per input position along each spatial axis, an
                    exact Fraction per axis (1/2 for a stride-2 conv, 2 for a ×2 up-conv);
                    None when the op does not resample space
``recurrence(a)``   a :class:`Recurrence` for recurrent layers and cells, else None
``merge``           how a merge joins its inputs (:class:`Merge`), else None
``token_vocab(a)``  the vocabulary size when the op reads token ids, else None
``features_last``   a 3-D input is read as a sequence (N, T, F), features last
``passthrough``     the identity at inference (dropout, identity)
``aliases``         the output may be a view of input 0
``size_inputs``     inputs read only for their size (a crop's target)
``selects(a, ins)`` (axis, index) when the op picks one index along an axis, else None
``backward_keeps(a)``  what its backward pass keeps (:class:`Keeps`)
``torch_spec(a, ins, outs)``  its lowering as data (:class:`TorchSpec`): a torch.nn class
                    ("nn.Conv2d") or one of archviz's own modules ("SeqLSTM"), and the
                    arguments; archviz.backends.torch.table builds the module

Text helpers for captions live here too.  This module is part of the core: it imports
nothing heavy and nothing from the backends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction


class Role(Enum):
    INPUT = "input"
    WEIGHT = "weight"            # a learned linear map: conv, transposed conv, linear
    EMBEDDING = "embedding"
    ATTENTION = "attention"
    NORM = "norm"
    ACTIVATION = "activation"    # element-wise functions, dropout and identity included
    POOL = "pool"
    MERGE = "merge"
    RESAMPLE = "resample"        # interpolation (upsample)
    SHAPE = "shape"              # flatten, pad, crop
    SEQUENCE = "sequence"        # select a step, reverse time
    RECURRENT = "recurrent"      # a whole sequence
    CELL = "cell"                # one time step
    PARAMETER = "parameter"      # a learned tensor of its own (a class token, a position embedding)
    BUFFER = "buffer"            # a fixed tensor (a sinusoidal position table)
    REDUCE = "reduce"            # mean, sum or max over axes
    CONTRACT = "contract"        # a product of its inputs as matrices (matmul)


# roles a reader names in a figure ("conv 3×3, 64"): the head of a fused conv·BN·ReLU box
LAYER_ROLES = frozenset({Role.WEIGHT, Role.EMBEDDING, Role.ATTENTION})
# drawn inside the box of the layer before them
FUSABLE_ROLES = frozenset({Role.NORM, Role.ACTIVATION})
RECURRENT_ROLES = frozenset({Role.RECURRENT, Role.CELL})


class Merge(Enum):
    SUM = "sum"
    PRODUCT = "product"
    CONCAT = "concat"


class Cell(Enum):
    """The recurrent cell kinds, with their gate sets (W_ih has gates·h rows)."""
    RNN = "rnn"
    GRU = "gru"
    LSTM = "lstm"

    @property
    def gates(self) -> int:
        return {"rnn": 1, "gru": 3, "lstm": 4}[self.value]

    @property
    def title(self) -> str:
        return self.value.upper()


class Keeps(Enum):
    """What an op's backward pass needs kept from its forward pass."""
    INPUTS = "inputs"            # conv, linear, norms: the gradient needs the input
    OUTPUT = "output"            # relu, sigmoid, tanh, softmax: the gradient reads the output
    BOTH = "both"                # recurrent layers (cuDNN reads the input and the output sequence)
    NOTHING = "nothing"          # add, concat, flatten, dropout at inference


@dataclass(frozen=True)
class Recurrence:
    kind: Cell
    hidden: int                  # h, the hidden size
    h_out: int                   # the emitted hidden size (LSTM proj_size or h)
    layers: int = 1
    directions: int = 1
    step: bool = False           # a cell: one time step
    state_in: tuple = ()         # input ports of the initial state(s), hidden first
    state_out: tuple = ()        # output ports of the final state(s)
    memory: str | None = None    # the input port attended over at every step (attention_gru)


@dataclass(frozen=True)
class TorchSpec:
    """A torch module as data: `ctor` is "nn.Name" (torch.nn) or the name of a module of
    archviz.backends.torch (modules.py, seq_modules.py); exact Fractions stay exact here."""
    ctor: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def lowered(ctor: str, *args, **kwargs) -> TorchSpec:
    """TorchSpec(ctor, args, kwargs), written like the constructor call it stands for."""
    return TorchSpec(ctor, args, kwargs)


# -- caption text ------------------------------------------------------------------------
def pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def kernel_text(v) -> str:
    """3 → '3×3'; (3, 5) → '3×5'."""
    p = pair(v)
    if len(p) == 2 and p[0] == p[1]:
        return f"{p[0]}×{p[0]}"
    return "×".join(map(str, p))


def is_one(v) -> bool:
    return all(x == 1 for x in pair(v)) if v is not None else True


def step_text(v) -> str:
    """A stride or scale: 2 → '2', (2, 1) → '2×1'."""
    p = pair(v)
    return str(p[0]) if len(set(p)) == 1 else "×".join(map(str, p))


def frac(v) -> Fraction:
    return v if isinstance(v, Fraction) else Fraction(v)
