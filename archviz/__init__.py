"""archviz: exact static analysis, explanation and diagrams of neural-network
architectures described in YAML specs.

    >>> import archviz
    >>> m = archviz.load("specs/resnet18.yaml", batch=1)
    >>> m.totals["params"]
    11689512
"""
from __future__ import annotations

__version__ = "0.1.0"


def load(path: str, batch: int = 1, dtype: str = "float32", **params):
    """Compile and analyse a spec. Keyword arguments override the spec's `params`."""
    from archviz.model import DTYPE_BYTES, Model
    from archviz.passes import analyse
    from archviz.spec import compile_spec
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {', '.join(DTYPE_BYTES)}")
    g = compile_spec(str(path), overrides=params, batch=batch)
    analyse(g)
    return Model(g, batch=batch, dtype=dtype)


def to_torch(model, **kw):
    """Lower an analysed model to a torch.fx.GraphModule (needs torch)."""
    from archviz.backends.torch.lower import to_torch as _to_torch
    return _to_torch(model, **kw)


__all__ = ["load", "to_torch", "__version__"]
