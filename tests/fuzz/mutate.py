"""A spec mutator for fuzzing archviz: hostile and careless variants of the bundled specs.

A case is a bundled spec (``specs/*.yaml``) that is run, one file of it that is mutated
(the spec itself or a block file it imports from ``specs/blocks/``), and sometimes a
hostile ``-p`` override. Mutations are of three layers:

* structural, on the YAML tree: delete / duplicate / swap / rename keys and list items,
  change a value's type, interesting numbers (0, -1, huge, float, inf, nan), deep nesting,
  unknown keys, broken references, ops swapped for others of the registry with attributes
  drawn from their schema, repeat / when / expect / outputs / imports / defaults / blocks /
  params / inputs mutations;
* expressions: the text inside ``${...}`` mutated (names, numbers, operators, indices)
  or replaced with hostile content (huge results, forbidden constructs, deep nesting);
* text, on the serialised bytes: byte flips, truncation, tabs, non-UTF-8 bytes, NUL, BOM,
  UTF-16, CRLF, anchors / aliases / tags / merge keys, duplicate keys, deep flow nesting.

Everything is deterministic given the seed and the case index (``make_case``), or given
any ``random.Random`` (``mutate_case``), so hypothesis can drive the same mutator -- and
given the op registry: a case that draws an op can change when the registry does. No
value taken from a table here or from the registry enters a tree uncopied (a later
mutation edits trees in place: a shared list would leak into later cases).

The mutator reads the op registry (names, attribute schemas, input ports, samples) so
that a new op is fuzzed without touching this file. It parses YAML with its own small
loader that follows the spec language's rules (only true/false are booleans, ``1e-4`` is
a number), so a tree that is not mutated dumps back to an equivalent spec.
"""
from __future__ import annotations

import copy
import functools
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

# --------------------------------------------------------------------------------------
# YAML in and out, with the spec language's scalar rules
# --------------------------------------------------------------------------------------
_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")
_HEX = re.compile(r"^0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"^[-+]?(\d[\d_]*\.\d*|\.\d+|\d[\d_]*)([eE][-+]?\d+)?$")
_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _scalar(node):
    t = node.value
    if node.style:
        return t
    if t in ("", "~", "null", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    try:
        if _INT.match(t):
            return int(t.replace("_", ""))
        if _HEX.match(t):
            return int(t, 16)
    except ValueError:
        return t
    if _FLOAT.match(t):
        return float(t.replace("_", ""))
    if t.lower() in _SPECIAL:
        return _SPECIAL[t.lower()]
    return t


def _build(node):
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(n) for n in node.value]
    out = {}
    for k, v in node.value:
        key = _build(k)
        if isinstance(key, (list, dict)):
            key = str(key)
        out[key] = _build(v)
    return out


def load_tree(text: str):
    """The plain Python tree of a spec text (dicts, lists, scalars)."""
    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return None if node is None else _build(node)


class _Dumper(yaml.SafeDumper):
    pass


def _repr_str(dumper, s):
    # quote a string that the spec loader would read as something else ("08", "1e-4", "yes")
    plain = _scalar(yaml.ScalarNode("tag:yaml.org,2002:str", s))
    style = None
    if plain is not s and not isinstance(plain, str):
        style = '"'
    elif s.lower() in ("yes", "no", "on", "off", "y", "n", "=", "<<"):
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)


def _repr_float(dumper, f):
    if math.isnan(f):
        return dumper.represent_scalar("tag:yaml.org,2002:float", ".nan")
    if math.isinf(f):
        return dumper.represent_scalar("tag:yaml.org,2002:float", ".inf" if f > 0 else "-.inf")
    r = repr(f)
    if "e" in r and "." not in r.split("e")[0]:  # YAML 1.1 (the dumper's resolver) wants a dot
        r = r.replace("e", ".0e", 1)
    return dumper.represent_scalar("tag:yaml.org,2002:float", r)


_Dumper.add_representer(str, _repr_str)
_Dumper.add_representer(float, _repr_float)


def dump_tree(tree) -> str:
    """YAML text of a tree: flow style for leaf collections, like the bundled specs."""
    deep = []

    def repr_deep(dumper, d):
        deep.append(d.text)
        return dumper.represent_scalar("tag:yaml.org,2002:str", f"FUZZDEEP{len(deep) - 1}X")

    class D(_Dumper):
        pass

    D.add_representer(Deep, repr_deep)
    text = yaml.dump(tree, Dumper=D, default_flow_style=None, sort_keys=False,
                     allow_unicode=True, width=1 << 20)
    for i, d in enumerate(deep):
        text = text.replace(f"FUZZDEEP{i}X", d, 1)
    return text


# --------------------------------------------------------------------------------------
# what is being mutated
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _bundled():
    out = {}
    for p in sorted(SPECS.glob("*.yaml")) + sorted((SPECS / "blocks").glob("*.yaml")):
        out[p.relative_to(SPECS).as_posix()] = p.read_bytes()
    return out


def bundled_files() -> dict[str, bytes]:
    """Every bundled spec file, by path relative to specs/."""
    return dict(_bundled())


@functools.lru_cache(maxsize=64)
def _tree_of(data: bytes):
    return load_tree(data.decode("utf-8"))


def targets() -> list[str]:
    """Specs that are run (the top-level ones) and block files (run directly, rarely)."""
    return [k for k in bundled_files() if "/" not in k]


def imports_of(text: bytes) -> list[str]:
    try:
        tree = _tree_of(text)
    except Exception:
        return []
    imps = tree.get("imports") if isinstance(tree, dict) else None
    return [i["path"] for i in imps or [] if isinstance(i, dict) and isinstance(i.get("path"), str)]


@dataclass
class Case:
    """One fuzz case: the files of a spec folder (one of them mutated), the spec to run,
    extra command-line options, and the log of the mutations applied."""
    target: str                       # path relative to the case folder of the spec to run
    mutated: str                      # the file that was mutated
    files: dict[str, bytes]           # path relative to the case folder -> bytes
    options: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    seed: int | None = None
    index: int | None = None

    @property
    def text(self) -> bytes:
        return self.files[self.mutated]


SENTINEL = "FUZZ-SENTINEL-0d1b5e: this file is not a spec and must never be echoed"
SPECIAL_FILES = {"sentinel.txt": (SENTINEL + "\n\t: [ {\n").encode()}


def _ops():
    try:
        from archviz.ops import registry
    except Exception:  # pragma: no cover - the registry moved: fuzz without it
        return {}
    return dict(registry)


# --------------------------------------------------------------------------------------
# interesting values
# --------------------------------------------------------------------------------------
INTS = [0, 1, -1, 2, -2, 3, 7, 8, 16, 64, 255, 256, 1000, 4096, 65535, 65536, 2 ** 31 - 1, 2 ** 31,
        -2 ** 31, 2 ** 32, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63, 10 ** 9, 10 ** 12,
        10 ** 18, 10 ** 30, 10 ** 100, -10 ** 9, int("9" * 300)]
FLOATS = [0.0, -0.0, 0.5, 1.5, 2.0, 3.0, -1.5, 1e-300, 5e-324, 1e308, 1.7976931348623157e308, math.inf,
          -math.inf, math.nan, 0.1, 1 / 3, 2.5e9]
STRINGS = ["", " ", "x", "a b", "same", "valid", "nearest", "bilinear", "relu", "none", "tanh", "yes",
           "null", "true", "~", "0", "3", "1e3", "0x10", "-1", "[3, 3]", "{a: 1}", "${", "}", "$",
           "${}", "\x00", "\t", "\n", "é", "\u202e", "\u200b", "\ud800x", "💥", "x" * 10000,
           "../" * 20 + "etc/passwd", "%s%s%s%n", "{0}{1}", "\\", "'\"", "in", "out", "id", "op",
           "archviz", "nodes", "__class__", "__init__", "self"]


def interesting_scalar(rng: random.Random):
    k = rng.random()
    if k < 0.4:
        return rng.choice(INTS)
    if k < 0.55:
        return rng.choice(FLOATS)
    if k < 0.65:
        return rng.choice([True, False, None])
    return rng.choice(STRINGS)


