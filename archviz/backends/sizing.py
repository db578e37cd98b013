"""`archviz size`: what a model costs to train and to serve, and whether it fits.

Read from the analysed graph (params, MACs, the ops' decode and KV-cache rules, and what
backward keeps) and the options; nothing here runs the network.  Every figure is an exact
int (bytes, FLOPs) or None where it does not apply, with the reason in ``notes``; each
comes with a sentence saying what it counts (``explain``), which the table prints.

Conventions (README, "Sizing a model"):
- ``--batch`` is the micro-batch of one data-parallel rank: the figures of one device are
  for that batch, and ``flops`` are for the model at that batch.
- Mixed precision keeps fp32 master weights (ZeRO's accounting, Rajbhandari et al. 2020):
  weights and grads in the working dtype, and in the optimizer's state an fp32 copy of
  every trainable weight beside its fp32 moments.
- Optimizer state is what ``torch.optim`` keeps after a step: Adam's two moments and a
  float32 ``step`` scalar per parameter tensor, momentum SGD's buffer, nothing for SGD.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from archviz.codes import E
from archviz.errors import ArchvizError, MissingRuleError, OpError, UnsupportedError
from archviz.ir import meta as M
from archviz.dtypes import DTYPE_BYTES
from archviz.ops import registry
from archviz.ops.base import numel
from archviz.passes.tokens import token_inputs

OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}     # moments per parameter
OPTIMIZER_WORDS = {"sgd": "plain SGD keeps no state",
                   "momentum": "momentum SGD keeps 1 buffer per parameter",
                   "adam": "adam keeps 2 moments per parameter and a float32 step per tensor",
                   "adamw": "adamw keeps 2 moments per parameter and a float32 step per tensor"}
STEP_BYTES = 4            # torch.optim.Adam's `step`: a float32 scalar tensor per parameter
STRATEGIES = ("ddp", "zero1", "zero2", "zero3", "fsdp")
STRATEGY_WORDS = {"ddp": "data parallel: every device holds all weights, grads and optimizer state",
                  "zero1": "ZeRO-1 shards the optimizer state over the data-parallel devices",
                  "zero2": "ZeRO-2 shards the optimizer state and the grads",
                  "zero3": "ZeRO-3 shards the optimizer state, the grads and the weights",
                  "fsdp": "FSDP (full shard) shards the optimizer state, the grads and the weights"}
SHARDS = {"ddp": (), "zero1": ("optimizer",), "zero2": ("optimizer", "grads"),
          "zero3": ("optimizer", "grads", "weights"), "fsdp": ("optimizer", "grads", "weights")}


@dataclass(frozen=True)
class SizeOptions:
    dtype: str = "float32"
    context: int | None = None          # None: the model's own token count
    optimizer: str = "adamw"
    mixed_precision: bool = False
    checkpointing: bool = False
    devices: int = 1
    strategy: str = "ddp"
    tensor_parallel: int = 1
    device_memory: int | None = None    # bytes

    def check(self) -> None:
        """Refuse bad options before any work, each with a hint."""
        def bad(msg, hint):
            raise UnsupportedError(msg, code=E.BAD_SIZE_OPTION, hint=hint)
        if self.dtype not in DTYPE_BYTES:
            bad(f"unknown dtype '{self.dtype}'", f"one of {', '.join(DTYPE_BYTES)}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"unknown optimizer '{self.optimizer}'", f"one of {', '.join(OPTIMIZERS)}")
        if self.strategy not in STRATEGIES:
            bad(f"unknown strategy '{self.strategy}'", f"one of {', '.join(STRATEGIES)}")
        for name, v in (("devices", self.devices), ("tensor_parallel", self.tensor_parallel)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(f"{name} must be a positive integer, got {v!r}", "e.g. --devices 8 --tensor-parallel 2")
        if self.devices % self.tensor_parallel:
            bad(f"{self.devices} devices cannot hold tensor-parallel groups of {self.tensor_parallel}",
                "the devices must be a multiple of the tensor-parallel degree")
        if self.context is not None and (not isinstance(self.context, int) or self.context < 1):
            bad(f"context must be a positive integer, got {self.context!r}", "e.g. --context 4096")
        if self.mixed_precision and self.dtype not in ("float16", "bfloat16"):
            bad(f"mixed precision computes in a 16-bit dtype, not {self.dtype}",
                "add --dtype bfloat16 (or float16)")
        if self.device_memory is not None and self.device_memory < 1:
            bad("device memory must be positive", "e.g. --device-memory 80GiB")

    @property
    def data_parallel(self) -> int:
        return self.devices // self.tensor_parallel


@dataclass
class Sizing:
    """The figures (``to_dict`` is the JSON contract) and a sentence for each."""
    name: str
    batch: int
    options: SizeOptions
    context: int | None
    params: dict
    flops: dict
    inference: dict
    training: dict
    per_device: dict
    notes: dict = field(default_factory=dict)       # "section.key" -> why it is null
    steps_bytes: int = 0                             # adam's step scalars (whole on every device)
    explain: dict = field(default_factory=dict)     # "section.key" -> what it counts

    def _cells(self):
        return [r[:3] for r in rows(self)]

    def _repr_html_(self) -> str:
        """A notebook shows the figures as a table, with what each counts."""
        from html import escape

        from archviz.backends.notebook import _STYLE, _table
        return (f"<div class='av'>{_STYLE}<b>{escape(self.name)}: size</b>"
                f"{_table(('section', 'figure', 'value', 'what it counts'), rows(self), right=(2,))}</div>")

    def __str__(self) -> str:
        from archviz.backends.notebook import _text_table
        return _text_table(("section", "figure", "value"), self._cells(), right=(2,))

    def to_dict(self) -> dict:
        o = self.options
        return _jsonable({
            "name": self.name, "batch": self.batch, "dtype": o.dtype, "context": self.context,
            "options": {"optimizer": o.optimizer, "mixed_precision": o.mixed_precision,
                        "checkpointing": o.checkpointing, "devices": o.devices, "strategy": o.strategy,
                        "tensor_parallel": o.tensor_parallel, "device_memory": o.device_memory},
            "params": self.params, "flops": self.flops, "inference": self.inference,
            "training": self.training, "per_device": self.per_device, "notes": self.notes})


def _jsonable(d: dict) -> dict:
    """A Fraction (a per-token figure that does not divide) as the text "p/q"."""
    from fractions import Fraction
    return {k: (_jsonable(v) if isinstance(v, dict) else str(v) if isinstance(v, Fraction) else v)
            for k, v in d.items()}


def _tokens(model) -> tuple[int | None, str | None]:
    """T, the positions the model reads per sequence (its token input's length), or the reason
    there is none."""
    g = model.graph
    names = token_inputs(g)
    if not names:
        return None, "the model reads no tokens (no input feeds an embedding): per-token figures are for language models"
    lens = {g.nodes[g.inputs[n]].meta[M.SHAPES]["out"][1:] for n in names}
    if len(lens) != 1 or len(next(iter(lens))) != 1:
        return None, f"the token inputs {', '.join(names)} are not one sequence of one length"
    return next(iter(lens))[0], None


# -- params ---------------------------------------------------------------------
def _own_tensors(model):
    """(node, op, name, shape, kind) of every parameter and buffer, a shared one once (at its owner)."""
    for node in model.graph.topo_order():
        if node.is_input:
            continue
        op = registry[node.op]
        ties = node.meta.get(M.TIES) or {}
        for name, shape, kind in op.param_tensors(node.attrs, node.meta[M.IN_SHAPES]):
            if name not in ties:
                yield node, op, name, shape, kind


def memory_state(model, o: SizeOptions, part=None) -> dict:
    """Weights, grads and optimizer state in bytes, tensor by tensor; `part(node, name, shape)`
    is the elements of a tensor one device holds (None: all of them).  A tensor of a fixed
    dtype (BatchNorm's int64 num_batches_tracked) keeps it; torch.optim keeps a float32 step
    per trainable tensor for adam/adamw."""
    b = DTYPE_BYTES[o.dtype]
    state_b = 4 if o.mixed_precision else b
    per_param = state_b * (OPTIMIZERS[o.optimizer] + (1 if o.mixed_precision else 0))
    w = g = opt = tensors = 0
    for node, op, name, shape, kind in _own_tensors(model):
        n = numel(shape) if part is None else part(node, name, shape)
        w += n * (op.tensor_bytes(node.attrs, name) or b)
        if kind != "buffer" and not node.frozen:
            g += n * b
            opt += n * per_param
            tensors += 1
    steps = STEP_BYTES * tensors if o.optimizer.startswith("adam") else 0
    return {"weights_bytes": w, "grads_bytes": g, "optimizer_bytes": opt + steps, "_steps": steps}


def params_section(model) -> dict:
    t = model.totals
    emb = sum(l.params.total for l in model.layers if registry[l.op].is_embedding(l.node.attrs))
    active = t.get("active_params", t["params"])
    return {"total": t["params"], "trainable": t["trainable_params"], "embedding": emb,
            "non_embedding": t["params"] - emb, "active": active}


# -- flops and serving -------------------------------------------------------------
def _decode(model, tokens: int, context: int) -> tuple[int | None, str | None]:
    macs = 0
    for node in model.graph.topo_order():
        if node.is_input:
            continue
        op = registry[node.op]
        try:
            macs += op.decode_macs(node.attrs, node.meta[M.IN_SHAPES], node.meta[M.SHAPES], tokens, context)
        except (OpError, MissingRuleError) as e:
            msg = e.message if isinstance(e, OpError) else f"op '{node.op}' has no decode rule"
            return None, f"'{node.id}' ({node.op}): {msg}"
    return 2 * macs, None


def _kv_cache(model) -> tuple[int, list]:
    """(elements cached per token per sequence without windows, [(elements, window)] of the
    windowed layers)."""
    full, windowed = 0, []
    for node in model.graph.topo_order():
        if node.is_input:
            continue
        kv = registry[node.op].kv_cache(node.attrs, node.meta[M.IN_SHAPES], node.meta[M.SHAPES])
        if kv is not None:
            if kv[1] is None:
                full += kv[0]
            else:
                windowed.append(kv)
    return full, windowed


def _per(n: int, d: int):
    """n / d exactly: an int where it divides, else a Fraction."""
    from fractions import Fraction
    return n // d if n % d == 0 else Fraction(n, d)


def flops_section(model, o: SizeOptions, tokens, context, costs, s: Sizing) -> dict:
    fwd = model.totals["flops"]
    out = {"forward": fwd, "forward_per_token": None, "train_step": None, "decode_step": None}
    s.explain["flops.forward"] = f"2 × MACs of one forward pass at batch {model.batch} (dense attention, as torch computes it)"
    if tokens is None:
        s.notes["flops.forward_per_token"] = s.notes["flops.decode_step"] = s.notes["_tokens"]
    else:
        out["forward_per_token"] = _per(fwd, model.batch * tokens)
        s.explain["flops.forward_per_token"] = f"forward / (batch {model.batch} × {tokens} tokens)"
        out["decode_step"], why = _decode(model, tokens, context)
        if why:
            s.notes["flops.decode_step"] = why
        else:
            s.explain["flops.decode_step"] = (("one new token" if model.batch == 1 else
                                               f"one new token for each of the {model.batch} sequences")
                                              + f", attending to {context:,} cached keys")
    if costs is not None:
        recompute = costs.recompute_macs
        out["train_step"] = 2 * (model.totals["macs"] + recompute + costs.backward_macs)
        s.explain["flops.train_step"] = ("forward + backward, each op by its own backward rule (grad of the input "
                                         "where one is needed, grad of each trainable weight)"
                                         + ("; checkpointing runs each block's forward again" if recompute else ""))
    return out


def inference_section(model, o: SizeOptions, tokens, context, s: Sizing) -> dict:
    b = DTYPE_BYTES[o.dtype]
    out = {"weights_bytes": memory_state(model, o)["weights_bytes"], "kv_cache_bytes_per_token": None,
           "kv_cache_bytes": None}
    s.explain["inference.weights_bytes"] = f"params and buffers at {o.dtype} ({b} bytes each)"
    if tokens is None:
        s.notes["inference.kv_cache_bytes_per_token"] = s.notes["inference.kv_cache_bytes"] = s.notes["_tokens"]
        return out
    full, windowed = _kv_cache(model)
    if not full and not windowed:
        s.notes["inference.kv_cache_bytes_per_token"] = s.notes["inference.kv_cache_bytes"] = \
            "no causal self-attention layer: nothing is cached per token"
        return out
    out["kv_cache_bytes_per_token"] = (full + sum(e for e, _ in windowed)) * b
    out["kv_cache_bytes"] = model.batch * b * (full * context + sum(e * min(context, w) for e, w in windowed))
    s.explain["inference.kv_cache_bytes_per_token"] = (f"the key and value every causal attention layer keeps for a "
                                                       f"token, at {o.dtype}")
    s.explain["inference.kv_cache_bytes"] = (f"{model.batch} sequence(s) × {context:,} tokens"
                                             + (" (sliding-window layers keep their window)" if windowed else ""))
    return out


def train_costs(model, checkpoint: bool, share=None):
    """What backward keeps and its MACs (archviz.passes.backward); `share(key, elements)`: the
    elements of a kept tensor one device holds."""
    from archviz.passes.backward import train_costs as run
    return run(model.graph, checkpoint=checkpoint, share=share) if share else run(model.graph, checkpoint=checkpoint)


def training_section(model, o: SizeOptions, costs, s: Sizing) -> dict:
    out = memory_state(model, o)
    s.steps_bytes = out.pop("_steps")
    out["activations_bytes"] = costs.saved_bytes(DTYPE_BYTES[o.dtype])
    out["total_bytes"] = sum(out.values())
    s.explain["training.weights_bytes"] = f"params and buffers at {o.dtype}"
    s.explain["training.grads_bytes"] = f"one grad per trainable param at {o.dtype}"
    s.explain["training.optimizer_bytes"] = OPTIMIZER_WORDS[o.optimizer] + (
        ", in float32, beside an fp32 master copy of every trainable weight (mixed precision)"
        if o.mixed_precision else f", at {o.dtype}")
    s.explain["training.activations_bytes"] = (
        "what backward keeps, each op by its own rule, a tensor kept by several ops once"
        + ("; with checkpointing: each block's input, and one block's tensors while it is recomputed"
           if o.checkpointing else ""))
    s.explain["training.total_bytes"] = "weights + grads + optimizer state + activations"
    return out


def tp_plan(model, t: int) -> tuple[dict, dict]:
    """Megatron-style tensor parallelism over t devices, asked of each op in graph order:
    ({(node id, tensor name): the axis it is split along, or None}, {(node id, port): split})."""
    axes, split = {}, {}
    for node in model.graph.topo_order():
        if node.is_input:
            split[(node.id, "out")] = False
            continue
        op = registry[node.op]
        ins = tuple(split[(r.node, r.port)] for r in node.inputs)
        try:
            pa, po = op.tensor_parallel(node.attrs, node.meta[M.IN_SHAPES], node.meta[M.SHAPES], ins, t)
        except OpError as e:
            raise UnsupportedError(f"tensor parallelism over {t} devices: '{node.id}' ({node.op}): {e.message}",
                                   node.attr_spans.get(e.attr) if e.attr else node.span, code=E.BAD_SIZE_OPTION,
                                   hint=e.hint, notes=list(node.notes)) from None
        for name, axis in pa.items():
            axes[(node.id, name)] = axis
        for port, v in po.items():
            split[(node.id, port)] = v
    return axes, split


def _part(axes: dict, t: int):
    def part(node, name, shape):
        axis = axes.get((node.id, name))
        if axis is None:
            return numel(shape)
        return numel(shape) // shape[axis] * -(-shape[axis] // t)
    return part


def per_device_section(model, o: SizeOptions, training: dict, s: Sizing) -> dict:
    d, t = o.data_parallel, o.tensor_parallel
    shards = SHARDS[o.strategy]
    out = {"devices": o.devices, "data_parallel": d, "tensor_parallel": t, "strategy": o.strategy}
    if t > 1:
        axes, split = tp_plan(model, t)
        mem = memory_state(model, o, _part(axes, t))
        steps = mem.pop("_steps")
        act = train_costs(model, o.checkpointing, _tp_share(split, t)).saved_bytes(DTYPE_BYTES[o.dtype])
    else:
        mem, act, steps = training, training["activations_bytes"], s.steps_bytes
    for k in ("weights", "grads", "optimizer"):
        v = mem[f"{k}_bytes"] - (steps if k == "optimizer" else 0)
        out[f"{k}_bytes"] = (-(-v // d) if k in shards else v) + (steps if k == "optimizer" else 0)
    out["activations_bytes"] = act
    out["total_bytes"] = sum(out[f"{k}_bytes"] for k in ("weights", "grads", "optimizer", "activations"))
    out["device_memory_bytes"] = o.device_memory
    out["fits"] = None if o.device_memory is None else out["total_bytes"] <= o.device_memory
    out["headroom_bytes"] = None if o.device_memory is None else o.device_memory - out["total_bytes"]
    for k in ("weights", "grads", "optimizer"):
        what = (f"the {k} of its tensor-parallel part (1/{t} of each split weight, norms whole)" if t > 1
                else f"training's {k}")
        s.explain[f"per_device.{k}_bytes"] = what + (f", sharded: / {d}" if k in shards else ", whole on every device")
    s.explain["per_device.total_bytes"] = "what one device holds at the peak of a step"
    s.explain["per_device.strategy"] = STRATEGY_WORDS[o.strategy] + (
        f" ({d} of them; a shard is rounded up to whole bytes; every device keeps adam's step scalars)"
        if shards else "")
    s.explain["per_device.activations_bytes"] = f"each device runs its own micro-batch of {model.batch}" + (
        f"; the tensors split over the {t} tensor-parallel devices count 1/{t} (the norms' and residuals' whole)"
        if t > 1 else "")
    return out


def _tp_share(split: dict, t: int):
    """The elements of a kept tensor one tensor-parallel device holds: 1/t (rounded up) of a
    split one; an op-internal tensor ("extra:…") follows its layer's first output."""
    first: dict = {}
    for (nid, _port), v in split.items():
        first.setdefault(nid, v)

    def share(key, n):
        node, port = key
        part = first.get(node, False) if str(port).startswith("extra:") else split.get(key, False)
        return -(-n // t) if part else n
    return share


def size(model, options: SizeOptions | None = None) -> Sizing:
    """Every figure of `archviz size` for an analysed model."""
    o = options or SizeOptions(dtype=model.dtype)
    o.check()
    tokens, why = _tokens(model)
    context = o.context if o.context is not None else tokens
    s = Sizing(model.name, model.batch, o, context, params_section(model), {}, {}, {}, {})
    if why:
        s.notes["_tokens"] = why
    costs = train_costs(model, o.checkpointing)
    s.flops = flops_section(model, o, tokens, context, costs, s)
    s.inference = inference_section(model, o, tokens, context, s)
    s.training = training_section(model, o, costs, s)
    s.per_device = per_device_section(model, o, s.training, s)
    s.notes.pop("_tokens", None)
    s.explain.update({
        "params.total": "torch's parameters(): every tensor once, a shared one at its owner (buffers apart)",
        "params.trainable": "those the optimizer updates (frozen layers left out)",
        "params.embedding": "the embedding tables (token and position), as Hugging Face's exclude_embeddings",
        "params.non_embedding": "total − embedding (an untied output projection counts here)",
        "params.active": "the params one token runs through (all of them in a dense model)"})
    return s


# -- presenting ---------------------------------------------------------------------
def human_bytes(n: int) -> str:
    for unit, v in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= v:
            return f"{n / v:,.2f} {unit}"
    return f"{n:,} B"


def human_count(n) -> str:
    for unit, v in (("P", 10 ** 15), ("T", 10 ** 12), ("G", 10 ** 9), ("M", 10 ** 6), ("K", 10 ** 3)):
        if abs(n) >= v:
            return f"{float(n) / v:,.2f}{unit}"
    return f"{float(n):,.6g}" if not isinstance(n, int) else f"{n:,}"


ROWS = (("params", ("total", "trainable", "embedding", "non_embedding", "active"), "count"),
        ("flops", ("forward", "forward_per_token", "train_step", "decode_step"), "count"),
        ("inference", ("weights_bytes", "kv_cache_bytes_per_token", "kv_cache_bytes"), "bytes"),
        ("training", ("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "total_bytes"), "bytes"),
        ("per_device", ("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "total_bytes"),
         "bytes"))


def rows(s) -> list[tuple[str, str, str, str]]:
    """(section, figure, value, what it counts) for every figure of a Sizing."""
    d = {"params": s.params, "flops": s.flops, "inference": s.inference, "training": s.training,
         "per_device": s.per_device}
    out = []
    for sec, keys, kind in ROWS:
        for k in keys:
            v = d[sec][k]
            key = f"{sec}.{k}"
            if v is None:
                out.append((sec, k, "—", s.notes.get(key, "")))
                continue
            shown = (f"{human_bytes(v)}" if kind == "bytes" else f"{human_count(v)}")
            exact = f"{v:,}" if isinstance(v, int) else str(v)
            out.append((sec, k, f"{shown}  ({exact})", s.explain.get(key, "")))
    return out
