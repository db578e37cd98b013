"""`archviz bench` (throughput and latency of the lowered module) and
`archviz train-smoke` (a few optimizer steps on synthetic data, the loss going down)."""
from __future__ import annotations

from archviz.codes import E
from archviz.spec.losses import LOSSES

import statistics
import time
from dataclasses import dataclass

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class BenchResult:
    device: str
    batch: int
    dtype: str
    mode: str
    iters: int
    latencies_ms: list

    @property
    def throughput(self) -> float:
        return self.batch * 1000.0 / statistics.median(self.latencies_ms)

    def percentile(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
        return xs[k]


def _sync(device):
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def classes_and_targets(out, gen=None):
    """Targets for cross-entropy: (N, C) → (N,); (N, C, H, W) → (N, H, W);
    (N, T, V) sequences → (N, T) with the class axis last."""
    import torch
    if out.dim() == 3:
        n, t, v = out.shape
        return out.reshape(n * t, v), torch.randint(0, v, (n * t,), generator=gen).to(out.device)
    c = out.shape[1]
    tgt = torch.randint(0, c, (out.shape[0], *out.shape[2:]), generator=gen).to(out.device)
    return out, tgt


def segmentation_targets(x, out_shape):
    """Targets a segmentation network can learn: blobs of the input's first channel (a 9×9
    mean), the centre H×W of it (a network of unpadded convolutions, as U-Net, sees the
    centre of its input; a larger output is resized), cut into C classes at its quantiles so
    every class covers about the same share of pixels. (Random labels per pixel would be
    noise to memorise, not a segmentation.)"""
    import torch
    import torch.nn.functional as F
    n, c, h, w = out_shape
    m = F.avg_pool2d(x[:, :1].float(), 9, stride=1, padding=4, count_include_pad=False)
    H, W = m.shape[-2:]
    if h <= H and w <= W:
        top, left = (H - h) // 2, (W - w) // 2
        m = m[..., top:top + h, left:left + w]
    else:
        m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    m = m[:, 0]
    qs = torch.quantile(m.flatten(), torch.linspace(0, 1, c + 1, device=m.device)[1:-1])
    return torch.bucketize(m.contiguous(), qs).clamp_(0, c - 1)


def soft_dice_loss(logits, target, eps: float = 1.0, form: str = "plain"):
    """Soft Dice per class, averaged over classes; p = softmax probabilities over the class
    axis, g = one-hot targets (archviz.spec.losses):
    plain: 1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε);
    vnet (Milletari et al. 2016, V-Net, eq. 1): 1 − (2·Σ p·g + ε) / (Σ p² + Σ g² + ε)."""
    import torch
    import torch.nn.functional as F
    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target, probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    dims = (0,) + tuple(range(2, probs.dim()))
    inter = (probs * onehot).sum(dims)
    if form == "vnet":
        denom = (probs * probs).sum(dims) + (onehot * onehot).sum(dims)
    elif form == "plain":
        denom = probs.sum(dims) + onehot.sum(dims)
    else:
        raise ValueError(f"unknown Dice form {form!r}: vnet or plain")
    return (1 - (2 * inter + eps) / (denom + eps)).mean()


def loss_fn(name: str):
    import torch.nn.functional as F
    from archviz.spec.losses import resolve

    parts = {"cross_entropy": lambda out, tgt: F.cross_entropy(out, tgt),
             "dice_vnet": lambda out, tgt: soft_dice_loss(out, tgt, form="vnet"),
             "dice_plain": lambda out, tgt: soft_dice_loss(out, tgt, form="plain")}
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    fns = [parts[p] for p in resolve(name).split("+")]
    return lambda out, tgt: sum(f(out, tgt) for f in fns)


def _inputs(model, device, dtype):
    from archviz.backends.torch.lower import example_inputs
    xs = example_inputs(model)
    return [x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device) for x in xs]


def bench(model, *, device="cpu", dtype="float32", channels_last=False, compile=False, train=False,
          warmup=3, iters=10, progress=None) -> BenchResult:
    import torch
    from archviz.backends.torch.lower import to_torch
    if train:
        check_trainable(model)
    tdtype = getattr(torch, dtype)
    gm = to_torch(model, seed=0, train=train).to(device=device, dtype=tdtype)
    xs = _inputs(model, device, tdtype)
    if channels_last:
        gm = gm.to(memory_format=torch.channels_last)
        xs = [x.to(memory_format=torch.channels_last) if x.dim() == 4 else x for x in xs]
    fn = torch.compile(gm) if compile else gm
    opt = torch.optim.SGD(gm.parameters(), lr=1e-3) if train else None

    def step():
        if train:
            out = fn(*xs)
            out = out if isinstance(out, torch.Tensor) else next(iter(out.values()))
            loss = out.float().square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                fn(*xs)

    lat = []
    total = warmup + iters
    for i in range(total):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        if i >= warmup:
            lat.append((time.perf_counter() - t0) * 1000)
        if progress:
            progress(i + 1, total)
    return BenchResult(str(device), model.batch, dtype, "train" if train else "forward", iters, lat)


