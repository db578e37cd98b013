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
from collections import ChainMap, Counter

from archviz.codes import E
from archviz.errors import ArchvizError, MultipleErrors, Span, SpecError, SpecWarning, did_you_mean
from archviz.ir.graph import LayerGraph, Node
from archviz.ops import Attrs, registry
from archviz.ops.schema import normalise
from archviz.spec.expr import FAILED, expression_budget, has_expr, substitute
from archviz.spec.files import _ID, _NO_DEFAULT, _PARAM_TYPES, BlockDef, FileLoader, SpecFile, _unknown_attr
from archviz.spec.refs import AliasB, CallB, NodeB, RefResolver, RepeatB, Scope, Sym
from archviz.spec.losses import LOSSES
from archviz.spec.yamlload import LocDict, LocList, load_yaml

NODE_KEYS = ("id", "op", "in", "repeat", "when", "bypass", "expect", "doc", "frozen")
_FAILED = object()
OUTPUT_KEYS = ("from", "expect", "doc")
# Bound on a compiled graph, as expressions bound their exponents: a typo such as
# `repeat: 100000000` is an error in milliseconds, not minutes of expansion and GBs of memory.
MAX_LAYERS = 100_000
_REPEAT_ZERO = "0 copies are allowed only when the node's `when:` is false, e.g. `when: \"${n > 0}\"`"


