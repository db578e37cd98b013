"""The node most of a large graph is made of, compiled in one step.

An imported, unrolled or generated graph of 100,000 layers is mostly nodes such as
``{id: c3, op: conv2d, in: a2, out: 8, kernel: 3, padding: 1}``: one copy of a primitive
op, literal attributes the op knows, inputs named by plain names. The general path
(archviz.spec.nodes) walks each of them through a dozen steps that do nothing for it: a
repeat of one copy, `when`, `bypass`, `share`, `${...}`, ports, defaults, sub-networks.
:meth:`PlainNodes._plain` does what those steps do for such a node, in one function, and
the same: the same graph node, the same references, names and locations (issue 17).

It only takes a node it can compile without a problem, and before it changes anything:
any other node, or one with something to report, it hands back (None) untouched, and the
general path compiles it and reports what is wrong, where.
"""
from __future__ import annotations

from archviz.ir.graph import INPUT_OP, Node, Ref
from archviz.ops import registry
from archviz.spec import budget
from archviz.spec.files import _ID, NODE_KEYS
from archviz.spec.located import InputSpans, WrittenSpans
from archviz.spec.refs import NodeB, Sym

_ID_OP_IN = WrittenSpans.NODE_KEYS      # the node keys of a plain node: id, op, in
_UNKNOWN = object()
_NOT_PLAIN = object()      # (a memo's answer: the node is not plain)
_LITERAL_TYPES = frozenset((int, float, bool, type(None)))