def check_trainable(model) -> None:
    """Raise a located LoweringError at the first layer torch runs at inference but cannot
    train at the model's shapes (the op's ``train_check``: batch norm with one value per
    channel), before torch fails with its own traceback."""
    from archviz.errors import LoweringError, OpError
    from archviz.ir import meta as M
    from archviz.ops import registry
    from archviz.passes.driver import node_error
    for node in model.graph.topo_order():
        ins = node.meta.get(M.IN_SHAPES, [])
        try:
            registry[node.op].train_check(node.attrs, ins)
        except OpError as e:
            e.message = f"torch cannot train this layer at batch {model.batch}: {e.message}"
            err = node_error(node, e, ins, cls=LoweringError)
            err.code = E.CANNOT_TRAIN
            raise err from None


def check_has_trainable(model) -> None:
    """A loss with no trainable parameter under it cannot go down (and torch.optim refuses an
    empty parameter list with a bare ValueError)."""
    from archviz.errors import LoweringError
    if not model.totals.get("trainable_params"):
        raise LoweringError(f"'{model.name}' has no trainable parameter: no optimizer step can lower its loss",
                            code=E.NOTHING_TO_TRAIN, hint="train-smoke needs a spec with at least one weight")


# The targets' random stream, apart from the inputs' (example_inputs draws tokens from the
# seed itself): drawn from the same stream, a language model's targets were its own input
# tokens, and gpt2 with tied embeddings started at a loss of 0.001 instead of ln(vocab).
TARGET_SEED = 104_729


def target_generator(seed: int):
    import torch
    return torch.Generator().manual_seed(TARGET_SEED + seed)


def check_loss_output(model, loss: str) -> None:
    """The trained output (the first) needs a class axis of at least 2 classes: (N, C),
    (N, C, ...) or a sequence's (N, T, V).  One class makes cross-entropy 0 (and Dice
    constant) whatever the weights: the loss could not go down."""
    from archviz.errors import LoweringError
    from archviz.ops.base import fmt_shape
    name, shape = next(iter(model.output_shapes.items()))
    classes = None if len(shape) < 2 else shape[-1] if len(shape) == 3 else shape[1]
    if classes is None or classes < 2:
        what = "no class axis" if classes is None else "one class"
        raise LoweringError(f"output '{name}' {fmt_shape(shape)} has {what}: {loss} needs scores for 2 classes "
                            f"or more, (N, C), (N, C, ...) or (N, T, V)", code=E.LOSS_OUTPUT,
                            hint="train-smoke trains the spec's first output; end it with a layer of C >= 2 outputs")


def first_output(out):
    """The output a smoke test trains: the module's only output, or its first."""
    return out if not isinstance(out, dict) else next(iter(out.values()))


def synthetic_targets(out0, xs, gen):
    """Targets for the output `out0` of the inputs `xs`: class indices drawn from `gen`, or
    for a segmentation network (4-D in, 4-D out) blobs of the input it can learn."""
    _, tgt = classes_and_targets(out0, gen)
    if out0.dim() == 4 and xs and xs[0].dim() == 4 and xs[0].is_floating_point():
        tgt = segmentation_targets(xs[0], out0.shape)
    return tgt


def train_smoke(model, *, steps=20, loss="cross_entropy", lr=1e-3, device="cpu", seed=0, progress=None):
    """`steps` Adam steps on one fixed synthetic batch; returns the list of losses."""
    import torch
    check_trainable(model)
    check_has_trainable(model)
    check_loss_output(model, loss)
    from archviz.backends.torch.lower import to_torch
    gm = to_torch(model, seed=seed, train=True).to(device)
    gen = target_generator(seed)
    xs = _inputs(model, device, torch.float32)
    with torch.no_grad():
        out0 = first_output(gm(*xs))
    tgt = synthetic_targets(out0, xs, gen)
    losses, _ = adam_steps(gm, xs, tgt, loss, lr, steps,
                           (lambda i, l: progress(i, steps, l)) if progress else None)
    return losses


def adam_steps(model, xs, tgt, loss: str, lr: float, steps: int, on_step=None, first_pack=None):
    """`steps` Adam steps of `model` on one fixed batch: (the losses, the optimizer).
    `on_step(i, loss)` after each; `first_pack`: a saved-tensors hook for the first step's
    forward (what it keeps for backward: train-smoke --nproc measures it)."""
    import contextlib

    import torch
    fn = loss_fn(loss)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for i in range(steps):
        hooks = torch.autograd.graph.saved_tensors_hooks(first_pack, _same) if first_pack and i == 0 \
            else contextlib.nullcontext()
        with hooks:
            logits, _ = classes_and_targets(first_output(model(*xs)))
            l = fn(logits, tgt)
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        losses.append(float(l.detach()))
        if on_step:
            on_step(i + 1, losses[-1])
    return losses, opt


def _same(t):
    return t
