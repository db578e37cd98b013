"""Shared pieces of the command line: options, error handling, loading. Used by
archviz.cli and by the commands that backends define (render, rf)."""
from __future__ import annotations

import functools
import sys

import click

from archviz.errors import ArchvizError, format_error
from archviz.model import DTYPE_BYTES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(click.Group):
    """archviz's command group: ASCII on consoles that cannot print Unicode, and an
    interruption (Ctrl-C, SIGTERM, SIGHUP) exits 128 + the signal number (130, 143, 129)
    after every cleanup has run, with one line and no traceback."""

    def main(self, *args, **kwargs):
        import gc

        from archviz.terminal import Terminated, exit_code, setup_streams, signals_handled
        setup_streams()
        thawed = not gc.get_freeze_count()
        enabled = gc.isenabled()
        with signals_handled():
            try:
                return super().main(*args, **kwargs)
            except Terminated as e:          # during option parsing: click lets it through
                _interrupted(e)
                sys.exit(exit_code(e))
            finally:        # what load_model froze or paused goes back to the collector (a caller's process goes on)
                if thawed and gc.get_freeze_count():
                    gc.unfreeze()
                if enabled and not gc.isenabled():
                    gc.enable()

    def invoke(self, ctx):
        from archviz.terminal import Terminated, exit_code
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, Terminated) as e:   # click would say "Aborted!" and exit 1
            if ctx.find_root().params.get("traceback"):
                import traceback
                traceback.print_exc()
            _interrupted(e)
            ctx.exit(exit_code(e))


_KEPT: list | None = None      # a list while the command line runs as a process (run_and_exit)


def run_and_exit(group) -> None:
    """The command line as a process (`archviz`, `python -m archviz`): run it, then end the
    process without taking its objects apart one by one. A command on a 100,000-layer graph
    leaves millions of them, and the interpreter's teardown freed each and walked them all
    with the collector: 0.3-0.9 s after the output was written (issue 17). Exit handlers
    still run and the output streams are flushed; with another thread running, torch loaded,
    or a stream that cannot be flushed (a closed pipe), the process ends the usual way."""
    import atexit
    import os
    import threading
    global _KEPT
    _KEPT = []          # what load_model made, alive until the process ends (not freed at a return)
    try:
        group()
        code = 0
    except SystemExit as e:
        code = e.code
    if code is not None and not isinstance(code, int):     # sys.exit("text"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    if threading.active_count() > 1 or "torch" in sys.modules:
        sys.exit(code)      # (C++ code may hold output in the C library's buffers, which only exit() flushes)
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:       # a closed pipe, a stream without flush: the usual way says what it says
        sys.exit(code)
    os._exit(code or 0)


def _interrupted(e: BaseException) -> None:
    import signal
    num = getattr(e, "signum", signal.SIGINT)
    try:
        name = signal.Signals(num).name
    except ValueError:
        name = f"signal {num}"
    try:
        click.echo(f"\narchviz: interrupted ({name}); no output file was left half-written", err=True)
    except (OSError, ValueError):     # stderr gone (a closed terminal): exit quietly
        pass


def _console(stderr=False):
    """A rich console. Piped output (a file, CI logs) gets a wide page instead of rich's
    default 80 columns, so numbers are never cut; COLUMNS overrides. On a console that
    cannot print archviz's characters, text is spelled in ASCII before rich lays it out,
    so table columns stay aligned (σ → sigma is wider than σ)."""
    import os
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        width = int(os.environ.get("COLUMNS", 0) or 160)
    return _console_class()(stderr=stderr, highlight=False, width=width)


def _table_console(stderr=False):
    """The console of a table command (summary, rf): for a file or a pipe, one that writes
    plain text itself and makes the rich console only if it must (archviz.plain_console)."""
    from archviz.plain_console import table_console
    return table_console(lambda: _console(stderr), stderr)


@functools.lru_cache(maxsize=None)
def _console_class():
    from rich.console import Console

    from archviz.terminal import ascii_text

    class ArchvizConsole(Console):
        def render_str(self, text, *args, **kwargs):
            return super().render_str(ascii_text(text, self.file), *args, **kwargs)

    return ArchvizConsole