def random_value(rng: random.Random, depth: int = 0):
    """Any value: scalar, list or mapping."""
    k = rng.random()
    if depth > 2 or k < 0.6:
        return interesting_scalar(rng)
    if k < 0.85:
        return [random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 3, 4, 5]))]
    return {rng.choice(VOCAB): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


class Deep:
    """A deeply nested value, kept as text: the YAML dumper (and the walkers here) recurse,
    so it is written into the dumped text in place of a placeholder."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return f"<deep {len(self.text)} chars>"


def nested(rng: random.Random, depth: int | None = None) -> Deep:
    depth = depth or rng.choice([10, 50, 100, 500, 900, 2000, 10000])
    leaf = rng.choice(["1", "x", "null", '"${1}"'])
    kind = rng.choice(["list", "dict", "mixed"])
    opens, closes = [], []
    for i in range(depth):
        if kind == "list" or (kind == "mixed" and i % 2):
            opens.append("["), closes.append("]")
        else:
            opens.append("{a: "), closes.append("}")
    return Deep("".join(opens) + leaf + "".join(reversed(closes)))


VOCAB = ["archviz", "name", "doc", "params", "inputs", "blocks", "nodes", "outputs", "imports",
         "defaults", "loss", "id", "op", "in", "repeat", "when", "expect", "frozen", "from", "shape",
         "dtype", "n", "var", "type", "default", "path", "as", "out", "kernel", "stride", "padding",
         "dilation", "groups", "bias", "scale", "size", "mode", "heads", "num_layers", "dims",
         "axis", "x", "skip", "query", "key", "value", "h0", "c0", "bypass", "outptus", "kernal",
         "Nodes", "ID", "op ", " id", "in\x00", "é", "1", "true", "null"]

HOSTILE_EXPR = [
    "'%2000000000d' % 1", "'%.999999999f' % 1", "'%s' * 10 ** 8", "'a' * 10 ** 9", "'ab' * 2 ** 62",
    "[0] * 10 ** 9", "[[0] * 10 ** 4] * 10 ** 4", "[[[0] * 1000] * 1000] * 1000", "[1, 2] * 2 ** 62",
    "2 ** 10 ** 10", "9 ** 9 ** 9", "10 ** 64", "10 ** 65", "2 ** 64", "2 ** -64", "(-8) ** (1 / 3)",
    "0 ** -1", "2 ** 0.5", "(2 ** 64) ** 64", "(10 ** 64) * (10 ** 64) * (10 ** 64) * (10 ** 64)",
    "1 / 0", "1 // 0", "1 % 0", "0 / 0", "1.0 / 0", "1e308 * 10", "1e400", "-1e400", "1e-400",
    "floor(1e400)", "ceil(-1e400)", "int(1e400)", "int(0.0 / 1)", "floor(1e300 * 1e300 - 1e300 * 1e300)",
    "__import__('os').system('true')", "().__class__.__bases__", "open('/etc/passwd').read()",
    "lambda: 1", "[x for x in [1]]", "{1: 2}", "{1, 2}", "(y := 1)", "f'{1}'", "b'x'", "1j", "...",
    "None", "print(1)", "exec('1')", "getattr(1, 'real')", "(1).real", "'abc'.upper()", "widths[::-1]",
    "widths[10 ** 9]", "widths[-10 ** 9]", "widths['a']", "widths[1.5]", "widths[True]", "widths[2 ** 64]",
    "len(10)", "len([0] * 10 ** 9)", "min()", "max([])", "min([])", "min(1)", "abs('x')", "abs(-2 ** 63)",
    "floor('x')", "ceil(None)", "int('9' * 5000)", "int('x')", "int([1])", "'x' * -1", "'x' + 1", "[1] + 1",
    "[] [0]", "[][0]", "1 == 1 == 1", "1 < 2 < 3", "not widths", "nope", "i", "x", "self", "True + 1",
    "(" * 200 + "1" + ")" * 200, "(" * 5000 + "1" + ")" * 5000, "-" * 5000 + "1", "not " * 3000 + "1",
    "1" + " + 1" * 5000, "[" * 200 + "1" + "]" * 200, "[" * 3000 + "1" + "]" * 3000,
    "a" * 100000, "\x00", "\u202e1", "١", "𝟙", "1 if 1", "1 <", "", " ", "${1}", "}", "{", "1 if 0 else 2 if 1 else 3",
    "0.1 + 0.2", "10 ** 64 / 3", "1 / 3 * 3", "-(2 ** 63)", "2 ** 63", "-0.0", "1e-5", "True", "False",
    "'x' if 1 else 'y'", "[1, 2, 3][-1]", "len('abc')", "max(1, 2, 3)", "min([1], [2])", "abs(-3) // 2",
    # the functions of spec/exprfuncs.py: exact answers, domain errors, huge arguments
    "round(1, 10 ** 9)", "round(3, -10 ** 9)", "round(1 / 3, 10 ** 6)", "round(1 / 2, 2 ** 62)", "round(2.5)",
    "round(1e308 * 10)", "round(0.0 / 1, -1)", "round(7, 1.5)", "round('x')", "sqrt(-1)", "sqrt(64)",
    "sqrt(2 ** 64)", "sqrt(10 ** 64 / 3)", "sqrt(1 / 4)", "log(0)", "log(-1, 2)", "log(8, 1)", "log(8, 1 / 2)",
    "log(10 ** 64, 10)", "log(1000, 10)", "log2(1 / 8)", "log2(0.0)", "log(2, 2.0)", "exp(10 ** 6)",
    "exp(-10 ** 6)", "exp(710)", "exp(0)", "exp(1 / 3)", "round(log(1000, 10))", "int(sqrt(49))",
    # shape reads: a node's shape while the spec compiles (spec/shapes.py)
    "shape(x)", "shape(x)[0]", "shape(x)[-1] // 2", "shape(nope)", "shape('x')", "shape('x.0')", "shape(1)",
    "shape()", "shape(x, x)", "shape(x)[99]", "shape(image)[0]", "shape(conv1)[0]", "shape(self)", "len(shape(x))",
]
EXPR_FUNCS = ["min", "max", "abs", "floor", "ceil", "round", "int", "len", "sqrt", "log", "log2", "exp", "shape"]
EXPR_NAMES = ["i", "j", "x", "out", "size", "widths", "depths", "num_classes", "stride", "proj", "width",
              *EXPR_FUNCS, "True", "None", "nope", "__builtins__"]
EXPR_OPS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">", "and", "or", "if 1 else", "@", "&",
            "<<", "in", "is"]


# --------------------------------------------------------------------------------------
# walking the tree
# --------------------------------------------------------------------------------------
def sites(tree, path=()):
    """Every (parent, key, value, path) in the tree, parents before children."""
    out = []

    def walk(v, p):
        if isinstance(v, dict):
            for k in list(v):
                out.append((v, k, v[k], p + (k,)))
                walk(v[k], p + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                out.append((v, i, x, p + (i,)))
                walk(x, p + (i,))

    walk(tree, path)
    return out


def node_lists(tree):
    """Lists of nodes: the spec's and every block's."""
    out = []
    if isinstance(tree, dict):
        if isinstance(tree.get("nodes"), list):
            out.append(("nodes", tree["nodes"]))
        blocks = tree.get("blocks")
        if isinstance(blocks, dict):
            for b, d in blocks.items():
                if isinstance(d, dict) and isinstance(d.get("nodes"), list):
                    out.append((f"blocks.{b}.nodes", d["nodes"]))
    return out


def all_nodes(tree):
    return [(where, i, nd) for where, lst in node_lists(tree) for i, nd in enumerate(lst)
            if isinstance(nd, dict)]


def _ids(lst):
    return [nd.get("id") for nd in lst if isinstance(nd, dict) and isinstance(nd.get("id"), str)]


def _fmt(p) -> str:
    return ".".join(str(x) for x in p)


# --------------------------------------------------------------------------------------
# the mutation operators: each takes (tree, rng, ctx) and returns a description, or None
# when it does not apply; it mutates the tree in place
# --------------------------------------------------------------------------------------
class Ctx:
    def __init__(self, case_name: str, all_files: dict):
        self.name = case_name
        self.files = all_files
        self.ops = _ops()


def op_delete_key(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[0], dict)]
    if not s:
        return None
    parent, k, _, p = rng.choice(s)
    del parent[k]
    return f"delete key {_fmt(p)}"


def op_delete_item(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[0], list)]
    if not s:
        return None
    parent, i, _, p = rng.choice(s)
    if i < len(parent):
        del parent[i]
    return f"delete item {_fmt(p)}"


def op_duplicate_item(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[0], list)]
    if not s:
        return None
    parent, i, v, p = rng.choice(s)
    parent.insert(rng.randint(0, len(parent)), copy.deepcopy(v))
    return f"duplicate item {_fmt(p)}"


def op_swap_items(t, rng, ctx):
    lists = [v for _, _, v, _ in sites(t) if isinstance(v, list) and len(v) > 1]
    if isinstance(t, list) and len(t) > 1:
        lists.append(t)
    if not lists:
        return None
    lst = rng.choice(lists)
    i, j = rng.sample(range(len(lst)), 2)
    lst[i], lst[j] = lst[j], lst[i]
    return f"swap items {i} and {j} of a list of {len(lst)}"


def op_rename_key(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[0], dict)]
    if not s:
        return None
    parent, k, v, p = rng.choice(s)
    kind = rng.random()
    if kind < 0.4 and isinstance(k, str) and len(k) > 1:
        i = rng.randrange(len(k))
        new = k[:i] + k[i + 1:] if rng.random() < 0.5 else k[:i] + rng.choice("aeioxz_") + k[i:]
    elif kind < 0.8:
        new = rng.choice(VOCAB)
    else:
        new = rng.choice([1, 0, True, None, -1, 1.5, "", " " + str(k), str(k).upper()])
    if new in parent:
        return None
    items = list(parent.items())
    parent.clear()
    for kk, vv in items:
        parent[new if kk == k else kk] = vv
    return f"rename key {_fmt(p)} -> {new!r}"


def op_add_unknown_key(t, rng, ctx):
    s = [v for _, _, v, _ in sites(t) if isinstance(v, dict)] + ([t] if isinstance(t, dict) else [])
    if not s:
        return None
    d = rng.choice(s)
    k = rng.choice(VOCAB)
    if k in d:
        return None
    d[k] = random_value(rng)
    return f"add key {k!r} = {d[k]!r:.60}"


def op_change_type(t, rng, ctx):
    s = sites(t)
    if not s:
        return None
    parent, k, v, p = rng.choice(s)
    conv = [
        lambda v: str(v), lambda v: [v], lambda v: None, lambda v: True, lambda v: False,
        lambda v: {"value": v}, lambda v: len(v) if isinstance(v, (list, dict, str)) else 1,
        lambda v: v[0] if isinstance(v, list) and v else 0, lambda v: float(v) if isinstance(v, int) else 1.0,
        lambda v: list(v) if isinstance(v, (dict, str)) else [v, v],
        lambda v: random_value(rng),
    ]
    new = rng.choice(conv)(v)
    parent[k] = new
    return f"change type {_fmt(p)}: {v!r:.40} -> {new!r:.40}"


def op_number(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[2], (int, float)) and not isinstance(x[2], bool)]
    if not s:
        return None
    parent, k, v, p = rng.choice(s)
    r = rng.random()
    if r < 0.6:
        new = rng.choice(INTS + FLOATS)
    elif r < 0.8:
        new = v + rng.choice([-2, -1, 1, 2]) if isinstance(v, int) else -v
    else:
        new = v * rng.choice([0, -1, 2, 1000, 10 ** 6]) if isinstance(v, int) else v * 1e300
    parent[k] = new
    return f"number {_fmt(p)}: {v!r} -> {new!r:.40}"


def op_deep_nesting(t, rng, ctx):
    s = sites(t)
    if not s:
        return None
    parent, k, v, p = rng.choice(s)
    parent[k] = nested(rng)
    return f"deep nesting at {_fmt(p)}"


def op_swap_values(t, rng, ctx):
    s = sites(t)
    if len(s) < 2:
        return None
    (p1, k1, v1, a), (p2, k2, v2, b) = rng.sample(s, 2)
    if a[:len(b)] == b or b[:len(a)] == a:  # one inside the other
        return None
    p1[k1], p2[k2] = v2, v1
    return f"swap values {_fmt(a)} <-> {_fmt(b)}"


# -- references --------------------------------------------------------------------
def _ref_values(rng, ids, ctx, ports=("out", "skip", "h", "c", "y", "weights", "context", "x", "nope")):
    ids = ids or ["x"]
    i = rng.choice(ids)
    return rng.choice([
        "nope", i + "_", i.upper(), f"{i}.{rng.choice(ports)}", f"{i}[{rng.choice([0, 1, -1, 99, -99])}]",
        f"{i}[0].{rng.choice(ports)}", f"{i}[x]", f"{i}[", f"{i}.", f".{i}", f"{i}..out", f"{i}[0][0]",
        "", " ", "~", None, True, 1, 0, [], [i], [i, i], [i] * 40, {"x": i}, {}, rng.choice(ids),
        f"{i}.out.out", f"{i}[{2 ** 64}]", f"{i}[-0]", f"{i}[ 0 ]", "${'" + i + "'}", i + "\x00",
    ])


def op_ref(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    lst = dict(node_lists(t))[where]
    ids = _ids(lst) + list((t.get("inputs") or {}) if isinstance(t.get("inputs"), dict) else [])
    kind = rng.random()
    if kind < 0.25 and ids:  # a later node (a cycle) or itself
        later = _ids(lst[i:]) or ids
        nd["in"] = rng.choice(later)
    elif kind < 0.45 and ids:  # a mapping of input ports (multi-input ops)
        op = ctx.ops.get(nd.get("op"))
        ports = list(getattr(op, "input_ports", None) or ["query", "key", "value", "x", "h0", "c0", "h", "c"])
        chosen = rng.sample(ports, rng.randint(1, len(ports)))
        if rng.random() < 0.2:
            chosen.append(rng.choice(["nope", "input", "in", "out", ""]))
        nd["in"] = {p: rng.choice(ids) for p in chosen}
    elif kind < 0.6 and ids:  # several ordered inputs
        nd["in"] = [rng.choice(ids) for _ in range(rng.choice([0, 1, 2, 3, 5]))]
    else:
        nd["in"] = _ref_values(rng, ids, ctx)
    return f"in of {where}[{i}] ({nd.get('id')}) -> {nd['in']!r:.60}"


def op_id(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    lst = dict(node_lists(t))[where]
    ids = _ids(lst) or ["x"]
    new = rng.choice([rng.choice(ids), "", "1x", "a.b", "a[0]", "a b", "in", "op", "x", "image", "é",
                      "a" * 1000, None, 7, True, "null", "true", "~", "self", "__init__", "forward",
                      "training", "nodes", "a-b", "a/b"])
    nd["id"] = new
    return f"id of {where}[{i}] -> {new!r:.40}"


def op_output(t, rng, ctx):
    if not isinstance(t, dict):
        return None
    outs = t.get("outputs")
    ids = [x for _, lst in node_lists(t) for x in _ids(lst)] or ["x"]
    kind = rng.random()
    if not isinstance(outs, dict) or not outs or kind < 0.15:
        t["outputs"] = rng.choice([None, [], {}, "fc", [{"from": rng.choice(ids)}],
                                   {"y": {"from": rng.choice(ids)}}, {"y": rng.choice(ids)}])
        return f"outputs -> {t['outputs']!r:.60}"
    name = rng.choice(list(outs))
    o = outs[name]
    if kind < 0.4:
        outs[name] = {"from": _ref_values(rng, ids, ctx)}
    elif kind < 0.6:
        outs[rng.choice(["y2", "out", name + "_", "1", "", "loss"])] = {"from": rng.choice(ids)}
    elif kind < 0.8 and isinstance(o, dict):
        o["expect"] = _expect_value(rng)
    else:
        outs[name] = rng.choice(ids)
    return f"output {name!r}: {outs.get(name)!r:.60}"


def _expect_value(rng):
    return rng.choice([[], [1], [64, 56, 56], [None], [None, None, None], ["${num_classes}"], [0], [-1],
                       [10 ** 12], "x", 3, None, [[1]], [1.5], ["a"], [True], ["${1/0}"], [1] * 40,
                       {"shape": [1]}, ["${nope}"]])


def op_expect(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    nd["expect"] = _expect_value(rng)
    return f"expect of {where}[{i}] ({nd.get('id')}) -> {nd['expect']!r:.60}"


# -- repeat and when ---------------------------------------------------------------------
def op_repeat(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    var = rng.choice(["i", "j", "x", "widths", "size", "out", "min", "i", "", "1", None])
    n = rng.choice([0, 1, 2, 3, -1, 10 ** 6, 10 ** 12, 2 ** 63, 1.5, "2", "${2}", "${depths[0]}", "${-1}",
                    "${10 ** 9}", True, None, [2], "${i}", 0, 2])
    nd["repeat"] = rng.choice([n, n, {"n": n, "var": var}, {"n": n}, {"var": var}, {"n": n, "var": var, "step": 1},
                               {"n": n, "var": var}, [n], {}])
    if rng.random() < 0.3:  # read the index variable somewhere
        ks = [k for k in nd if k not in ("id", "op", "in", "repeat")]
        if ks:
            nd[rng.choice(ks)] = rng.choice(["${i}", "${i + 1}", "${widths[i]}", "${2 if i == 0 else 1}",
                                              "${i == 0}", "${j}"])
    return f"repeat of {where}[{i}] ({nd.get('id')}) -> {nd['repeat']!r:.60}"


def op_rows(t, rng, ctx):
    """`repeat: {rows: ...}`, a table of copies: hostile tables, rows and names."""
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    var = rng.choice(["i", "k", None, "", "1", "min", "true"])
    row = {rng.choice(["k", "c", "i", "out", "min", "true", "1", "", "a b", "__x"]): rng.choice(INTS + ["${2}", "${i}", "${k}"])}
    rows = rng.choice([[row], [row, row], [], [row] * 200, [row, 3], [row, None], [[1]], [{}], [{"k": {"a": 1}}],
                       [{"k": [1, 2]}], 3, "x", None, {}, "${[0] * 10}", "${widths}", "${nope}", "${[] * 10}",
                       [{"k": 1}, {"c": 2}], "${" + rng.choice(HOSTILE_EXPR) + "}"])
    rep = {"rows": rows}
    if var is not None:
        rep["var"] = var
    if rng.random() < 0.1:
        rep["n"] = rng.choice([0, 1, 2])
    nd["repeat"] = rep
    if rng.random() < 0.5:     # read a row's name somewhere
        ks = [k for k in nd if k not in ("id", "op", "in", "repeat")]
        if ks:
            nd[rng.choice(ks)] = rng.choice(["${k}", "${c}", "${i}", "${out}", "${k + i}", "${min}"])
    return f"rows of {where}[{i}] ({nd.get('id')}) -> {nd['repeat']!r:.80}"


def op_when(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    targets_ = rng.sample(nodes, min(len(nodes), rng.choice([1, 1, 1, 2, 3, len(nodes)])))
    val = rng.choice([False, False, True, "${False}", "${proj}", "${i == 0}", "${1}", "${0}", 0, 1, None,
                      "false", "no", "maybe", [], [False], "${nope}", "${1/0}", "${[0]}", 2, 1.5])
    for _, _, nd in targets_:
        nd["when"] = val
    if rng.random() < 0.2:
        for _, _, nd in targets_:
            nd["bypass"] = rng.choice(["x", "nope", 0, None])
    return f"when {val!r} on {', '.join(str(nd.get('id')) for _, _, nd in targets_)[:80]}"


# -- expressions ------------------------------------------------------------------------
_EXPR = re.compile(r"\$\{([^}]*)\}")


def _mutate_expr(inner: str, rng) -> str:
    r = rng.random()
    if r < 0.35:
        return rng.choice(HOSTILE_EXPR)
    toks = re.findall(r"\d+|[A-Za-z_]\w*|\*\*|//|==|!=|<=|>=|\S", inner) or ["1"]
    j = rng.randrange(len(toks))
    tok = toks[j]
    if tok.isdigit():
        toks[j] = str(rng.choice(INTS))
    elif re.match(r"[A-Za-z_]", tok):
        toks[j] = rng.choice(EXPR_NAMES)
    elif r < 0.7:
        toks[j] = rng.choice(EXPR_OPS)
    else:
        del toks[j]
    s = " ".join(toks)
    if r > 0.9:
        s = rng.choice(EXPR_FUNCS + ["nope"]) + "(" + s + ")"
    elif r > 0.85:
        s = "(" + s + ")" + rng.choice(["[0]", "[99]", "[-1]", " * 10 ** 9", " ** 64", " / 0"])
    return s


def op_expr(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[2], str) and "${" in x[2]]
    if not s:
        return op_expr_insert(t, rng, ctx)
    parent, k, v, p = rng.choice(s)
    m = list(_EXPR.finditer(v))
    if not m:
        new = v + rng.choice(["}", "${", "$"])
    else:
        mm = rng.choice(m)
        new = v[:mm.start(1)] + _mutate_expr(mm.group(1), rng) + v[mm.end(1):]
        if rng.random() < 0.1:  # unbalanced
            new = new.replace("}", "", 1)
    parent[k] = new
    return f"expr {_fmt(p)}: {v!r:.40} -> {new!r:.80}"


def op_expr_insert(t, rng, ctx):
    s = [x for x in sites(t) if isinstance(x[2], (int, float, str)) and not isinstance(x[2], bool)]
    if not s:
        return None
    parent, k, v, p = rng.choice(s)
    e = rng.choice(HOSTILE_EXPR + ["i", "size // 2", "widths[0]", "num_classes", "out * 2", str(v)])
    new = rng.choice(["${" + e + "}", "${" + e + "}", "x${" + e + "}y", "${" + e + "}${" + e + "}"])
    parent[k] = new
    return f"expr insert {_fmt(p)} -> {new!r:.80}"


# -- ops --------------------------------------------------------------------------------
def _attr_value(rng, attr):
    typ = getattr(attr, "type", "int")
    choices = getattr(attr, "choices", None)
    r = rng.random()
    if r < 0.15:
        return interesting_scalar(rng)
    if choices and r < 0.5:
        return rng.choice(list(choices))
    small = [0, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 16, 64, -1, 10 ** 6]
    if typ in ("int", "pos_int", "nonneg_int"):
        return rng.choice(small)
    if typ == "float":
        return rng.choice([0, 0.0, 0.1, 0.5, 1.0, 1e-5, -0.5, 2, 1.5, math.inf, math.nan])
    if typ == "bool":
        return rng.choice([True, False])
    if typ == "str":
        return rng.choice(["same", "valid", "nearest", "bilinear", "bicubic", "linear", "trilinear", "area",
                           "dot", "general", "concat", "additive", "relu", "tanh", "none", "constant",
                           "reflect", "replicate", "circular", "zeros", "x"])
    if typ in ("int2", "pos_int2", "int2_opt", "int1", "padding1", "padding2", "scale2", "ints"):
        opts = [rng.choice(small), [rng.choice(small), rng.choice(small)], [rng.choice(small)],
                [rng.choice(small) for _ in range(rng.choice([3, 4, 6]))], None, "same", "valid",
                rng.choice([0.5, 1.5, 2.0, 1 / 3, 2.5])]
        return rng.choice(opts)
    return interesting_scalar(rng)


def _random_node(rng, ctx, ids):
    name = rng.choice(sorted(ctx.ops)) if ctx.ops else "relu"
    op = ctx.ops.get(name)
    nd = {"id": f"fz{rng.randrange(1000)}", "op": name}
    samples = getattr(op, "samples", None) or []
    if samples and rng.random() < 0.5:
        s = rng.choice(samples)
        nd.update(copy.deepcopy(s.get("attrs") or {}))   # never the registry's own lists
    else:
        for k, a in (getattr(op, "attrs", None) or {}).items():
            if getattr(a, "required", False) or rng.random() < 0.4:
                nd[k] = _attr_value(rng, a)
    if ids and rng.random() < 0.5:
        ports = getattr(op, "input_ports", None)
        if ports and rng.random() < 0.6:
            nd["in"] = {p: rng.choice(ids) for p in rng.sample(list(ports), rng.randint(1, len(ports)))}
        else:
            n = rng.choice([1, 1, 2, 3])
            nd["in"] = rng.choice(ids) if n == 1 else [rng.choice(ids) for _ in range(n)]
    return nd


def op_swap_op(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes or not ctx.ops:
        return None
    where, i, nd = rng.choice(nodes)
    old = nd.get("op")
    r = rng.random()
    if r < 0.8:
        new = rng.choice(sorted(ctx.ops))
    else:
        blocks = list((t.get("blocks") or {}) if isinstance(t.get("blocks"), dict) else [])
        new = rng.choice(blocks + ["nope", "rb.nope", "nope.basic", "rb.basic", "tf.encoder_layer", "vgg.stage",
                                   "rb..basic", ".basic", "basic.", "", "Conv2d", "conv2d ", "CONV2D", None, 3])
    nd["op"] = new
    op = ctx.ops.get(new) if isinstance(new, str) else None
    if op is not None and rng.random() < 0.7:  # give it attributes its schema knows
        for k, a in (getattr(op, "attrs", None) or {}).items():
            if getattr(a, "required", False) and k not in nd or rng.random() < 0.2:
                nd[k] = _attr_value(rng, a)
    return f"op of {where}[{i}] ({nd.get('id')}): {old!r} -> {new!r}"


def _set_attr(t, rng, ctx, value):
    """One attribute of a random op node set to value(rng, its Attr)."""
    nodes = [x for x in all_nodes(t) if isinstance(x[2].get("op"), str) and x[2]["op"] in ctx.ops]
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    attrs = getattr(ctx.ops[nd["op"]], "attrs", None) or {}
    if not attrs:
        return None
    k = rng.choice(sorted(attrs))
    nd[k] = value(rng, attrs[k])
    return f"attr {where}[{i}] ({nd.get('id')}, {nd['op']}).{k} -> {nd[k]!r:.40}"


def op_attr(t, rng, ctx):
    return _set_attr(t, rng, ctx, _attr_value)


def op_add_node(t, rng, ctx):
    lists = node_lists(t)
    if not lists:
        return None
    where, lst = rng.choice(lists)
    ids = _ids(lst)
    nd = _random_node(rng, ctx, ids)
    while nd["id"] in ids:
        nd["id"] += "_"
    pos = rng.randint(0, len(lst))
    lst.insert(pos, nd)
    return f"add node at {where}[{pos}]: {nd!r:.100}"


def op_chain(t, rng, ctx):
    """Replace the spec's nodes with a short random chain of registry ops (deep op coverage)."""
    if not isinstance(t, dict) or not ctx.ops:
        return None
    inputs = t.get("inputs")
    if not isinstance(inputs, dict) or not inputs or rng.random() < 0.3:
        shape = rng.choice([[3, 32, 32], [16, 8], [4, 7, 9], [10], [2, 5, 5], [1, 1, 1], [8, 16],
                            [3, 224, 224], [5, 3]])
        t["inputs"] = inputs = {"x": {"shape": shape}}
        if rng.random() < 0.3:
            t["inputs"]["tok"] = {"shape": [7], "dtype": "int64"}
    ids = list(inputs)
    nodes = []
    for _ in range(rng.randint(1, 6)):
        nd = _random_node(rng, ctx, ids)
        while nd["id"] in ids:
            nd["id"] += "_"
        nodes.append(nd)
        ids.append(nd["id"])
    t["nodes"] = nodes
    t["outputs"] = {"y": {"from": nodes[-1]["id"]}} if rng.random() < 0.8 else t.get("outputs")
    return f"random chain {[n['op'] for n in nodes]}"


# -- file-level sections --------------------------------------------------------------------
IMPORT_PATHS = ["blocks/resnet.yaml", "blocks/vgg.yaml", "blocks/transformer.yaml", "nope.yaml", "blocks",
                ".", "", "resnet18.yaml", "unet.yaml", "../specs/blocks/resnet.yaml", "blocks//resnet.yaml",
                "./blocks/../blocks/resnet.yaml", "/dev/zero", "/dev/null", "/dev/urandom", "/dev/stdin",
                "fifo", "sentinel.txt", "/etc/passwd", "/etc/hostname", "/proc/version", "/proc/self/status",
                "/proc/self/maps", "/", "/tmp", "blocks/resnet.yaml\x00.txt", "\x00", "x" * 5000,
                "blocks/" * 200 + "resnet.yaml", "~/x.yaml", "$HOME/x.yaml", "blocks/RESNET.yaml",
                "blocks/resnet.yml", "C:\\x.yaml", "file:///etc/passwd", "https://example.invalid/x.yaml",
                None, 3, [], {"x": 1}, "SELF"]


def op_imports(t, rng, ctx):
    if not isinstance(t, dict):
        return None
    imps = t.get("imports")
    if not isinstance(imps, list) or not imps or rng.random() < 0.3:
        imps = t["imports"] = (imps if isinstance(imps, list) else []) + [{"path": "blocks/resnet.yaml", "as": "zz"}]
    it = rng.choice(imps)
    if not isinstance(it, dict):
        return None
    r = rng.random()
    if r < 0.6:
        p = copy.deepcopy(rng.choice(IMPORT_PATHS))
        it["path"] = ctx.name if p == "SELF" else p
    elif r < 0.85:
        it["as"] = rng.choice(["rb", "tf", "vgg", "zz", "", "1", "a.b", "nodes", "conv2d", None, 3, "relu", "x y"])
    else:
        imps.append(dict(it))
    return f"import -> {it!r:.80}"


def op_defaults(t, rng, ctx):
    if not isinstance(t, dict):
        return None
    d = t.get("defaults")
    if not isinstance(d, dict):
        d = t["defaults"] = {}
    opname = rng.choice(sorted(ctx.ops) + ["nope", "rb.basic", "basic", "", "1"]) if ctx.ops else "conv2d"
    op = ctx.ops.get(opname)
    attrs = getattr(op, "attrs", None) or {}
    if attrs and rng.random() < 0.7:
        k = rng.choice(sorted(attrs))
        d[opname] = {k: _attr_value(rng, attrs[k])}
    else:
        d[opname] = rng.choice([{"nope": 1}, None, [], 3, {"bias": "x"}, {"id": "x"}, {"op": "relu"},
                                {"in": "x"}, {"repeat": 3}, {"when": False}])
    return f"defaults {opname!r}: {d[opname]!r:.60}"


def op_params(t, rng, ctx):
    if not isinstance(t, dict):
        return None
    p = t.get("params")
    if not isinstance(p, dict):
        p = t["params"] = {}
    r = rng.random()
    if p and r < 0.5:
        k = rng.choice(list(p))
        p[k] = rng.choice([random_value(rng), [rng.choice(INTS)] * rng.choice([0, 1, 4, 10]), "${" + str(k) + "}",
                           "${" + rng.choice(HOSTILE_EXPR) + "}", [[1, 2], [3]], -1, 0, 10 ** 6, 1.5])
        return f"param {k!r} -> {p[k]!r:.60}"
    k = rng.choice([1, 0, True, None, "min", "i", "x", "", "a b", "1x", "__class__", "size", "nope"])
    if k in p:
        return None
    p[k] = rng.choice([3, "x", [1], None, "${size}"])
    return f"new param {k!r} = {p[k]!r}"


def op_inputs(t, rng, ctx):
    if not isinstance(t, dict):
        return None
    inp = t.get("inputs")
    if not isinstance(inp, dict) or not inp:
        return None
    r = rng.random()
    name = rng.choice(list(inp))
    if r < 0.55:
        shapes = [[], [0], [1], [3, 0, 224], [-1, 3, 3], [3, 10 ** 6, 10 ** 6], [3, 2 ** 40, 2 ** 40],
                  [3, 1, 1], [1, 1, 1, 1, 1, 1], [3, 224], [224], ["x"], [None, 3], [1.5, 3, 3], "3",
                  [3, "${size}"], ["${size}"] * 3, [True], [3, 7, 7], [3, 31, 31], [1, 2, 3, 4, 5, 6, 7, 8, 9],
                  [10 ** 100], [[3]]]
        if isinstance(inp[name], dict):
            inp[name]["shape"] = rng.choice(shapes)
        else:
            inp[name] = {"shape": rng.choice(shapes)}
    elif r < 0.7 and isinstance(inp[name], dict):
        inp[name][rng.choice(["dtype", "batch", "nope", "doc"])] = rng.choice(["int64", "float16", "x", 3, None])
    else:
        new = rng.choice(["~", "true", "null", 1, "x", "image", "a.b", "", "1x", "in", "é", "x" * 300])
        inp[new] = inp.pop(name)
        # keep the nodes that read the old name reading it under the new one, sometimes
        if rng.random() < 0.5:
            for _, _, nd in all_nodes(t):
                if nd.get("in") == name:
                    nd["in"] = new
        return f"input {name!r} renamed {new!r}"
    return f"input {name!r} -> {inp.get(name)!r:.60}"


def op_blocks(t, rng, ctx):
    if not isinstance(t, dict) or not isinstance(t.get("blocks"), dict) or not t["blocks"]:
        return None
    bname = rng.choice(list(t["blocks"]))
    b = t["blocks"][bname]
    if not isinstance(b, dict):
        return None
    r = rng.random()
    if r < 0.3 and isinstance(b.get("params"), dict) and b["params"]:
        k = rng.choice(list(b["params"]))
        b["params"][k] = rng.choice([{"type": ["int"]}, {"type": "nope"}, {"type": 3}, {"type": "int", "default": "x"},
                                     {"type": "list", "default": 3}, {"default": 1}, {}, None, 3,
                                     {"type": "any"}, {"type": "float", "default": math.inf},
                                     {"type": "int", "default": None}, {"type": "str", "default": 1}])
        return f"block {bname} param {k!r} -> {b['params'][k]!r:.60}"
    if r < 0.45:
        b["inputs"] = rng.choice([[], ["x", "x"], ["x", "y"], "x", None, [1], [None], ["in"], ["~"], ["x", "skip"]])
        return f"block {bname} inputs -> {b['inputs']!r}"
    if r < 0.6:
        b["outputs"] = rng.choice([{}, None, "relu2", {"out": "nope"}, {"out": "x"}, ["relu2"], {"out": None},
                                   {"": "x"}, {"out.x": "x"}])
        return f"block {bname} outputs -> {b['outputs']!r}"
    if r < 0.75 and isinstance(b.get("nodes"), list) and b["nodes"]:  # a block that calls itself (or another)
        nd = rng.choice([x for x in b["nodes"] if isinstance(x, dict)] or [{}])
        nd["op"] = rng.choice([bname] + list(t["blocks"]))
        return f"block {bname} node {nd.get('id')} calls block {nd['op']}"
    nodes = [x for x in all_nodes(t) if x[0] == "nodes"]
    if nodes:  # call the block from the spec with odd params
        _, i, nd = rng.choice(nodes)
        nd["op"] = bname
        params = b.get("params") if isinstance(b.get("params"), dict) else {}
        for k in params:
            if rng.random() < 0.7:
                nd[k] = rng.choice([interesting_scalar(rng), 64, 1, True, "${i}"])
        return f"node {nd.get('id')} calls block {bname}"
    return None


def op_top(t, rng, ctx):
    if not isinstance(t, dict):
        return None
    k = rng.choice(["archviz", "name", "doc", "loss", "nodes", "inputs", "outputs", "params", "blocks", "defaults",
                    "imports"])
    t[k] = rng.choice([None, 2, "1", 0, 1.0, [], {}, "x", True, nested(rng, 20), "x" * 100000,
                       random_value(rng), "cross_entropy", "mse + cross_entropy"])
    return f"top {k} -> {t[k]!r:.60}"


# -- gentle mutations: plausible edits that often keep the spec valid, so that the
# passes, rf, explain and draw are reached (hostile values alone stop at the loader) ----
PLAUSIBLE = {
    "pos_int": [1, 2, 3, 4, 8, 16, 32, 64, 100], "int": [-1, 0, 1, 2, 3], "nonneg_int": [0, 1, 2, 4],
    "float": [0.0, 0.1, 0.5, 1e-3, 1.0, 2.0], "bool": [True, False],
    "int2": [0, 1, 2, 3, [1, 2], [2, 1], [0, 1]], "pos_int2": [1, 2, 3, 5, 7, [1, 3], [3, 1], [2, 2]],
    "int2_opt": [None, 1, 2, 3, [2, 1]], "int1": [1, 2, 3, 5], "padding1": [0, 1, 2, "same", "valid"],
    "padding2": [0, 1, 2, 3, "same", "valid", [1, 2], [0, 1, 1, 0], [1, 1, 1, 1]],
    "scale2": [2, 3, 0.5, 1.5, 2.5, [2, 1], [1.5, 2], 4], "ints": [[1, 1], [0, 1, 2, 3], [1, 1, 1, 1], [2]],
}


def _plausible(rng, attr):
    choices = getattr(attr, "choices", None)
    if choices and rng.random() < 0.7:
        return rng.choice(list(choices))
    typ = getattr(attr, "type", "int")
    if typ == "str":
        return rng.choice(["same", "valid", "nearest", "bilinear", "dot", "general", "concat", "tanh", "relu",
                           "none", "tanh", "constant", "reflect", "replicate"])
    return copy.deepcopy(rng.choice(PLAUSIBLE.get(typ, [1])))   # a later mutation may edit it in place


def _sample_node(rng, ctx, name=None):
    """A node built from one of an op's samples: (node, input shapes without the batch axis)."""
    cands = [n for n, o in ctx.ops.items() if getattr(o, "samples", None)]
    if not cands:
        return None, None
    name = name or rng.choice(sorted(cands))
    op = ctx.ops[name]
    smp = rng.choice(op.samples)
    nd = {"id": "s" + str(rng.randrange(100)), "op": name}
    nd.update(copy.deepcopy(smp.get("attrs") or {}))
    shapes = [list(sh)[1:] for sh in smp.get("inputs") or []]
    return nd, shapes


def g_sample(t, rng, ctx):
    """The spec becomes one op's sample (its attributes and input shapes), perhaps with one
    attribute changed and a few more ops after it: every op and most attribute combinations."""
    if not isinstance(t, dict):
        return None
    nd, shapes = _sample_node(rng, ctx)
    if nd is None:
        return None
    op = ctx.ops[nd["op"]]
    inputs, names = {}, []
    for k, sh in enumerate(shapes):
        nm = f"x{k}"
        inputs[nm] = {"shape": sh or [1]}
        if nd["op"] in ("embedding",) or (sh and len(sh) == 1 and nd["op"] in ("embedding",)):
            inputs[nm]["dtype"] = "int64"
        names.append(nm)
    ports = getattr(op, "input_ports", None)
    if len(names) > 1:
        if ports and rng.random() < 0.5:
            nd["in"] = dict(zip(ports, names))
            if rng.random() < 0.3 and len(nd["in"]) > 1:  # leave one optional port out
                del nd["in"][rng.choice(list(nd["in"])[1:])]
        else:
            nd["in"] = names
    log = f"sample of {nd['op']}"
    attrs = getattr(op, "attrs", None) or {}
    if attrs and rng.random() < 0.6:
        k = rng.choice(sorted(attrs))
        nd[k] = _plausible(rng, attrs[k]) if rng.random() < 0.7 else _attr_value(rng, attrs[k])
        log += f" with {k}={nd[k]!r:.30}"
    nodes = [nd]
    for _ in range(rng.choice([0, 0, 1, 2])):
        nxt = rng.choice(["relu", "identity", "dropout", "tanh", "flatten", "linear", "softmax", "global_avgpool",
                          "layernorm", "batchnorm2d", "conv2d", "maxpool2d", "upsample", "last_step", "lstm"])
        extra = {"id": f"n{len(nodes)}", "op": nxt}
        for k2, a in (getattr(ctx.ops.get(nxt), "attrs", None) or {}).items():
            if getattr(a, "required", False):
                extra[k2] = _plausible(rng, a)
        nodes.append(extra)
        log += f" -> {nxt}"
    t["inputs"] = inputs
    t["nodes"] = nodes
    t.pop("blocks", None) if rng.random() < 0.5 else None
    t["outputs"] = {"y": {"from": nodes[-1]["id"]}}
    return log


def g_attr(t, rng, ctx):
    return _set_attr(t, rng, ctx, _plausible)


def g_when(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    nd["when"] = rng.choice([False, False, True, "${False}"])
    return f"when {nd['when']!r} on {where}[{i}] ({nd.get('id')})"


def g_repeat(t, rng, ctx):
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    nd["repeat"] = rng.choice([1, 2, 3, {"n": 2, "var": "k"}, {"n": 3, "var": "i"}, {"n": 1, "var": "i"}])
    return f"repeat of {where}[{i}] ({nd.get('id')}) -> {nd['repeat']!r}"


def g_rows(t, rng, ctx):
    """A small table of copies, each row's name read by an attribute that holds an int."""
    nodes = all_nodes(t)
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    ks = [k for k, v in nd.items() if k not in ("id", "op", "in", "repeat", "when", "expect")
          and isinstance(v, int) and not isinstance(v, bool) and v > 0]
    rows = [{"k": rng.choice([1, 2, 3, 4, 8])} for _ in range(rng.choice([0, 1, 2, 3]))]
    nd["repeat"] = {"rows": rows, "var": "j"} if rng.random() < 0.5 else {"rows": rows}
    if ks:
        nd[rng.choice(ks)] = "${k}"
    return f"rows of {where}[{i}] ({nd.get('id')}) -> {nd['repeat']!r:.60}"


def g_swap_family(t, rng, ctx):
    nodes = [x for x in all_nodes(t) if isinstance(x[2].get("op"), str) and x[2]["op"] in ctx.ops]
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    old = nd["op"]
    fam = getattr(ctx.ops[old], "family", None)
    same = [n for n, o in ctx.ops.items() if getattr(o, "family", None) == fam and n != old and n != "input"]
    if not same:
        return None
    new = rng.choice(sorted(same))
    attrs = getattr(ctx.ops[new], "attrs", None) or {}
    for k in list(nd):
        if k not in ("id", "op", "in", "repeat", "when", "expect", "doc", "frozen") and k not in attrs:
            if rng.random() < 0.8:
                del nd[k]
    nd["op"] = new
    for k, a in attrs.items():
        if getattr(a, "required", False) and k not in nd:
            nd[k] = _plausible(rng, a)
    return f"op of {where}[{i}] ({nd.get('id')}): {old} -> {new} (same family)"


def g_insert_same_shape(t, rng, ctx):
    lists = node_lists(t)
    if not lists:
        return None
    where, lst = rng.choice(lists)
    name = rng.choice(["relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu", "hardswish", "identity",
                       "dropout", "softmax", "reverse"])
    ids = _ids(lst)
    nd = {"id": "ins" + str(rng.randrange(100)), "op": name}
    while nd["id"] in ids:
        nd["id"] += "_"
    pos = rng.randint(0, len(lst))
    lst.insert(pos, nd)
    return f"insert {name} at {where}[{pos}]"


def g_delete_node(t, rng, ctx):
    lists = [x for x in node_lists(t) if len(x[1]) > 1]
    if not lists:
        return None
    where, lst = rng.choice(lists)
    i = rng.randrange(len(lst))
    nd = lst.pop(i)
    return f"delete node {where}[{i}] ({nd.get('id') if isinstance(nd, dict) else nd})"


def g_param(t, rng, ctx):
    if not isinstance(t, dict) or not isinstance(t.get("params"), dict) or not t["params"]:
        return None
    k = rng.choice(list(t["params"]))
    v = t["params"][k]
    if isinstance(v, bool) or not isinstance(v, (int, list)):
        return None
    f = rng.choice([lambda x: x * 2, lambda x: max(1, x // 2), lambda x: x + 1, lambda x: max(1, x - 1),
                    lambda x: 1, lambda x: 3])
    if isinstance(v, list):
        t["params"][k] = [f(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
    else:
        t["params"][k] = f(v)
    return f"param {k}: {v!r:.30} -> {t['params'][k]!r:.30}"


def g_input_shape(t, rng, ctx):
    if not isinstance(t, dict) or not isinstance(t.get("inputs"), dict):
        return None
    for name, d in t["inputs"].items():
        if isinstance(d, dict) and isinstance(d.get("shape"), list):
            sh = d["shape"]
            j = rng.randrange(len(sh)) if sh else 0
            if sh and isinstance(sh[j], int):
                sh[j] = rng.choice([1, 2, 3, 5, 7, 16, 31, 32, 33, 64, 97, 127, 128, 199, 256])
                return f"input {name} shape[{j}] -> {sh[j]}"
            if sh and rng.random() < 0.5:
                sh[j] = rng.choice([1, 7, 32, 100])
                return f"input {name} shape[{j}] -> {sh[j]}"
    return None


def g_ports(t, rng, ctx):
    """Named input ports, a subset of them, on a multi-input op (silent-shift trap of issue 10)."""
    nodes = [x for x in all_nodes(t) if getattr(ctx.ops.get(x[2].get("op")) if isinstance(x[2].get("op"), str)
                                                else None, "input_ports", None)]
    if not nodes:
        return None
    where, i, nd = rng.choice(nodes)
    lst = dict(node_lists(t))[where]
    ids = _ids(lst[:i]) + list(t.get("inputs") or {}) if isinstance(t.get("inputs"), dict) else _ids(lst[:i])
    if not ids:
        return None
    ports = list(ctx.ops[nd["op"]].input_ports)
    chosen = rng.sample(ports, rng.randint(1, len(ports)))
    nd["in"] = {p: rng.choice(ids) for p in chosen}
    return f"ports of {where}[{i}] ({nd.get('id')}, {nd['op']}) -> {nd['in']!r}"


GENTLE_OPS = {
    "g_sample": (g_sample, 12), "g_attr": (g_attr, 8), "g_when": (g_when, 3), "g_repeat": (g_repeat, 3),
    "g_swap_family": (g_swap_family, 5), "g_insert": (g_insert_same_shape, 3), "g_delete_node": (g_delete_node, 2),
    "g_param": (g_param, 3), "g_input_shape": (g_input_shape, 3), "g_ports": (g_ports, 3), "g_rows": (g_rows, 2),
}


STRUCT_OPS = {
    "delete_key": (op_delete_key, 4), "delete_item": (op_delete_item, 4), "duplicate_item": (op_duplicate_item, 3),
    "swap_items": (op_swap_items, 3), "rename_key": (op_rename_key, 3), "add_unknown_key": (op_add_unknown_key, 2),
    "change_type": (op_change_type, 5), "number": (op_number, 7), "deep_nesting": (op_deep_nesting, 1),
    "swap_values": (op_swap_values, 2), "ref": (op_ref, 6), "id": (op_id, 2), "output": (op_output, 3),
    "expect": (op_expect, 3), "repeat": (op_repeat, 4), "rows": (op_rows, 2), "when": (op_when, 4), "expr": (op_expr, 7),
    "expr_insert": (op_expr_insert, 3), "swap_op": (op_swap_op, 6), "attr": (op_attr, 10),
    "add_node": (op_add_node, 5), "chain": (op_chain, 6), "imports": (op_imports, 3), "defaults": (op_defaults, 2),
    "params": (op_params, 3), "inputs": (op_inputs, 4), "blocks": (op_blocks, 4), "top": (op_top, 1),
}


# --------------------------------------------------------------------------------------
# text-level mutations (bytes in, bytes out)
# --------------------------------------------------------------------------------------
def _lines(b: bytes):
    return b.split(b"\n")


def tx_byte_flip(b, rng):
    if not b:
        return b, None
    b = bytearray(b)
    for _ in range(rng.choice([1, 1, 2, 5])):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b), "byte flip"


def tx_insert_bytes(b, rng):
    ins = rng.choice([b"\x00", b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\x1b[2J", b"\t",
                      b"\r", b"\x0c", b"\x85", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\x7f", b"\x01", b"'", b'"',
                      b"{", b"[", b"}", b":", b"- ", b"#", b"&a ", b"*a", b"!!str ", b"? ", b"|", b">", b"%"])
    i = rng.randrange(len(b) + 1)
    return b[:i] + ins + b[i:], f"insert {ins!r} at {i}"


def tx_truncate(b, rng):
    i = rng.randrange(len(b) + 1)
    return b[:i], f"truncate at {i}"


def tx_delete_range(b, rng):
    if not b:
        return b, None
    i = rng.randrange(len(b))
    j = min(len(b), i + rng.choice([1, 2, 5, 20, 200]))
    return b[:i] + b[j:], f"delete bytes {i}:{j}"


def tx_tabs(b, rng):
    lines = _lines(b)
    idx = [k for k, ln in enumerate(lines) if ln.startswith(b" ")]
    if not idx:
        return b, None
    for k in rng.sample(idx, min(len(idx), rng.choice([1, 3, len(idx)]))):
        ln = lines[k]
        n = len(ln) - len(ln.lstrip(b" "))
        lines[k] = b"\t" * max(1, n // 2) + ln[n:]
    return b"\n".join(lines), "tabs for indentation"


def tx_line_dup(b, rng):
    lines = _lines(b)
    k = rng.randrange(len(lines))
    lines.insert(k, lines[k])
    return b"\n".join(lines), f"duplicate line {k + 1}"


def tx_line_swap(b, rng):
    lines = _lines(b)
    if len(lines) < 2:
        return b, None
    i, j = rng.sample(range(len(lines)), 2)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines), f"swap lines {i + 1} and {j + 1}"


def tx_line_delete(b, rng):
    lines = _lines(b)
    k = rng.randrange(len(lines))
    del lines[k]
    return b"\n".join(lines), f"delete line {k + 1}"


def tx_indent(b, rng):
    lines = _lines(b)
    k = rng.randrange(len(lines))
    lines[k] = rng.choice([b" ", b"  ", b"   ", b""]) + (lines[k] if rng.random() < 0.5 else lines[k].lstrip())
    return b"\n".join(lines), f"re-indent line {k + 1}"


def tx_encoding(b, rng):
    r = rng.random()
    if r < 0.3:
        return b.decode("utf-8", "replace").encode("utf-16"), "UTF-16 with BOM"
    if r < 0.45:
        return b.decode("utf-8", "replace").encode("utf-16-le"), "UTF-16-LE without BOM"
    if r < 0.6:
        return b"\xef\xbb\xbf" + b, "UTF-8 BOM"
    if r < 0.75:
        return b.replace(b"\n", b"\r\n"), "CRLF"
    if r < 0.85:
        return b.replace(b"\n", b"\r"), "CR only"
    return (b + b"\n# caf\xe9 latin-1\n"), "latin-1 byte"


def tx_yaml_features(b, rng):
    lines = _lines(b)
    k = rng.randrange(len(lines) + 1)
    extra = rng.choice([
        b"x: &a {k: 1}", b"y: *a", b"z: {<<: *a}", b"<<: {archviz: 1}", b"t: !!python/object/apply:os.system ['true']",
        b"t: !!binary aGVsbG8=", b"t: !!set {a, b}", b"t: !custom 1", b"t: !!str 3", b"t: 2001-12-14", b"t: 1:30",
        b"---", b"...", b"--- !!map", b"%YAML 1.1", b"%TAG ! tag:x,2000:", b"? [a, b]\n: 1", b"? {a: 1}\n: 1",
        b"t: 0o17", b"t: 0b101", b"t: 1_000", b"t: 1e400", b"t: " + b"9" * 5000, b"t: .NaN", b"t: 0x",
        b"t: '" + b"x" * 100000 + b"'", b"t: |\n  a\n  b", b"t: >-\n  a", b"nodes: []", b"archviz: 1",
        b"t: [" * 50 + b"]" * 50, b"t: {" * 50 + b"}" * 50, b"\xef\xbb\xbf", b"t: \"\\x00\"", b"t: \"\\ud800\"",
        b"t: \"\\U0010ffff\"", b"t: \"\\N\\_\\L\\P\"", b"- a", b"t:x", b"t :1", b"\"a\nb\": 1",
    ])
    lines.insert(k, extra)
    return b"\n".join(lines), f"insert {extra[:40]!r} at line {k + 1}"


def tx_duplicate_key(b, rng):
    lines = _lines(b)
    cand = [k for k, ln in enumerate(lines) if re.match(rb"^\s*[A-Za-z_]\w*:", ln)]
    flow = [k for k, ln in enumerate(lines) if re.search(rb"\{\s*\w+:[^,}]*,", ln)]
    if flow and rng.random() < 0.5:
        k = rng.choice(flow)
        m = re.search(rb"\{\s*(\w+:[^,}]*),", lines[k])
        lines[k] = lines[k][:m.end()] + b" " + m.group(1) + b"," + lines[k][m.end():]
        return b"\n".join(lines), f"duplicate key in flow mapping, line {k + 1}"
    if not cand:
        return b, None
    k = rng.choice(cand)
    lines.insert(k + 1, lines[k])
    return b"\n".join(lines), f"duplicate key line {k + 1}"


def tx_deep_text(b, rng):
    depth = rng.choice([100, 1000, 5000, 20000, 100000])
    style = rng.choice(["flow_seq", "flow_map", "block_seq", "block_map"])
    if style == "flow_seq":
        blob = b"[" * depth + b"1" + b"]" * depth
    elif style == "flow_map":
        blob = b"{a: " * depth + b"1" + b"}" * depth
    elif style == "block_seq":
        depth = min(depth, 3000)
        blob = b"".join(b"\n" + b"  " * (i + 1) + b"-" for i in range(depth)) + b" 1"
    else:
        depth = min(depth, 3000)
        blob = b"".join(b"\n" + b"  " * (i + 1) + b"a:" for i in range(depth)) + b" 1"
    key = rng.choice([b"doc", b"params", b"nodes", b"zz", b"name"])
    lines = [ln for ln in _lines(b) if not ln.startswith(key + b":")]
    return b"\n".join(lines) + b"\n" + key + b": " + blob + b"\n", f"deep {style} nesting {depth} at {key.decode()}"


def tx_unicode(b, rng):
    repl = rng.choice([(b"a", "а".encode()), (b"o", "ο".encode()), (b" ", "\u00a0".encode()),
                       (b"x", "x\u200b".encode()), (b"e", "e\u0301".encode()), (b"c", "\u202ec".encode())])
    idx = [m.start() for m in re.finditer(re.escape(repl[0]), b)]
    if not idx:
        return b, None
    i = rng.choice(idx)
    return b[:i] + repl[1] + b[i + len(repl[0]):], f"unicode {repl[1]!r} at {i}"


def tx_huge(b, rng):
    r = rng.random()
    if r < 0.5:
        return b + b"\n# " + b"x" * rng.choice([10 ** 5, 10 ** 6, 2 * 10 ** 7]) + b"\n", "huge comment"
    return b"\n" * rng.choice([10 ** 4, 10 ** 6]) + b, "many empty lines"


TEXT_OPS = {
    "byte_flip": (tx_byte_flip, 4), "insert_bytes": (tx_insert_bytes, 4), "truncate": (tx_truncate, 2),
    "delete_range": (tx_delete_range, 2), "tabs": (tx_tabs, 2), "line_dup": (tx_line_dup, 2),
    "line_swap": (tx_line_swap, 2), "line_delete": (tx_line_delete, 2), "indent": (tx_indent, 2),
    "encoding": (tx_encoding, 2), "yaml_features": (tx_yaml_features, 4), "duplicate_key": (tx_duplicate_key, 2),
    "deep_text": (tx_deep_text, 1), "unicode": (tx_unicode, 2), "huge": (tx_huge, 0.5),
}

# hostile command-line params, added to some cases (-p NAME=VALUE)
OVERRIDES = ["size=0", "size=-1", "size=10**9", "size=${size}", "size=${nope}", "size=1e400", "size=x",
             "num_classes=0", "num_classes=${1/0}", "widths=[]", "widths=[0,0,0,0]", "depths=[100000,1,1,1]",
             "depths=[-1,0,0,0]", "nope=1", "=1", "size", "size==3", "size=[[[[1]]]]", "size=${'%9999999d' % 1}",
             "T=0", "T=10**7", "vocab=0", "hidden=-3", "size=\x00", "1=1", "size=null", "size=true"]


def _weighted(table, rng):
    names = list(table)
    return rng.choices(names, weights=[table[n][1] for n in names])[0]


def mutate_tree(tree, rng, ctx, n: int, table=None):
    table = table or STRUCT_OPS
    log = []
    tries = 0
    while len(log) < n and tries < 10 * n:
        tries += 1
        name = _weighted(table, rng)
        desc = table[name][0](tree, rng, ctx)
        if desc:
            log.append(f"{name}: {desc}")
    return log


def mutate_text(b: bytes, rng, n: int):
    log = []
    for _ in range(n):
        name = _weighted(TEXT_OPS, rng)
        nb, desc = TEXT_OPS[name][0](b, rng)
        if desc:
            b = nb
            log.append(f"text.{name}: {desc}")
    return b, log


def mutate_case(rng: random.Random, target: str | None = None) -> Case:
    """One case, every choice taken from `rng`."""
    files = bundled_files()
    tlist = targets()
    if target is None:
        if rng.random() < 0.03:
            target = rng.choice([k for k in files if k.startswith("blocks/")])
        else:
            target = rng.choice(tlist)
    mutated = target
    imps = [p for p in imports_of(files[target]) if p in files]
    if imps and rng.random() < 0.35:
        mutated = rng.choice(imps)
    ctx = Ctx(mutated, files)
    data = files[mutated]
    log = []
    mode = rng.random()
    if mode < 0.35:  # gentle: often still valid, reaching the passes and the back ends
        tree = copy.deepcopy(_tree_of(data))
        log += mutate_tree(tree, rng, ctx, rng.choice([1, 1, 2, 3]), GENTLE_OPS)
        data = dump_tree(tree).encode("utf-8", "surrogatepass")
    elif mode < 0.88:  # structural, hostile (and maybe a text mutation on top)
        tree = copy.deepcopy(_tree_of(data))
        if rng.random() < 0.25:
            log += mutate_tree(tree, rng, ctx, 1, GENTLE_OPS)
        log += mutate_tree(tree, rng, ctx, rng.choice([1, 1, 1, 2, 2, 3, 4]))
        data = dump_tree(tree).encode("utf-8", "surrogatepass")
        if rng.random() < 0.08:
            data, more = mutate_text(data, rng, 1)
            log += more
    else:  # text only, on the file as written
        data, more = mutate_text(data, rng, rng.choice([1, 1, 2, 3]))
        log += more
    files = dict(files)
    files[mutated] = data
    files.update(SPECIAL_FILES)
    options = []
    if rng.random() < 0.06:
        options = ["-p", rng.choice(OVERRIDES)]
        log.append(f"option {options}")
    return Case(target=target, mutated=mutated, files=files, options=options, log=log)


def make_case(seed: int, index: int) -> Case:
    """Case `index` of the campaign `seed`: independent of every other case (any order, any
    number of jobs gives the same cases)."""
    rng = random.Random(f"archviz-fuzz:{seed}:{index}")
    c = mutate_case(rng)
    c.seed, c.index = seed, index
    return c


def write_case(case: Case, folder: str | os.PathLike) -> str:
    """Lay the case's files out in `folder` (plus a FIFO); the path of the spec to run."""
    folder = Path(folder)
    for rel, data in case.files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    fifo = folder / "fifo"
    if not fifo.exists():
        try:
            os.mkfifo(fifo)
        except OSError:  # pragma: no cover
            pass
    return str(folder / case.target)
