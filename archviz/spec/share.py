"""`share:` of a node: weights it shares with another node (one tensor, as torch's
``b.weight = a.weight``; `parameters()` holds it once).

    share: wte                      every tensor of the node is wte's of the same name
    share: {weight: wte}            only `weight` (the node keeps its other tensors)
    share: {weight: wte.weight}     naming the owner's tensor (when its name differs)
    share: "${'wte' if tied else false}"    false (literal or computed) shares nothing

The owner is a reference as in `in:` (`enc[0]` names a copy of a repeat; a repeated node
shares with the same owner in every copy).  A call of a block may share a call of the same
block: each of its layers shares the layer of the same id in the other call.  References
are resolved here, at the end of compilation; which tensors a node has, their shapes and
kinds are checked by the ties pass (archviz.passes.share), once shapes are known.
"""
from __future__ import annotations

import re

from archviz.codes import E
from archviz.errors import ArchvizError, RefError, SpecError
from archviz.ir.graph import INPUT_OP, Tie
from archviz.spec.expr import has_expr, substitute
from archviz.spec.refs import AliasB, CallB, NodeB, Sym
from archviz.spec.yamlload import LocDict

# an owner: a node reference without a port, then optionally the owner's tensor (dotted, as
# torch's state-dict names: out_proj.weight)
_OWNER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d+)\])?((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
SHARE_HINT = ("share: NODE (every parameter, by name), share: {PARAM: NODE} or "
              "share: {PARAM: NODE.PARAM}; false shares nothing")


class WeightSharer:
    """Mixin of :class:`archviz.spec.compile.Compiler`: the `share:` of each node."""

    def _share(self, nd, scope, vars_k, binding) -> None:
        """Record the ties of one copy of node `nd` (its binding), resolved at the end."""
        if "share" not in nd or isinstance(binding, AliasB):    # a bypassed copy shares nothing
            return
        raw, sp = nd["share"], nd.span_of("share")
        if isinstance(raw, str) and has_expr(raw):
            raw = substitute(raw, vars_k, sp)
        if raw is False:        # `share: false` (or an expression giving false): nothing shared
            return
        if isinstance(raw, str):
            items = [(None, raw, sp)]
        elif isinstance(raw, LocDict) and raw and all(isinstance(v, (str, bool)) for v in raw.values()):
            items = [(k, v, raw.span_of(k)) for k, v in raw.items()]
        else:
            raise SpecError(f"`share` must name a node or map parameters to nodes, got {raw!r}", sp,
                            code=E.BAD_SHARE, hint=SHARE_HINT)
        for param, text, span in items:
            if param is not None and not (isinstance(param, str) and _PARAM.match(param)):
                raise SpecError(f"'{param}' is not a parameter name", raw.key_span(param), code=E.BAD_SHARE,
                                hint=SHARE_HINT)
            if isinstance(text, str) and has_expr(text):
                text = substitute(text, vars_k, span)
            if text is False:
                continue
            if not isinstance(text, str):
                raise SpecError(f"`share` names a node (or is false), got {text!r}", span, code=E.BAD_SHARE,
                                hint=SHARE_HINT)
            m = _OWNER.match(str(text))
            if not m:
                raise SpecError(f"malformed `share` reference '{text}'", span, code=E.BAD_SHARE, hint=SHARE_HINT)
            oparam = m.group(3)[1:] or None
            if isinstance(binding, CallB) and (param is not None or oparam is not None):
                raise SpecError(f"'{nd['id']}' calls a block: it shares all of another call's weights, not "
                                "one parameter", span, code=E.BAD_SHARE,
                                hint="share: CALL (a call of the same block)")
            sym = Sym(scope, m.group(1), int(m.group(2)) if m.group(2) else None, None, span,
                      text=m.group(1) + (f"[{m.group(2)}]" if m.group(2) else ""))
            self._shares.append((binding, param, sym, oparam, span))

    def _resolve_shares(self) -> None:
        """Attach each recorded `share:` to its node(s) as Ties (archviz.ir.graph.Tie)."""
        members = None
        for binding, param, sym, oparam, span in self._shares:
            try:
                owner = self._share_owner(sym)
                if isinstance(binding, NodeB) != isinstance(owner, NodeB):
                    what = f"a call of block '{owner.block.name}'" if isinstance(owner, CallB) else "a layer"
                    raise SpecError(f"'{sym.text}' is {what}: a layer shares with a layer, a block call with a "
                                    "call of the same block", span, code=E.BAD_SHARE)
                if isinstance(binding, NodeB):
                    self._tie(binding.gid, Tie(param, owner.gid, oparam, span, sym.text))
                    continue
                if owner.block is not binding.block:
                    raise SpecError(f"'{binding.call_id}' calls block '{binding.block.name}' but '{sym.text}' calls "
                                    f"'{owner.block.name}': a call shares with a call of the same block", span,
                                    code=E.BAD_SHARE)
                if members is None:
                    members = {}
                    for n in self.graph.nodes.values():
                        for c in n.scope:
                            members.setdefault(c, []).append(n.id)
                mine, theirs = members.get(binding.call_id, []), set(members.get(owner.call_id, []))
                for nid in mine:
                    rest = nid[len(binding.call_id):]
                    if owner.call_id + rest not in theirs:
                        raise RefError(f"'{sym.text}' has no layer '{rest[1:]}' to share with "
                                       f"'{binding.call_id}{rest}' (bypassed or left out in that call)", span,
                                       code=E.SHARE_NO_PARAM, hint="a call shares a call built the same way")
                    self._tie(nid, Tie(None, owner.call_id + rest, None, span, sym.text + rest, lenient=True))
            except ArchvizError as e:
                self.error(e, sym.scope)

    def _tie(self, nid: str, tie: Tie) -> None:
        g = self.graph
        if nid not in g.nodes or tie.owner not in g.nodes:     # a broken node: its error is reported
            return
        if tie.owner == nid:
            raise RefError(f"'{nid.rsplit('.', 1)[-1]}' shares its weights with itself", tie.span,
                           code=E.SHARE_CYCLE, hint="name another node: the one that owns the weights")
        node = self.graph.nodes[nid]
        node.ties = [*node.ties, tie]       # () until a node shares: no list per layer

    def _share_owner(self, sym: Sym):
        """The owner's binding: a layer (NodeB) or a block call (CallB)."""
        b = self._binding(sym)
        if isinstance(b, AliasB):
            if b.bypassed:
                raise RefError(f"'{sym.text}' is bypassed (when: false): it has no weights to share", sym.span,
                               code=E.SHARE_NO_PARAM, hint="share with a node that is built")
            err = RefError(f"'{sym.text}' is an input of this block, not a layer: it has no weights to share",
                           sym.span, code=E.SHARE_NO_PARAM)
            err.follows = b.broken
            raise err
        if isinstance(b, NodeB) and b.op == INPUT_OP:
            raise RefError(f"'{sym.text}' is an input of the spec: it has no weights to share", sym.span,
                           code=E.SHARE_NO_PARAM)
        return b
