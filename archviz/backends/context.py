"""The encoder summary of an encoder–decoder: the state one recurrent layer hands another as
its initial state (Sutskever et al. 2014: the "fixed-dimensional vector representation";
Cho et al. 2014: the summary c; the exam's "context vector", the information bottleneck).

Read from the graph's structure: an input bound to a recurrent layer's initial-state port
(``h0``, ``c0``: every port after the first of a layer whose op has a recurrence family) is
a handover. The summary names it in `summary`, `explain` and the drawing's note. Without
attention that state is all the decoder sees of the source; with attention (an op that reads
``key``s, or an attending decoder reading ``memory``) the decoder also reads every
encoder state, so the handover is only its starting point.
"""
from __future__ import annotations

from dataclasses import dataclass

from archviz.ir import meta as M
from archviz.ops.base import fmt_shape

STATE_PORTS = ("h0", "c0")


@dataclass
class Handover:
    decoder: str
    port: str
    source: str           # the reference, e.g. 'encoder.h'
    shape: tuple


def handovers(model) -> list[Handover]:
    from archviz.ops import registry
    out = []
    for l in model.layers:
        op = registry[l.op]
        ports = op.input_ports or ()
        for i, ref in enumerate(l.node.inputs):
            port = ports[i] if i < len(ports) else None
            if port in STATE_PORTS:
                shapes = l.node.meta.get(M.IN_SHAPES) or []
                out.append(Handover(l.id, port, str(ref), tuple(shapes[i]) if i < len(shapes) else ()))
    return out


def attends(model) -> bool:
    from archviz.ops import registry
    # an attention op reads keys; an attending decoder reads the encoder states as `memory`
    return any({"key", "memory"} & set(registry[l.op].input_ports or ()) for l in model.layers)


def lines(model, node: str | None = None) -> list[str]:
    """One line per decoder: what it starts from, and what that is; with `node`, only the
    handovers that node gives or takes."""
    hs = [h for h in handovers(model)
          if node is None or h.decoder == node or h.source.split(".")[0] == node]
    if not hs:
        return []
    by_dec: dict = {}
    for h in hs:
        by_dec.setdefault(h.decoder, []).append(h)
    att = attends(model)
    out = []
    for dec, items in by_dec.items():
        given = ", ".join(f"{h.source} {fmt_shape(h.shape)} as {h.port}" for h in items)
        what = ("the encoder summary it starts from; with attention it also reads every encoder state"
                if att else "the context vector: all the decoder sees of the source (the bottleneck)")
        out.append(f"'{dec}' starts from {given} — {what}")
    return out
