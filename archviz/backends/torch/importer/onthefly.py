"""A torch TARGET where a command takes a spec (`archviz summary my_net.py:build --input
image=3x224x224`): imported on the fly, nothing written."""
from __future__ import annotations

import os
import re

_TARGET = re.compile(r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*$")


def is_target(spec: str) -> bool:
    """file.py:callable or package.module:callable that is not an existing file."""
    if not isinstance(spec, str) or os.path.exists(spec) or not _TARGET.match(spec):
        return False
    where = spec.rpartition(":")[0]
    return where.endswith(".py") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", where) is not None


def load(target: str, inputs: dict, kwargs: dict, batch: int, overrides: dict | None = None):
    """The analysed Model of a torch target, as `archviz.load` gives for a spec."""
    import torch
    from archviz.backends.torch.importer import import_text
    from archviz.backends.torch.importer.loadtext import load_text
    from archviz.backends.torch.importer.target import build, find
    model = build(find(target), kwargs)
    tb = max(batch, 2)
    xs = {k: torch.empty((tb, *s), dtype=getattr(torch, d), device="meta") for k, (s, d) in inputs.items()}
    name = target.rpartition(":")[2].rpartition(".")[2]
    return load_text(import_text(model, xs, name), batch, name, overrides)
