"""`archviz draw` and `archviz gallery` (registered in archviz/cli.py with
``main.add_command``)."""
from __future__ import annotations

import sys

import click

from archviz.backends.render.options import LAYOUTS, MAX_UNROLL, SMALL
from archviz.clikit import CONTEXT, _console, batch_opt, handle_errors, load_model, param_opt, preflight, spec_arg, specs_arg
from archviz.library import resolve_dir


@click.command(context_settings=CONTEXT)
@spec_arg
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file; the format follows the extension: .svg .png .pdf or .dot (the DOT text).")
@click.option("--layout", "-l", type=click.Choice(LAYOUTS), default="auto", show_default=True,
              help="Diagram family. auto: unet if resolution levels go down and up joined by skips, "
                   "unrolled for a recurrent network (seq2seq with attention), residual for add-merges, "
                   "else graph.")
@click.option("--depth", "-d", type=click.IntRange(min=1), default=None,
              help="Draw blocks cut to this many id parts as single boxes (layer1.0.conv1 → layer1 at 1).")
@click.option("--expand/--collapse", default=None,
              help="Draw every layer, blocks as clusters (--expand), or a repeated block as one ×N box "
                   f"(--collapse). Default: expanded for a network of at most {SMALL} layers (a teaching "
                   "example: three stacked 3×3 convolutions are the point of the figure), else collapsed.")
@click.option("--unroll", type=click.IntRange(min=1, max=MAX_UNROLL), default=None, metavar="T",
              help=f"Time steps to unroll, 1 to {MAX_UNROLL} (unrolled layout; default: the sequence length, "
                   "the spec's T, drawn 1, 2, 3, ..., T when long). seq2seq: encoder steps to draw.")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default=None,
              help="Direction of the graph and residual layouts (default TB: top to bottom).")
@click.option("--no-shapes", is_flag=True, help="Leave the output shapes out of the boxes.")
@batch_opt
@param_opt
@handle_errors
def draw(spec, output, layout, depth, expand, unroll, rankdir, no_shapes, batch, params):
    """Draw SPEC as the textbook figure of its family (residual column with bypass arcs,
    U-Net as a U, RNN unrolled in time, LSTM/GRU cell, seq2seq attention step).

    \b
    Examples:
      archviz draw specs/resnet18.yaml -o resnet18.svg
      archviz draw specs/unet.yaml -o unet.png
      archviz draw specs/resnet50.yaml -o r50.pdf --layout graph --depth 1
      archviz draw specs/lstm_lm.yaml -o lstm.svg --unroll 4
      archviz draw specs/lstm_lm.yaml -o cell.png --layout cell
    """
    from archviz.backends.render import detect_layout, to_dot
    from archviz.backends.render.engine import format_of, write_diagram
    from archviz.errors import UnsupportedError
    if depth is not None and expand:
        raise click.UsageError("--depth and --expand exclude each other: --depth D cuts blocks to boxes, "
                               "--expand draws every layer")
    try:
        fmt = format_of(output)
    except UnsupportedError as e:  # an unknown extension is a usage error (exit 2)
        raise click.BadParameter(f"{e.message}; use .svg, .png, .pdf or .dot", param_hint="-o/--output") from None
    preflight(output)
    from archviz.backends.render.detect import structure_mismatch
    from archviz.backends.render.options import DrawOptions, ignored_options
    m = load_model(spec, params, batch)
    auto = detect_layout(m)
    chosen = auto if layout == "auto" else layout
    if layout != "auto":
        why = structure_mismatch(m.graph, chosen)
        if why:
            click.echo(f"warning: --layout {chosen} does not match the structure of '{m.name}': {why} "
                       f"(--layout auto picks {auto})", err=True)
    if expand is None:      # small teaching examples draw every layer
        from archviz.backends.render.options import teaching_expand
        expand = depth is None and teaching_expand(m, chosen)
    opts = DrawOptions(layout=chosen, depth=depth, expand=expand, unroll=unroll, rankdir=rankdir,
                       shapes=not no_shapes)
    ignored = ignored_options(chosen, opts)
    if ignored:
        click.echo(f"note: {', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect on the "
                   f"{chosen} layout", err=True)
    text = to_dot(m, chosen, depth=depth, expand=expand, unroll=unroll, rankdir=rankdir, shapes=not no_shapes)
    write_diagram(text, output, fmt)
    click.echo(f"wrote {output} ({chosen} layout)", err=True)


@click.command(context_settings=CONTEXT)
@specs_arg
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), default="outputs", show_default=True)
@batch_opt
@handle_errors
def gallery(specs, out_dir, batch):
    """Draw every spec (default: specs/*.yaml) into OUT_DIR as SVG and PNG with the auto
    layout, and write OUT_DIR/gallery.md: each picture beside its summary.

    \b
    Examples:
      archviz gallery
      archviz gallery resnet18 unet lstm_lm -o pictures
    """
    from archviz.backends.batch import run_gallery
    tb = bool(click.get_current_context().find_root().params.get("traceback"))
    ok = run_gallery(list(specs) or [resolve_dir("specs")], out_dir, batch, _console(stderr=True), traceback=tb)
    sys.exit(0 if ok else 1)