def handle_errors(fn):
    """Print an ArchvizError compiler-style and exit 1; no traceback unless --traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except ArchvizError as e:
            if click.get_current_context().find_root().params.get("traceback"):
                raise
            click.echo(format_error(e), err=True)
            sys.exit(1)
    return wrapper


def output_ext(*exts: str):
    """A click callback: an output path whose extension is one of `exts` (checked while the
    options are parsed, before any work starts; a usage error, exit 2)."""
    def check(ctx, param, value):
        if value is None:
            return value
        import os
        ext = os.path.splitext(value)[1].lower().lstrip(".")
        if ext not in exts:
            have = f"'.{ext}'" if ext else "no extension"
            raise click.BadParameter(f"{value!r} has {have}: use {', '.join('.' + e for e in exts)}",
                                     ctx=ctx, param=param)
        return value
    return check


def preflight(*paths) -> None:
    """Output paths checked before any work: a folder on the way that is a file is E0801."""
    from archviz.backends.files import preflight as _pre
    for p in paths:
        if p:
            _pre(p)


def _overrides(values) -> dict:
    from archviz.spec import parse_override
    out = {}
    for v in values:
        try:
            k, val = parse_override(v)
        except (ValueError, ArchvizError) as e:
            raise click.BadParameter(str(e), param_hint="-p/--param") from None
        out[k] = val
    return out


def _resolve_spec(ctx, param, value):
    """A spec argument: a path, or the name of a bundled spec (`resnet18`); a local path wins."""
    from archviz.library import resolve
    return resolve(value) if value is not None else value


def _resolve_dirs(ctx, param, value):
    """report/gallery's SPECS: paths (folders or files) or bundled names; none = `specs`."""
    import os

    from archviz.library import resolve_dir
    for v in value:
        if not os.path.exists(resolve_dir(v)):
            raise click.BadParameter(f"'{v}' is neither a file, a folder nor a bundled spec "
                                     "(`archviz zoo` lists them)", ctx=ctx, param=param)
    return tuple(resolve_dir(v) for v in value)


def complete_spec(ctx, param, incomplete):
    """Shell completion of a spec argument: the bundled names, then the shell's own files."""
    from click.shell_completion import CompletionItem

    from archviz.library import names
    out = [CompletionItem(n) for n in names() if n.startswith(incomplete)]
    return out + [CompletionItem(incomplete, type="file")]


# missing or a folder: a spec error (E0106, exit 1)
def torch_inputs(ctx, param, values) -> dict:
    """--input NAME=SHAPE[:DTYPE] ... → {name: (shape, dtype)} (a usage error when malformed)."""
    from archviz.backends.torch.importer.target import parse_input
    out = {}
    for v in values:
        try:
            name, shape, dtype = parse_input(v)
        except ValueError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None
        if name in out:
            raise click.BadParameter(f"input '{name}' given twice", ctx=ctx, param=param)
        out[name] = (shape, dtype)
    return out


def torch_kwargs(ctx, param, value) -> dict:
    """--kwargs JSON → the callable's keyword arguments (a usage error unless a JSON object)."""
    import json
    if value is None:
        return {}
    try:
        kw = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", ctx=ctx, param=param) from None
    if not isinstance(kw, dict):
        raise click.BadParameter('a JSON object of keyword arguments, e.g. {"num_classes": 10}', ctx=ctx,
                                 param=param)
    return kw


def _torch_meta(ctx, param, value):
    """--input / --kwargs of a torch TARGET given for SPEC, kept for load_model (not the command's)."""
    if value:
        ctx.meta[param.name] = (torch_kwargs if param.name == "torch_kwargs" else torch_inputs)(ctx, param, value)
    return value


def spec_arg(fn):
    """SPEC: a spec path or bundled name, or a torch TARGET (file.py:callable) with --input
    (--torch-input where the command has an --input of its own) and --kwargs."""
    fn = torch_target_opts(fn)
    return click.argument("spec", type=click.Path(), callback=_resolve_spec, shell_complete=complete_spec)(fn)


