"""`archviz train-smoke --nproc N`: the lowered model trained by N processes under
torch.distributed (gloo, CPU), with DDP or FSDP (torch.distributed.fsdp.fully_shard).

Each rank is a process with its own synthetic batch (inputs seeded by ``seed + rank``: rank 0
gets the batch a one-process train-smoke gets), so the global batch is N × the model's batch.
Every rank starts from the same initialisation (the lowering's seed).  DDP averages the
gradients over the ranks, so every rank applies the same Adam update and the parameters stay
equal; FSDP keeps 1/N of each parameter, gradient and optimizer state per rank and gathers
the parameters layer by layer when it needs them (one FSDP unit per layer of the spec; see
_fully_shard).  The loss is on the spec's first output, as in a one-process train-smoke;
parameters that do not reach it get no gradient (DDP is told to look for them).  Under FSDP
the model is lowered without in-place adds and ReLUs (torch's caution about in-place ops on
a unit's output), which changes the saved activations a little against DDP's.

What each rank measures (bytes, exact ints; what `archviz size --devices N` estimates):
- ``weights_bytes``: the rank's parameters (FSDP: its shards), ``buffers_bytes`` apart;
- ``grads_bytes``: the gradients after a backward (FSDP: the rank's shards);
- ``optimizer_bytes``: Adam's state after the last step (two moments per parameter and one
  4-byte step count per parameter tensor; FSDP: the rank's shards);
- ``activations_bytes``: what autograd keeps for backward during one training step, seen by
  ``torch.autograd.graph.saved_tensors_hooks`` on the first step: every saved tensor that is
  not a parameter (nor a view of one), counted once per storage;
- ``peak_rss_delta_bytes``: the operating system's view, the peak resident set during
  training minus the resident set before it (Linux /proc; None elsewhere).  It includes what
  the tensors above leave out: transient buffers, DDP's and gloo's communication buffers,
  FSDP's gathered parameters, the allocator's slack.

The ranks run in processes started by torch.multiprocessing (forkserver where the platform has
it, torch imported once in the server; spawn elsewhere).  A rank that fails sends its error
first and exits; the parent reports that error once, stops the other ranks (which may wait in
a collective), and reaps every process.  The process group and the whole run share one
timeout (the group's a little longer, so that a rank whose parent is gone still ends).  As
for any multiprocessing program, a script that calls train_smoke_distributed must be a file
guarded by ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field

from archviz.backends.torch.dist_procs import GRACE_S, first_line, run_ranks
from archviz.codes import E
from archviz.errors import UnsupportedError

STRATEGIES = ("ddp", "fsdp")


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                      # pragma: no cover  (macOS, Windows)
        return os.cpu_count() or 1


def max_nproc() -> int:
    """Each rank is a process with its own torch: at most one per core (two on a one-core
    machine, so the distributed path itself can be tried anywhere)."""
    return max(2, cores())


@dataclass
class RankResult:
    rank: int
    losses: list
    weights_bytes: int
    buffers_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    peak_rss_delta_bytes: int | None
    params_equal_rank0: bool          # every parameter (gathered from shards under FSDP) == rank 0's, bit for bit
    max_param_diff: float             # the largest |Δ| from rank 0's parameters
    warnings: list = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.buffers_bytes + self.grads_bytes + self.optimizer_bytes + self.activations_bytes

    @property
    def down(self) -> bool:
        return self.losses[-1] < self.losses[0]


@dataclass
class DistResult:
    strategy: str
    nproc: int
    batch: int                        # per rank
    steps: int
    loss: str
    lr: float
    ranks: list

    @property
    def params_equal(self) -> bool:
        return all(r.params_equal_rank0 for r in self.ranks)

    @property
    def all_down(self) -> bool:
        return all(r.down for r in self.ranks)

    def to_dict(self) -> dict:
        out = asdict(self)
        for d, r in zip(out["ranks"], self.ranks):
            d["total_bytes"] = r.total_bytes
            d["down"] = r.down
        out.update(params_equal=self.params_equal, all_down=self.all_down, global_batch=self.batch * self.nproc)
        return out


@dataclass
class _Job:
    model: object
    nproc: int
    strategy: str
    steps: int
    loss: str
    lr: float
    seed: int
    store: str
    timeout: float
    threads: int
    on_start: object = None


# --------------------------------------------------------------------------- the parent


def check_args(model, *, nproc: int, strategy: str, steps: int, loss: str, timeout: float) -> None:
    """Everything that can be refused before a process starts."""
    from archviz.backends.torch.bench import check_has_trainable, check_loss_output, check_trainable
    from archviz.spec.losses import LOSSES
    if strategy not in STRATEGIES:
        raise UnsupportedError(f"unknown strategy {strategy!r}", hint=f"one of {', '.join(STRATEGIES)}",
                               code=E.UNSUPPORTED)
    if not isinstance(nproc, int) or not 1 <= nproc <= max_nproc():
        raise UnsupportedError(f"nproc {nproc!r}: between 1 and {max_nproc()} processes here", code=E.UNSUPPORTED,
                               hint="each rank is a process with its own torch, one per CPU core")
    if not isinstance(steps, int) or steps < 1 or loss not in LOSSES or not timeout > 0:
        raise UnsupportedError(f"steps {steps!r}, loss {loss!r}, timeout {timeout!r}: steps >= 1, a loss of "
                               f"{', '.join(LOSSES)}, a timeout > 0 s", code=E.UNSUPPORTED)
    check_trainable(model)
    check_has_trainable(model)
    check_loss_output(model, loss)


def train_smoke_distributed(model, *, nproc: int = 2, strategy: str = "ddp", steps: int = 20,
                            loss: str = "cross_entropy", lr: float = 1e-3, seed: int = 0, timeout: float = 300.0,
                            progress=None, on_start=None) -> DistResult:
    """Train the lowered `model` for `steps` Adam steps on `nproc` processes (gloo, CPU) under
    `strategy` (ddp or fsdp); returns every rank's losses, memory and parameter check.

    `progress(rank, step, loss)` is called in this process as the ranks report;
    `on_start(rank)`, a picklable callable, runs in each rank once its process group is up
    (fault injection in tests).  Raises LoweringError E0620 naming the first rank that failed
    (the others stopped), E0621 after `timeout` seconds, UnsupportedError E0520 where torch
    refuses FSDP."""
    check_args(model, nproc=nproc, strategy=strategy, steps=steps, loss=loss, timeout=timeout)
    threads = max(1, cores() // nproc)
    with tempfile.TemporaryDirectory(prefix="archviz-dist-") as tmp:
        job = _Job(model, nproc, strategy, steps, loss, float(lr), seed, os.path.join(tmp, "store"),
                   float(timeout), threads, on_start)
        results = run_ranks(job, _worker, progress)
    ranks = [RankResult(**results[r]) for r in range(nproc)]
    return DistResult(strategy, nproc, model.batch, steps, loss, float(lr), ranks)


# --------------------------------------------------------------------------- one rank


class RankFailure(Exception):
    """Raised in a rank with the kind of failure the parent maps to an error class."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _worker(rank: int, job: _Job, send, finish) -> None:
    """The body of one rank: join the group, build, wrap, train, measure, compare; then
    `finish(result)`, which reports and ends the process at once (never returns)."""
    import datetime
    import warnings
    import torch
    import torch.distributed as dist
    torch.set_num_threads(job.threads)
    # FSDP's caution about in-place ops on a unit's output: the lowering has none under FSDP.
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
    # The group's timeout, a little past the run's (whose deadline thus speaks first), ends a rank
    # stuck in a collective even when the parent is gone (killed, it cannot stop its ranks).
    dist.init_process_group("gloo", init_method=f"file://{job.store}", rank=rank, world_size=job.nproc,
                            timeout=datetime.timedelta(seconds=job.timeout + GRACE_S))
    if job.on_start is not None:
        job.on_start(rank)
    gm, xs, tgt, unused, aliasing = _build(job, rank)
    rss0 = _reset_peak_rss()
    model = _wrap(gm, job.strategy, unused, aliasing)
    losses, saved, opt = _train(model, xs, tgt, job, lambda i, l: send(("step", rank, i, l)))
    out = dict(rank=rank, losses=losses, activations_bytes=saved, **_state_bytes(gm, opt))
    peak = _peak_rss()
    out["peak_rss_delta_bytes"] = peak - rss0 if peak is not None and rss0 is not None else None
    out["params_equal_rank0"], out["max_param_diff"] = _compare_to_rank0(gm)
    dist.barrier()          # every collective done on every rank: each may now leave
    # No destroy_process_group() and no destructors: the rank reports and exits (a DDP
    # module freed after its group hung a rank now and then); a failing rank reports first,
    # so the others see its sockets close only after its error is on its way.
    finish(out)         # model and opt stay referenced by this frame until the process ends


