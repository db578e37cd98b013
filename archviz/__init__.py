"""archviz: exact static analysis, explanation and diagrams of neural-network
architectures described in YAML specs.

    >>> import archviz
    >>> m = archviz.load("specs/resnet18.yaml", batch=1)
    >>> m.totals["params"]
    11689512
"""
from __future__ import annotations

import os

__version__ = "0.1.0"


def load(path: str, batch: int = 1, dtype: str = "float32", allow_import=None, **params):
    """Compile and analyse a spec: a path, or the name of a bundled spec (`"resnet18"`;
    a local file of that name wins). Keyword arguments override the spec's `params`.

    Imports may read the spec's own folder tree and the bundled library; `allow_import`
    (a path or a list of paths, folders or files) allows more."""
    return _load(path, batch, dtype, params, allow_import)


def _load(path, batch: int = 1, dtype: str = "float32", overrides: dict | None = None, allow_import=None):
    """load() with the overrides as a dict: a param may be named `batch`, `dtype` or
    `allow_import` (the CLI's -p batch=3 is such a param, not the batch size)."""
    from archviz.model import DTYPE_BYTES, Model
    from archviz.passes import analyse
    from archviz.spec import compile_spec
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPE_BYTES)}")
    from archviz.library import missing_hint, resolve
    from archviz.codes import E
    from archviz.errors import SpecError
    spec = resolve(str(path))
    with _collector_paused():
        try:
            g = compile_spec(spec, overrides=overrides, batch=batch, allow_import=allow_import)
        except SpecError as e:      # a name that is neither a file nor a bundled spec: say which are close
            if e.code == E.UNREADABLE_SPEC and e.hint is None and not os.path.exists(spec):
                e.hint = missing_hint(str(path))
            raise
        analyse(g)
    return Model(g, batch=batch, dtype=dtype)


class _collector_paused:
    """Python's cyclic garbage collector paused while a block runs (restored after, as it
    was). Compiling and analysing build long-lived objects, a dozen per layer: each
    collection of the oldest generation walks all of them, which took 40-50 % of the time
    on a 10,000-layer graph (issue 17). Nothing is lost: garbage made meanwhile is
    collected at the next collection after the block."""

    def __enter__(self):
        import gc
        self.was = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        import gc
        if self.was:
            gc.enable()
        return False


def to_torch(model, **kw):
    """Lower an analysed model to a torch.fx.GraphModule (needs torch)."""
    from archviz.backends.torch.lower import to_torch as _to_torch
    return _to_torch(model, **kw)


def from_torch(module, example_inputs, name: str | None = None, batch: int | None = None):
    """Import a torch module as an analysed Model (needs torch): traced once on the meta device
    (no weights allocated), each module and function mapped to an archviz op. `example_inputs`:
    a tensor, a tuple of them (named after forward's parameters) or a dict {name: tensor}; their
    first axis is the batch. The spec text is `archviz.to_spec(model)`."""
    from archviz.backends.torch.importer import from_torch as _from_torch
    return _from_torch(module, example_inputs, name=name, batch=batch)


def to_spec(model) -> str:
    """The spec text (YAML) of a model from `from_torch` (or of one loaded from a file); needs no torch."""
    text = getattr(model, "spec_text", None)
    if text is None and model.graph.source and os.path.isfile(model.graph.source):
        with open(model.graph.source, encoding="utf-8") as f:
            text = f.read()
    if text is None:
        from archviz.codes import E
        from archviz.errors import TorchImportError
        raise TorchImportError("this model has no spec text (it was neither imported nor loaded from a file)",
                               code=E.TORCH_IMPORT)
    return text


__all__ = ["load", "to_torch", "from_torch", "to_spec", "__version__"]