class Compiler(FileLoader, RefResolver):
    def __init__(self, overrides: dict | None = None, batch: int = 1):
        self.overrides = dict(overrides or {})
        self.batch = batch
        self.errors: list[ArchvizError] = []
        self._seen: set = set()
        self.files: dict[str, SpecFile] = {}
        self.graph: LayerGraph | None = None
        self.expects: list = []       # (Sym, dims, span, dim spans, scope)
        self._pending: list = []      # (node, [Sym])

    # -- errors ------------------------------------------------------------------
    def error(self, err: ArchvizError, scope: Scope | None = None) -> None:
        err.__traceback__ = None    # a collected error keeps no frames (and the values in them) alive
        if err.follows:     # a consequence of an error reported already: one mistake, one error
            return
        if scope is not None and scope.notes:
            err.notes = err.notes + [n for n in scope.notes if n not in err.notes]
        key = (type(err), str(err.span), err.message)
        if key not in self._seen:
            self._seen.add(key)
            self.errors.append(err)

    def _eval(self, value, vars: dict, span: Span | None, scope: Scope | None = None):
        """Substitute `${...}` recursively in a value (lists too). Errors are recorded."""
        if isinstance(value, str) and has_expr(value):
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

    # -- nodes -------------------------------------------------------------------
    def expand(self, nodes, scope: Scope, prev: Sym | None, nodes_span=None) -> Sym | None:
        """Expand a node list into the graph. Returns a Sym for the last node."""
        for i, nd in enumerate(nodes):
            nsp = nodes.span_of(i) if isinstance(nodes, LocList) else None
            if not isinstance(nd, LocDict):
                self.error(SpecError("a node is a mapping {id: ..., op: ..., ...}", nsp, code=E.NODE_NOT_MAPPING), scope)
                continue
            try:
                prev = self._node(nd, scope, prev)
            except ArchvizError as e:
                self.error(e, scope)
        return prev

    def _node(self, nd: LocDict, scope: Scope, prev: Sym | None) -> Sym | None:
        nid = nd.get("id")
        if not isinstance(nid, str) or not _ID.match(nid):
            raise SpecError("a node needs an 'id' that is an identifier (letters, digits, _)"
                            if nid is None else f"node id {nid!r} is not an identifier (letters, digits, _; "
                            "no dots: ids of expanded blocks are joined with dots for you)",
                            nd.span_of("id", nd.span), code=E.BAD_NODE_ID)
        if nid in scope.names:
            b = scope.block
            if b is not None and nid in b.inputs and nid not in scope.name_spans:
                implicit = b.data.get("inputs") is None
                raise SpecError(f"node id '{nid}' is the name of an input of block '{b.name}'"
                                + (" (a block that declares no `inputs` reads one input named x)" if implicit else ""),
                                nd.span_of("id"), code=E.DUPLICATE_NODE,
                                hint="rename the node" + (", or name the block's input: `inputs: [image]`"
                                                          if implicit else ""))
            raise SpecError(f"duplicate node id '{nid}'", nd.span_of("id"), code=E.DUPLICATE_NODE,
                            notes=[f"first defined at {scope.name_spans.get(nid)}"])
        scope.name_spans[nid] = nd.span_of("id")
        try:
            return self._node_body(nd, nid, scope, prev)
        except ArchvizError:
            # The node is broken, but its name stays bound (to its input), so the nodes that
            # read it do not add "unknown node" errors of their own.
            if nid not in scope.names:
                scope.names[nid] = AliasB(prev, broken=True) if prev else NodeB(scope.prefix + nid, "?")
            raise

    def _node_body(self, nd: LocDict, nid: str, scope: Scope, prev: Sym | None) -> Sym | None:
        opname = nd.get("op")
        if not isinstance(opname, str):
            raise SpecError(f"node '{nid}' needs an 'op'", nd.span, code=E.MISSING_OP)
        kind, target = self._lookup_op(opname, scope)
        if kind is None:
            cands = list(registry) + list(scope.file.blocks) + \
                [f"{ns}.{b}" for ns, f in scope.file.imports.items() for b in f.blocks]
            err = SpecError(f"unknown op '{opname}'", nd.span_of("op"), code=E.UNKNOWN_OP,
                            hint=did_you_mean(opname, cands) or "run `archviz ops` for the list of ops")
            err.follows = opname.split(".")[0] in scope.file.failed_imports and "." in opname
            raise err
        ins = self._inputs(nd, scope, prev, kind, target)
        frozen = nd.get("frozen", False)
        if not isinstance(frozen, bool):
            raise SpecError(f"'frozen' must be true or false, got {frozen!r}", nd.span_of("frozen"), code=E.BAD_ATTR)
        through = self._bypass_index(nd, ins, kind, target)
        n, var = self._repeat(nd, scope)
        if n == 0:      # `repeat: 0` with `when:` false: the node is absent, its name its input
            sp = nd.span_of("repeat")
            try:
                off = "when" in nd and not self._when(nd, nid, scope.vars, scope, ins)
            except ArchvizError:
                off = False
            if not off:
                raise SpecError("repeat count must be an integer >= 1, got 0", sp, code=E.BAD_REPEAT,
                                hint=_REPEAT_ZERO)
            self._need_bypass(nd, nid, ins, through)
            scope.names[nid] = AliasB(ins[through or 0], bypassed=nid)
            return Sym(binding=scope.names[nid], text=nid, span=nd.span_of("id"))
        copies = []
        cur = ins
        budget = _CopyBudget(self, nd, scope, var, n)
        for k in range(n):
            before = len(self.graph)
            # an overlay, not a copy: copying every param for every copy is quadratic
            vars_k = ChainMap({var: k}, scope.vars) if var else scope.vars
            cid = f"{nid}.{k}" if n > 1 or "repeat" in nd else nid
            if "when" in nd and not self._when(nd, nid, vars_k, scope, cur):
                self._need_bypass(nd, nid, cur, through)
                b = AliasB(cur[through or 0], bypassed=cid)   # the name stands for the input it passes
            elif kind == "op":
                b = self._primitive(nd, scope, vars_k, cid, target, cur)
            else:
                b = self._call(nd, scope, vars_k, cid, target, cur)
            copies.append(b)
            cur = [Sym(binding=b, text=cid)] + cur[1:]     # the next copy reads this one; other inputs stay
            at_least = budget.expanded(k, len(self.graph) - before, len(self.graph))
            if at_least > MAX_LAYERS:
                at_least -= len(self.graph.inputs)      # the graph's inputs are nodes, not layers
                # refused in milliseconds, not after minutes of expansion and GBs of memory
                raise SpecError(f"'{nid}' repeats {n:,} copies: the spec would expand to at least {at_least:,} "
                                f"layers, more than {MAX_LAYERS:,}", nd.span_of("repeat", nd.span), code=E.TOO_MANY_LAYERS,
                                hint="check this `repeat` count (and the params it is computed from)")
        binding = RepeatB(copies) if "repeat" in nd else copies[0]
        real = sum(not isinstance(b, AliasB) for b in copies)
        if "repeat" in nd and real:
            self.graph.repeats[scope.prefix + nid] = real
        scope.names[nid] = binding
        out = Sym(binding=binding, text=nid, span=nd.span_of("id"))
        if "expect" in nd and not isinstance(copies[-1], AliasB):    # a bypassed node asserts nothing
            self._add_expect(out, nd["expect"], nd.span_of("expect"), scope)
        return out

    def _when(self, nd, nid, vars_k, scope, ins) -> bool:
        """`when:` of one copy (it may use the repeat variable); false = bypassed."""
        sp = nd.span_of("when")
        w = self._eval(nd["when"], vars_k, sp, scope)
        if not isinstance(w, bool):
            raise SpecError(f"'when' must be true or false, got {w!r}", sp, code=E.BAD_WHEN)
        if not w and not ins:
            raise SpecError(f"node '{nid}' is bypassed (when: false) but has no input to stand for it",
                            sp, code=E.BAD_WHEN)
        return w

    def _bypass_index(self, nd, ins, kind, target) -> int | None:
        """The input slot a bypassed node passes, from `bypass:` (a port name of a mapping
        `in:`, or one of the references written in `in:`), or None when it is not given."""
        if "bypass" not in nd:
            return None
        sp = nd.span_of("bypass")
        if "when" not in nd:
            raise SpecError("`bypass` names the input a node passes when its `when:` is false; this node "
                            "has no `when:`", sp, code=E.BAD_BYPASS)
        want, raw = nd["bypass"], nd.get("in")
        if isinstance(raw, dict):
            slots = list((target.input_ports if kind == "op" else target.inputs) or ())
            for p, ref in raw.items():
                if want in (p, ref) and p in slots:
                    return slots.index(p)
            names = [f"{p} ({ref})" for p, ref in raw.items()]
        else:
            names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else \
                [s.text for s in ins]
            if want in names:
                return names.index(want)
        raise SpecError(f"`bypass: {want}` is not one of the node's inputs", sp, code=E.BAD_BYPASS,
                        hint="inputs: " + ", ".join(map(str, names)))

    def _need_bypass(self, nd, nid, ins, through) -> None:
        if len(ins) > 1 and through is None:
            written = nd.get("in")
            first = list(written)[0] if isinstance(written, (list, dict)) and written else "x"
            raise SpecError(f"node '{nid}' has {len(ins)} inputs and is bypassed (when: false): say which "
                            "input it passes", nd.span_of("when"), code=E.BAD_BYPASS,
                            hint=f"add `bypass: {first}` (it used to pass the first input silently, "
                                 "which drops the others)")

    def _lookup_op(self, opname: str, scope: Scope):
        if opname in registry and opname != "input":
            return "op", registry[opname]
        if opname in scope.file.blocks:
            return "block", scope.file.blocks[opname]
        if "." in opname:
            ns, bname = opname.split(".", 1)
            f = scope.file.imports.get(ns)
            if f is not None and bname in f.blocks:
                return "block", f.blocks[bname]
        return None, None

    def _inputs(self, nd, scope, prev, kind, target) -> list:
        raw = nd.get("in")
        sp = nd.span_of("in")
        if raw is None:
            if prev is None:
                raise SpecError(f"node '{nd['id']}' has no input: give it `in:` (there is no previous node)",
                                nd.span, code=E.NO_INPUT)
            return [prev]
        if isinstance(raw, str):
            s = self.parse_ref(raw, scope, sp)
            return [s] if s else []
        if isinstance(raw, list):
            out = []
            for i, r in enumerate(raw):
                s = self.parse_ref(r, scope, raw.span_of(i))
                if s:
                    out.append(s)
            return out
        if isinstance(raw, dict):
            ports = (target.input_ports if kind == "op" else target.inputs) or ()
            for k in raw:
                if k not in ports:
                    raise SpecError(f"'{nd['op']}' has no input port '{k}'", raw.key_span(k), code=E.BAD_PORTS,
                                    hint="input ports: " + (", ".join(ports) or "none (use a list)"))
            missing = [p for p in ports if p not in raw]
            if kind == "block" and missing:
                raise SpecError(f"block '{target.name}' needs input(s) {', '.join(missing)}", sp, code=E.BAD_PORTS)
            return self._bind_ports(nd, raw, ports, target, scope) if kind == "op" else \
                [s for s in (self.parse_ref(raw[p], scope, raw.span_of(p)) for p in ports) if s]
        raise SpecError("`in` is a node name, a list of names, or a mapping of port to name", sp, code=E.BAD_REFERENCE)

    def _bind_ports(self, nd, raw, ports, op, scope) -> list:
        """Named inputs by slot: ins[i] is port ports[i].  Required ports (the first
        `min_inputs`) must be given, and an optional port cannot be left out before a given
        one: a slot is never filled by the next port's input, nor by a guess (torch's
        MultiheadAttention has no default key for a given value)."""
        required = ports[:op.min_inputs]
        need = [p for p in required if p not in raw]
        if need:
            given = ", ".join(p for p in ports if p in raw)
            raise SpecError(f"'{op.name}' needs input port{'s' if len(need) > 1 else ''} "
                            f"{', '.join(repr(p) for p in need)} (given: {given or 'none'})", nd.span_of("in"),
                            code=E.BAD_PORTS, hint=f"input ports, in order: {', '.join(ports)}; "
                            f"required: {', '.join(required)}")
        last = max((i for i, p in enumerate(ports) if p in raw), default=-1)
        for p in ports[:last]:
            if p not in raw:
                later = [q for q in ports[ports.index(p) + 1:] if q in raw]
                raise SpecError(f"'{op.name}' input port '{later[0]}' is given without '{p}'",
                                raw.key_span(later[0]), code=E.BAD_PORTS,
                                hint=f"give '{p}' too (input ports, in order: {', '.join(ports)})")
        syms = [self.parse_ref(raw[p], scope, raw.span_of(p)) for p in ports[:last + 1]]
        return [] if None in syms else syms     # a reference that failed (reported): no arity error on top

    def _repeat(self, nd, scope) -> tuple:
        if "repeat" not in nd:
            return 1, None
        r = nd["repeat"]
        sp = nd.span_of("repeat")
        var = None
        if isinstance(r, dict):
            var = r.get("var")
            if var is not None and (not isinstance(var, str) or not _ID.match(var)):
                raise SpecError("repeat `var` must be an identifier", r.span_of("var"), code=E.BAD_REPEAT)
            for k in r:
                if k not in ("n", "var"):
                    raise SpecError(f"unknown key '{k}' in repeat", r.key_span(k), code=E.BAD_REPEAT,
                                    hint="repeat: N or repeat: {n: N, var: NAME}")
            sp = r.span_of("n", sp)
            r = r.get("n")
        n = self._eval(r, scope.vars, sp, scope)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or (n == 0 and "when" not in nd):
            raise SpecError(f"repeat count must be an integer >= 1, got {n!r}", sp, code=E.BAD_REPEAT,
                            hint=_REPEAT_ZERO if n == 0 else None)
        if n > MAX_LAYERS:
            raise SpecError(f"repeat count {n:,} is out of bounds (at most {MAX_LAYERS:,})", sp, code=E.BAD_REPEAT)
        return n, var

    def _attr_values(self, nd, vars_k, scope, skip=NODE_KEYS):
        """Evaluated attributes and their spans; an attribute whose expression failed (the
        error is recorded) is left out of `raw` and named in `spans` only."""
        raw, spans = {}, {}
        for k, v in nd.items():
            if k in skip:
                continue
            spans[k] = nd.span_of(k)
            raw[k] = self._try_eval(v, vars_k, spans[k], scope, default=_NO_DEFAULT)
            if raw[k] is _NO_DEFAULT:
                del raw[k]
        return raw, spans

    def _primitive(self, nd, scope, vars_k, cid, op, ins) -> NodeB:
        if len(self.graph) >= MAX_LAYERS:
            raise SpecError(f"the spec expands to more than {MAX_LAYERS:,} layers", nd.span_of("id", nd.span),
                            code=E.TOO_MANY_LAYERS, hint="check the `repeat` counts of this node and the blocks around it")
        raw, spans = self._attr_values(nd, vars_k, scope)
        failed = {k for k in spans if k not in raw}     # expression errors, reported already
        for k in [k for k in spans if k not in op.attrs]:   # the caret goes under the key
            self.error(_unknown_attr(k, op, nd.key_span(k)), scope)
            raw.pop(k, None)
        for k, (v, sp) in scope.defaults.get(op.name, {}).items():
            if k not in raw and k not in failed:
                spans[k] = sp
                v = self._try_eval(v, vars_k, sp, scope, default=_NO_DEFAULT)
                if v is _NO_DEFAULT:
                    failed.add(k)
                else:
                    raw[k] = v
        desc = f"'{nd['id']}' ({op.name})"
        attrs, errs = normalise(op, raw, spans, nd.span, desc)
        for e in errs:
            if e.code == E.MISSING_ATTR and any(e.message.endswith(f"attribute '{k}'") for k in failed):
                continue    # "missing required attribute" would only repeat that error
            self.error(e, scope)
        frozen = nd.get("frozen", False)
        gid = scope.prefix + cid
        node = Node(id=gid, op=op.name, attrs=attrs, scope=scope.path, span=nd.span_of("op", nd.span),
                    attr_spans=spans, notes=list(scope.notes), frozen=bool(frozen))
        node.meta["doc"] = nd.get("doc")
        raw_in = nd.get("in")
        node.input_spans = [s.span or nd.span for s in ins]
        if isinstance(raw_in, dict):
            node.input_ports = list((op.input_ports or ())[:len(ins)])
        try:
            self.graph.add_node(node)
        except ArchvizError as e:
            self.error(e, scope)
        self._pending.append(("node", node, list(ins)))
        return NodeB(gid, op.name)

    def _call(self, nd, scope, vars_k, cid, block: BlockDef, ins) -> CallB:
        call_id = scope.prefix + cid
        here = (os.path.realpath(block.file.path), block.name)
        if here in scope.blocks:
            chain = " -> ".join(b for _, b in scope.blocks + (here,))
            self.error(SpecError(f"block '{block.name}' calls itself: {chain}", nd.span_of("op"), code=E.RECURSIVE_BLOCK,
                                 hint="a block cannot contain a call of itself, directly or through others"), scope)
            return self._stub_call(block, ins, call_id)
        raw, spans = self._attr_values(nd, vars_k, scope)
        bvars = ChainMap({}, block.file.params)      # the call's params over its file's
        complete = True
        for k in raw:
            if k not in block.params:
                self.error(SpecError(f"block '{block.name}' has no param '{k}'", nd.key_span(k), code=E.UNKNOWN_ATTR,
                                     hint=did_you_mean(k, block.params) or
                                     ("params: " + ", ".join(block.params) if block.params else "it takes no params")),
                           scope)
        for pname, (ptype, default, psp) in block.params.items():
            if pname in raw:
                v = raw[pname]
            elif default is _NO_DEFAULT:
                complete = False
                if pname in spans:      # its expression failed: that error is reported already
                    continue
                self.error(SpecError(f"'{nd['id']}' calls block '{block.name}' without its required param "
                                     f"'{pname}'", nd.span, code=E.MISSING_ATTR,
                                     hint=f"add {pname}: VALUE ({ptype}) to the call"), scope)
                continue
            else:
                v = self._try_eval(default, bvars, psp, scope, default=FAILED)   # FAILED: reads of it add no error
            want = _PARAM_TYPES.get(ptype, object)
            if v is not None and v is not FAILED and (not isinstance(v, want) or
                                                      (ptype in ("int", "float") and isinstance(v, bool))):
                self.error(SpecError(f"param '{pname}' of block '{block.name}' must be {ptype}, got {v!r}",
                                     spans.get(pname, nd.span), code=E.BAD_ATTR), scope)
                complete = False
            bvars[pname] = v
        if len(ins) != len(block.inputs):
            self.error(SpecError(f"block '{block.name}' takes {len(block.inputs)} input(s) "
                                 f"({', '.join(block.inputs)}), got {len(ins)}", nd.span_of("in", nd.span),
                                 code=E.INPUT_COUNT), scope)
            complete = complete and bool(ins)
        if not complete:    # expanding the body would only repeat the problem as other errors
            return self._stub_call(block, ins, call_id)
        self.graph.calls[call_id] = block.name
        callee = Scope(file=block.file, prefix=call_id + ".", vars=bvars, defaults=block.defaults,
                       notes=[f"'{call_id}' calls block '{block.name}' defined at {block.span}"] + scope.notes,
                       path=scope.path + (call_id,), blocks=scope.blocks + (here,), block=block)
        for i, name in enumerate(block.inputs):   # missing inputs (reported above) read the last one given
            callee.names[name] = AliasB(ins[min(i, len(ins) - 1)])
        first = Sym(binding=callee.names[block.inputs[0]], text=block.inputs[0]) if ins else None
        last = self.expand(block.nodes, callee, first)
        outs = {}
        od = block.outputs
        if od is None:
            outs["out"] = last
        elif isinstance(od, str):
            outs["out"] = self.parse_ref(od, callee, block.data.span_of("outputs"))
        elif isinstance(od, dict):
            for port, ref in od.items():
                outs[port] = self.parse_ref(ref, callee, od.span_of(port))
        else:
            self.error(SpecError("block outputs map port names to node names", block.data.span_of("outputs"),
                                 code=E.BAD_SECTION), scope)
        outs = {k: v for k, v in outs.items() if v is not None}
        if not outs:
            outs["out"] = first
        return CallB(block, outs, call_id)

    def _stub_call(self, block: BlockDef, ins, call_id) -> CallB:
        """A call that could not be expanded (its error is reported): every declared output
        stands for the first input, so references to it add no errors of their own."""
        ports = list(block.outputs) if isinstance(block.outputs, dict) and block.outputs else ["out"]
        src = ins[0] if ins else Sym(binding=NodeB(call_id, "?"), text=call_id)
        return CallB(block, {p: src for p in ports}, call_id)

