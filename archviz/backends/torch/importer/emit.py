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


def node_line(d: dict, prev: str | None, indent: str = "  ") -> str:
    """One node in flow style; `in:` left out where it is exactly the node before."""
    parts = []
    for k, v in d.items():
        if k == "in":
            if prev is not None and v == [prev]:
                continue
            v = v[0] if len(v) == 1 else v
        parts.append(f"{k}: {scalar(v)}")
    return f"{indent}- {{" + ", ".join(parts) + "}"


def rec_node(r, exprs: dict, renames: dict) -> dict:
    d = {"id": r.id, "op": r.op, "in": [ref((renames.get(s[0], s[0]), s[1])) for s in r.inputs]}
    for k, v in r.attrs.items():
        d[k] = exprs.get((r.id, k), v)
    if r.share:
        d["share"] = r.share
    return d


def spec_text(name: str, doc: str, inputs: dict, recs: list, outputs: dict, params: dict,
              exprs: dict | None = None, blocks: dict | None = None, renames: dict | None = None) -> str:
    """inputs: name -> (shape without batch, dtype or None); recs: the mapped trace records and
    block calls (dicts); outputs: name -> (node, port); params: the spec's params; exprs:
    (node id, attr) -> "${...}"; blocks: name -> block (importer.repeat); renames: {node: call}."""
    exprs, renames = exprs or {}, renames or {}
    lines = ["archviz: 1", f"name: {scalar(name)}", "doc: >", "  " + doc]
    if params:
        lines.append("params: " + scalar(params))
    lines.append("inputs:")
    for k, (shape, dtype) in inputs.items():
        lines.append(f"  {k}: {{shape: {scalar(list(shape))}" + (f", dtype: {dtype}" if dtype else "") + "}")
    if blocks:
        lines.append("blocks:")
        for bname, b in blocks.items():
            lines += [f"  {bname}:", f"    doc: {scalar(b.get('doc', ''))}"]
            if b["uses_i"]:
                lines.append("    params: {i: {type: int, doc: the copy's index}}")
            lines += ["    inputs: [x]", "    nodes:"]
            prev = None
            for d in b["nodes"]:
                lines.append(node_line(d, prev, "      "))
                prev = d["id"]
            lines.append(f"    outputs: {{out: {scalar(b['out'])}}}")
    lines.append("nodes:")
    prev = None
    for r in recs:
        if isinstance(r, dict):         # a repeated block's call
            d = {"id": r["id"], "op": r["op"], "in": [ref((renames.get(r["in"][0], r["in"][0]), r["in"][1]))],
                 "repeat": {"n": r["repeat"], "var": "i"} if r["uses_i"] else r["repeat"]}
            if r["uses_i"]:
                d["i"] = "${i}"
        else:
            d = rec_node(r, exprs, renames)
        lines.append(node_line(d, prev))
        prev = d["id"]
    lines.append("outputs:")
    for k, (node, port) in outputs.items():
        lines.append(f"  {k}: {{from: {scalar(ref((renames.get(node, node), port)))}}}")
    return "\n".join(lines) + "\n"
