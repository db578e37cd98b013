"""Loading spec files: top-level keys, params, defaults, imports and block definitions.

The :class:`FileLoader` methods of the compiler read a file (and what it imports) into a
:class:`SpecFile`; problems are recorded with the compiler's `error`, not raised.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from archviz.errors import ImportSpecError, Span, SpecError, did_you_mean
from archviz.ops import registry
from archviz.spec.yamlload import LocDict, load_yaml_file, span_of

FORMAT_VERSION = 1
TOP_KEYS = ("archviz", "name", "doc", "params", "inputs", "blocks", "nodes", "outputs",
            "imports", "defaults", "loss")
BLOCK_KEYS = ("params", "inputs", "nodes", "outputs", "defaults", "doc")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str, "list": list,
                "any": object}


@dataclass
class BlockDef:
    name: str
    file: "SpecFile"
    data: LocDict
    span: Span | None
    params: dict          # name -> (type, default or REQUIRED, span)
    inputs: list
    nodes: list
    outputs: Any
    defaults: dict


@dataclass
class SpecFile:
    path: str
    data: LocDict
    params: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)
    imports: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)


_NO_DEFAULT = object()
PARAM_DEF_KEYS = ("type", "default", "doc")
IMPORT_KEYS = ("path", "as")


class FileLoader:
    """Mixin of :class:`archviz.spec.compile.Compiler`: loading files and block definitions."""

    # -- files -------------------------------------------------------------------
    def load_file(self, path: str, stack: tuple = (), span: Span | None = None,
                  top: bool = False) -> SpecFile | None:
        real = os.path.realpath(path)
        if real in stack:
            chain = " -> ".join(os.path.basename(p) for p in stack + (real,))
            self.error(ImportSpecError(f"cyclic import: {chain}", span, code="E0152"))
            return None
        if real in self.files:
            return self.files[real]
        if not os.path.exists(path):
            if not stack:       # the spec itself, not an import
                raise SpecError(f"spec file not found: {path}", code="E0106")
            self.error(ImportSpecError(f"spec file not found: {path}", span, code="E0151",
                                       hint=f"an import's path is relative to the file that imports it "
                                            f"({os.path.dirname(stack[-1])})"))
            return None
        data = load_yaml_file(path)
        if not isinstance(data, LocDict):
            got = "an empty file" if data is None else f"a {type(data).__name__.replace('Loc', '').lower()}"
            raise SpecError(f"a spec must be a mapping (archviz:, name:, inputs:, nodes:, ...), "
                            f"got {got}", getattr(data, "span", None) or Span(path, 1, 1), code="E0107")
        sf = SpecFile(path=path, data=data)
        self.files[real] = sf
        for key in data:
            if key not in TOP_KEYS:
                self.error(SpecError(f"unknown top-level key '{key}'", data.key_span(key), code="E0108",
                                     hint=did_you_mean(key, TOP_KEYS) or "allowed: " + ", ".join(TOP_KEYS)))
        ver = data.get("archviz", FORMAT_VERSION)
        if ver != FORMAT_VERSION:
            self.error(SpecError(f"unsupported spec format version {ver!r}", data.span_of("archviz"),
                                 code="E0109", hint=f"this archviz reads 'archviz: {FORMAT_VERSION}'"))
        self._load_params(sf, top)
        self._load_defaults(sf.defaults, data, "defaults")
        for i, imp in enumerate(self._list(data, "imports")):
            isp = data["imports"].span_of(i)
            if not isinstance(imp, dict) or "path" not in imp or "as" not in imp:
                self.error(SpecError("an import is a mapping {path: FILE, as: NAME}", isp, code="E0153"))
                continue
            bad = [k for k in imp if k not in IMPORT_KEYS]
            for k in bad:
                self.error(SpecError(f"unknown key '{k}' in an import", imp.key_span(k), code="E0153",
                                     hint=did_you_mean(k, IMPORT_KEYS) or "an import is {path: FILE, as: NAME}"))
            if not isinstance(imp["path"], str) or not imp["path"]:
                self.error(SpecError(f"import path must be a file name, got {imp['path']!r}", imp.span_of("path"),
                                     code="E0153"))
                continue
            if not isinstance(imp["as"], str) or not _ID.match(imp["as"]):
                self.error(SpecError(f"import name (as:) must be an identifier, got {imp['as']!r}",
                                     imp.span_of("as"), code="E0153"))
                continue
            if bad:
                continue
            ipath = os.path.join(os.path.dirname(path), imp["path"])
            try:
                sub = self.load_file(ipath, stack + (real,), imp.span_of("path"))
            except SpecError as e:
                if e.span is None:      # e.g. the path is a directory: point at the import
                    e.span = imp.span_of("path")
                raise
            if sub is not None:
                sf.imports[imp["as"]] = sub
        blocks = data.get("blocks") or {}
        if not isinstance(blocks, dict):
            self.error(SpecError("'blocks' must be a mapping of block name to block",
                                 data.span_of("blocks"), code="E0110"))
            blocks = {}
        for name, bd in blocks.items():
            b = self._load_block(sf, name, bd, blocks.span_of(name), blocks.key_span(name))
            if b is not None:
                sf.blocks[name] = b
        return sf

    def _list(self, data, key):
        v = data.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.error(SpecError(f"'{key}' must be a list", data.span_of(key), code="E0110"))
            return []
        return v

    def _load_params(self, sf: SpecFile, top: bool) -> None:
        data = sf.data
        raw = data.get("params") or {}
        if not isinstance(raw, dict):
            self.error(SpecError("'params' must be a mapping of name to value", data.span_of("params"),
                                 code="E0110"))
            raw = {}
        if top:
            for k in self.overrides:
                if k not in raw:
                    self.error(SpecError(f"the spec has no param '{k}' (given as an override: -p {k}=...)", None, code="E0115",
                                         notes=[f"spec: {sf.path}"],
                                         hint=did_you_mean(k, raw) or
                                         ("params: " + ", ".join(raw) if raw else "this spec has no params")))
        for k, v in raw.items():
            if top and k in self.overrides:
                v = self.overrides[k]
                sp = None
            else:
                sp = raw.span_of(k)
            sf.params[k] = self._try_eval(v, dict(sf.params), sp)

    def _load_defaults(self, into: dict, data, key) -> None:
        d = data.get(key) or {}
        if not isinstance(d, dict):
            self.error(SpecError(f"'{key}' must map op names to attribute defaults", data.span_of(key),
                                 code="E0110"))
            return
        for op, attrs in d.items():
            if op not in registry:
                self.error(SpecError(f"defaults for unknown op '{op}'", d.key_span(op), code="E0111",
                                     hint=did_you_mean(op, registry)))
                continue
            if not isinstance(attrs, dict):
                self.error(SpecError(f"defaults for '{op}' must be a mapping", d.span_of(op), code="E0110"))
                continue
            known = registry[op].attrs
            for k in attrs:
                if k not in known:
                    self.error(_unknown_attr(k, registry[op], attrs.key_span(k)))
            into[op] = {**into.get(op, {}), **{k: (v, attrs.span_of(k)) for k, v in attrs.items() if k in known}}

    def _load_block(self, sf: SpecFile, name, bd, span, name_span=None) -> BlockDef | None:
        if not isinstance(bd, LocDict):
            self.error(SpecError(f"block '{name}' must be a mapping", span, code="E0110"))
            return None
        if name in registry:
            self.error(SpecError(f"block '{name}' has the name of a built-in op", name_span or bd.span,
                                 code="E0116", hint="rename the block"))
        for key in bd:
            if key not in BLOCK_KEYS:
                self.error(SpecError(f"unknown key '{key}' in block '{name}'", bd.key_span(key), code="E0108",
                                     hint=did_you_mean(key, BLOCK_KEYS) or "allowed: " + ", ".join(BLOCK_KEYS)))
        params = {}
        pdefs = bd.get("params") or {}
        if not isinstance(pdefs, dict):
            self.error(SpecError(f"'params' of block '{name}' must map names to {{type: T, default: V}}",
                                 bd.span_of("params"), code="E0110"))
            pdefs = {}
        for pname, pdef in pdefs.items():
            psp = pdefs.span_of(pname)
            if not isinstance(pname, str) or not _ID.match(pname):
                self.error(SpecError(f"param name {pname!r} of block '{name}' is not an identifier",
                                     pdefs.key_span(pname), code="E0117"))
                continue
            if isinstance(pdef, dict):
                for k in pdef:
                    if k not in PARAM_DEF_KEYS:
                        self.error(SpecError(f"unknown key '{k}' in param '{pname}' of block '{name}'",
                                             pdef.key_span(k), code="E0117",
                                             hint=did_you_mean(k, PARAM_DEF_KEYS) or
                                             "a param is {type: T, default: V, doc: TEXT}"))
                t = pdef.get("type", "any")
                if t not in _PARAM_TYPES:
                    self.error(SpecError(f"unknown param type '{t}'", pdef.span_of("type"), code="E0117",
                                         hint="types: " + ", ".join(_PARAM_TYPES)))
                    t = "any"
                params[pname] = (t, pdef.get("default", _NO_DEFAULT), psp)
            else:
                params[pname] = ("any", pdef, psp)
        inputs = bd.get("inputs")
        if inputs is None:
            inputs = ["x"]
        elif isinstance(inputs, list) and not inputs:
            self.error(SpecError(f"block '{name}' needs at least one input (omit `inputs` for one named x)",
                                 bd.span_of("inputs"), code="E0120"))
            inputs = ["x"]
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list):
            self.error(SpecError(f"'inputs' of block '{name}' must be a list of names, e.g. [x]",
                                 bd.span_of("inputs"), code="E0110"))
            inputs = ["x"]
        for i, iname in enumerate(inputs):
            if not isinstance(iname, str) or not _ID.match(iname):
                self.error(SpecError(f"input name {iname!r} of block '{name}' is not an identifier",
                                     span_of(inputs, i, bd.span_of("inputs")), code="E0120"))
            elif iname in inputs[:i]:
                self.error(SpecError(f"duplicate input name '{iname}' in block '{name}'",
                                     span_of(inputs, i, bd.span_of("inputs")), code="E0120"))
        inputs = list(dict.fromkeys(i for i in inputs if isinstance(i, str) and _ID.match(i))) or ["x"]
        defaults = {k: dict(v) for k, v in sf.defaults.items()}
        self._load_defaults(defaults, bd, "defaults")
        nodes = bd.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            self.error(SpecError(f"block '{name}' needs a non-empty 'nodes' list", bd.span, code="E0118"))
            nodes = []
        # `span` (where the block is "defined at", in notes) is its name, as compilers point at one
        return BlockDef(name, sf, bd, name_span or bd.span, params, list(inputs), nodes, bd.get("outputs"), defaults)


# torch's constructor arguments a torch user will write, and what a spec says instead
_INFERRED = ("in_channels", "in_features", "input_size", "num_features", "normalized_shape", "embed_dim")
_TORCH_NAMES = {"out_channels": "out", "out_features": "out", "hidden_size": "out", "kernel_size": "kernel",
                "num_embeddings": "num", "embedding_dim": "dim", "num_heads": "heads", "p_drop": "p"}


def _unknown_attr(key, op, span) -> SpecError:
    if key in _INFERRED:
        hint = "input sizes are inferred from the input's shape, never written: remove it"
    elif _TORCH_NAMES.get(key) in op.attrs:
        hint = f"archviz calls it '{_TORCH_NAMES[key]}' (torch: {key})"
    else:
        hint = did_you_mean(key, op.attrs) or f"attributes of {op.name}: {', '.join(op.attrs) or 'none'}"
    return SpecError(f"unknown attribute '{key}' for op '{op.name}'", span, code="E0112", hint=hint)
