"""Compile a spec file into a LayerGraph: load, validate, expand blocks / repeat / when /
`${...}`, resolve references.  Spec problems are collected, not raised one at a time,
so `archviz validate` reports all of them in one run.

References are resolved lazily: while the node list is expanded every `in:` becomes a
:class:`Sym` (a name in a scope); all of them are resolved at the end.  That lets a node
read a later node (a cycle is then reported by the graph's lint, not as an unknown
name) and lets a bypassed node (`when: false`) stand for its own input.
"""
from __future__ import annotations

import os

from archviz.codes import E
from archviz.errors import ArchvizError, MultipleErrors, Span, SpecError, SpecWarning, did_you_mean
from archviz.ir.graph import LayerGraph, Node
from archviz.ops import Attrs, registry
from archviz.spec.bodies import BodyCompiler
from archviz.spec.calls import BlockCaller
from archviz.spec.expr import expression_budget, has_expr, substitute
from archviz.spec.files import _ID, OUTPUT_KEYS, FileLoader, SpecFile
from archviz.spec.losses import LOSSES
from archviz.spec.nodes import NodeExpander
from archviz.spec.plainnodes import PlainNodes
from archviz.spec.ports import PortBinder
from archviz.spec.refs import NodeB, RefResolver, Scope, Sym
from archviz.spec.shapes import ShapeReader
from archviz.spec.share import WeightSharer
from archviz.spec.yamlload import LocDict, LocList, load_yaml

_FAILED = object()


