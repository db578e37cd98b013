"""Expanding a node list: each node's op (a registered op or a block), its `repeat:`
copies, `when:` and `expect:`, and the graph nodes of primitive ops with their attributes.
"""
from __future__ import annotations

from collections import ChainMap

from archviz.codes import E
from archviz.errors import ArchvizError, SpecError, did_you_mean
from archviz.ir.graph import INPUT_OP, Node
from archviz.ops import registry
from archviz.ops.schema import normalise
from archviz.spec import budget
from archviz.spec.files import _ID, _NO_DEFAULT, NODE_KEYS, _unknown_attr
from archviz.spec.refs import AliasB, NodeB, RepeatB, Scope, Sym
from archviz.spec.yamlload import LocDict, LocList

_REPEAT_HINT = "repeat: N, repeat: {n: N, var: NAME} or repeat: {rows: [{name: value, ...}, ...], var: NAME}"


class NodeExpander:
    """Mixin of :class:`archviz.spec.compile.Compiler`: expanding nodes into the graph."""

    def expand(self, nodes, scope: Scope, prev: Sym | None, nodes_span=None) -> Sym | None:
        """Expand a node list into the graph. Returns a Sym for the last node."""
        for i, nd in enumerate(nodes):
            if not isinstance(nd, LocDict):
                nsp = nodes.span_of(i) if isinstance(nodes, LocList) else None
                self.error(SpecError("a node is a mapping {id: ..., op: ..., ...}", nsp, code=E.NODE_NOT_MAPPING), scope)
                continue
            plain = self._plain(nd, scope, prev)      # most nodes of a large graph: one step
            if plain is not None:
                prev = plain
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
        if kind == "op" and not _COPY_KEYS.intersection(nd):
            # one copy of a primitive op, read as it is (most nodes of a large graph): the loop
            # below without the copy bookkeeping it would do for this one copy
            b = scope.names[nid] = self._primitive(nd, scope, scope.vars, nid, target, ins)
            return Sym(binding=b, text=nid, span=nd.span_of("id"))
        through = self._bypass_index(nd, ins, kind, target)
        n, var, rows = self._repeat(nd, scope)
        if n == 0:      # `repeat: 0` (or no rows): the node is absent, its name stands for its input
            self._need_bypass(nd, nid, ins, through)
            scope.names[nid] = AliasB(ins[through or 0], bypassed=nid)
            return Sym(binding=scope.names[nid], text=nid, span=nd.span_of("id"))
        copies = []
        cur = ins
        bound = budget.CopyBudget(self, nd, scope, var, n, rows)
        for k in range(n):
            before = len(self.graph)
            # an overlay, not a copy: copying every param for every copy is quadratic
            own = {**(rows[k] if rows else {}), **({var: k} if var else {})}
            vars_k = ChainMap(own, scope.vars) if own else scope.vars
            cid = f"{nid}.{k}" if n > 1 or "repeat" in nd else nid
            if "when" in nd and not self._when(nd, nid, vars_k, scope, cur):
                self._need_bypass(nd, nid, cur, through)
                b = AliasB(cur[through or 0], bypassed=cid)   # the name stands for the input it passes
            elif kind == "op":
                b = self._primitive(nd, scope, vars_k, cid, target, cur)
            else:
                b = self._call(nd, scope, vars_k, cid, target, cur)
            copies.append(b)
            self._share(nd, scope, vars_k, b)
            cur = [Sym(binding=b, text=cid)] + cur[1:]     # the next copy reads this one; other inputs stay
            # the graph's inputs are nodes, not layers
            at_least = bound.expanded(k, len(self.graph) - before, len(self.graph)) - len(self.graph.inputs)
            if at_least > budget.MAX_LAYERS:
                # refused in milliseconds, not after minutes of expansion and GBs of memory
                raise SpecError(f"'{nid}' repeats {n:,} copies: the spec would expand to at least {at_least:,} "
                                f"layers, more than {budget.MAX_LAYERS:,}", nd.span_of("repeat", nd.span), code=E.TOO_MANY_LAYERS,
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


    def _lookup_op(self, opname: str, scope: Scope):
        if opname in registry and opname != INPUT_OP:
            return "op", registry[opname]
        if opname in scope.file.blocks:
            return "block", scope.file.blocks[opname]
        if "." in opname:
            ns, bname = opname.split(".", 1)
            f = scope.file.imports.get(ns)
            if f is not None and bname in f.blocks:
                return "block", f.blocks[bname]
        return None, None

    def _repeat(self, nd, scope) -> tuple:
        """(copies, the index variable or None, the rows of a table or None)."""
        if "repeat" not in nd:
            return 1, None, None
        r = nd["repeat"]
        sp = nd.span_of("repeat")
        var = rows = None
        if isinstance(r, dict):
            var = r.get("var")
            if var is not None and (not isinstance(var, str) or not _ID.match(var)):
                raise SpecError("repeat `var` must be an identifier", r.span_of("var"), code=E.BAD_REPEAT)
            for k in r:
                if k not in ("n", "var", "rows"):
                    raise SpecError(f"unknown key '{k}' in repeat", r.key_span(k), code=E.BAD_REPEAT,
                                    hint=_REPEAT_HINT)
            if ("n" in r) == ("rows" in r):
                raise SpecError("give repeat one of `n` (a count) and `rows` (a table)", sp, code=E.BAD_REPEAT,
                                hint=_REPEAT_HINT)
            if "rows" in r:
                rows = self._rows(r["rows"], r.span_of("rows", sp), scope, var)
                r = len(rows)
            else:
                sp = r.span_of("n", sp)
                r = r.get("n")
        n = self._eval(r, scope.vars, sp, scope)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise SpecError(f"repeat count must be an integer >= 0, got {n!r}", sp, code=E.BAD_REPEAT,
                            hint=_REPEAT_HINT)
        if n > budget.MAX_LAYERS:
            raise SpecError(f"repeat count {n:,} is out of bounds (at most {budget.MAX_LAYERS:,})", sp, code=E.BAD_REPEAT)
        return n, var, rows

    def _rows(self, value, sp, scope, var) -> list:
        """A table for `repeat: {rows: ...}`: a list (literal or from an expression) of mappings
        from names to values; each row's names are variables of its copy."""
        rows = self._eval(value, scope.vars, sp, scope)
        bad = [i for i, r in enumerate(rows) if not isinstance(r, dict)] if isinstance(rows, list) else None
        if bad is None or bad:
            t = type(rows[bad[0]]).__name__ if bad else ""
            got = f"row {bad[0]} is {'an' if t[:1] in 'aeiou' else 'a'} {t}" if bad else f"got {type(rows).__name__}"
            raise SpecError(f"repeat rows must be a list of mappings {{name: value}}; {got}",
                            sp, code=E.BAD_REPEAT, hint=_REPEAT_HINT)
        if var is not None and any(var in r for r in rows):
            raise SpecError(f"'{var}' is both a name of the rows and the repeat's `var` (the copy's index)", sp,
                            code=E.BAD_REPEAT, hint="rename one of them")
        if len(rows) > budget.MAX_LAYERS:
            raise SpecError(f"{len(rows):,} rows are out of bounds (at most {budget.MAX_LAYERS:,})", sp,
                            code=E.BAD_REPEAT)
        out = []
        for row in rows:
            bad = [k for k in row if not isinstance(k, str) or not _ID.match(k)]
            if bad:
                raise SpecError(f"a row's names must be identifiers, got {bad[0]!r}", sp, code=E.BAD_REPEAT)
            out.append(dict(row))
        return out

    def _attr_values(self, nd, vars_k, scope, skip=None):
        """Evaluated attributes and their spans; an attribute whose expression failed (the
        error is recorded) is left out of `raw` and named in `spans` only."""
        raw, spans = {}, {}
        skip = _SKIP if skip is None else skip
        for k, v in nd.items():
            if k in skip:
                continue
            spans[k] = sp = nd.span_of(k)
            t = type(v)
            if t is int or t is bool or t is float or v is None or (t is str and "${" not in v):
                raw[k] = v          # a literal: nothing to evaluate
                continue
            raw[k] = self._try_eval(v, vars_k, sp, scope, default=_NO_DEFAULT)
            if raw[k] is _NO_DEFAULT:
                del raw[k]
        return raw, spans

    def _normalised(self, op, raw: dict, spans: dict, nd) -> tuple:
        """normalise(), once per distinct attribute set of an op: the layers that write the same
        values share one Attrs (nothing changes a node's attrs once built), so a large graph
        holds one per kind of layer, and the passes can answer equal (op, attrs, input shapes)
        once (issue 17). A set with a problem is not kept: it is checked again, and reported,
        at every node that writes it."""
        if any(spec.type == "block" for spec in op.attrs.values()):
            # a node's sub-network is written into its Attrs after (archviz.spec.bodies): its own
            return normalise(op, raw, spans, nd.span, f"'{nd['id']}' ({op.name})")
        return self._shared_attrs(op, raw, spans, nd)

    def _shared_attrs(self, op, raw: dict, spans, nd) -> tuple:
        """_normalised of an op without a sub-network attribute (plainnodes.py calls it so)."""
        try:
            types = tuple(map(type, raw.values()))
            if list in types or float in types:
                key = (op.name,) + tuple((k, _frozen(v)) for k, v in raw.items())
            else:       # scalars of these types: equal as keys only when they are equal attributes
                key = (op.name, tuple(raw.items()), types)
            hit = self._attrs_memo.get(key)
        except TypeError:           # a value that is no plain scalar or list: not shared
            key = hit = None
        if hit is not None:
            return hit, ()
        attrs, errs = normalise(op, raw, spans, nd.span, f"'{nd['id']}' ({op.name})")
        if key is not None and not errs:
            self._attrs_memo[key] = attrs
        return attrs, errs

    def _primitive(self, nd, scope, vars_k, cid, op, ins) -> NodeB:
        if len(self.graph) - len(self.graph.inputs) >= budget.MAX_LAYERS:     # inputs are no layers
            e = SpecError(f"the spec expands to more than {budget.MAX_LAYERS:,} layers", nd.span_of("id", nd.span),
                          code=E.TOO_MANY_LAYERS, hint="check the `repeat` counts of this node and the blocks around it")
            e.follows, self.over_budget = getattr(self, "over_budget", False), True     # said once
            raise e
        blocks = [k for k, spec in op.attrs.items() if spec.type == "block"]
        raw, spans = self._attr_values(nd, vars_k, scope, skip=_SKIP | frozenset(blocks)) if blocks \
            else self._attr_values(nd, vars_k, scope)
        for k in blocks:            # a sub-network: evaluated where it is compiled (archviz.spec.bodies)
            if k in nd:
                raw[k], spans[k] = nd[k], nd.span_of(k)
        # expression errors, reported already
        failed = {k for k in spans if k not in raw} if len(raw) < len(spans) else set()
        known = op.attrs
        for k in [k for k in spans if k not in known]:   # the caret goes under the key
            self.error(_unknown_attr(k, op, nd.key_span(k)), scope)
            raw.pop(k, None)
        for k, (v, sp) in (scope.defaults.get(op.name) or {}).items():
            if k not in raw and k not in failed:
                spans[k] = sp
                v = self._try_eval(v, vars_k, sp, scope, default=_NO_DEFAULT)
                if v is _NO_DEFAULT:
                    failed.add(k)
                else:
                    raw[k] = v
        attrs, errs = self._normalised(op, raw, spans, nd)
        for e in errs:
            if e.code == E.MISSING_ATTR and any(e.message.endswith(f"attribute '{k}'") for k in failed):
                continue    # "missing required attribute" would only repeat that error
            self.error(e, scope)
        frozen = nd.get("frozen", False)
        gid = scope.prefix + cid
        # notes: the scope's list (a scope's notes never change; neither do a node's)
        node = Node(id=gid, op=op.name, attrs=attrs, scope=scope.path, span=nd.span_of("op", nd.span),
                    attr_spans=spans, notes=scope.notes, frozen=bool(frozen))
        if blocks:
            self._bodies(nd, scope, vars_k, op, attrs, ins, gid)
        if "doc" in nd:
            node.meta["doc"] = nd["doc"]
        raw_in = nd.get("in")
        node.input_spans = [s.span or nd.span for s in ins]
        if isinstance(raw_in, dict):
            node.input_ports = list((op.input_ports or ())[:len(ins)])
        try:
            self.graph.add_node(node)
        except ArchvizError as e:
            self.error(e, scope)
        syms = list(ins)        # one list: neither reader changes it
        self._pending.append(("node", node, syms))
        self._node_syms[gid] = syms
        return NodeB(gid, op.name)


_SCALARS = (int, str, bool, type(None))
_SKIP = frozenset(NODE_KEYS)
# the keys of a node that make it more than one plain copy of a primitive op
_COPY_KEYS = frozenset(("repeat", "when", "bypass", "expect", "share"))


def _frozen(v):
    """A hashable key for an attribute value that tells apart what normalise tells apart
    (1, 1.0 and True are equal as dict keys; their types are not). TypeError for a value
    that is no scalar or list of them."""
    t = type(v)
    if t is float:
        return t, repr(v)       # -0.0 == 0.0
    if t in _SCALARS:
        return t, v
    if t is list:
        return (list,) + tuple(_frozen(x) for x in v)
    raise TypeError(t.__name__)
