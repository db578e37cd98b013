"""Shape reads while a spec is compiled: `${shape(x)}` in a node's attributes, a block
call's params, `when:` or `repeat:` is the shape of node `x` (without the batch axis), so a
block reads its input's channel count instead of being told it.

References are resolved lazily at the end of a compile (see compile.py); a shape read
resolves the few it needs at once: the named node, then its inputs back to nodes already
shaped, shaped with the same op rules as the shape pass.  Only nodes defined before the
read can be named: a later node has no shape yet.
"""
from __future__ import annotations

from archviz.codes import E
from archviz.errors import ArchvizError, MissingRuleError, OpError, RefError, ShapeError, Span, SpecError, did_you_mean
from archviz.ops import registry
from archviz.ops.base import fmt_shape
from archviz.spec.expr import reading_shapes
from archviz.spec.refs import _REF, Scope, Sym


class ShapeReader:
    """Mixin of :class:`archviz.spec.compile.Compiler`: `shape(NAME)` in expressions."""

    def reading(self, scope: Scope | None):
        """A context in which `shape(NAME)` reads the nodes of `scope`."""
        return reading_shapes(None if scope is None else lambda text, span: self.read_shape(text, scope, span))

    def read_shape(self, text: str, scope: Scope, span: Span | None) -> list:
        m = _REF.match(text)
        if not m:
            raise SpecError(f"shape() names a node, like shape(x) or shape('enc[2].skip'); got {text!r}", span,
                            code=E.BAD_REFERENCE)
        sym = Sym(scope, m.group(1), int(m.group(2)) if m.group(2) is not None else None, m.group(3), span, text=text)
        if sym.name not in scope.names:
            err = RefError(f"shape({text}): no node '{sym.name}' is defined before this point", span,
                           code=E.UNKNOWN_NODE,
                           hint=did_you_mean(sym.name, scope.names) or
                           "shape() reads a block input or a node above this one (a later node has no shape yet)")
            err.follows = sym.name in scope.name_spans     # a node being defined, whose own error is reported
            raise err
        ref = self.resolve(sym)
        return list(self._shapes_of(ref.node, text, span)[ref.port][1:])

    def _shapes_of(self, gid: str, text: str, span) -> dict:
        """The output shapes (batch first) of graph node `gid`, shaping the ancestors it needs
        (iteratively: a chain of any length)."""
        memo = self._shape_memo
        stack, open_ = [gid], set()     # open_: nodes whose inputs are being shaped (the path)
        while stack:
            top = stack[-1]
            if top in memo:
                stack.pop()
                open_.discard(top)
                continue
            node = self.graph.nodes.get(top)
            if node is None:
                raise self._broken(span, f"'{top}' has no shape (its definition failed)")
            try:
                # a plain node's inputs are resolved as it is compiled (archviz.spec.plainnodes)
                refs = node.inputs or [self.resolve(s) for s in self._node_syms.get(top, ())]
            except RefError as e:
                raise RefError(f"cannot read the shape of '{gid}': '{top}' reads a node that is not defined "
                               f"before this point ({e.message})", span, code=E.UNKNOWN_NODE,
                               hint="shape() can read only what is computed from nodes above it") from None
            todo = [r.node for r in refs if r.node not in memo]
            if todo:
                if top in open_:
                    raise RefError(f"cannot read the shape of '{gid}': '{top}' depends on itself", span, code=E.CYCLE)
                open_.add(top)
                stack.extend(todo)
                continue
            ins = [memo[r.node][r.port] for r in refs]
            op = registry[node.op]
            lo, hi = op.min_inputs, op.max_inputs
            if len(ins) < lo or (hi is not None and len(ins) > hi):      # the graph's own check, reached early
                want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
                raise RefError(f"'{top}' ({node.op}) takes {want} input(s), got {len(ins)}", node.span,
                               code=E.INPUT_COUNT, notes=[f"its shape is read by shape({text}) at {span}"])
            try:
                memo[top] = op.evaluate(node.attrs, ins)
            except OpError as e:     # the error the shape pass would give, at its cause, reached early
                notes = [f"input {i}: {fmt_shape(s)} from '{r}'" for i, (r, s) in enumerate(zip(refs, ins))]
                at = node.attr_spans.get(e.attr) if e.attr else None
                raise ShapeError(f"'{top}' ({node.op}): {e.message}", at or node.span, code=E.OP_REFUSED, hint=e.hint,
                                 notes=notes + node.notes + [f"its shape is read by shape({text}) at {span}"]) from None
            except MissingRuleError as e:
                e.message = f"cannot read the shape of '{gid}': {e.message}"
                e.span = e.span or span
                raise
            except (KeyError, TypeError, AttributeError) as e:     # attributes left out by an error reported already
                if not self.errors:
                    raise
                raise self._broken(span, f"cannot read the shape of '{gid}': '{top}' ({node.op}) has no shape ({e})") from None
        return memo[gid]

    def _broken(self, span, message) -> ArchvizError:
        """A shape read that fails because a node above it is broken: that node's own error
        is reported (one mistake, one error); alone, this one is."""
        err = ShapeError(message, span, code=E.OP_REFUSED)
        err.follows = bool(self.errors)
        return err
