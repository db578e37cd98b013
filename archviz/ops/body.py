"""An op's sub-network: the expert of a mixture of experts, written in a spec like a node
without `id` and `in` (``expert: {op: llama.mlp, ffn: 14336}``).

The body is compiled into a LayerGraph of its own (one input, ``x``) and analysed by the
ordinary passes, so its shapes, parameters, MACs and element-wise operations come from
its ops' own rules, never from a formula written for the op that holds it.  A spec's
compiler builds it (a block of the spec or of an import, with located errors); a body
given as a plain mapping (registry samples, Python) is one registered op, built here on
first use.  The graphs are kept per input shape (batch first).
"""
from __future__ import annotations

from archviz.errors import ArchvizError, OpError

# the body's input node: ids of its nodes read like a block's (gate_proj, up_proj, ...)
BODY_INPUT = "x"


class Body:
    __slots__ = ("written", "graphs")

    def __init__(self, written: dict, graphs: dict | None = None):
        self.written = dict(written)            # {"op": NAME, param: value, ...} as evaluated
        self.graphs = dict(graphs or {})        # input shape (batch first) -> analysed LayerGraph

    @property
    def op(self) -> str:
        return str(self.written.get("op"))

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.written.items() if k != "op")
        return f"{self.op}({params})"

    def __repr__(self) -> str:
        return f"Body({self})"

    def __eq__(self, o) -> bool:
        return isinstance(o, Body) and o.written == self.written

    def __hash__(self) -> int:
        return hash(str(self))

    def at(self, in_shape) -> "object":
        """The analysed LayerGraph of the body on an input of `in_shape` (batch first)."""
        key = tuple(in_shape)
        g = self.graphs.get(key)
        if g is None:
            g = self.graphs[key] = _one_op(self.written, key)
        return g


def _one_op(written: dict, in_shape: tuple):
    """A body of one registered op, built and analysed outside a spec."""
    from archviz.ir.graph import LayerGraph, Node, Ref
    from archviz.ops.base import registry
    from archviz.ops.schema import Attrs
    name = written.get("op")
    op = registry.get(name) if isinstance(name, str) else None
    if op is None or name == "input":
        raise OpError(f"the expert {{op: {name}}} is not an op: outside a spec an expert is one op "
                      "(a block is written in a spec)", attr="expert")
    try:
        a = op.attrs_of({k: v for k, v in written.items() if k != "op"})
        g = LayerGraph(f"{name} expert")
        g.add_node(Node(BODY_INPUT, "input", attrs=Attrs(shape=tuple(in_shape[1:]), batch=in_shape[0])))
        g.inputs[BODY_INPUT] = BODY_INPUT
        g.add_node(Node(name, name, attrs=a, inputs=[Ref(BODY_INPUT)]))
        g.outputs["out"] = Ref(name)
        g.connect()
        analyse_body(g)
    except ArchvizError as e:
        raise OpError(f"the expert {name}: {e.message}", attr="expert", hint=e.hint) from None
    return g


def analyse_body(g) -> None:
    """The passes a body needs (shapes, shared tensors, costs): the ops' own rules."""
    from archviz.passes.driver import run       # the passes read ops: imported when a body is analysed
    run(g, "cost")