def _build(job: _Job, rank: int):
    """The lowered module (the same initialisation on every rank), this rank's batch and targets,
    whether some parameter does not reach the loss (DDP must then look for it), and the
    modules whose output is their own parameter (FSDP must not free it after their forward)."""
    from archviz.backends.torch.bench import first_output, synthetic_targets, target_generator
    from archviz.backends.torch.lower import example_inputs, to_torch
    # No in-place adds and ReLUs under FSDP: a unit's output is a view carrying FSDP's
    # pre-backward hook, and torch warns that an in-place op on it can drop the hook and skip
    # the all-gather (wrong gradients).
    gm = to_torch(job.model, seed=job.seed, train=True, inplace=job.strategy != "fsdp")
    xs = example_inputs(job.model, seed=job.seed + rank)
    aliasing = set()
    hooks = [m.register_forward_hook(_alias_hook(aliasing)) for m in gm.modules() if _own_params(m)]
    try:
        out0 = first_output(gm(*xs))
    finally:
        for h in hooks:
            h.remove()
    reached = _leaves_reached(out0)
    unused = any(id(p) not in reached for p in gm.parameters() if p.requires_grad)
    tgt = synthetic_targets(out0.detach(), xs, target_generator(job.seed + rank))
    return gm, xs, tgt, unused, aliasing


