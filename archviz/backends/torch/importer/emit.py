"""The imported spec as text: YAML a person reads and edits, in the library's style (one node
per line, flow mappings, `in:` left out where a node reads the one before it)."""
from __future__ import annotations

import re

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def scalar(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return {True: ".inf", False: "-.inf"}[v > 0] if v == v else ".nan"
        r = repr(v)
        if "e" in r and "." not in r.split("e")[0]:         # YAML 1.1 floats need a dot: 1e-05 → 1.0e-05
            m, e = r.split("e")
            r = f"{m}.0e{e if e[0] in '+-' else '+' + e}"
        elif "e" in r and r.split("e")[1][0] not in "+-":
            m, e = r.split("e")
            r = f"{m}e+{e}"
        return r
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {scalar(x)}" for k, x in v.items()) + "}"
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ref(src) -> str:
    node, port = src
    return node if port == "out" else f"{node}.{port}"


def spec_text(name: str, doc: str, inputs: dict, recs: list, outputs: dict, params: dict,
              exprs: dict | None = None) -> str:
    """inputs: name -> (shape without batch, dtype or None); recs: the mapped trace records;
    outputs: name -> (node, port); params: the spec's params; exprs: (node id, attr) -> "${...}"."""
    exprs = exprs or {}
    lines = ["archviz: 1", f"name: {scalar(name)}", "doc: >"]
    lines += ["  " + doc]
    if params:
        lines.append("params: " + scalar(params))
    lines.append("inputs:")
    for k, (shape, dtype) in inputs.items():
        lines.append(f"  {k}: {{shape: {scalar(list(shape))}" + (f", dtype: {dtype}" if dtype else "") + "}")
    lines.append("nodes:")
    prev = None
    for r in recs:
        parts = [f"id: {r.id}", f"op: {r.op}"]
        if not (len(r.inputs) == 1 and prev is not None and r.inputs[0] == (prev, "out")):
            ins = [ref(s) for s in r.inputs]
            parts.append("in: " + (scalar(ins[0]) if len(ins) == 1 else scalar(ins)))
        for k, v in r.attrs.items():
            parts.append(f"{k}: " + (scalar(exprs[(r.id, k)]) if (r.id, k) in exprs else scalar(v)))
        if r.share:
            parts.append("share: " + scalar(r.share))
        lines.append("  - {" + ", ".join(parts) + "}")
        prev = r.id
    lines.append("outputs:")
    for k, src in outputs.items():
        lines.append(f"  {k}: {{from: {scalar(ref(src))}}}")
    return "\n".join(lines) + "\n"
