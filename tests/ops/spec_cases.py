"""Helpers for tests that run one small spec through the whole pipeline (load, schema,
shapes, costs) and compare the outcome with torch: the spec text is written as YAML, so
values such as ``.inf`` and ``${15/11}`` reach archviz exactly as a user writes them."""
from __future__ import annotations

import itertools
import os
from fractions import Fraction

import archviz
from archviz.errors import ArchvizError
from tests.scratch import scratch_dir

_DIR = scratch_dir("archviz-ops-")
_COUNT = itertools.count()


class Raw(str):
    """YAML text written as is (``Raw(".inf")``)."""


def _yaml(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, Fraction):         # exact, as an expression
        return f'"${{{v.numerator}/{v.denominator}}}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    if isinstance(v, dict):             # a sub-network (a mixture of experts' expert)
        return "{" + ", ".join(f"{k}: {_yaml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return f'"{v}"' if v.startswith("${") else repr(v)
    return repr(v)


def spec_text(nodes: list[dict], shape, name: str = "t") -> str:
    """A spec over one input `x` of `shape` (batch left out) with `nodes` chained."""
    lines = ["archviz: 1", f"name: {name}", "inputs:", f"  x: {{shape: {_yaml(list(shape))}}}", "nodes:"]
    for i, n in enumerate(nodes):
        body = ", ".join(f"{k}: {_yaml(v)}" for k, v in n.items())
        lines.append(f"  - {{id: n{i}, {body}}}")
    return "\n".join(lines) + "\n"


def load_text(text: str, batch: int = 1):
    path = os.path.join(_DIR, f"t{next(_COUNT)}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return archviz.load(path, batch=batch)


def load_nodes(nodes, shape, batch: int = 1):
    return load_text(spec_text(nodes, shape), batch=batch)


def outcome(nodes, shape, batch: int = 1):
    """('ok', model) or ('error', ArchvizError)."""
    try:
        return "ok", load_nodes(nodes, shape, batch)
    except ArchvizError as e:
        return "error", e