def _own_params(m) -> list:
    return [p for p in m._parameters.values() if p is not None]


def _alias_hook(found: set):
    """A forward hook that adds id(module) to `found` when an output shares storage with one of
    the module's own parameters (a learned position table returned as it is)."""
    def hook(mod, args, out):
        import torch
        mine = {p.untyped_storage().data_ptr() for p in _own_params(mod)}
        outs = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else (out,)
        if any(isinstance(o, torch.Tensor) and o.untyped_storage().data_ptr() in mine for o in outs):
            found.add(id(mod))
    return hook


def _leaves_reached(out) -> set:
    """ids of the leaf tensors the autograd graph of `out` reaches (the parameters it uses)."""
    seen, stack, leaves = set(), [out.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            leaves.add(id(fn.variable))
        stack.extend(f for f, _ in fn.next_functions)
    return leaves


def _wrap(gm, strategy: str, unused: bool, aliasing: set):
    if strategy == "ddp":
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        flag = torch.tensor([int(unused)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)        # every rank must build DDP alike
        return DDP(_first_output_only(gm), find_unused_parameters=bool(flag), gradient_as_bucket_view=True)
    try:
        from torch.distributed.fsdp import fully_shard
        _fully_shard(gm, fully_shard, aliasing)
    except Exception as e:          # torch's refusal, whatever its class: quoted, not a traceback
        raise RankFailure("fsdp", f"{type(e).__name__}: {first_line(e)}") from None
    return gm


def _first_output_only(gm):
    """`gm` returning the output the loss is computed on, alone: DDP looks for unused
    parameters from what forward returns, and from every output of a two-output spec (bert's
    pooler) it found none and said so on stderr."""
    import torch.nn as nn
    from archviz.backends.torch.bench import first_output

    class FirstOutput(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *xs):
            return first_output(self.inner(*xs))
    return FirstOutput(gm)


def _fully_shard(gm, fully_shard, aliasing: set) -> None:
    """One FSDP unit per layer the graph calls (a node of the spec: FSDP gathers a unit's
    parameters in its forward, so a unit must be a module that is called, not a container,
    and not a submodule whose parameters its parent reads, as nn.MultiheadAttention reads its
    out_proj's).  In the root's unit, gathered from forward to backward: parameters shared
    with a module outside the layer (FSDP needs a shared parameter in one unit), the root's
    own, and those of layers in `aliasing`, whose output is their parameter (freed after their
    forward, it crashed the next layer)."""
    owners: dict = {}
    for m in gm.modules():
        for p in _own_params(m):
            owners.setdefault(id(p), set()).add(id(m))
    called = sorted({n.target for n in gm.graph.find_nodes(op="call_module")}, key=lambda t: -t.count("."))
    for target in called:
        m = gm.get_submodule(target)
        inside = {id(x) for x in m.modules()}
        params = list(m.parameters())
        if params and id(m) not in aliasing and all(owners[id(p)] <= inside for p in params):
            fully_shard(m)
    fully_shard(gm)


def _train(model, xs, tgt, job: _Job, report):
    """Adam steps on the rank's fixed batch; the first step's saved tensors measured."""
    from archviz.backends.torch.bench import adam_steps
    saved = _SavedBytes(model.buffers())
    losses, opt = adam_steps(model, xs, tgt, job.loss, job.lr, job.steps, report, saved.pack)
    return losses, saved.total(), opt


class _SavedBytes:
    """Bytes autograd saves for backward, once per storage, parameters (and views of them:
    a linear layer saves its weight's transpose) and buffers (batch norm saves its running
    statistics) left out: they are the model's state, not activations."""

    def __init__(self, buffers=()):
        self.storages: dict = {}
        self.state = {b.untyped_storage().data_ptr() for b in buffers}

    def pack(self, t):
        base = t._base if t._base is not None else t
        if not (base.is_leaf and base.requires_grad) and t.untyped_storage().data_ptr() not in self.state:
            s = t.untyped_storage()
            self.storages[s.data_ptr()] = s.nbytes()
        return t

    def total(self) -> int:
        return sum(self.storages.values())


def _local_bytes(t) -> int:
    t = t.to_local() if hasattr(t, "to_local") else t
    return t.numel() * t.element_size()


def _state_bytes(gm, opt) -> dict:
    params = list(gm.parameters())
    return dict(weights_bytes=sum(_local_bytes(p) for p in params),
                buffers_bytes=sum(_local_bytes(b) for b in gm.buffers()),
                grads_bytes=sum(_local_bytes(p.grad) for p in params if p.grad is not None),
                optimizer_bytes=sum(_local_bytes(v) for s in opt.state.values() for v in s.values()
                                    if hasattr(v, "numel")))


def _compare_to_rank0(gm) -> tuple:
    """Every parameter, whole (FSDP's gathered from its shards), against rank 0's copy."""
    import torch
    import torch.distributed as dist
    equal, worst = True, 0.0
    with torch.no_grad():
        for _, p in sorted(gm.named_parameters()):
            mine = p.full_tensor() if hasattr(p, "full_tensor") else p.detach()
            ref = mine.clone()
            dist.broadcast(ref, src=0)
            equal = equal and torch.equal(mine, ref)
            if mine.numel():
                worst = max(worst, float((mine.double() - ref.double()).abs().max()))
    return equal, worst


def _status_kib(key: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:                              # pragma: no cover  (no /proc)
        return None
    return None


def _reset_peak_rss():
    """The resident set now, after resetting the kernel's peak (VmHWM) to it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:                              # pragma: no cover
        return None
    return _status_kib("VmRSS")


def _peak_rss():
    return _status_kib("VmHWM")