class Compiler(FileLoader, RefResolver, NodeExpander, PlainNodes, PortBinder, BlockCaller, BodyCompiler, ShapeReader, WeightSharer):
    """One compilation: the files it loaded, the graph it builds and the problems it found.
    Its methods live with their concept: files.py (files, params, blocks), refs.py
    (references), nodes.py (node lists, repeat, primitive ops), ports.py (inputs, ports,
    bypass), plainnodes.py (the plain node in one step), calls.py (block calls), shapes.py (`shape(x)` in expressions), share.py
    (`share:`), bodies.py (an attribute that is a sub-network: an expert), budget.py (the layer budget); this module collects the
    problems, evaluates `${...}` and reads the spec's inputs, outputs and loss."""

    def __init__(self, overrides: dict | None = None, batch: int = 1):
        self.overrides = dict(overrides or {})
        self.batch = batch
        self.errors: list[ArchvizError] = []
        self._seen: set = set()
        self.files: dict[str, SpecFile] = {}
        self.graph: LayerGraph | None = None
        self.expects: list = []       # (Sym, dims, span, dim spans, scope)
        self._pending: list = []      # (node, [Sym])
        self._node_syms: dict = {}    # graph id -> its inputs as [Sym] (shape reads resolve them early)
        self._shape_memo: dict = {}   # graph id -> output shapes, for shape reads
        self._shares: list = []       # `share:` of each node copy (archviz.spec.share)
        self._attrs_memo: dict = {}   # (op, attribute values) -> the Attrs its layers share
        self._plain_ops: dict = {}    # op name -> (op, the keys of its plain nodes) or None (plainnodes.py)
        self._plain_forms: dict = {}  # (op name, a node's keys) -> (op, attribute keys) or False (plainnodes.py)
        self._plain_attrs_memo: dict = {}   # (op, keys, values, types) -> Attrs or not plain (plainnodes.py)
        self._out_refs: dict = {}     # graph id -> Ref(id, "out"), checked (plainnodes.py)
        self._has_out: dict = {}      # (op name, id(Attrs)) -> (Attrs, has output `out`) (plainnodes.py)

    # -- errors ------------------------------------------------------------------
    def error(self, err: ArchvizError, scope: Scope | None = None) -> None:
        err.__traceback__ = None    # a collected error keeps no frames (and the values in them) alive
        if err.follows and self.errors:     # a consequence of an error reported already: one mistake,
            return                          # one error (but never none: then it is the first)
        if scope is not None and scope.notes:
            err.notes = err.notes + [n for n in scope.notes if n not in err.notes]
        key = (type(err), str(err.span), err.message)
        if key not in self._seen:
            self._seen.add(key)
            self.errors.append(err)

    def _eval(self, value, vars: dict, span: Span | None, scope: Scope | None = None):
        """Substitute `${...}` recursively in a value (lists too). Errors are recorded."""
        if isinstance(value, str) and has_expr(value):
            with self.reading(scope):
                return substitute(value, vars, span)
        if isinstance(value, list):
            out = []
            for i, v in enumerate(value):
                sp = value.spans[i] if isinstance(value, LocList) and i < len(value.spans) else span
                out.append(self._eval(v, vars, sp, scope))
            return out
        if isinstance(value, dict):
            return {k: self._eval(v, vars, value.spans.get(k, span) if isinstance(value, LocDict)
                                  else span, scope) for k, v in value.items()}
        return value

    def _try_eval(self, value, vars, span, scope=None, default=None):
        try:
            return self._eval(value, vars, span, scope)
        except ArchvizError as e:
            self.error(e, scope)
            return default

    # -- compile -----------------------------------------------------------------
    def compile(self, path: str) -> LayerGraph:
        with expression_budget():
            return self._compile(path)

    def _compile(self, path: str) -> LayerGraph:
        sf = self.load_file(path, top=True)
        if sf is None:
            raise MultipleErrors(self.errors) if len(self.errors) > 1 else self.errors[0]
        data = sf.data
        g = LayerGraph(str(data.get("name") or os.path.splitext(os.path.basename(path))[0]),
                       str(data.get("doc") or ""))
        g.source = path
        g.params = dict(sf.params)
        g.loss = self._loss(data)
        self.graph = g
        scope = Scope(file=sf, prefix="", vars=dict(sf.params), defaults=sf.defaults, notes=[])
        inputs = data.get("inputs")
        if not isinstance(inputs, dict) or not inputs:
            self.error(SpecError("a spec needs 'inputs': a mapping of name to {shape: [C, H, W]}",
                                 data.span_of("inputs") if "inputs" in data else data.span, code=E.NO_INPUTS))
            inputs = {}
        first = None
        for name, idef in inputs.items():
            isp = inputs.span_of(name)
            if not _ID.match(str(name)):
                self.error(SpecError(f"input name '{name}' is not an identifier", inputs.key_span(name), code=E.BAD_INPUT_NAME))
                continue
            shape = idef.get("shape") if isinstance(idef, dict) else idef
            ssp = idef.span_of("shape") if isinstance(idef, LocDict) else isp
            if isinstance(idef, dict):
                for k in idef:
                    if k not in ("shape", "doc", "dtype"):
                        self.error(SpecError(f"unknown key '{k}' in input '{name}'", idef.key_span(k),
                                             code=E.UNKNOWN_KEY, hint=did_you_mean(k, ("shape", "doc", "dtype"))))
            shape = self._try_eval(shape, scope.vars, ssp, scope, default=_FAILED)
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                      and d > 0 for d in shape):
                if shape is not _FAILED:    # (a failed expression is reported already)
                    self.error(SpecError(f"input '{name}' needs a shape: a list of positive integers without "
                                         "the batch dimension, e.g. [3, 224, 224]", ssp, code=E.BAD_INPUT_SHAPE))
                scope.names[name] = NodeB(name, "input")    # still a name: no "unknown node" cascade
                first = first or Sym(binding=scope.names[name], text=name)
                continue
            node = Node(id=name, op="input", attrs=Attrs(shape=tuple(shape), batch=self.batch), span=isp)
            g.add_node(node)
            g.inputs[name] = name
            scope.names[name] = NodeB(name, "input")
            scope.name_spans[name] = inputs.key_span(name)
            if first is None:
                first = Sym(binding=scope.names[name], text=name)
        if first is None and self.errors:   # the inputs are broken (reported): no cascade of "no input"
            first = Sym(binding=NodeB("?", "?"), text="?")
        nodes = data.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            self.error(SpecError("a spec needs a non-empty 'nodes' list", data.span_of("nodes")
                                 if "nodes" in data else data.span, code=E.NO_NODES))
            nodes = []
        last = self.expand(nodes, scope, first, nodes_span=data.span_of("nodes"))
        self._outputs(data, scope, last)
        self._resolve_pending()
        self._resolve_shares()
        if not self.errors:
            g.connect()
            for e in g.lint(registry):
                self.error(e)
        if not self.errors:
            self._unreached(g)
        if self.errors:
            raise MultipleErrors(self.errors) if len(self.errors) > 1 else self.errors[0]
        return g

    def _unreached(self, g: LayerGraph) -> None:
        """Warn about nodes whose output reaches no graph output (counted all the same: the
        lowered module holds their weights and computes them)."""
        dead = g.unreached()
        if not dead:
            return
        inputs = [k for k in dead if g.nodes[k].is_input]
        layers = [k for k in dead if not g.nodes[k].is_input]
        if layers:
            shown = ", ".join(layers[:8]) + (f", … ({len(layers)} in all)" if len(layers) > 8 else "")
            g.warnings.append(SpecWarning(
                f"{len(layers)} layer(s) reach no output: {shown}", g.nodes[layers[0]].span, code=E.UNREACHABLE,
                hint="they are still counted in params and MACs (the lowered module holds and runs them); "
                     "a bypassed node (`when: false`) or a reference may have cut them off"))
        for k in inputs:
            g.warnings.append(SpecWarning(f"input '{k}' is not used by any output", g.nodes[k].span,
                                          code=E.UNUSED_INPUT))

    def _outputs(self, data, scope, last):
        g = self.graph
        outs = data.get("outputs")
        if outs is None:
            if last is not None:
                self._pending_out("out", last)
            return
        if not isinstance(outs, dict) or not outs:
            self.error(SpecError("'outputs' must map output names to node references", data.span_of("outputs"),
                                 code=E.BAD_SECTION))
            return
        for name, od in outs.items():
            osp = outs.span_of(name)
            g.output_spans[name] = outs.key_span(name)
            if isinstance(od, dict):
                for k in od:
                    if k not in OUTPUT_KEYS:
                        self.error(SpecError(f"unknown key '{k}' in output '{name}'", od.key_span(k), code=E.UNKNOWN_KEY,
                                             hint=did_you_mean(k, OUTPUT_KEYS) or "an output is {from: NODE, expect: [...]}"))
                src, ssp = od.get("from"), od.span_of("from")
                if "expect" in od:
                    self._add_expect(None, od["expect"], od.span_of("expect"), scope, out_name=name)
            else:
                src, ssp = od, osp
            if not isinstance(src, str):
                self.error(SpecError(f"output '{name}' needs `from: NODE`", osp, code=E.OUTPUT_WITHOUT_FROM))
                continue
            sym = self.parse_ref(src, scope, ssp)
            if sym is not None:
                self._pending_out(name, sym)

    def _pending_out(self, name, sym):
        self._pending.append(("output", name, sym))

    def _add_expect(self, sym, raw, span, scope, out_name=None):
        dims = self._try_eval(raw, scope.vars, span, scope)
        if dims is None:
            return
        if not isinstance(dims, list):
            self.error(SpecError("`expect` is a shape without the batch dimension, e.g. [64, 56, 56]",
                                 span, code=E.BAD_EXPECT), scope)
            return
        spans = raw.spans if isinstance(raw, LocList) else []
        self.expects.append((sym, out_name, dims, span, spans, list(scope.notes)))

    def _loss(self, data):
        """The spec's `loss:`, one of LOSSES (spaces around + are allowed), or None."""
        if "loss" not in data:
            return None
        raw = data["loss"]
        name = "".join(raw.split()) if isinstance(raw, str) else raw
        if name not in LOSSES:
            self.error(SpecError(f"unknown loss {raw!r}", data.span_of("loss"), code=E.BAD_SECTION,
                                 hint="losses: " + ", ".join(LOSSES)))
            return None
        return name


def compile_spec(path: str, overrides: dict | None = None, batch: int = 1, allow_import=None) -> LayerGraph:
    """`allow_import`: paths (folders or files) imports may read besides the spec's own folder
    tree and the bundled library; None: the CLI's --allow-import (none in a program)."""
    c = Compiler(overrides, batch)
    c.allow_import = allow_import
    return c.compile(path)


def parse_override(text: str):
    """Parse NAME=VALUE from the CLI; VALUE is read as a YAML scalar or flow list."""
    if "=" not in text:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), load_yaml(v, "<-p>") if v.strip() else ""