class PlainNodes:
    """Mixin of :class:`archviz.spec.compile.Compiler`: one plain node in one step."""

    def _plain_op(self, opname):
        """(op, the keys a plain node of it may have), or None for an op no node of which is
        plain (an input, an op with a sub-network attribute) or a name that is no op."""
        if type(opname) is not str:
            return None
        memo = self._plain_ops
        op = registry[opname] if opname in registry and opname != INPUT_OP else None
        if op is not None and any(spec.type == "block" for spec in op.attrs.values()):
            op = None
        # (an attribute named as a node key, `doc` say, is read as the node key: not plain)
        memo[opname] = got = (op, _ID_OP_IN.union(k for k in op.attrs if k not in NODE_KEYS)) \
            if op is not None else None
        return got

    def _plain_form(self, opname: str, keys: tuple):
        """(op, the node's attribute keys in order) of a node of op `opname` whose mapping has
        `keys`, when such a node may be plain; else False. Once per op and key tuple."""
        known = self._plain_ops.get(opname, _UNKNOWN)
        if known is _UNKNOWN:
            known = self._plain_op(opname)
        form = False
        if known is not None and known[1].issuperset(keys):
            form = (known[0], tuple(k for k in keys if k not in _ID_OP_IN))
        self._plain_forms[(opname, keys)] = form
        return form

    def _plain_attrs(self, op, nd, akeys: tuple):
        """The Attrs of a plain node's literal attributes, or _NOT_PLAIN (a `${...}`, a value
        that is no literal, an attribute normalise refuses: the general path reports it)."""
        raw = {k: nd[k] for k in akeys}
        for k, v in raw.items():
            t = type(v)
            if t in _LITERAL_TYPES:
                continue
            if t is str:
                if "${" in v:
                    return _NOT_PLAIN
            elif isinstance(v, list) and all(type(x) in _LITERAL_TYPES or (type(x) is str and "${" not in x)
                                             for x in v):
                raw[k] = list(v)
            else:
                return _NOT_PLAIN
        attrs, errs = self._shared_attrs(op, raw, WrittenSpans(nd), nd)     # (no sub-network attribute)
        return _NOT_PLAIN if errs else attrs

    def _plain(self, nd, scope, prev) -> Sym | None:
        """The Sym of node `nd`, compiled, if it is plain (see the module); else None, and
        nothing is changed."""
        nid = nd.get("id")
        opname = nd.get("op")
        if type(nid) is not str or type(opname) is not str or nid in scope.names:
            return None
        form = self._plain_forms.get((opname, tuple(nd)))
        if form is None:
            form = self._plain_form(opname, tuple(nd))
        if not form or not _ID.match(nid):
            return None
        op, akeys = form
        if scope.defaults.get(op.name):
            return None
        # the node's attributes as the layers written alike share them: one answer per op,
        # keys, values and their types (1, 1.0 and True are equal keys; -0.0 and 0.0 too, so
        # a float goes the long way, as does a list, which is no key)
        vals = tuple(map(nd.__getitem__, akeys))
        types = tuple(map(type, vals))
        key = (op.name, akeys, vals, types) if float not in types else None
        try:
            attrs = self._plain_attrs_memo.get(key) if key is not None else None
        except TypeError:       # a list
            key = attrs = None
        if attrs is None:
            attrs = self._plain_attrs(op, nd, akeys)
            if key is not None:
                self._plain_attrs_memo[key] = attrs
        if attrs is _NOT_PLAIN:
            return None
        written = nd.get("in")
        if type(written) is str:
            names = [written] if _ID.match(written) else None
        elif isinstance(written, list) and written:
            names = written
            for r in written:
                if type(r) is not str or not _ID.match(r):
                    return None
        else:
            names = None
        if names is None and (written is not None or prev is None):
            return None             # (a port, a copy, an expression, a mapping, nothing to read)
        g = self.graph
        gid = scope.prefix + nid
        gnodes = g.nodes
        if gid in gnodes or len(gnodes) - len(g.inputs) >= budget.MAX_LAYERS:
            return None
        spans = WrittenSpans(nd)
        if names is None:
            refs = self._plain_refs((prev.binding,))
            input_spans = [prev.span or nd.span]
        else:
            got = scope.names.get
            refs = self._plain_refs([got(r) for r in names])
            input_spans = InputSpans(nd)
        # (positional: the fields of Node in order; a call by keywords took twice as long)
        node = Node(gid, op.name, attrs, refs or [], None, scope.path, nd.span_of("op"), spans, input_spans,
                    None, False, (), scope.notes, len(gnodes), {})
        g.add_node(node)
        if refs is None:            # a name bound later: resolved with the others, at the end
            ins = [prev] if names is None else self._syms(nd, scope, names)
            self._pending.append(("node", node, ins))
            self._node_syms[gid] = ins
        b = scope.names[nid] = NodeB(gid, op.name)
        scope.name_spans[nid] = span = nd.span_of("id")
        return Sym(None, nid, None, None, span, b, nid)

    def _plain_refs(self, bindings) -> list | None:
        """The Refs of a plain node's inputs when each is output `out` of a node bound
        already: what _resolve_pending would find at the end (a name, once bound, stays so).
        None when one is not (a name bound later, a copy, a block call): then it does."""
        refs = []
        out_refs = self._out_refs
        for b in bindings:
            if type(b) is not NodeB:
                return None
            ref = out_refs.get(b.gid)
            if ref is None:
                if b.op in registry:
                    src = self.graph.nodes.get(b.gid)
                    attrs = src.attrs if src is not None else None
                    # once per op and Attrs (shared by the layers written alike; kept, so that its
                    # id stays its own)
                    got = self._has_out.get((b.op, id(attrs)))
                    if got is None or got[0] is not attrs:
                        got = self._has_out[(b.op, id(attrs))] = (attrs, "out" in registry[b.op].output_ports(attrs))
                    if not got[1]:
                        return None
                ref = out_refs[b.gid] = Ref(b.gid, "out")     # one Ref, read by every consumer
            refs.append(ref)
        return refs

    @staticmethod
    def _syms(nd, scope, names: list) -> list:
        """The references `in:` writes, as the general path parses them (refs.parse_ref)."""
        if type(nd["in"]) is str:
            return [Sym(scope, names[0], None, None, nd.span_of("in"), None, names[0])]
        return [Sym(scope, r, None, None, nd["in"].span_of(i), None, r) for i, r in enumerate(names)]
