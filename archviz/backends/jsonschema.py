"""A JSON Schema (draft-07) of spec files, generated from the op registry, for editors with a
YAML language server (completion, hover docs, checking as you type):

    # yaml-language-server: $schema=<path or URL of archviz.schema.json>

Looser than archviz's own checks, by construction (``archviz validate`` is the authority):

- a `${...}` expression is accepted wherever a value is (its value is not computed);
- a block call (`op:` naming a block of the file or an import, `ns.block`) takes any keys:
  block params are checked by archviz only;
- references (`in:`, `from:`, `bypass:`) are strings, not resolved; shapes are not inferred,
  so a wrong channel count or size is archviz's error, never the schema's;
- archviz's limits (file size, nesting, layers) and YAML rules (duplicate keys, anchors,
  `yes`/`no` as strings) are not expressible here;
- ids are checked as identifiers only where they are plain strings.
"""
from __future__ import annotations

import json

from archviz.ops import registry
from archviz.ops.base import REQUIRED

SCHEMA_ID = "https://archviz.invalid/spec.schema.json"   # a name, not a location (no network)
EXPR = {"type": "string", "pattern": r"\$\{", "description": "a ${...} expression (computed by archviz)"}
ID = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}


def _or_expr(s: dict) -> dict:
    return {"anyOf": [s, {"$ref": "#/definitions/expr"}]}


def _ints(n: int, lo: int | None, opt: bool = False) -> dict:
    one = {"type": "integer"} if lo is None else {"type": "integer", "minimum": lo}
    alts = [one, {"type": "array", "items": _or_expr(one), "minItems": n, "maxItems": n}]
    if opt:
        alts.append({"type": "null"})
    return {"anyOf": alts + [{"$ref": "#/definitions/expr"}]}


def attr_schema(attr) -> dict:
    """The schema of one attribute value, from its type in the op registry."""
    t = attr.type
    if t in ("int", "pos_int", "nonneg_int"):
        s = {"type": "integer"}
        lo = {"int": None, "pos_int": 1, "nonneg_int": 0}[t]
        if lo is not None:
            s["minimum"] = lo
        if attr.max is not None:
            s["maximum"] = attr.max
        out = _or_expr(s)
    elif t == "float":
        out = _or_expr({"type": "number"})
    elif t == "bool":
        out = _or_expr({"type": "boolean"})
    elif t == "str":
        out = _or_expr({"type": "string", "enum": list(attr.choices)} if attr.choices else {"type": "string"})
    elif t in ("int2", "pos_int2", "int1", "int2_opt"):
        n = 1 if t == "int1" else 2
        lo = 1 if t in ("pos_int2", "int1", "int2_opt") else 0
        out = _ints(n, lo, opt=(t == "int2_opt"))
    elif t in ("padding2", "padding1"):
        n = 1 if t == "padding1" else 2
        out = _ints(n, 0)
        out["anyOf"].insert(0, {"type": "string", "enum": ["same", "valid"]})
    elif t == "ints":
        out = _or_expr({"type": "array", "items": _or_expr({"type": "integer"})})
    elif t == "axes":
        out = {"anyOf": [{"type": "integer"}, {"type": "array", "items": _or_expr({"type": "integer"}), "minItems": 1},
                         {"$ref": "#/definitions/expr"}]}
    elif t == "scale2":
        pos = {"type": "number", "exclusiveMinimum": 0}
        out = {"anyOf": [pos, {"type": "array", "items": _or_expr(pos), "minItems": 2, "maxItems": 2},
                         {"$ref": "#/definitions/expr"}]}
    elif t == "block":
        out = {"type": "object", "required": ["op"], "properties": {"op": {"type": "string"}}}
    elif t == "any":
        out = {}
    else:       # a new attribute type must be described here: never silently 'anything'
        raise ValueError(f"attribute type {t!r} has no JSON Schema rule (archviz/backends/jsonschema.py)")
    desc = attr.doc or ""
    if attr.default is not REQUIRED:
        desc = f"{desc} (default: {json.dumps(attr.default) if not isinstance(attr.default, tuple) else list(attr.default)})"
    if desc:
        out = {**out, "description": desc.strip()}
    return out


def node_ops() -> list[str]:
    """The ops a node may name: all but the graph input's (it takes no inputs; an input is
    declared under `inputs:`), asked of each op, not decided by its name."""
    return sorted(n for n, op in registry.items() if op.max_inputs != 0)


def _node_keys() -> dict:
    from archviz.spec.files import NODE_KEYS
    ref = {"type": "string", "description": "a node: id, id.port, id[k] or id[k].port"}
    keys = {
        "id": {"anyOf": [ID, {"$ref": "#/definitions/expr"}], "description": "the node's name (an identifier)"},
        "op": {"type": "string", "description": "an op (`archviz ops`), a block of this file, or ns.block"},
        "in": {"description": "inputs: omitted = the previous node; a list = ordered; a mapping = named ports",
               "anyOf": [ref, {"type": "array", "items": ref}, {"type": "object", "additionalProperties": ref}]},
        "repeat": {"description": "n chained copies: N, {n: N, var: NAME}, or one copy per row of a table: "
                                  "{rows: [{name: value, ...}, ...], var: NAME}",
                   "anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/definitions/expr"},
                             {"type": "object", "properties": {"n": _or_expr({"type": "integer", "minimum": 0}),
                                                               "var": ID},
                              "required": ["n"], "additionalProperties": False},
                             {"type": "object", "properties": {"rows": _or_expr({"type": "array",
                                                                                 "items": {"type": "object"}}),
                                                               "var": ID},
                              "required": ["rows"], "additionalProperties": False}]},
        "when": {"description": "false = bypassed", "anyOf": [{"type": "boolean"}, {"$ref": "#/definitions/expr"}]},
        "bypass": {"type": "string", "description": "the input a bypassed node passes on"},
        "expect": {"$ref": "#/definitions/shape", "description": "the output shape, without the batch"},
        "doc": {"type": "string"},
        "frozen": {"anyOf": [{"type": "boolean"}, {"$ref": "#/definitions/expr"}],
                   "description": "non-trainable parameters"},
        "share": {"description": "weights of another node used as this node's own: NODE (all, by name), or "
                            "{PARAM: NODE} / {PARAM: NODE.PARAM}; false shares nothing",
                  "anyOf": [{"type": "string"}, {"const": False},
                            {"type": "object", "minProperties": 1,
                             "additionalProperties": {"anyOf": [{"type": "string"}, {"const": False}]}}]},
    }
    assert set(keys) == set(NODE_KEYS), "the schema's node keys drifted from archviz.spec.compile.NODE_KEYS"
    return keys


