"""The `archviz` command line. Thin: parse options, call the API, print, map errors to
exit codes (0 ok, 1 spec/analysis error, 2 usage error)."""
from __future__ import annotations

import os
import sys

import click


from archviz.clikit import (CONTEXT, Group, _console, batch_opt, check_indent, dtype_opt, handle_errors,  # noqa: F401
                            indent_opt, load_model, output_ext, param_opt, preflight, spec_arg, specs_arg, torch_target_opts,
                            write_atomic)
from archviz.clikit import _resolve_spec, _table_console, complete_spec, run_and_exit
from archviz.library import resolve_dir
from archviz.backends.torch_cli import _check_device, _lowering_errors, _need_torch


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="archviz")
@click.option("--traceback", is_flag=True, help="Show a Python traceback for errors (for debugging archviz).")
@click.option("--allow-import", "allow_import", multiple=True, metavar="PATH", type=click.Path(exists=True),
              help="Let spec imports read PATH (a folder's tree or a file; repeatable). Without it, imports "
                   "read only the spec's own folder tree and the bundled library.")
def main(traceback, allow_import):
    """archviz: what a neural-network architecture is — shapes, size, cost, receptive
    fields, diagrams and a runnable model — computed exactly from a YAML spec, without
    running the network.

    \b
    Examples:
      archviz summary specs/resnet50.yaml
      archviz summary specs/resnet18.yaml --depth 1 --batch 8
      archviz explain specs/exam_conv_pool.yaml conv
      archviz compare specs/exam_three_3x3.yaml specs/exam_one_7x7.yaml
      archviz report specs -o outputs

    \b
    Shell completion (commands, options, bundled spec names), e.g. for bash in ~/.bashrc:
      eval "$(_ARCHVIZ_COMPLETE=bash_source archviz)"
    zsh: _ARCHVIZ_COMPLETE=zsh_source; fish: _ARCHVIZ_COMPLETE=fish_source archviz | source
    """
    from archviz.spec import roots
    roots.CLI_ALLOW_IMPORT = tuple(allow_import)


@main.command(context_settings=CONTEXT)
@spec_arg
@batch_opt
@param_opt
@dtype_opt
@click.option("--depth", "-d", type=click.IntRange(min=1), default=None,
              help="Collapse blocks: keep ids to this many dot-separated parts (layer1.0.conv1 → layer1 at 1).")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
              show_default=True, help="Output format. JSON is a stable contract (see README).")
@indent_opt
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of the terminal.")
@handle_errors
def summary(spec, batch, params, dtype, depth, fmt, indent, output):
    """Per-layer table: id, op, output shape, params, MACs, with totals.

    \b
    Examples:
      archviz summary resnet18
      archviz summary specs/resnet50.yaml --depth 1 --batch 8
      archviz summary unet -f json -o unet.json
      archviz summary resnet18 -f json --indent 2     # indented (default: compact)
      archviz summary my_net.yaml -p num_classes=10 --dtype bfloat16
    """
    check_indent(indent, fmt)
    preflight(output)
    m = load_model(spec, params, batch, dtype)
    if output:
        write_atomic(output, m.summary("text" if fmt == "table" else fmt, depth, indent))
        click.echo(f"wrote {output}", err=True)
        return
    from archviz.backends.report import print_summary, summary_parts
    if fmt == "table":
        print_summary(_table_console(), m, depth)
    else:       # JSON is written as it is encoded
        for part in summary_parts(m, fmt, depth, indent):
            click.echo(part, nl=False)


@main.command(context_settings=CONTEXT)
@spec_arg
@batch_opt
@param_opt
@handle_errors
def validate(spec, batch, params):
    """Check a spec and report every problem found in one run.

    \b
    Examples:
      archviz validate my_net.yaml
      archviz validate lstm_lm -p T=50
    """
    m = load_model(spec, params, batch)
    t = m.totals
    click.echo(f"{spec}: ok — {len(m.layers)} layers, {t['params']:,} params, outputs "
               + ", ".join(f"{k} {list(v)}" for k, v in m.output_shapes.items()))


@main.command(context_settings=CONTEXT)
@spec_arg
@click.argument("node", required=False)
@batch_opt
@param_opt
@handle_errors
def explain(spec, node, batch, params):
    """Derive each number of a layer (or all layers): the formula, then the numbers put in.

    \b
    Examples:
      archviz explain exam_conv_pool conv
      archviz explain resnet18 layer1.0.conv1
      archviz explain lstm_lm
    """
    m = load_model(spec, params, batch)
    click.echo(m.explain(node), nl=False)


