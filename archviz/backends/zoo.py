"""`archviz zoo`: the bundled specs, one line each (name, family, params, MACs, doc).

The family is the diagram family `draw --layout auto` picks from the graph's structure
(archviz.backends.render.detect_layout), named for a reader: residual, u-net,
recurrent, seq2seq or feed-forward.  Numbers are the analysed totals at batch 1.
"""
from __future__ import annotations

import json
import os

import click

from archviz.clikit import CONTEXT, handle_errors

from archviz.backends.families import FAMILY, family_name  # noqa: F401  (the names zoo shows)


_ABBREV = ("al.", "Fig.", "e.g.", "i.e.", "vs.", "cf.", "Eq.", "Sec.", "approx.")


def first_sentence(doc: str) -> str:
    """The doc's first sentence (up to a '. ' that ends no abbreviation), on one line."""
    words = " ".join((doc or "").split()).split(" ")
    for i, w in enumerate(words):
        if w.endswith(".") and not w.endswith(_ABBREV) and i + 1 < len(words) and words[i + 1][:1].isalpha():
            return " ".join(words[:i + 1])
    return " ".join(words)


def zoo_entries() -> list[dict]:
    """Every bundled spec, analysed: {name, family, params, macs, doc, path}; a spec that
    fails to compile is listed with its error instead of numbers (never left out)."""
    import archviz
    from archviz.backends.render import detect_layout
    from archviz.errors import ArchvizError
    from archviz.library import library_dir, names
    out = []
    for name in names():
        path = os.path.join(library_dir(), name + ".yaml")
        try:
            m = archviz.load(path)
            t = m.totals
            out.append({"name": name, "family": family_name(detect_layout(m)),
                        "params": t["params"], "macs": t["macs"], "doc": first_sentence(m.graph.doc or ""),
                        "path": path})
        except ArchvizError as e:
            out.append({"name": name, "family": None, "params": None, "macs": None,
                        "doc": f"(does not compile: {e.code} {e.message})", "path": path})
    return out


@click.command("zoo", context_settings=CONTEXT)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@handle_errors
def zoo(fmt):
    """The specs that ship with archviz, one line each: name, family, params, MACs and the
    first sentence of its doc. Any command takes one of these names where it takes a spec
    file (a local file of the same name wins).

    \b
    Examples:
      archviz zoo
      archviz zoo -f json
      archviz summary resnet18 --depth 1
      archviz draw unet -o unet.svg
    """
    from archviz.library import library_dir
    if library_dir() is None:
        raise click.ClickException("no bundled specs found (this installation has no archviz/specs folder)")
    entries = zoo_entries()
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    click.echo(zoo_text(entries, _width()))


def _width() -> int:
    """The terminal's width; piped output gets 160 columns like the tables (COLUMNS overrides)."""
    import shutil
    import sys
    if not sys.stdout.isatty():
        return int(os.environ.get("COLUMNS", 0) or 160)
    return shutil.get_terminal_size((100, 24)).columns


def zoo_text(entries: list[dict], width: int) -> str:
    """One line per spec, the doc cut with '...' to fit `width` columns (at least 40 of them)."""
    num = (lambda v: "-" if v is None else f"{v:,}")     # noqa: E731
    cols = [(e["name"], e["family"] or "-", num(e["params"]), num(e["macs"])) for e in entries]
    head = ("name", "family", "params", "MACs")
    w = [max(len(r[i]) for r in cols + [head]) for i in range(4)]

    def line(r, doc):
        left = f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}  "
        room = max(width - len(left) - 1, 40)
        return left + (doc if len(doc) <= room else doc[:room - 3].rstrip() + "...")
    return "\n".join([line(head, "doc")] + [line(r, e["doc"]) for r, e in zip(cols, entries)])
