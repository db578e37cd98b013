"""The main job: reports (and diagrams) for many specs into an output folder, with a
progress bar, then one summary table of all of them."""
from __future__ import annotations

import glob
import os

from archviz.errors import ArchvizError, format_error
from archviz.backends.files import write_atomic
from archviz.ops.base import fmt_shape


def collect_specs(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(glob.glob(os.path.join(p, "*.yaml")))
        else:
            out.append(p)
    return out


def write_reports(model, out_dir: str, stem: str) -> list[str]:
    files = {
        f"{stem}.json": model.summary("json"),
        f"{stem}.csv": model.summary("csv"),
        f"{stem}.md": model.summary("markdown"),
        f"{stem}.summary.txt": model.summary("text"),
        f"{stem}.explain.txt": model.explain(),
    }
    for name, text in files.items():
        write_atomic(os.path.join(out_dir, name), text)
    return list(files)


def run_reports(paths, out_dir, batch, diagrams, console) -> bool:
    import archviz
    from rich.progress import Progress
    from rich.table import Table
    specs = collect_specs(paths)
    results, failures = [], []
    renderer = None
    skipped_diagrams = None
    from archviz.backends.render.engine import GraphvizMissingError
    if diagrams:
        from archviz.backends.render import render_gallery_item as renderer  # noqa: N813
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("analysing specs", total=len(specs))
        for path in specs:
            stem = os.path.splitext(os.path.basename(path))[0]
            prog.update(task, description=f"{stem}")
            try:
                m = archviz.load(path, batch=batch)
                write_reports(m, out_dir, stem)
                results.append((stem, m))
            except ArchvizError as e:
                failures.append((path, e))
                prog.advance(task)
                continue
            if renderer is not None:
                try:
                    renderer(m, out_dir, stem)
                except GraphvizMissingError as e:
                    skipped_diagrams = str(e)
                    renderer = None
                except ArchvizError as e:
                    failures.append((path, e))
            prog.advance(task)
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
    for path, e in failures:
        console.print(f"[red]failed:[/red] {path}", highlight=False)
        console.print(format_error(e), markup=False, highlight=False)
    return not failures