@main.command(context_settings=CONTEXT)
@click.argument("spec_a", type=click.Path(dir_okay=False), callback=_resolve_spec, shell_complete=complete_spec)
@click.argument("spec_b", type=click.Path(dir_okay=False), callback=_resolve_spec, shell_complete=complete_spec)
@batch_opt
@param_opt
@click.option("--pa", "params_a", multiple=True, metavar="NAME=VALUE", help="A spec param for A only (repeatable).")
@click.option("--pb", "params_b", multiple=True, metavar="NAME=VALUE", help="A spec param for B only (repeatable).")
@click.option("--only", multiple=True, metavar="SELECTION",
              help="Count only these layers: op families (conv, recurrent, norm, ...), roles or op names "
                   "(gru, lstm), comma-separated or repeated.")
@click.option("--weights", "weights_only", is_flag=True, help="Weights only: leave out normalisation layers.")
@click.option("--size", "sizing", is_flag=True, help="Add `archviz size`'s rows (at its defaults): active params, "
              "FLOPs per token, a training step and a decode step, the KV cache, training memory.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@torch_target_opts
@handle_errors
def compare(spec_a, spec_b, batch, params, params_a, params_b, only, weights_only, sizing, fmt):
    """Two specs side by side with exact ratios (A / B), e.g. three 3×3 convolutions vs one 7×7.

    \b
    Examples:
      archviz compare exam_three_3x3 exam_one_7x7
      archviz compare resnet34 resnet50 -f json
      archviz compare exam_bottleneck_block exam_basic_block --weights
      archviz compare gru_lm lstm_lm -p emb=650 -p hidden=650 --only recurrent
      archviz compare resnet50 resnet50 --pa v1=true    # the paper's v1 vs v1.5
      archviz compare llama llama --pb kv_heads=8 --size -p seq=2048
    """
    from archviz.backends import compare as C
    try:
        tokens = C.check_selection(only)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--only") from None
    a = load_model(spec_a, params + params_a, batch)
    b = load_model(spec_b, params + params_b, batch)
    ta, la = C.totals(a, tokens, weights_only)
    tb, lb = C.totals(b, tokens, weights_only)
    if sizing:
        ta, tb = {**ta, **C.size_totals(a)}, {**tb, **C.size_totals(b)}
    sel = C.describe(tokens, weights_only)
    if fmt == "json":
        import json
        click.echo(json.dumps({"a": a.name, "b": b.name, "selection": sel or None,
                               "layers_a": [l.id for l in la] if sel else None,
                               "layers_b": [l.id for l in lb] if sel else None, "rows": [
            C.json_row(k, ta[k], tb[k]) for k in ta]}, indent=2))
        return
    C.print_compare(_console(), a, b, (ta, la), (tb, lb), sel, batch, params_a, params_b)


@main.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True)
def ops(name, fmt):
    """Every op with its attributes, types, defaults and docs (from the op registry).

    \b
    Examples:
      archviz ops
      archviz ops conv2d
      archviz ops --format markdown > ops.md
    """
    from archviz.backends.opsdoc import ops_markdown, ops_table
    from archviz.ops import registry
    if name and name not in registry:
        from archviz.errors import did_you_mean
        raise click.BadParameter(f"no op '{name}'. {did_you_mean(name, registry) or ''}", param_hint="NAME")
    if fmt == "markdown":
        click.echo(ops_markdown(name), nl=False)
    else:
        for t in ops_table(name):
            _console().print(t)


@main.command(context_settings=CONTEXT)
@click.argument("code", required=False)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True)
def errors(code, fmt):
    """Every error and warning code: its name, error class and meaning (from archviz/codes.py).
    CODE (e.g. E0301, or its name UNKNOWN_NODE) shows one.

    \b
    Examples:
      archviz errors
      archviz errors E0301
      archviz errors --format markdown > docs/errors.md
    """
    from archviz.backends.errorsdoc import errors_markdown, errors_table
    from archviz.codes import ALL
    if code is not None:
        by_name = {c.name: str(c) for c in ALL.values()}
        key = by_name.get(code.upper(), code.upper())
        if key not in ALL:
            from archviz.errors import did_you_mean
            hint = did_you_mean(code.upper(), by_name) or "`archviz errors` lists them"
            raise click.BadParameter(f"no code '{code}'. {hint}", param_hint="CODE")
        code = key
    if fmt == "markdown":
        click.echo(errors_markdown(code), nl=False)
    else:
        _console().print(errors_table(code))