def _node() -> dict:
    keys = _node_keys()
    rules = []
    for name in node_ops():
        op = registry[name]
        props = {**{k: True for k in keys}, **{k: attr_schema(a) for k, a in op.attrs.items()}}
        then = {"properties": props, "additionalProperties": False}
        req = [k for k, a in op.attrs.items() if a.required]
        if req:
            then["required"] = req
        rules.append({"if": {"properties": {"op": {"const": name}}, "required": ["op"]}, "then": then})
    op_prop = {"description": keys["op"]["description"],
               "anyOf": [{"enum": node_ops()}, {"type": "string", "pattern": r"^[A-Za-z_][\w.]*$"}]}
    return {"type": "object", "required": ["id"], "properties": {**keys, "op": op_prop}, "allOf": rules}


def _defaults() -> dict:
    props = {}
    for name in node_ops():
        if not registry[name].attrs:
            continue
        props[name] = {"type": "object", "additionalProperties": False,
                       "properties": {k: attr_schema(a) for k, a in registry[name].attrs.items()}}
    return {"type": "object", "description": "attribute defaults per op: {conv2d: {bias: false}}",
            "properties": props, "additionalProperties": {"type": "object"}}


def _param_defs() -> dict:
    from archviz.spec.files import _PARAM_TYPES
    return {"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": False,
        "properties": {"type": {"enum": list(_PARAM_TYPES)}, "default": {}, "doc": {"type": "string"}}}}


def spec_schema() -> dict:
    """The JSON Schema of a spec file (also of a file of blocks that others import)."""
    from archviz.spec.files import BLOCK_KEYS, FORMAT_VERSION, TOP_KEYS
    from archviz.spec.losses import LOSSES
    nodes = {"type": "array", "items": {"$ref": "#/definitions/node"}}
    outputs = {"type": "object", "additionalProperties": {"anyOf": [
        {"type": "string"},
        {"type": "object", "properties": {"from": {"type": "string"}, "expect": {"$ref": "#/definitions/shape"},
                                          "doc": {"type": "string"}},
         "required": ["from"], "additionalProperties": False}]}}
    block = {"type": "object", "additionalProperties": False, "properties": {
        "params": _param_defs(), "inputs": {"type": "array", "items": ID}, "nodes": nodes,
        "outputs": {"anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]},
        "defaults": {"$ref": "#/definitions/defaults"}, "doc": {"type": "string"}}}
    assert set(block["properties"]) == set(BLOCK_KEYS)
    top = {
        "archviz": {"const": FORMAT_VERSION, "description": "the spec format version"},
        "name": {"type": "string"},
        "doc": {"type": "string"},
        "params": {"type": "object", "description": "the spec's variables, used as ${name}; -p NAME=VALUE overrides"},
        "inputs": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["shape"], "additionalProperties": False,
            "properties": {"shape": {"$ref": "#/definitions/shape",
                                     "description": "without the batch dimension: (C, H, W) or (T, F)"},
                           "doc": {"type": "string"}, "dtype": {"type": "string"}}}},
        "blocks": {"type": "object", "additionalProperties": block},
        "nodes": nodes,
        "outputs": outputs,
        "imports": {"type": "array", "items": {"type": "object", "required": ["path", "as"],
                                               "additionalProperties": False,
                                               "properties": {"path": {"type": "string"}, "as": ID}}},
        "defaults": {"$ref": "#/definitions/defaults"},
        "loss": {"enum": list(LOSSES)},
    }
    assert set(top) == set(TOP_KEYS), "the schema's top-level keys drifted from archviz.spec.files.TOP_KEYS"
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "archviz spec",
        "description": "A neural-network architecture for archviz (generated by `archviz schema`). Looser than "
                       "`archviz validate`: ${...} expressions are accepted anywhere and not computed, block "
                       "calls take any keys, references and shapes are not checked.",
        "type": "object",
        "required": ["archviz"],
        "additionalProperties": False,
        "properties": top,
        "definitions": {
            "expr": EXPR,
            "shape": {"anyOf": [{"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1},
                                                                      {"type": "null"},
                                                                      {"$ref": "#/definitions/expr"}]}},
                                {"$ref": "#/definitions/expr"}]},
            "node": _node(),
            "defaults": _defaults(),
        },
    }


def schema_text() -> str:
    # ASCII (\u escapes): the same bytes on every console and in every editor
    return json.dumps(spec_schema(), indent=1, ensure_ascii=True) + "\n"
