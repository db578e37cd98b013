"""`archviz train-smoke`: a few optimizer steps on synthetic data, the loss going down.
Register with ``main.add_command(train_smoke)``."""
from __future__ import annotations

import os
import sys

import click

from archviz.backends.torch_cli import _check_device, _check_lr, _lowering_errors, _need_torch
from archviz.clikit import CONTEXT, _console, batch_opt, handle_errors, load_model, param_opt, spec_arg
from archviz.spec.losses import LOSSES

STRATEGIES = ("ddp", "fsdp")        # archviz.backends.torch.distributed.STRATEGIES (no torch here)


def _check_nproc(ctx, param, v):
    if v is None:
        return v
    from archviz.backends.torch.distributed import max_nproc
    if v > max_nproc():
        raise click.BadParameter(f"{v} processes on {max_nproc()} CPU cores: each rank is a process with its "
                                 f"own torch; at most {max_nproc()} here (--batch sets each rank's batch)")
    return v


@click.command("train-smoke", context_settings=CONTEXT)
@spec_arg
@batch_opt
@param_opt
@click.option("--steps", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--loss", type=click.Choice(LOSSES), default=None,
              help="Loss (default: the spec's `loss:`, else cross_entropy). dice = dice_vnet, V-Net's soft "
                   "Dice with the squared denominator; dice_plain = the plain soft Dice (see `archviz eval dice`).")