@main.command(context_settings=CONTEXT)
@specs_arg
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), default="outputs", show_default=True)
@batch_opt
@click.option("--diagrams/--no-diagrams", default=True, show_default=True,
              help="Also render diagrams (needs Graphviz's dot).")
@handle_errors
def report(specs, out_dir, batch, diagrams):
    """The main job: for every spec (default: specs/*.yaml, or the bundled library outside a
    clone) write JSON, CSV, Markdown and explanation reports, the diagram (SVG, PNG) and a
    self-contained HTML page (NAME.html: sortable table, foldable blocks, the diagram with
    each box's numbers on hover) into OUT_DIR, with OUT_DIR/index.html linking them all; then
    print one summary table of all of them.

    A failing spec does not stop the run: every failure is listed at the end (exit 1), and
    the outputs it left in OUT_DIR from an earlier run are removed, so OUT_DIR never shows
    the numbers of a spec that no longer compiles.

    \b
    Examples:
      archviz report                        # every bundled spec into ./outputs
      archviz report specs -o outputs
      archviz report resnet18 my_net.yaml -o out --no-diagrams
    """
    from archviz.backends.batch import run_reports
    tb = bool(click.get_current_context().find_root().params.get("traceback"))
    ok = run_reports(list(specs) or [resolve_dir("specs")], out_dir, batch, diagrams, _console(), traceback=tb)
    sys.exit(0 if ok else 1)


@main.command(context_settings=CONTEXT)
@spec_arg
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              callback=output_ext("py", "onnx", "pt2"),
              help="FILE.py (standalone PyTorch), FILE.onnx (ONNX, opset 17) or FILE.pt2 (torch.export).")
@batch_opt
@param_opt
@click.option("--opset", type=click.IntRange(min=17), default=17, show_default=True, help="ONNX opset.")
@handle_errors
@_lowering_errors
def export(spec, output, batch, params, opset):
    """Export the lowered model: a readable standalone .py (no archviz import), ONNX or .pt2.

    \b
    Examples:
      archviz export resnet18 -o resnet18.py && python resnet18.py
      archviz export specs/unet.yaml -o unet.onnx --batch 2
      archviz export lstm_lm -o lstm.pt2
    """
    preflight(output)
    _need_torch()
    from archviz.backends.torch.export import export_onnx, export_pt2, to_python
    m = load_model(spec, params, batch, collect=True)
    ext = os.path.splitext(output)[1].lower()
    if ext == ".py":
        write_atomic(output, to_python(m, spec))
    elif ext == ".onnx":
        export_onnx(m, output, opset)
    elif ext == ".pt2":
        export_pt2(m, output)
    else:
        raise click.BadParameter(f"unknown extension '{ext}': use .py, .onnx or .pt2", param_hint="-o")
    click.echo(f"wrote {output}")


