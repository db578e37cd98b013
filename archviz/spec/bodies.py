"""Sub-networks held by a node: an attribute of type "block" (a mixture of experts' `expert`)
is written like a node without `id` and `in` (``expert: {op: llama.mlp, ffn: "${ffn}"}``)
and compiled here into a LayerGraph of its own (archviz.ir.body), whose one input `x` has the
shape of the node's first input; then analysed by the ordinary passes.

The body is expanded by the same code as any node of the spec (blocks, imports, defaults,
`${...}` in the caller's params, `shape(x)` reading the body's input), so its errors are
located in the spec like any other.  Its layers' ids are the block's own (gate_proj,
up_proj, ...), or the op's name for an expert that is one op.
"""
from __future__ import annotations

from archviz.codes import E
from archviz.errors import ArchvizError, SpecError
from archviz.ir.graph import INPUT_OP, LayerGraph, Node, Ref
from archviz.ops import Attrs, registry
from archviz.ir.body import BODY_INPUT, Body
from archviz.passes.driver import run as run_pass
from archviz.spec.files import NODE_KEYS
from archviz.spec.refs import NodeB, Scope, Sym
from archviz.spec.yamlload import LocDict

_CALL = "expert"        # the id the body's one node is expanded under (then renamed)


def block_attrs(op) -> list:
    return [k for k, spec in op.attrs.items() if spec.type == "block"]


class BodyCompiler:
    """Mixin of :class:`archviz.spec.compile.Compiler`: attributes that hold a sub-network."""

    def _bodies(self, nd, scope: Scope, vars_k, op, attrs, ins, gid: str) -> None:
        for k in block_attrs(op):
            raw = nd.get(k)
            if not isinstance(raw, LocDict) or not ins or not isinstance(attrs.get(k), Body):
                continue
            try:
                ref = self.resolve(ins[0])
                shape = tuple(self._shapes_of(ref.node, str(ins[0].text), nd.span_of(k))[ref.port])
            except ArchvizError as e:
                self.error(e, scope)
                continue
            body = self._compile_body(raw, nd.span_of(k), scope, vars_k, gid, k, shape)
            if body is not None:
                attrs[k] = body

    def _compile_body(self, raw: LocDict, span, scope: Scope, vars_k, gid: str, key: str, shape: tuple):
        bad = [k for k in raw if k in NODE_KEYS and k not in ("op", "doc")]
        if bad:
            self.error(SpecError(f"'{key}' of '{gid}' is written as {{op: BLOCK, its params}}: '{bad[0]}' has "
                                 "no meaning there", raw.key_span(bad[0]), code=E.UNKNOWN_KEY,
                                 hint=f"the {key} reads the node's input and is named by the node; "
                                      f"remove '{bad[0]}'"), scope)
            return None
        saved = (self.graph, self._pending, self._node_syms, self._shape_memo, self.expects, self._shares,
                 self._out_refs)
        sub = LayerGraph(f"{gid} {key}")
        sub.source = self.graph.source
        self.graph, self._pending, self._node_syms, self._shape_memo, self.expects, self._shares, \
            self._out_refs = sub, [], {}, {}, [], [], {}
        before = len(self.errors)
        try:
            sub.add_node(Node(id=BODY_INPUT, op=INPUT_OP, attrs=Attrs(shape=shape[1:], batch=shape[0]), span=span))
            sub.inputs[BODY_INPUT] = BODY_INPUT
            bscope = Scope(file=scope.file, prefix="", vars=vars_k, defaults=scope.defaults,
                           notes=[f"'{gid}' runs this {key} (written at {span}) on each token"] + scope.notes,
                           path=scope.path, blocks=scope.blocks, block=scope.block)
            bscope.names[BODY_INPUT] = NodeB(BODY_INPUT, INPUT_OP)
            first = Sym(binding=bscope.names[BODY_INPUT], text=BODY_INPUT)
            written, _spans = self._attr_values(raw, vars_k, bscope)
            nd = LocDict({"id": _CALL, **raw})      # named as a node (its errors say '<key> of <gid>')
            nd.span, nd.spans, nd.key_spans = raw.span, raw.spans, raw.key_spans
            last = self._node_body(nd, _CALL, bscope, first)
            self._pending_out("out", last)
            self._resolve_pending()
            self._resolve_shares()
            if len(self.errors) > before:
                return None
            sub.connect()
            for e in sub.lint(registry):
                self.error(e, scope)
            if len(self.errors) > before:
                return None
            g = _renamed(sub, raw["op"])
            run_pass(g, "cost")     # shapes, shared tensors, costs: the layers' own rules
        except ArchvizError as e:
            self.error(e, scope)
            return None
        finally:
            self.graph, self._pending, self._node_syms, self._shape_memo, self.expects, self._shares, \
                self._out_refs = saved
        return Body({"op": raw["op"], **written}, {shape: g})


def _renamed(sub: LayerGraph, op: str) -> LayerGraph:
    """The body with its layers named as in the block (gate_proj, not expert.gate_proj), or by
    the op's name for a one-op expert; so the state dict reads experts.0.gate_proj.weight."""
    def new(nid: str) -> str:
        if nid == _CALL:
            return op
        return nid[len(_CALL) + 1:] if nid.startswith(_CALL + ".") else nid
    g = LayerGraph(sub.name, sub.doc)
    g.source, g.params, g.warnings = sub.source, sub.params, sub.warnings
    for n in sub.nodes.values():
        n.id = new(n.id)
        n.inputs = [Ref(new(r.node), r.port) for r in n.inputs]
        n.ties = [t.__class__(t.param, new(t.owner), t.owner_param, t.span, t.written, t.lenient) for t in n.ties]
        g.add_node(n)
    g.inputs = {k: new(v) for k, v in sub.inputs.items()}
    g.outputs = {k: Ref(new(r.node), r.port) for k, r in sub.outputs.items()}
    g.expects = [(Ref(new(r.node), r.port), *rest) for r, *rest in sub.expects]
    g.calls = {new(k): v for k, v in sub.calls.items()}
    g.repeats = {new(k): v for k, v in sub.repeats.items()}
    g.connect()
    return g
