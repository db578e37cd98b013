"""The bundled architecture library: the specs that ship with archviz, found by name.

A source checkout reads the repository's ``specs/`` folder; an installed wheel carries the
same files as package data in ``archviz/specs/`` (setup.py maps the one onto the other), so
``archviz summary resnet18`` works after ``pip install archviz`` and in a clone alike.

A name is looked up only when no file of that name exists: a local path always wins.
Pure ``os`` (the core imports it; no rich, torch or graphviz).
"""
from __future__ import annotations

import os

_PKG = os.path.dirname(os.path.abspath(__file__))


def library_dir() -> str | None:
    """The folder of bundled specs: ``archviz/specs`` in an installed package, else the
    repository's ``specs/`` beside the package (a source checkout, an editable install)."""
    for d in (os.path.join(_PKG, "specs"), os.path.join(os.path.dirname(_PKG), "specs")):
        if os.path.isdir(d):
            return d
    return None


def names() -> list[str]:
    """The bundled specs' names (file stems, sorted); blocks/ holds shared blocks, not specs."""
    d = library_dir()
    if d is None:
        return []
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".yaml") and os.path.isfile(os.path.join(d, f)))


def _as_name(arg: str) -> str | None:
    """`arg` as a bundled name ('resnet18', 'resnet18.yaml', or 'specs/resnet18.yaml' as the
    README writes it, for use outside a clone), or None when it is another path."""
    if not arg or "\0" in arg:
        return None
    head, tail = os.path.split(arg)
    if head.rstrip("/\\") == "specs":
        arg = tail
    if "/" in arg or os.sep in arg or (os.altsep and os.altsep in arg):
        return None
    stem = arg[:-5] if arg.endswith(".yaml") else arg
    return stem if stem and stem not in (".", "..") else None


def resolve(arg: str) -> str:
    """The file a spec argument means: `arg` itself when it exists (a local path wins), else
    the bundled spec of that name (`resnet18`, `specs/resnet18.yaml`), else `arg` unchanged (the loader then says it is missing,
    with a hint naming the bundled specs)."""
    if not isinstance(arg, str) or os.path.exists(arg):
        return arg
    stem = _as_name(arg)
    d = library_dir()
    if stem is None or d is None:
        return arg
    p = os.path.join(d, stem + ".yaml")
    return p if os.path.isfile(p) else arg


def resolve_dir(arg: str) -> str:
    """A folder argument (report, gallery): `arg` when it exists; 'specs' (the default) means
    the bundled library outside a clone."""
    if os.path.exists(arg):
        return arg
    if arg.rstrip("/\\") == "specs" and library_dir() is not None:
        return library_dir()
    return resolve(arg)


def missing_hint(arg: str) -> str | None:
    """A hint for a spec argument that names no file: the bundled names close to it."""
    stem = _as_name(arg)
    if stem is None:
        return None
    from difflib import get_close_matches
    close = get_close_matches(stem, names(), n=3, cutoff=0.6)
    if close:
        return f"no bundled spec '{stem}' either; did you mean {' or '.join(repr(c) for c in close)}? " \
               f"(`archviz zoo` lists them)"
    return f"no bundled spec '{stem}' either (`archviz zoo` lists them)"