@main.command(context_settings=CONTEXT)
@spec_arg
@batch_opt
@param_opt
@click.option("--device", type=click.Choice(["auto", "meta", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: the meta device (no memory, any input size), CPU where an op has no meta kernel.")
@click.option("--brief", is_flag=True, help="List only the nodes that disagree or that torch does not count.")
@handle_errors
@_lowering_errors
def verify(spec, batch, params, device, brief):
    """Check archviz's static numbers against archviz's own torch lowering of SPEC: each
    node's output shape, params and buffers, and 2 × MACs against torch's FlopCounterMode.

    \b
    What it proves: the shapes, parameter counts and MACs that archviz computes without
    running anything equal those of the torch module archviz builds from the same spec.
    What it does not prove: that the spec computes the same function as the network it
    stands for. Both sides come from the spec, so a spec that differs from the real model
    (a GPT-2 without its causal mask, a missing shortcut, another activation) passes.
    Comparing with a reference model (e.g. the torchvision or Hugging Face one) is a
    separate check.

    \b
    Examples:
      archviz verify resnet18
      archviz verify specs/unet.yaml --brief
      archviz verify lstm_lm --device cpu
    """
    _need_torch()
    from rich.markup import escape
    from rich.table import Table
    from archviz.backends.torch.verify import verify as run_verify
    _check_device(device)
    m = load_model(spec, params, batch, collect=True)
    v = run_verify(m, device)
    t = Table(title=f"verify {m.name} (batch {batch}, device {v.device})", header_style="bold cyan")
    for c in ("node", "op", "shape (torch)", "params", "2×MACs (static)", "FLOPs (torch)", "status"):
        t.add_column(c, justify="right" if "FLOPs" in c or "MACs" in c else "left", overflow="fold")
    shown = 0
    not_counted = set()
    for c in v.nodes:
        if c.flops_status == "not counted by torch":
            not_counted.add(c.op)
        if not brief or c.problems or c.flops_status != "ok":
            shown += 1
            status = "[red]" + escape("; ".join(c.problems)) + "[/red]" if c.problems else c.flops_status
            t.add_row(c.id, c.op, " ".join("×".join(map(str, s)) for s in c.torch_shapes.values()),
                      "ok" if c.static_params == c.torch_params else "differ",
                      f"{c.static_flops:,}", f"{c.torch_flops:,}", status)
    con = _console()
    if shown:
        con.print(t)
    n_ok = sum(1 for c in v.nodes if not c.problems)
    con.print(f"{n_ok}/{len(v.nodes)} nodes agree on shape and parameters; "
              f"params {v.params[0]:,} (torch {v.params[1]:,}), buffers {v.buffers[0]:,} (torch {v.buffers[1]:,}); "
              f"FLOPs agree wherever torch counts the op.")
    if not_counted:
        con.print("torch's FlopCounterMode does not count: " + ", ".join(sorted(not_counted)))
    if not v.ok:
        for p in v.problems:
            click.echo(f"disagreement: {p}", err=True)
        sys.exit(1)
    con.print("[green]verified[/green]: every static number equals torch's, on archviz's own lowering of "
              "this spec. Not checked: that the spec computes the same function as the model it stands "
              "for (see `archviz verify --help`).")


@main.command(context_settings=CONTEXT)
@spec_arg
@batch_opt
@param_opt
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True)
@click.option("--channels-last", is_flag=True, help="Use the channels-last memory format.")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the module first.")
@click.option("--train", is_flag=True, help="Time forward + backward + an optimizer step.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=10, show_default=True)
@handle_errors
@_lowering_errors
def bench(spec, batch, params, device, dtype, channels_last, use_compile, train, warmup, iters):
    """Throughput (samples/s) and latency percentiles of the lowered module.

    \b
    Examples:
      archviz bench resnet18 --batch 8
      archviz bench resnet50 --device cuda --dtype bfloat16 --channels-last --compile
      archviz bench unet --train --iters 5
    """
    _need_torch()
    from rich.progress import Progress
    from archviz.backends.torch.bench import bench as run_bench
    _check_device(device)
    m = load_model(spec, params, batch, collect=True)
    con = _console()
    with Progress(console=con, transient=True) as prog:
        task = prog.add_task(f"{m.name}: warm-up + {iters} timed steps", total=warmup + iters)
        r = run_bench(m, device=device, dtype=dtype, channels_last=channels_last, compile=use_compile,
                      train=train, warmup=warmup, iters=iters,
                      progress=lambda i, n: prog.update(task, completed=i))
    con.print(f"{m.name} {r.mode} on {r.device}, batch {r.batch}, {r.dtype}"
              f"{', channels-last' if channels_last else ''}{', compiled' if use_compile else ''}: "
              f"{r.throughput:,.1f} samples/s; latency p50 {r.percentile(50):.2f} ms, "
              f"p90 {r.percentile(90):.2f} ms, p99 {r.percentile(99):.2f} ms ({r.iters} iterations)")


# Commands of other backends (they import the helpers above, so they come last).
from archviz.backends.render.commands import draw, gallery  # noqa: E402
from archviz.backends.rf_commands import rf  # noqa: E402
from archviz.backends.eval_commands import eval_cmd  # noqa: E402
from archviz.backends.zoo import zoo  # noqa: E402
from archviz.backends.schema_cmd import schema  # noqa: E402
from archviz.backends.train_cmd import train_smoke  # noqa: E402
from archviz.backends.size_cmd import size_cmd  # noqa: E402
from archviz.backends.import_cmd import add_against, import_cmd  # noqa: E402

main.add_command(draw)
main.add_command(gallery)
main.add_command(rf)
main.add_command(eval_cmd)
main.add_command(zoo)
main.add_command(schema)
main.add_command(train_smoke)
main.add_command(size_cmd)
main.add_command(import_cmd)
add_against(verify)


def entry() -> None:
    """The `archviz` program (pyproject's script): the command line, as a process."""
    run_and_exit(main)


if __name__ == "__main__":  # pragma: no cover
    entry()
