"""An op's sub-network: the expert of a mixture of experts, written in a spec like a node
without `id` and `in` (``expert: {op: llama.mlp, ffn: 14336}``).

The body is compiled into a LayerGraph of its own (one input, ``x``) and analysed by the
ordinary passes (archviz.spec.bodies), so its shapes, parameters, MACs and element-wise
operations come from its layers' own rules, never from a formula written for the op that
holds it.  The analysed graphs are kept here per input shape (batch first); this class is
data only (the ir imports no ops and no passes).
"""
from __future__ import annotations

# the body's input node: ids of its layers read like a block's (gate_proj, up_proj, ...)
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