@click.option("--lr", type=float, default=1e-3, show_default=True, callback=_check_lr)
@click.option("--device", default="cpu", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also draw the loss curve into FILE.png or FILE.svg.")
@click.option("--nproc", type=click.IntRange(min=1), default=None, callback=_check_nproc,
              help="Train on N processes under torch.distributed (gloo, CPU), each with its own batch "
                   "of --batch samples: per rank, the loss curve, the parameters against rank 0's and "
                   "the memory measured.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="With --nproc: ddp (DistributedDataParallel, the default) or fsdp (fully_shard: "
                   "parameters, gradients and optimizer state sharded over the ranks).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="With --nproc: seconds for the whole run (and each collective); then every rank is stopped.")
@handle_errors
@_lowering_errors
def train_smoke(spec, batch, params, steps, loss, lr, device, plot, nproc, strategy, timeout):
    """A few Adam steps on one synthetic batch: the loss should go down. Prints the whole
    curve (a sparkline), the spikes (steps where the loss jumped back up) and the output
    size the loss was computed on.  With --nproc N, N processes train the model together
    (DDP or FSDP), each on its own batch: the loss must go down on every rank and, under
    DDP, the ranks' parameters stay equal.

    \b
    Examples:
      archviz train-smoke unet -p size=252 -p base=8 --loss cross_entropy+dice --lr 0.01 --plot loss.png
      archviz train-smoke exam_conv_pool
      archviz train-smoke unet --loss dice --steps 10 -p size=188 -p base=8
      archviz train-smoke exam_conv_pool -p size=32 -b 2 --nproc 2
      archviz train-smoke gpt2 -p layers=2 -p d=64 -p heads=2 -p seq=32 --nproc 2 --strategy fsdp --lr 0.01
    """
    if plot and os.path.splitext(plot)[1].lower() not in (".png", ".svg"):
        raise click.BadParameter(f"'{plot}': the plot is a .png or .svg file", param_hint="--plot")
    if nproc is None and strategy:
        raise click.BadParameter("a strategy is for --nproc N (e.g. --nproc 2)", param_hint="--strategy")
    if nproc is not None and device != "cpu":
        raise click.BadParameter(f"--nproc trains on the CPU (gloo), not on '{device}'", param_hint="--device")
    if nproc is not None and plot:
        raise click.BadParameter("one plot, one curve: with --nproc the curves of every rank are printed",
                                 param_hint="--plot")
    _need_torch()
    if nproc is not None:
        return _distributed(spec, batch, params, steps, loss, lr, nproc, strategy or "ddp", timeout)
    from rich.progress import Progress
    from archviz.backends import losscurve
    from archviz.backends.torch.bench import train_smoke as run
    _check_device(device)
    m = load_model(spec, params, batch)
    loss = loss or m.graph.loss or "cross_entropy"
    con = _console()
    with Progress(console=con, transient=True) as prog:
        task = prog.add_task(f"{m.name}: {loss}", total=steps)
        losses = run(m, steps=steps, loss=loss, lr=lr, device=device,
                     progress=lambda i, n, l: prog.update(task, completed=i, description=f"{m.name}: {loss} {l:.4f}"))
    down = losses[-1] < losses[0]
    losscurve.print_report(con, m, losses, loss, lr, batch, plot)
    if not down:
        sys.exit(1)


def _distributed(spec, batch, params, steps, loss, lr, nproc, strategy, timeout):
    from rich.progress import Progress
    from archviz.backends.torch.distributed import train_smoke_distributed
    m = load_model(spec, params, batch)
    loss = loss or m.graph.loss or "cross_entropy"
    con = _console()
    with Progress(console=con, transient=True) as prog:
        tasks = [prog.add_task(f"rank {r}: {strategy}, {loss}", total=steps) for r in range(nproc)]
        r = train_smoke_distributed(
            m, nproc=nproc, strategy=strategy, steps=steps, loss=loss, lr=lr, timeout=timeout,
            progress=lambda k, i, l: prog.update(tasks[k], completed=i, description=f"rank {k}: {loss} {l:.4f}"))
    print_distributed(con, m, r)
    if not r.all_down or not r.params_equal:
        sys.exit(1)


def _bytes(n) -> str:
    return "—" if n is None else f"{n:,}"


def print_distributed(con, m, r) -> None:
    """Per rank: the loss first → last and its curve, the parameters against rank 0's, and the
    memory measured (exact bytes), with what each figure covers."""
    from rich.table import Table
    from archviz.backends.losscurve import sparkline
    con.print(f"{m.name}: {r.strategy} on {r.nproc} process{'es' if r.nproc > 1 else ''} (gloo, CPU), batch {r.batch} per rank "
              f"({r.batch * r.nproc} in all), {r.loss}, {r.steps} steps, lr {r.lr:g}", highlight=False)
    for k in r.ranks:
        word = "[green](going down)[/green]" if k.down else "[red](not going down)[/red]"
        con.print(f"  rank {k.rank}  {k.losses[0]:.4f} → {k.losses[-1]:.4f} {word}  {sparkline(k.losses)}",
                  highlight=False)
    how = "gathered from the shards, " if r.strategy == "fsdp" else ""
    worst = max(k.max_param_diff for k in r.ranks)
    con.print(f"  parameters ({how}after step {r.steps}): " + (
        "[green]equal on every rank[/green], bit for bit" if r.params_equal else
        f"[red]differ across ranks[/red]: max |Δ| {worst:.3g} from rank 0's"), highlight=False)
    t = Table(title="memory per rank, measured (bytes)", title_justify="left", box=None, padding=(0, 1))
    cols = ("weights", "buffers", "grads", "optimizer", "activations", "total", "peak RSS Δ")
    t.add_column("rank", justify="right")
    for c in cols:
        t.add_column(c, justify="right")
    for k in r.ranks:
        t.add_row(str(k.rank), *(_bytes(v) for v in (k.weights_bytes, k.buffers_bytes, k.grads_bytes,
                                                       k.optimizer_bytes, k.activations_bytes, k.total_bytes,
                                                       k.peak_rss_delta_bytes)))
    con.print(t)
    shard = " (FSDP: the rank's shards)" if r.strategy == "fsdp" else ""
    for line in (f"weights, grads, optimizer (Adam: 2 moments + a step count per tensor): the rank's own tensors{shard};",
                 "activations: what autograd saved for backward in the first step (saved_tensors_hooks; "
                 "parameters left out, each storage once);",
                 "total: their sum; peak RSS Δ: the process's resident-set peak while training minus before "
                 "(includes torch's runtime, gloo's and DDP's buffers)."):
        con.print("  " + line, markup=False, highlight=False)
    for w in sorted({w for k in r.ranks for w in k.warnings}):
        con.print(f"  torch warned: {w}", markup=False, highlight=False)
