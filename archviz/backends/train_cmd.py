"""`archviz train-smoke`: a few optimizer steps on synthetic data, the loss going down.
Register with ``main.add_command(train_smoke)``."""
from __future__ import annotations

import os
import sys

import click

from archviz.backends.torch_cli import _check_device, _check_lr, _lowering_errors, _need_torch
from archviz.clikit import CONTEXT, _console, batch_opt, handle_errors, load_model, param_opt, spec_arg
from archviz.spec.losses import LOSSES


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
@handle_errors
@_lowering_errors
def train_smoke(spec, batch, params, steps, loss, lr, device, plot):
    """A few Adam steps on one synthetic batch: the loss should go down. Prints the whole
    curve (a sparkline), the spikes (steps where the loss jumped back up) and the output
    size the loss was computed on.

    \b
    Examples:
      archviz train-smoke unet -p size=252 -p base=8 --loss cross_entropy+dice --lr 0.01 --plot loss.png
      archviz train-smoke exam_conv_pool
      archviz train-smoke unet --loss dice --steps 10 -p size=188 -p base=8
    """
    if plot and os.path.splitext(plot)[1].lower() not in (".png", ".svg"):
        raise click.BadParameter(f"'{plot}': the plot is a .png or .svg file", param_hint="--plot")
    _need_torch()
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