class _CopyBudget:
    """A lower bound on the layers a repeat will have, from the copies expanded so far, so a
    repeat that cannot fit the layer budget is refused after a few copies, never wrongly.

    Copies whose `when:` and attribute values are equal expand to the same number of
    layers (a block sees only its params), so once the first copies show the repeat may not
    fit, every copy's values are evaluated (cheap: no expansion) and the copies still to
    come are counted at the sizes of the equal copies already expanded (unknown: 0)."""

    def __init__(self, compiler, nd, scope, var, n):
        self.c, self.nd, self.scope, self.var, self.n = compiler, nd, scope, var, n
        self.grown: list = []           # layers added by each copy so far
        self.fewest = None              # their minimum, kept as they come (min() of the list was quadratic)
        self.keys = None                # per copy, what decides its size (None: unknown)
        self.sizes: dict = {}           # key -> layers of a copy with that key
        self.left = None                # key -> copies still to expand

    def expanded(self, k: int, grew: int, now: int) -> int:
        self.grown.append(grew)
        self.fewest = grew if self.fewest is None else min(self.fewest, grew)
        if self.keys is None:
            if not k or now + self.fewest * (self.n - k - 1) <= MAX_LAYERS:
                return now          # fits even if the rest are like the smallest so far
            self.keys = self._keys()
            self.sizes = {self.keys[j]: g for j, g in enumerate(self.grown) if self.keys[j] is not None}
            self.left = Counter(key for key in self.keys[k + 1:] if key is not None)
        else:
            key = self.keys[k]
            if key is not None:
                self.sizes[key] = grew
                self.left[key] -= 1
        return now + sum(self.sizes[key] * m for key, m in self.left.items() if key in self.sizes)

    def _keys(self) -> list:
        items = [(a, v) for a, v in self.nd.items() if a not in NODE_KEYS or a == "when"]
        if not self.var:
            return [0] * self.n         # no index: every copy is the same
        keys = []
        with expression_budget(None):   # not charged: these values are computed again when used
            for k in range(self.n):
                vars_k = ChainMap({self.var: k}, self.scope.vars)
                try:
                    keys.append(repr([(a, self.c._eval(v, vars_k, None)) for a, v in items]))
                except ArchvizError:
                    keys.append(None)
        return keys


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
