"""Calls of blocks: a call's params checked against the block's, its inputs bound to the
block's, and the block's body expanded in a scope of its own.
"""
from __future__ import annotations

import os
from collections import ChainMap

from archviz.codes import E
from archviz.errors import SpecError, did_you_mean
from archviz.spec.expr import FAILED
from archviz.spec.files import _NO_DEFAULT, _PARAM_TYPES, BlockDef
from archviz.spec.refs import AliasB, CallB, NodeB, Scope, Sym


class BlockCaller:
    """Mixin of :class:`archviz.spec.compile.Compiler`: expanding a call of a block."""

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
        callee = Scope(file=block.file, prefix=call_id + ".", vars=bvars, defaults=block.defaults,
                       notes=[f"'{call_id}' calls block '{block.name}' defined at {block.span}"] + scope.notes,
                       path=scope.path + (call_id,), blocks=scope.blocks + (here,), block=block)
        for i, name in enumerate(block.inputs if ins else ()):   # missing inputs (reported below) read the last one given
            callee.names[name] = AliasB(ins[min(i, len(ins) - 1)])
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
                # in the block's scope: shape(x) of a default reads the block's input x
                v = self._try_eval(default, bvars, psp, callee, default=FAILED)   # FAILED: reads of it add no error
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
