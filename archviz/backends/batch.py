"""The main job: reports (and diagrams) for many specs into an output folder, with a
progress bar, then one summary table of all of them; and `archviz gallery`, the diagrams
alone with their index (:func:`run_gallery`).

A spec that fails does not stop the run: every spec is tried, every failure is listed at
the end, and the run exits 1.  The outputs a failing spec left from an earlier run
(STEM.json, .csv, .md, .summary.txt, .explain.txt, .svg, .png and its gallery entry) are
removed, so the output folder never shows the numbers of a spec that no longer compiles;
when only its diagram fails, only its diagram is removed (the reports are fresh).  An
error writing the output folder itself (unwritable, full) stops the run: every further
spec would fail the same way.
"""
from __future__ import annotations

import glob
import os

from archviz.codes import E
from archviz.errors import ArchvizError, OutputError, format_error
from archviz.backends.files import remove_outputs, write_atomic
from archviz.ops.base import fmt_shape

REPORT_SUFFIXES = (".json", ".csv", ".md", ".summary.txt", ".explain.txt")
DIAGRAM_SUFFIXES = (".svg", ".png")
PAGE_SUFFIXES = (".html",)         # the spec's page of the HTML report (backends/html.py)


def collect_specs(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(glob.glob(os.path.join(p, "*.yaml")))
        else:
            out.append(p)
    return out


def internal_error(path: str, e: Exception) -> ArchvizError:
    """An exception archviz did not expect, as a failure of one spec (so the run goes on)."""
    first = str(e).splitlines()[0] if str(e) else ""
    return ArchvizError(f"internal error while processing '{path}': {type(e).__name__}"
                        + (f": {first}" if first else ""), code=E.INTERNAL,
                        hint="this is a bug in archviz; please report it. "
                             "`archviz --traceback ...` shows where it happened")


def remove_stale(out_dir: str, stem: str, suffixes) -> list[str]:
    """Remove a failing spec's outputs of an earlier run (and its gallery entry)."""
    gone = remove_outputs(out_dir, [stem + s for s in suffixes])
    if ".svg" in suffixes and os.path.exists(os.path.join(out_dir, "gallery.md")):
        from archviz.backends.render.gallery import write_index
        write_index(out_dir, [])          # drops the entries whose SVG is gone
    return gone


def write_reports(model, out_dir: str, stem: str) -> list[str]:
    # every text is made before the first is written: a spec whose explanation fails
    # never leaves new JSON beside an old explanation
    texts = [model.summary("json"), model.summary("csv"), model.summary("markdown") + _warnings(model, True),
             model.summary("text") + _warnings(model, False), model.explain()]
    files = dict(zip((stem + s for s in REPORT_SUFFIXES), texts))
    for name, text in files.items():
        write_atomic(os.path.join(out_dir, name), text)
    return list(files)


def _warnings(model, markdown: bool) -> str:
    """The spec's warnings (W07xx) under a report's .md or .summary.txt, as the JSON and the
    HTML page carry them (the console prints them on stderr); '' when there are none."""
    ws = model.warnings
    if not ws:
        return ""
    lines = [f"warning[{w.code}]" + (f" at {w.span}" if w.span else "") + f": {w.message}" for w in ws]
    if markdown:
        return "\n**Warnings**\n\n" + "".join(f"- {x}\n" for x in lines)
    return "\n" + "".join(x + "\n" for x in lines)


def write_page(model, out_dir: str, stem: str, svg_path: str | None, diagrams: bool, skipped: str | None):
    """STEM.html: the spec's self-contained page, with its diagram inline where it was drawn.
    Returns (stem, model, layout) for the index."""
    from archviz.backends.html import page_html
    from archviz.backends.render import detect_layout
    svg = None
    if svg_path:
        with open(svg_path, encoding="utf-8") as f:
            svg = f.read()
    note = ("diagrams were not drawn (--no-diagrams)" if not diagrams else
            f"no diagram: {skipped}" if skipped else "the diagram failed (see the run's messages)")
    write_atomic(os.path.join(out_dir, stem + ".html"), page_html(model, svg, diagram_note=note))
    return stem, model, detect_layout(model)


def _failed(failures, out_dir, path, stem, e, suffixes):
    gone = remove_stale(out_dir, stem, suffixes)
    failures.append((path, e, gone))


def _draw_and_page(m, out_dir, path, stem, renderer, diagrams, skipped, failures, pages, traceback):
    """The spec's diagram (when drawn) and its HTML page; a failure of either is listed and
    removes only its own outputs. Returns (renderer, skipped): no renderer once Graphviz is
    found missing, and why."""
    from archviz.backends.render.engine import GraphvizMissingError
    svg = None
    if renderer is not None:
        try:
            renderer(m, out_dir, stem)
            svg = os.path.join(out_dir, stem + ".svg")
        except GraphvizMissingError as e:
            skipped, renderer = str(e), None
        except OutputError:
            raise
        except ArchvizError as e:
            _failed(failures, out_dir, path, stem, e, DIAGRAM_SUFFIXES)
        except Exception as e:
            if traceback:
                raise
            _failed(failures, out_dir, path, stem, internal_error(path, e), DIAGRAM_SUFFIXES)
    try:
        pages.append(write_page(m, out_dir, stem, svg, diagrams, skipped))
    except OutputError:
        raise
    except Exception as e:
        if traceback:
            raise
        _failed(failures, out_dir, path, stem, internal_error(path, e), PAGE_SUFFIXES)
    return renderer, skipped


def run_reports(paths, out_dir, batch, diagrams, console, traceback: bool = False) -> bool:
    """Returns True when every spec (and its diagram) succeeded. `traceback`: an
    unexpected exception propagates instead of being listed as a failure."""
    import archviz
    from rich.progress import Progress
    from rich.table import Table
    specs = collect_specs(paths)
    results, failures = [], []
    renderer = None
    skipped_diagrams = None
    stopped = None
    if diagrams:
        from archviz.backends.render import render_gallery_item as renderer  # noqa: N813
    every = REPORT_SUFFIXES + DIAGRAM_SUFFIXES + PAGE_SUFFIXES
    pages = []              # (stem, model, layout) of the specs whose page was written
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("analysing specs", total=len(specs))
        for path in specs:
            stem = os.path.splitext(os.path.basename(path))[0]
            prog.update(task, description=f"{stem}")
            try:
                try:
                    m = archviz.load(path, batch=batch)
                    write_reports(m, out_dir, stem)
                    results.append((stem, m))
                except OutputError:
                    raise
                except ArchvizError as e:
                    _failed(failures, out_dir, path, stem, e, every)
                    prog.advance(task)
                    continue
                except Exception as e:
                    if traceback:
                        raise
                    _failed(failures, out_dir, path, stem, internal_error(path, e), every)
                    prog.advance(task)
                    continue
                renderer, skipped_diagrams = _draw_and_page(m, out_dir, path, stem, renderer, diagrams,
                                                            skipped_diagrams, failures, pages, traceback)
            except OutputError as e:
                stopped = (path, e)
                break
            prog.advance(task)
    if results and stopped is None:
        from archviz.backends.html import index_html
        write_atomic(os.path.join(out_dir, "index.html"), index_html(pages, failures))
    t = Table(title=f"archviz — {len(results)} specs (batch {batch}) → {out_dir}/", header_style="bold cyan")
    for c, j in (("spec", "left"), ("layers", "right"), ("params", "right"), ("MACs", "right"),
                 ("output", "left")):
        t.add_column(c, justify=j)
    for stem, m in results:
        tt = m.totals
        t.add_row(stem, str(len(m.layers)), f"{tt['params']:,}", f"{tt['macs']:,}",
                  ", ".join(fmt_shape(v) for v in m.output_shapes.values()))
    console.print(t)
    if skipped_diagrams:
        console.print(f"[yellow]diagrams skipped:[/yellow] {skipped_diagrams}", highlight=False)
    elif diagrams and results:
        console.print(f"diagrams and the gallery index: {os.path.join(out_dir, 'gallery.md')}", highlight=False)
    if results and stopped is None:
        console.print(f"HTML report: {os.path.join(out_dir, 'index.html')}", highlight=False)
    print_failures(console, failures)
    if stopped is not None:
        console.print(f"[red]stopped at {stopped[0]}[/red] ({specs.index(stopped[0]) + 1} of {len(specs)}): "
                      "the output folder cannot be written", highlight=False)
        console.print(format_error(stopped[1]), markup=False, highlight=False)
    return not failures and stopped is None


def print_failures(console, failures) -> None:
    for path, e, gone in failures:
        console.print(f"[red]failed:[/red] {path}", highlight=False)
        console.print(format_error(e), markup=False, highlight=False)
        if gone:
            console.print(f"  removed its outputs of an earlier run: {', '.join(gone)}",
                          markup=False, highlight=False)
    if failures:
        console.print(f"[red]{len(failures)} spec(s) failed[/red]", highlight=False)


def run_gallery(paths, out_dir: str, batch: int, console, traceback: bool = False) -> bool:
    """Render every spec into out_dir (STEM.svg, STEM.png) with a progress bar, then write
    the index; failures are listed at the end, and a failing spec's pictures of an earlier
    run are removed (as the main job does). Returns True when every spec rendered."""
    import archviz
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from archviz.backends.render import detect_layout, to_dot
    from archviz.backends.render.engine import GraphvizMissingError, render_bytes, write_file
    from archviz.backends.render.gallery import entry, write_index

    specs = collect_specs(paths)
    done, failures, missing, stale = [], [], None, False
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as prog:
        task = prog.add_task("drawing", total=len(specs))
        for path in specs:
            stem = os.path.splitext(os.path.basename(path))[0]
            prog.update(task, description=stem)
            err = None
            try:
                m = archviz.load(path, batch=batch)
                layout = detect_layout(m)
                from archviz.backends.render.options import teaching_expand
                text = to_dot(m, layout, expand=teaching_expand(m, layout))
                data = {fmt: render_bytes(text, fmt) for fmt in ("svg", "png")}   # both, then write
                for fmt, b in data.items():
                    write_file(os.path.join(out_dir, f"{stem}.{fmt}"), b)
                done.append(entry(m, stem, layout))
            except GraphvizMissingError as e:
                # the same for every spec: say it once, not once per spec
                missing = e
                break
            except OutputError:
                raise
            except ArchvizError as e:
                err = e
            except Exception as e:
                if traceback:
                    raise
                err = internal_error(path, e)
            if err is not None:
                gone = remove_outputs(out_dir, [stem + s for s in DIAGRAM_SUFFIXES])
                stale = stale or bool(gone)
                failures.append((path, err, gone))
            prog.advance(task)
    if done or stale:
        index = write_index(out_dir, done)
        if done:
            console.print(f"drew {len(done)} spec(s) into {out_dir}/ — index: {index}", highlight=False)
    print_failures(console, failures)
    if missing is not None:
        console.print(format_error(missing), markup=False, highlight=False)
    return not failures and missing is None
