"""Compiling an imported spec's text (the normal pipeline, through a private temporary file)."""
from __future__ import annotations

import os
import tempfile

from archviz.codes import E
from archviz.errors import ArchvizError, TorchImportError


def load_text(text: str, batch: int = 1, name: str = "imported", overrides: dict | None = None):
    """Compile and analyse spec text (written to a private temporary file); `overrides` are
    -p's params."""
    from archviz import _load
    from archviz.errors import MultipleErrors
    with tempfile.TemporaryDirectory(prefix="archviz-import-") as d:
        path = os.path.join(d, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            return _load(path, batch, overrides=overrides)
        except ArchvizError as e:
            if overrides:           # a -p the spec cannot take is the user's, not the importer's
                raise
            # otherwise the importer wrote a spec that does not compile: archviz's bug
            errs = e.errors if isinstance(e, MultipleErrors) else [e]
            raise TorchImportError("the imported spec does not compile (a bug in archviz's importer: please "
                                   "report it with the model)", code=E.TORCH_IMPORT,
                                   notes=[str(x).replace(path, "spec") for x in errs[:10]]) from None
