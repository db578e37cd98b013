"""Where a spec's imports may read: the top spec's folder tree, the bundled library, and the
paths allowed by `archviz --allow-import PATH` or `allow_import=[PATH]`.  The loader
(archviz.spec.files) refuses an import outside them before it looks at the file.  Light (no
yaml, no ops), so the CLI sets its paths at start for every command."""
from __future__ import annotations

import os

# The paths `archviz --allow-import PATH` lets imports read in this process (the CLI sets it
# for each command; compile_spec's and archviz.load's allow_import keyword overrides it).
CLI_ALLOW_IMPORT: tuple = ()


def library_dir() -> str | None:
    """The bundled architecture library (archviz.library): the repository's specs/ folder in a
    source checkout or an editable install, archviz/specs/ in an installed wheel."""
    from archviz.library import library_dir as _dir
    return _dir()


def import_roots(top_path: str, allow_import=None) -> tuple:
    """The real paths imports may read: the top spec's folder, the bundled library, and the
    allowed paths (a folder allows its tree, a file itself)."""
    if allow_import is None:    # the CLI's --allow-import
        allow_import = CLI_ALLOW_IMPORT
    allow = allow_import
    if isinstance(allow, (str, os.PathLike)):
        allow = (allow,)
    roots = [os.path.dirname(os.path.abspath(top_path)), library_dir()] + [os.fspath(p) for p in allow]
    return tuple(dict.fromkeys(os.path.realpath(r) for r in roots if r and "\0" not in r))


def inside(real: str, root: str) -> bool:
    """`real` is `root` or lies in its tree (both real paths)."""
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:      # different drives (Windows)
        return False
