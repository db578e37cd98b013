"""The analysed model: what `archviz.load` returns.

Holds the LayerGraph (with every pass's results in ``node.meta``) and presents them:
per-layer rows, totals, and the JSON contract.  Nothing here recomputes a shape or a
count; it only reads the passes' results.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from archviz.errors import ArchvizError
from archviz.ir import meta as M
from archviz.ir.graph import LayerGraph, Node
from archviz.ops.base import Params

from archviz.dtypes import DTYPE_BYTES  # noqa: F401  (re-exported: archviz.model.DTYPE_BYTES)


@dataclass(slots=True)      # one per layer
class Layer:
    id: str
    op: str
    inputs: list
    output_shape: tuple
    params: Params
    macs: int
    elementwise: int
    activation_elements: int
    node: Node

    @property
    def flops(self) -> int:
        return 2 * self.macs


class Model:
    def __init__(self, graph: LayerGraph, batch: int = 1, dtype: str = "float32"):
        self.graph = graph
        self.batch = batch
        self.dtype = dtype

    @property
    def name(self) -> str:
        return self.graph.name

    # -- per layer -----------------------------------------------------------
    @cached_property
    def layers(self) -> list[Layer]:
        """Every node but the graph inputs, in stable topological order (read once from the
        passes' results; the model is immutable once analysed)."""
        out = []
        for n in self.layer_nodes():
            meta = n.meta
            shapes = meta[M.SHAPES]
            out.append(Layer(n.id, n.op, [r.node if r.port == "out" else str(r) for r in n.inputs],
                             shapes["out"] if "out" in shapes else next(iter(shapes.values())),
                             meta[M.PARAMS], meta[M.MACS], meta[M.ELEMENTWISE], meta[M.ACT_ELEMS], n))
        return out

    def layer(self, nid: str) -> Layer:
        for l in self.layers:
            if l.id == nid:
                return l
        raise KeyError(nid)

    @property
    def input_shapes(self) -> dict:
        return {k: self.graph.nodes[v].meta[M.SHAPES]["out"] for k, v in self.graph.inputs.items()}

    @property
    def output_shapes(self) -> dict:
        return {k: self.graph.nodes[r.node].meta[M.SHAPES][r.port] for k, r in self.graph.outputs.items()}

    # -- totals --------------------------------------------------------------
    def layer_nodes(self) -> list:
        """The graph nodes of `layers` (every node but the inputs, in the same order), for a
        reader that needs no Layer object per node (the totals, the JSON writer)."""
        if "layers" in self.__dict__:
            return [l.node for l in self.layers]
        return [n for n in self.graph.topo_order() if not n.is_input]

    @cached_property
    def _sums(self) -> tuple:
        """The layers' counts summed (read once, as `layers`: the model is immutable once
        analysed; a report reads the totals more than once)."""
        tr = nt = buf = macs = ew = act = active = 0
        for n in self.layer_nodes():
            meta = n.meta
            p = meta[M.PARAMS]
            tr += p.trainable
            nt += p.non_trainable
            buf += p.buffers
            active += meta[M.ACTIVE]
            macs += meta[M.MACS]
            ew += meta[M.ELEMENTWISE]
            act += meta[M.ACT_ELEMS]
        return tr, nt, buf, macs, ew, act, active

    @property
    def totals(self) -> dict:
        tr, nt, buf, macs, ew, act, active = self._sums
        p = Params(tr, nt, buf)
        b = DTYPE_BYTES[self.dtype]
        return {
            "params": p.total, "active_params": active,
            "trainable_params": p.trainable, "non_trainable_params": p.non_trainable,
            "buffers": p.buffers, "macs": macs, "flops": 2 * macs, "elementwise_ops": ew,
            "param_bytes": p.total * b, "activation_bytes": act * b,
        }

    @property
    def warnings(self) -> list:
        """SpecWarnings: the spec compiles, but maybe not to what was meant (unused layers)."""
        return list(self.graph.warnings)

    # -- contract ------------------------------------------------------------
    def to_dict(self) -> dict:
        """The stable JSON contract (see README, 'JSON output')."""
        d = self.json_head()
        d["layers"] = list(self.layer_entries())
        return d

    def json_head(self) -> dict:
        """The contract's keys before `layers` (which comes last)."""
        return {
            "name": self.name,
            "batch": self.batch,
            "dtype": self.dtype,
            "inputs": {k: list(v) for k, v in self.input_shapes.items()},
            "outputs": {k: list(v) for k, v in self.output_shapes.items()},
            "totals": self.totals,
            "warnings": [{"code": w.code, "message": w.message, "at": str(w.span) if w.span else None}
                         for w in self.warnings],
        }

    def layer_entries(self):
        """The contract's `layers`, one entry at a time (a writer need not hold them all).
        `rf` of each layer: one object per spatial axis {axis, size_min, size_max, jump, start,
        global} (archviz.passes.rf), or null with `rf_note`; `rf_warnings` for misaligned
        merges.  If the pass cannot run at all, `rf` is left out and every entry's `rf_note`
        says why (never silently)."""
        failed = self.rf_failure()
        from archviz.backends.sharing import json_keys
        from archviz.passes import rf as RF
        memo: dict = {}         # one rf entry per field shared by several layers
        for l in self.layers:
            meta = l.node.meta
            p = l.params
            e = {"id": l.id, "op": l.op, "inputs": l.inputs, "output_shape": list(l.output_shape),
                 "params": p.trainable + p.non_trainable, "macs": l.macs, "flops": 2 * l.macs}
            if M.TIES in meta or M.TIED_BY in meta:
                e.update(json_keys(l.node))
            if failed is not None:
                e["rf_note"] = failed
            else:
                e["rf"], note = RF.layer_json(l.node, memo)
                if e["rf"] is None and note:
                    e["rf_note"] = note
                warnings = meta[M.RF].warnings
                if warnings:
                    e["rf_warnings"] = list(warnings)
            yield e

    def rf_failure(self) -> str | None:
        """Run the receptive-field pass (once); None, or why it failed (each entry's `rf_note`)."""
        try:
            from archviz.passes import run
            run(self.graph, "rf")
        except Exception as exc:    # receptive fields never break the summary, but say so
            why = exc.message if isinstance(exc, ArchvizError) else f"{type(exc).__name__}: {exc}"
            return f"receptive-field pass failed: {why}"
        return None

    def to_json(self, indent: int | None = 2) -> str:
        import json
        return json.dumps(self.to_dict(), indent=indent)

    def summary(self, fmt: str = "text", depth: int | None = None, indent: int | None = None) -> str:
        """The summary as text: "text" (the table), "json" (compact; `indent` spaces when
        given), "csv" or "markdown"."""
        from archviz.backends.report import render_summary
        return render_summary(self, fmt, depth, indent)

    def explain(self, node: str | None = None) -> str:
        """Each number's formula with the numbers put in (a str; shown as a block in a notebook)."""
        from archviz.backends.explain import explain_text
        from archviz.backends.notebook import Explanation
        return Explanation(explain_text(self, node))

    # -- notebooks -----------------------------------------------------------
    def _repr_html_(self) -> str:
        """The summary with collapsible blocks (Jupyter shows it when the model is displayed)."""
        from archviz.backends.html import summary_html
        return summary_html(self)

    def draw(self, layout: str = "auto", **options):
        """The diagram (archviz.backends.notebook.Diagram: SVG in a notebook, .save(path)).
        Options as `archviz draw`: depth, expand, unroll, rankdir, shapes."""
        from archviz.backends.notebook import Diagram
        from archviz.backends.render import detect_layout, to_dot
        chosen = detect_layout(self) if layout == "auto" else layout
        return Diagram(to_dot(self, chosen, **options), chosen, self.name)

    def rf(self):
        """Receptive fields per layer (a table in a notebook; text elsewhere)."""
        from archviz.backends.notebook import ReceptiveFields
        return ReceptiveFields(self)

    def size(self, **options):
        """What the model costs to train and serve (archviz.backends.sizing.Sizing; its
        ``to_dict()`` is `archviz size -f json`).  Options as the command's, by their Python
        names: context, optimizer, mixed_precision, checkpointing, devices, strategy,
        tensor_parallel, device_memory (bytes); dtype defaults to the model's."""
        from archviz.backends.sizing import SizeOptions, size
        options.setdefault("dtype", self.dtype)
        return size(self, SizeOptions(**options))

    def compare(self, other: "Model"):
        """This model's totals beside `other`'s, with the ratios (A / B), exact and as numbers."""
        from archviz.backends.notebook import Comparison
        return Comparison(self, other)

    def __repr__(self) -> str:
        t = self.totals
        return f"<archviz.Model {self.name}: {len(self.layers)} layers, {t['params']:,} params, {t['macs']:,} MACs>"
