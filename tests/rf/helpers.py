"""Helpers for the receptive-field tests: small specs written from Python lists."""
from __future__ import annotations

import itertools
import json
import os

import archviz
from tests.scratch import scratch_dir

_DIR = scratch_dir("archviz-rf-")
_COUNT = itertools.count()


def model_of(nodes, shape=(2, 24, 24), batch=1, inputs=None, **params):
    """Load a spec made of `nodes` over one input `x` of `shape` (without batch). JSON is YAML."""
    spec = {"archviz": 1, "name": "t", "inputs": inputs or {"x": {"shape": list(shape)}}, "nodes": nodes}
    path = os.path.join(_DIR, f"t{next(_COUNT)}.yaml")
    with open(path, "w") as f:
        f.write(json.dumps(spec))
    return archviz.load(path, batch=batch, **params)
