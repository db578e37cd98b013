"""Loading spec files: top-level keys, params, defaults, imports and block definitions.

The :class:`FileLoader` methods of the compiler read a file (and what it imports) into a
:class:`SpecFile`; problems are recorded with the compiler's `error`, not raised.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from archviz.codes import E
from archviz.errors import (ArchvizError, ImportSpecError, Span, SpecError, did_you_mean, mark_spec_source,
                            short_repr)
from archviz.ops import registry
from archviz.spec.expr import FAILED
from archviz.spec.roots import import_roots, inside
from archviz.spec.yamlload import LocDict, load_yaml, read_spec_text, show_path, span_of

FORMAT_VERSION = 1
TOP_KEYS = ("archviz", "name", "doc", "params", "inputs", "blocks", "nodes", "outputs",
            "imports", "defaults", "loss")
BLOCK_KEYS = ("params", "inputs", "nodes", "outputs", "defaults", "doc")
NODE_KEYS = ("id", "op", "in", "repeat", "when", "bypass", "expect", "doc", "frozen", "share")
OUTPUT_KEYS = ("from", "expect", "doc")
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
    failed_imports: set = field(default_factory=set)     # import names whose file did not load


_NO_DEFAULT = object()


PARAM_DEF_KEYS = ("type", "default", "doc")
IMPORT_KEYS = ("path", "as")


class FileLoader:
    """Mixin of :class:`archviz.spec.compile.Compiler`: loading files and block definitions."""

    # -- files -------------------------------------------------------------------
    def load_file(self, path: str, stack: tuple = (), span: Span | None = None,
                  top: bool = False) -> SpecFile | None:
        """The spec file at `path` (an import when `stack` names the files importing it),
        loaded once, with its imports and blocks; None (the problem recorded) when it cannot
        be read as a spec. Problems of the spec the user named are raised."""
        if top:
            if "\0" in path:
                raise SpecError(f"spec file not found: {show_path(path)} (a file name cannot contain a NUL)",
                                code=E.UNREADABLE_SPEC)
            self._import_roots = import_roots(path, getattr(self, "allow_import", None))
        real = os.path.realpath(path)
        if real in stack:
            chain = " -> ".join(os.path.basename(p) for p in stack + (real,))
            self.error(ImportSpecError(f"cyclic import: {chain}", span, code=E.IMPORT_CYCLE))
            return None
        if real in self.files:
            return self.files[real]
        data = self._read_file(path, stack, span)
        if data is None:
            return None
        sf = SpecFile(path=path, data=data)
        self.files[real] = sf
        for key in data:
            if key not in TOP_KEYS:
                self.error(SpecError(f"unknown top-level key '{key}'", data.key_span(key), code=E.UNKNOWN_KEY,
                                     hint=did_you_mean(key, TOP_KEYS) or "allowed: " + ", ".join(TOP_KEYS)))
        ver = data.get("archviz", FORMAT_VERSION)
        if ver != FORMAT_VERSION:
            self.error(SpecError(f"unsupported spec format version {short_repr(ver)}", data.span_of("archviz"),
                                 code=E.FORMAT_VERSION, hint=f"this archviz reads 'archviz: {FORMAT_VERSION}'"))
        self._load_params(sf, top)
        self._load_defaults(sf.defaults, data, "defaults")
        self._load_imports(sf, stack + (real,))
        blocks = data.get("blocks") or {}
        if not isinstance(blocks, dict):
            self.error(SpecError("'blocks' must be a mapping of block name to block",
                                 data.span_of("blocks"), code=E.BAD_SECTION))
            blocks = {}
        for name, bd in blocks.items():
            b = self._load_block(sf, name, bd, blocks.span_of(name), blocks.key_span(name))
            if b is not None:
                sf.blocks[name] = b
        return sf

    def _read_file(self, path: str, stack: tuple, span: Span | None) -> LocDict | None:
        """The YAML mapping of a spec file. A problem with the spec the user named is raised;
        one with an import (`stack` non-empty) is recorded, pointing at the import, and
        gives None."""
        if not os.path.exists(path):
            if not stack:       # the spec itself, not an import
                raise SpecError(f"spec file not found: {show_path(path)}", code=E.UNREADABLE_SPEC)
            self.error(ImportSpecError(f"spec file not found: {show_path(path)}", span, code=E.IMPORT_NOT_FOUND,
                                       hint=f"an import's path is relative to the file that imports it "
                                            f"({os.path.dirname(stack[-1])})"))
            return None
        if stack:
            # An import: its text is shown under an error only once it loads as a spec (a
            # mapping), so an import of a file that is not a spec discloses none of it
            try:
                data = load_yaml(read_spec_text(path), path)
            except SpecError as e:
                if e.span is None:      # e.g. the path is a directory: point at the import
                    e.span = span
                elif span is not None:
                    e.notes.append(f"imported at {span}; the file's text is not shown: it did not load as a spec")
                self.error(e)
                return None
            if isinstance(data, LocDict) and "archviz" not in data and any(k not in TOP_KEYS for k in data):
                # a YAML file that is no spec (a docker-compose.yml, secrets.yaml): none of
                # its lines, nor its keys, in the messages
                self.error(ImportSpecError(f"{show_path(path)} is not an archviz spec: it has no `archviz:` key, and "
                                           "top-level keys a spec does not have (its text is not shown)",
                                           Span(path, 1, 1), code=E.NOT_A_MAPPING,
                                           notes=[f"imported at {span}"] if span else None))
                return None
            if isinstance(data, LocDict):
                mark_spec_source(path)
        else:
            try:
                text = read_spec_text(path)
            except SpecError as e:      # a device, a pipe, too large: at the file
                if e.span is None and not os.path.isdir(path):
                    e.span = Span(path, 1, 1)
                raise
            mark_spec_source(path)      # the spec the user named: its lines are shown
            data = load_yaml(text, path)
        if not isinstance(data, LocDict):
            got = "an empty file" if data is None else f"a {type(data).__name__.replace('Loc', '').lower()}"
            err = SpecError(f"a spec must be a mapping (archviz:, name:, inputs:, nodes:, ...), got {got}",
                            getattr(data, "span", None) or Span(path, 1, 1), code=E.NOT_A_MAPPING)
            if not stack:
                raise err
            err.notes.append(f"imported at {span}")
            self.error(err)
            return None
        return data

    def _load_imports(self, sf: SpecFile, stack: tuple) -> None:
        """The files `sf` imports, loaded into sf.imports by their `as:` names; `stack` ends
        with `sf`'s own real path. The name of an import that does not load stays in
        sf.failed_imports, so the ops that name it add no errors of their own."""
        data = sf.data
        for i, imp in enumerate(self._list(data, "imports")):
            isp = data["imports"].span_of(i)
            if not isinstance(imp, dict) or "path" not in imp or "as" not in imp:
                self.error(SpecError("an import is a mapping {path: FILE, as: NAME}", isp, code=E.BAD_IMPORT))
                if isinstance(imp, dict) and isinstance(imp.get("as"), str):
                    sf.failed_imports.add(imp["as"])
                continue
            bad = [k for k in imp if k not in IMPORT_KEYS]
            for k in bad:
                self.error(SpecError(f"unknown key '{k}' in an import", imp.key_span(k), code=E.BAD_IMPORT,
                                     hint=did_you_mean(k, IMPORT_KEYS) or "an import is {path: FILE, as: NAME}"))
            if not isinstance(imp["as"], str) or not _ID.match(imp["as"]):
                self.error(SpecError(f"import name (as:) must be an identifier, got {short_repr(imp['as'])}",
                                     imp.span_of("as"), code=E.BAD_IMPORT))
                continue
            sf.failed_imports.add(imp["as"])    # until it loads: the ops it names add no errors
            if not isinstance(imp["path"], str) or not imp["path"]:
                self.error(SpecError(f"import path must be a file name, got {short_repr(imp['path'])}",
                                     imp.span_of("path"), code=E.BAD_IMPORT))
                continue
            if "\0" in imp["path"]:
                self.error(SpecError("import path contains a NUL character", imp.span_of("path"), code=E.BAD_IMPORT,
                                     hint="a file name cannot contain a NUL (\\0)"))
                continue
            if bad:
                continue
            ipath = os.path.join(os.path.dirname(sf.path), imp["path"])
            refused = self._refused_import(ipath, imp["path"], imp.span_of("path"))
            if refused is not None:
                self.error(refused)
                continue
            sub = self.load_file(ipath, stack, imp.span_of("path"))
            if sub is not None:
                sf.imports[imp["as"]] = sub
                sf.failed_imports.discard(imp["as"])

    def _refused_import(self, ipath: str, written: str, span: Span | None) -> SpecError | None:
        """An import outside the folders imports may read (the top spec's folder tree, the
        bundled library, the --allow-import paths) is refused, before the file is looked at
        (so a refusal says nothing of whether the file exists)."""
        roots = getattr(self, "_import_roots", ())
        real = os.path.realpath(ipath)
        if any(inside(real, r) for r in roots):
            return None
        folders = ", ".join(show_path(r) for r in roots)
        return ImportSpecError(
            f"import of '{show_path(written)}' is outside the folders a spec may import from "
            f"(it is {show_path(real)})", span, code=E.IMPORT_OUTSIDE,
            notes=[f"imports may read: {folders}"],
            hint=f"to allow it, run archviz with --allow-import {show_path(os.path.dirname(real) or real)} "
                 "(Python: allow_import=[PATH])")

    def _list(self, data, key):
        v = data.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.error(SpecError(f"'{key}' must be a list", data.span_of(key), code=E.BAD_SECTION))
            return []
        return v

    def _load_params(self, sf: SpecFile, top: bool) -> None:
        data = sf.data
        raw = data.get("params") or {}
        if not isinstance(raw, dict):
            self.error(SpecError("'params' must be a mapping of name to value", data.span_of("params"),
                                 code=E.BAD_SECTION))
            raw = {}
        if top:
            for k, v in self.overrides.items():
                if k not in raw:
                    # there is no line of the spec to show; `params:` is where it would be
                    self.error(SpecError(f"the spec has no param '{k}' (given as an override: {_override_text(k, v)})",
                                         data.key_span("params") if "params" in data else data.span,
                                         code=E.BAD_OVERRIDE, notes=[f"spec: {sf.path}"],
                                         hint=did_you_mean(k, raw) or
                                         ("params: " + ", ".join(map(str, raw)) if raw else "this spec has no params")))
        for k, v in raw.items():
            if top and k in self.overrides:
                sf.params[k] = self._override(k, self.overrides[k], v, raw, sf)
                continue
            try:
                sf.params[k] = self._eval(v, sf.params, raw.span_of(k))   # read only: no copy per param
            except ArchvizError as e:
                self.error(e)
                sf.params[k] = FAILED       # what reads it adds no error of its own

    def _override(self, k, value, written, raw, sf):
        """The value of param `k` given as an override (-p k=VALUE): evaluated like the spec's
        own value, and of the type the spec's literal has. A problem is one error that names
        the -p, at the param it overrides."""
        def fail(msg, hint=None, notes=()):
            self.error(SpecError(f"{_override_text(k, value)}: {msg}", raw.key_span(k), code=E.BAD_OVERRIDE, hint=hint,
                                 notes=list(notes) + ["the value comes from the command line (-p); "
                                                      "it overrides the param defined here"]))
            return FAILED
        try:
            got = self._eval(value, sf.params, None)      # its columns are not the spec's
        except ArchvizError as e:
            return fail(e.message, e.hint, e.notes)
        want = _literal_kind(written)
        if want is not None and _literal_kind(got) not in _COMPATIBLE[want]:
            return fail(f"the param is {_KIND_NAMES[want]} in the spec ({_override_text(None, written)}), "
                        f"got {_KIND_NAMES.get(_literal_kind(got), type(got).__name__)} {short_repr(got)}")
        return got

    def _load_defaults(self, into: dict, data, key) -> None:
        d = data.get(key) or {}
        if not isinstance(d, dict):
            self.error(SpecError(f"'{key}' must map op names to attribute defaults", data.span_of(key),
                                 code=E.BAD_SECTION))
            return
        for op, attrs in d.items():
            if op not in registry:
                self.error(SpecError(f"defaults for unknown op '{op}'", d.key_span(op), code=E.UNKNOWN_OP,
                                     hint=did_you_mean(op, registry)))
                continue
            if not isinstance(attrs, dict):
                self.error(SpecError(f"defaults for '{op}' must be a mapping", d.span_of(op), code=E.BAD_SECTION))
                continue
            known = registry[op].attrs
            for k in attrs:
                if k not in known:
                    self.error(_unknown_attr(k, registry[op], attrs.key_span(k)))
            into[op] = {**into.get(op, {}), **{k: (v, attrs.span_of(k)) for k, v in attrs.items() if k in known}}

    def _load_block(self, sf: SpecFile, name, bd, span, name_span=None) -> BlockDef | None:
        if not isinstance(bd, LocDict):
            self.error(SpecError(f"block '{name}' must be a mapping", span, code=E.BAD_SECTION))
            return None
        if name in registry:
            self.error(SpecError(f"block '{name}' has the name of a built-in op", name_span or bd.span,
                                 code=E.BLOCK_IS_OP, hint="rename the block"))
        for key in bd:
            if key not in BLOCK_KEYS:
                self.error(SpecError(f"unknown key '{key}' in block '{name}'", bd.key_span(key), code=E.UNKNOWN_KEY,
                                     hint=did_you_mean(key, BLOCK_KEYS) or "allowed: " + ", ".join(BLOCK_KEYS)))
        params = {}
        pdefs = bd.get("params") or {}
        if not isinstance(pdefs, dict):
            self.error(SpecError(f"'params' of block '{name}' must map names to {{type: T, default: V}}",
                                 bd.span_of("params"), code=E.BAD_SECTION))
            pdefs = {}
        for pname, pdef in pdefs.items():
            psp = pdefs.span_of(pname)
            if not isinstance(pname, str) or not _ID.match(pname):
                self.error(SpecError(f"param name {pname!r} of block '{name}' is not an identifier",
                                     pdefs.key_span(pname), code=E.BAD_PARAM_DEF))
                continue
            if isinstance(pdef, dict):
                for k in pdef:
                    if k not in PARAM_DEF_KEYS:
                        self.error(SpecError(f"unknown key '{k}' in param '{pname}' of block '{name}'",
                                             pdef.key_span(k), code=E.BAD_PARAM_DEF,
                                             hint=did_you_mean(k, PARAM_DEF_KEYS) or
                                             "a param is {type: T, default: V, doc: TEXT}"))
                t = pdef.get("type", "any")
                if not isinstance(t, str) or t not in _PARAM_TYPES:
                    self.error(SpecError(f"unknown param type {short_repr(t)}", pdef.span_of("type"),
                                         code=E.BAD_PARAM_DEF, hint="types: " + ", ".join(_PARAM_TYPES)))
                    t = "any"
                params[pname] = (t, pdef.get("default", _NO_DEFAULT), pdef.span_of("default", psp))
            else:
                params[pname] = ("any", pdef, psp)
        inputs = bd.get("inputs")
        if inputs is None:
            inputs = ["x"]
        elif isinstance(inputs, list) and not inputs:
            self.error(SpecError(f"block '{name}' needs at least one input (omit `inputs` for one named x)",
                                 bd.span_of("inputs"), code=E.BAD_INPUT_NAME))
            inputs = ["x"]
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list):
            self.error(SpecError(f"'inputs' of block '{name}' must be a list of names, e.g. [x]",
                                 bd.span_of("inputs"), code=E.BAD_SECTION))
            inputs = ["x"]
        for i, iname in enumerate(inputs):
            if not isinstance(iname, str) or not _ID.match(iname):
                self.error(SpecError(f"input name {iname!r} of block '{name}' is not an identifier",
                                     span_of(inputs, i, bd.span_of("inputs")), code=E.BAD_INPUT_NAME))
            elif iname in inputs[:i]:
                self.error(SpecError(f"duplicate input name '{iname}' in block '{name}'",
                                     span_of(inputs, i, bd.span_of("inputs")), code=E.BAD_INPUT_NAME))
        inputs = list(dict.fromkeys(i for i in inputs if isinstance(i, str) and _ID.match(i))) or ["x"]
        defaults = {k: dict(v) for k, v in sf.defaults.items()}
        self._load_defaults(defaults, bd, "defaults")
        nodes = bd.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            self.error(SpecError(f"block '{name}' needs a non-empty 'nodes' list", bd.span, code=E.EMPTY_BLOCK))
            nodes = []
        # `span` (where the block is "defined at", in notes) is its name, as compilers point at one
        return BlockDef(name, sf, bd, name_span or bd.span, params, list(inputs), nodes, bd.get("outputs"), defaults)


# torch's constructor arguments a torch user will write, and what a spec says instead
_INFERRED = ("in_channels", "in_features", "input_size", "num_features", "normalized_shape", "embed_dim")
_TORCH_NAMES = {"out_channels": "out", "out_features": "out", "hidden_size": "out", "kernel_size": "kernel",
                "num_embeddings": "num", "embedding_dim": "dim", "num_heads": "heads", "p_drop": "p"}


def _override_text(k, v) -> str:
    """`-p k=VALUE` as a user would have typed it (VALUE in YAML flow style, cut when long)."""
    def text(x):
        if isinstance(x, bool):
            return "true" if x else "false"
        if x is None:
            return ""
        if isinstance(x, (list, tuple)):
            return "[" + ", ".join(text(i) for i in x[:20]) + (", ..." if len(x) > 20 else "") + "]"
        if isinstance(x, dict):
            return "{" + ", ".join(f"{a}: {text(b)}" for a, b in list(x.items())[:20]) + "}"
        return str(x)
    t = text(v)
    t = t if len(t) <= 80 else t[:77] + "..."
    return t if k is None else f"-p {k}={t}"


def _literal_kind(v):
    """The kind of a literal param value (None when it is an expression or null: any goes)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, (float, Fraction)):
        return "float"
    if isinstance(v, str):
        return None if "${" in v else "str"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, dict):
        return "mapping"
    return None


_COMPATIBLE = {"bool": {"bool"}, "int": {"int"}, "float": {"int", "float"}, "str": {"str"},
               "list": {"list"}, "mapping": {"mapping"}}
_KIND_NAMES = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string",
               "list": "a list", "mapping": "a mapping"}


def _unknown_attr(key, op, span) -> SpecError:
    if key in _INFERRED:
        hint = "input sizes are inferred from the input's shape, never written: remove it"
    elif _TORCH_NAMES.get(key) in op.attrs:
        hint = f"archviz calls it '{_TORCH_NAMES[key]}' (torch: {key})"
    else:
        hint = did_you_mean(key, op.attrs) or f"attributes of {op.name}: {', '.join(op.attrs) or 'none'}"
    return SpecError(f"unknown attribute '{key}' for op '{op.name}'", span, code=E.UNKNOWN_ATTR, hint=hint)
