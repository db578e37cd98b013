"""`archviz rf`: receptive fields per layer, one layer's derivation, the exact input region of
one output position, and the picture.  Register with ``main.add_command(rf)``."""
from __future__ import annotations


import click

from archviz.backends.rf_table import _cell, rf_rows  # noqa: F401  (rf_rows: the table's rows)
from archviz.clikit import (CONTEXT, _console, _table_console, batch_opt, check_indent, handle_errors, indent_opt,
                            load_model, output_ext, param_opt, preflight, spec_arg)
from archviz.codes import E


def _parse_position(text: str | None):
    if text is None:
        return None
    try:
        vals = [int(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise click.BadParameter(f"expected integers separated by commas (e.g. 10,12), got {text!r}",
                                 param_hint="--position") from None
    if not vals:
        raise click.BadParameter("give one index per axis, e.g. 10,12", param_hint="--position")
    return vals


def _default_node(model):
    """The last layer whose output still has the axes (not global)."""
    from archviz.passes import rf as RF
    for l in reversed(model.layers):
        sums, _ = RF.layer_rf(l.node)
        if sums and not any(s["global"] for s in sums) and any(s["kind"] not in ("fixed",) for s in sums):
            return l.id
    raise click.UsageError("no layer keeps the input's axes: give --node")


@click.command("rf", context_settings=CONTEXT)
@spec_arg
@click.option("--node", "-n", default=None, metavar="ID", help="One layer: its derivation (and the default "
              "layer of --position and --plot: the last layer that keeps the input's axes).")
@click.option("--position", default=None, metavar="I,J", help="An output position of the layer (one index per "
              "axis): the exact input region it reads (torch's indices, clipped) and its theoretical field.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, metavar="FILE.{png,svg}",
              callback=output_ext("png", "svg"), help="Draw the input grid with the layer's region and, nested "
              "inside, those of the layers before it.")
@click.option("--input", "input_name", default=None, help="The input whose axes are used (default: the first "
              "with spatial axes (N, C, H, W) or a time axis read by sequence ops).")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@indent_opt
@batch_opt
@param_opt
@handle_errors
def rf(spec, node, position, plot, input_name, fmt, indent, batch, params):
    """Receptive fields: for every layer, the input region one output position sees, per axis — size (min–max
    where it depends on the position, after upsampling), jump (the effective stride, exact), start and centre of
    output position 0 (padding included), and σ, the effective-RF spread of single-path linear stacks (an estimate).

    \b
    Examples:
      archviz rf specs/exam_two_3x3.yaml
      archviz rf specs/unet.yaml --node head --position 100,100
      archviz rf specs/resnet18.yaml --node layer2.1.relu2 --plot rf.png
    """
    check_indent(indent, fmt)
    pos = _parse_position(position)
    preflight(plot)
    m = load_model(spec, params, batch)
    ctx, node, pos = _target(m, input_name, node, pos, plot)
    if ctx is None:
        return
    exact = theory = None
    if pos is not None:
        exact, theory = _fields_at(m, node, pos)
    if fmt == "json":
        from archviz.backends.report import dumps
        click.echo(dumps(_json(m, ctx, node, pos, exact, theory), indent), nl=False)
    else:
        _print_table(m, ctx, node)
        if node is not None:
            _print_derivation(m, node)
        if pos is not None:
            _print_position(ctx, node, pos, exact, theory)
    if plot:
        _plot(m, node, pos, plot)


def _target(m, input_name, node, pos, plot):
    """(the rf pass's Context on the chosen input, the layer, its position) with every option
    checked; (None, ..) after saying why when the input has no axes."""
    from archviz.errors import RefError, did_you_mean
    from archviz.passes import run
    try:
        ctx = run(m.graph, "rf", input=input_name)
    except KeyError:
        raise click.BadParameter(f"no input '{input_name}'; inputs: {', '.join(m.graph.inputs)}",
                                 param_hint="--input") from None
    if not ctx.axes:
        click.echo(f"{m.name}: {ctx.note}")
        return None, node, None
    if node is not None and node not in m.graph.nodes:
        raise RefError(f"no node '{node}' in {m.name}", code=E.UNKNOWN_NODE,
                       hint=did_you_mean(node, m.graph.nodes) or "run `archviz rf SPEC` to see the ids")
    if node is None and (pos is not None or plot):
        node = _default_node(m)
    if pos is not None and len(pos) == 1 and len(ctx.axes) > 1:
        pos = pos * len(ctx.axes)
    if pos is not None and len(pos) != len(ctx.axes):
        raise click.BadParameter(f"give {len(ctx.axes)} indices ({', '.join(a.name for a in ctx.axes)})",
                                 param_hint="--position")
    return ctx, node, pos


def _fields_at(m, node, pos):
    """(exact, theoretical) input interval per axis read by one output position."""
    from archviz.passes import rf_exact
    try:
        return rf_exact.field_of(m, node, pos, clip=True), rf_exact.field_of(m, node, pos, clip=False)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--position") from None


def _json(m, ctx, node, pos, exact, theory) -> dict:
    from archviz.passes import rf as RF
    layers = []
    for l in m.layers:
        if node is not None and l.id != node:
            continue
        entry, note = RF.layer_json(l.node)
        d = {"id": l.id, "op": l.op, "rf": entry}
        if note:
            d["rf_note"] = note
        warn = l.node.meta["rf"].warnings
        if warn:
            d["rf_warnings"] = list(warn)
        layers.append(d)
    out = {"name": m.name, "input": ctx.input, "axes": [a.name for a in ctx.axes],
           "input_size": [a.size for a in ctx.axes], "layers": layers}
    if pos is not None:
        out["position"] = {"node": node, "index": pos, "exact": [list(x) if x else None for x in exact],
                           "theoretical": [list(x) if x else None for x in theory]}
    return out


def _print_derivation(m, node):
    from archviz.passes.rf_explain import explain_lines
    con = _console()
    for line in explain_lines(m, node):
        con.print(f"  {line.what}:", highlight=False, markup=False)
        con.print(f"      {line.formula}", markup=False)
        if line.numbers:
            con.print(f"      = {line.numbers}", markup=False)


def _print_position(ctx, node, pos, exact, theory):
    click.echo(f"'{node}' at ({', '.join(map(str, pos))}) reads, on input '{ctx.input}':")
    for ax, e, t in zip(ctx.axes, exact, theory):
        if e is None:
            click.echo(f"  {ax.name}: nothing")
            continue
        ex = f"{ax.name} {e[0]}..{e[1]} ({e[1] - e[0] + 1} positions)"
        th = "" if t == e else f";  theoretical {t[0]}..{t[1]} ({t[1] - t[0] + 1}, reaching into the padding)"
        click.echo(f"  {ex}{th}")


def _plot(m, node, pos, plot):
    from archviz.backends.rfplot import write_plot
    try:
        notes = write_plot(m, node, pos, plot)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--plot") from None
    for n in notes:
        click.echo(f"note: {n}", err=True)
    click.echo(f"wrote {plot}", err=True)


def _print_table(m, ctx, node):
    from archviz.backends.report import print_table
    from archviz.passes import rf as RF
    dims = " × ".join(f"{a.name} {a.size}" for a in ctx.axes)
    columns = [(c, j) for c, j in (("id", "left"), ("op", "left"), ("output shape", "left"), ("size", "right"),
                                   ("jump", "right"), ("start", "right"), ("centre", "right"),
                                   ("σ (estimate)", "right"))]
    notes, body = [], []
    for row in rf_rows(m):
        if node is not None and row[0] != node:
            continue
        body.append(row[:8])
        if row[8] and not row[8].startswith("does not"):
            notes.append(f"{row[0]}: {row[8]}")
    con = _table_console()
    print_table(con, f"{m.name} — receptive fields on input '{ctx.input}' ({dims})", columns, body,
                caption="size: input positions one output position sees (padding included; min–max where it "
                        "depends on the position); jump: effective stride; start, centre: of output position 0; "
                        "σ: effective-RF spread, an estimate for single-path linear stacks",
                header_style="bold cyan", caption_justify="left")
    for nid, w in RF.warnings(m.graph):
        if node is None or nid == node:
            con.print(f"[yellow]warning[/yellow]: {w}", highlight=False)
    for n in notes:
        con.print(f"unavailable: {n}", highlight=False, markup=False)
