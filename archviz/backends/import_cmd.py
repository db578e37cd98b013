"""`archviz import`: a torch module → a spec file (issue 14). Register with
``main.add_command(import_cmd)``."""
from __future__ import annotations

import click

from archviz.clikit import (CONTEXT, batch_opt, handle_errors, output_ext, preflight, torch_inputs, torch_kwargs,
                            write_atomic)


def _inputs(ctx, param, values):
    out = torch_inputs(ctx, param, values)
    if not out:
        raise click.BadParameter("give each input of forward, in order: --input image=3x224x224", ctx=ctx,
                                 param=param)
    return out


def add_against(verify_cmd):
    """verify's --against TARGET (archviz.backends.torch.importer.against), imported only when run."""
    from archviz.backends.torch.importer.against import add_against as add
    return add(verify_cmd)


def _target(ctx, param, value):
    from archviz.backends.torch.importer.target import split_target
    try:
        split_target(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None
    return value


@click.command("import", context_settings=CONTEXT)
@click.argument("target", callback=_target)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, metavar="SPEC.yaml",
              callback=output_ext("yaml", "yml"), help="Write the spec here (default: print it).")
@click.option("--input", "-i", "inputs", multiple=True, callback=_inputs, metavar="NAME=SHAPE[:DTYPE]",
              help="An input of forward, in order, without the batch: image=3x224x224, tokens=128:int64.")
@click.option("--kwargs", "kwargs", default=None, callback=torch_kwargs, metavar="JSON",
              help='Keyword arguments of the callable: \'{"num_classes": 10}\'.')
@batch_opt
@click.option("--check", is_flag=True, help="Also build the model on the CPU with random weights and check the "
              "round trip: params, buffers, output shapes and FLOPs equal torch's, and the spec's lowered module "
              "with the model's state_dict gives the same outputs (float64, max |delta| <= 1e-9).")
@handle_errors
def import_cmd(target, output, inputs, kwargs, batch, check):
    """Import a PyTorch model as a spec: TARGET is package.module:callable or path/to/file.py:callable (a
    factory or a class). The model is built and run once on the meta device (no weights: a 7B model imports on a
    laptop); every module and function maps to an archviz op, or the error lists each that does not. Node ids are
    the modules' qualified names ('__' for '.'), so the lowered spec's state_dict keys are the model's.

    \b
    Examples:
      archviz import torchvision.models:resnet18 -o resnet18.yaml --input image=3x224x224
      archviz import my_net.py:Net --input x=1x28x28 --kwargs '{"classes": 10}' --check
      archviz import my_lm.py:build --input tokens=128:int64 -o lm.yaml
    """
    preflight(output)
    try:
        import torch
    except ImportError:
        from archviz.codes import E
        from archviz.errors import UnsupportedError
        raise UnsupportedError("archviz import needs PyTorch: pip install 'archviz[torch]'", code=E.NO_TORCH) from None
    from archviz.backends.torch.importer import import_text, load_text
    from archviz.backends.torch.importer.target import build, find
    fn = find(target)
    model = build(fn, kwargs)
    tb = batch if batch > 1 else 2          # traced at batch 2 at least: an op that mixes the batch shows
    xs = {k: torch.empty((tb, *s), dtype=getattr(torch, d), device="meta") for k, (s, d) in inputs.items()}
    name = target.rpartition(":")[2].rpartition(".")[2]
    notes: list = []
    text = import_text(model, xs, name, notes)
    for n in notes:
        click.echo(f"warning: {n}", err=True)
    m = load_text(text, batch, "imported")
    if check:
        from archviz.backends.torch.importer.check import check as run_check
        torch.manual_seed(0)
        real = build(fn, kwargs, "cpu")
        c = run_check(real, {k: torch.empty((batch, *s), dtype=getattr(torch, d), device="meta")
                             for k, (s, d) in inputs.items()}, m)
        click.echo(c.text(), err=output is None)
    if output:
        write_atomic(output, text)
        t = m.totals
        click.echo(f"wrote {output}: {len(m.layers)} layers, {t['params']:,} params, {t['macs']:,} MACs "
                   f"at batch {batch}")
    else:
        click.echo(text, nl=False)