def torch_target_opts(fn):
    """--input (or --torch-input) and --kwargs: what a torch TARGET given for a spec needs
    (load_model reads them)."""
    own = {o for p in getattr(fn, "__click_params__", []) for o in getattr(p, "opts", [])}
    flag = "--torch-input" if "--input" in own else "--input"
    fn = click.option(flag, "torch_inputs", multiple=True, expose_value=False, callback=_torch_meta,
                      metavar="NAME=SHAPE[:DTYPE]", help="With a torch TARGET (file.py:callable or "
                      "package.module:callable) for SPEC: an input of forward, without the batch "
                      "(image=3x224x224, tokens=128:int64); imported on the fly.")(fn)
    fn = click.option("--kwargs", "torch_kwargs", default=None, expose_value=False, callback=_torch_meta,
                      metavar="JSON", help="With a torch TARGET: the callable's keyword arguments.")(fn)
    return fn
specs_arg = click.argument("specs", nargs=-1, type=click.Path(), callback=_resolve_dirs,
                           shell_complete=complete_spec)
param_opt = click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
                         help="Override a spec param (repeatable), e.g. -p num_classes=10 -p 'widths=[32,64,128,256]'.")
batch_opt = click.option("--batch", "-b", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Batch size N (shapes include it; MACs scale with it).")
indent_opt = click.option("--indent", type=click.IntRange(min=0, max=16), default=None, metavar="N",
                          help="JSON: indent by N spaces (default: compact, one line; the same document).")
def check_indent(indent, fmt: str) -> None:
    """--indent is for JSON: otherwise a usage error (exit 2) before any work."""
    if indent is not None and fmt != "json":
        raise click.BadParameter("--indent is for JSON (-f json)", param_hint="--indent")


dtype_opt = click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)),
                         default="float32", show_default=True, help="Element type for the memory figures.")


def load_model(spec, params, batch=1, dtype="float32", collect: bool = False):
    """The analysed model of a command. It lives until the command ends: its objects leave
    the collector's generations, and, unless `collect` (the torch commands, whose work may
    leave reference cycles), the collector stays paused while the command writes what it
    reads (the receptive fields and rows built then, ten objects a layer, no cycles, were
    walked by 700 collections at 100,000 layers: 40 % of the time; issue 17). The command's
    end gives all of it back (whatever group runs it; Group.main too)."""
    import gc

    import archviz
    from archviz.backends.torch.importer.onthefly import is_target
    enabled, thawed = gc.isenabled(), not gc.get_freeze_count()
    meta = click.get_current_context().meta
    if is_target(spec) and "torch_inputs" not in meta:
        raise click.UsageError(f"{spec} names a torch model: give its inputs, --input NAME=SHAPE[:DTYPE] "
                               "(--torch-input for rf)")
    if is_target(spec):         # traced by torch, with the collector as it is
        from archviz.backends.torch.importer.onthefly import load
        m = load(spec, meta["torch_inputs"], meta.get("torch_kwargs", {}), batch, _overrides(params))
    else:
        # paused from here, so that the millions of objects load makes are frozen before any
        # collection walks them (the first one after load's own pause took 0.9 s at 100,000 layers)
        gc.disable()
        # the overrides as a dict: `-p batch=3` names a spec param, never load()'s batch argument
        m = archviz._load(spec, batch, dtype, _overrides(params), lazy=True)
    gc.freeze()
    if collect and enabled:
        gc.enable()
    elif not collect:
        gc.disable()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:     # the command's end gives the collector back, whatever group runs it
        ctx.call_on_close(functools.partial(_collector_back, enabled, thawed))
    if _KEPT is not None:       # a process: its end frees the model, not the command's return
        _KEPT.append(m)
    for w in m.warnings:        # on stderr, so JSON on stdout stays clean
        click.echo(format_error(w), err=True)
    return m


def _collector_back(enabled: bool, thawed: bool) -> None:
    import gc
    if thawed and gc.get_freeze_count():
        gc.unfreeze()
    if enabled and not gc.isenabled():
        gc.enable()


def write_atomic(path: str, text: str | bytes) -> None:
    """Write via a temporary file and rename: a failed run never leaves half a file."""
    from archviz.backends.files import write_atomic as _w
    _w(path, text)
