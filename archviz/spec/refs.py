"""References between nodes: the bindings a name can stand for and their resolution.

While a node list is expanded every `in:` becomes a :class:`Sym` (a name in a scope); the
:class:`RefResolver` methods of the compiler parse them and resolve all of them at the end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archviz.codes import E
from archviz.errors import ArchvizError, RefError, Span, SpecError, did_you_mean
from archviz.ir.graph import Ref
from archviz.ops import registry
from archviz.spec.expr import has_expr, substitute

if TYPE_CHECKING:
    from archviz.spec.files import BlockDef, SpecFile

# name, name[k] (a copy of a repeat), name.port; a port may be a number (the parts of a split: s.0)
_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d+)\])?(?:\.([A-Za-z_][A-Za-z0-9_]*|\d+))?$")


# -- bindings -----------------------------------------------------------------------
@dataclass(slots=True)
class Sym:
    """A textual reference `name[index].port` in a scope, or a direct binding."""
    scope: Any = None
    name: str = ""
    index: int | None = None
    port: str | None = None
    span: Span | None = None
    binding: Any = None
    text: str = ""


@dataclass(slots=True)
class NodeB:
    gid: str
    op: str


@dataclass(slots=True)
class RepeatB:
    copies: list


@dataclass(slots=True)
class CallB:
    block: "BlockDef"
    outputs: dict         # port -> Sym in the callee scope
    call_id: str


@dataclass(slots=True)
class AliasB:
    target: Sym
    broken: bool = False    # stands in for a node whose error is reported: its ports are not checked
    bypassed: str | None = None     # the id of the bypassed node (`when: false`) it stands for


@dataclass
class Scope:
    file: "SpecFile"
    prefix: str
    vars: dict
    defaults: dict
    notes: list
    path: tuple = ()
    blocks: tuple = ()    # (file, block name) of the enclosing calls, outermost first
    names: dict = field(default_factory=dict)
    name_spans: dict = field(default_factory=dict)
    block: object = None  # the BlockDef whose body this scope expands (None at file level)


class RefResolver:
    """Mixin of :class:`archviz.spec.compile.Compiler`: parsing and resolving references."""

    # -- references --------------------------------------------------------------
    def parse_ref(self, text, scope, span) -> Sym | None:
        if not isinstance(text, str):
            self.error(SpecError(f"a reference is a node name like 'conv1', 'enc[2].skip'; got {text!r}",
                                 span, code=E.BAD_REFERENCE), scope)
            return None
        if has_expr(text):
            try:
                text = substitute(text, scope.vars, span)
            except ArchvizError as e:
                self.error(e, scope)
                return None
        m = _REF.match(str(text))
        if not m:
            self.error(SpecError(f"malformed reference '{text}'", span, code=E.BAD_REFERENCE,
                                 hint="write id, id.port, id[k] or id[k].port"), scope)
            return None
        idx = int(m.group(2)) if m.group(2) is not None else None
        return Sym(scope, m.group(1), idx, m.group(3), span, text=text)

    def resolve(self, sym: Sym) -> Ref:
        """Follow aliases (bypassed nodes, block inputs) and block outputs to a node's port.
        Iterative, so chains of any length resolve; a binding met twice is a loop."""
        first, seen, bypassed = sym, {}, None
        chain = []
        while True:
            b = self._binding(sym)
            if isinstance(b, AliasB):
                t = b.target
                if b.bypassed and sym.port is not None:
                    bypassed = (b.bypassed, t.text)
                # the target reference decides, with its own span and text, unless a port was named
                nxt = t if sym.port is None or b.broken else Sym(t.scope, t.name, t.index, sym.port, sym.span, t.binding, sym.text)
            elif isinstance(b, CallB):
                ports = list(b.outputs)
                port = sym.port or ports[0]
                if port not in b.outputs:
                    raise RefError(f"'{sym.text.split('.')[0]}' has no output '{port}'", sym.span,
                                   code=E.UNKNOWN_OUTPUT, hint="available outputs: " + ", ".join(ports),
                                   notes=[f"'{b.call_id}' calls block '{b.block.name}' defined at {b.block.span}"])
                nxt = b.outputs[port]
            elif isinstance(b, NodeB):
                port = sym.port or "out"
                if b.op in registry:
                    node = self.graph.nodes.get(b.gid) if self.graph is not None else None
                    ports = registry[b.op].output_ports(node.attrs if node is not None else None)
                    if port not in ports and bypassed:
                        raise RefError(f"'{first.text}' does not exist: '{bypassed[0]}' is bypassed (when: false) "
                                       f"and stands for '{bypassed[1]}' ({b.op}), which has no output '{port}'",
                                       first.span, code=E.UNKNOWN_OUTPUT, hint="available outputs: " + ", ".join(ports))
                    if port not in ports:
                        raise RefError(f"'{sym.text.split('.')[0]}' ({b.op}) has no output '{port}'", sym.span,
                                       code=E.UNKNOWN_OUTPUT, hint="available outputs: " + ", ".join(ports))
                return Ref(b.gid, port)
            else:  # pragma: no cover
                raise RefError(f"cannot resolve '{sym.text}'", sym.span, code=E.UNKNOWN_NODE)
            key = (id(b), sym.port)
            chain.append(sym)
            if key in seen:
                # at the reference that closes the loop, or the last one before it that is
                # written in the spec (an implicit input, such as a block's x, has no span)
                at = next((s for s in reversed(chain) if s.span is not None), first)
                raise RefError(f"reference '{at.text}' does not resolve: it leads back to itself "
                               "(through bypassed nodes, block inputs or block outputs)", at.span, code=E.CYCLE,
                               hint="a node cannot read its own output; name an earlier node")
            seen[key] = len(chain) - 1
            sym = nxt

    def _binding(self, sym: Sym):
        """The binding a reference names: its own, or its name's in scope; a copy of a repeat."""
        b = sym.binding
        if b is None:
            names = sym.scope.names
            if sym.name not in names:
                avail = [n for n in names]
                raise RefError(f"unknown node '{sym.name}'", sym.span, code=E.UNKNOWN_NODE,
                               hint=did_you_mean(sym.name, avail) or
                               ("names in scope: " + ", ".join(avail[:12]) + (" ..." if len(avail) > 12 else "")))
            b = names[sym.name]
        if isinstance(b, RepeatB):
            if sym.index is not None:
                n = len(b.copies)
                if not -n <= sym.index < n:
                    raise RefError(f"'{sym.name}' has {n} copies; index {sym.index} is out of range",
                                   sym.span, code=E.BAD_INDEX)
                return b.copies[sym.index]
            return b.copies[-1]
        if sym.index is not None:
            raise RefError(f"'{sym.name}' is not repeated; it cannot be indexed", sym.span, code=E.BAD_INDEX)
        return b

    def _resolve_pending(self):
        g = self.graph
        for item in self._pending:
            if item[0] == "node":
                _, node, syms = item
                refs = []
                for s in syms:
                    try:
                        refs.append(self.resolve(s))
                    except ArchvizError as e:
                        self.error(e, s.scope if isinstance(s.scope, Scope) else None)
                node.inputs = refs
            else:
                _, name, sym = item
                try:
                    g.outputs[name] = self.resolve(sym)
                except ArchvizError as e:
                    self.error(e)
        for sym, out_name, dims, span, spans, notes in self.expects:
            try:
                ref = g.outputs.get(out_name) if out_name else self.resolve(sym)
            except ArchvizError:
                continue  # already reported
            if ref is not None:
                g.expects.append((ref, dims, span, spans, notes))
