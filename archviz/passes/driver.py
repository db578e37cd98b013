"""The pass driver: runs each pass over the graph in stable topological order and turns
an op rule's plain :class:`OpError` into a located :class:`ShapeError` that names the
node, its op, the spec location, the inputs (shape and producer) and the block
expansion stack.

The passes are a table (:data:`PASSES`): each declares what it requires and what it
provides.  :func:`run` runs what a pass requires first and records on the graph what is
done (``g.done``), so asking twice does nothing; :func:`analyse` runs them all."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from archviz.codes import E
from archviz.errors import ArchvizError, MissingRuleError, OpError, ShapeError
from archviz.ir import meta as M
from archviz.ir.graph import LayerGraph, Node
from archviz.ops import registry
from archviz.ops.base import fmt_shape, numel
from archviz.passes import rf as RF, share as SH


def node_error(node: Node, e: OpError, ins=None, cls=ShapeError) -> ArchvizError:
    span = node.attr_spans.get(e.attr) if e.attr else None
    if span is None and e.input_index is not None and e.input_index < len(node.input_spans):
        span = node.input_spans[e.input_index]
    notes = []
    if ins is not None:
        for i, (ref, s) in enumerate(zip(node.inputs, ins)):
            notes.append(f"input {i}: {fmt_shape(s)} from '{ref}'")
    notes += node.notes
    return cls(f"'{node.id}' ({node.op}): {e.message}", span or node.span, hint=e.hint, notes=notes,
               code=E.OP_REFUSED)


def input_shapes(g: LayerGraph, node: Node) -> list:
    return [g.nodes[r.node].meta[M.SHAPES][r.port] for r in node.inputs]


def run_rule(node: Node, fn, *args, ins=None):
    """Call an op rule for `node`, adding the node's context to any failure."""
    try:
        return fn(*args)
    except OpError as e:
        raise node_error(node, e, ins) from None
    except MissingRuleError as e:
        e.message = f"{e.message} (needed for node '{node.id}')"
        e.span = e.span or node.span
        raise


def shapes_pass(g: LayerGraph) -> list:
    """Infer every node's output shapes (batch first) and check each `expect:` as soon as
    its node is shaped.  Returns the failed expects; a shape error stops the pass and is
    raised after the expects that failed before it (the first cause is reported first)."""
    by_node: dict = {}
    for e in g.expects:
        by_node.setdefault(e[0].node, []).append(e)
    failed: list = []
    memo: dict = {}
    nodes = g.nodes
    for node in g.topo_order():
        # op rules are functions of (attrs, input shapes): the layers that share an Attrs (one
        # per distinct attribute set, archviz.spec.nodes) and read equal shapes share one answer
        # (issue 17). Failures are not kept: each node raises its own, located error.
        ins = [nodes[r.node].meta[M.SHAPES][r.port] for r in node.inputs]
        hit = memo.get((node.op, id(node.attrs), *ins))
        if hit is not None:
            node.meta[M.IN_SHAPES], node.meta[M.SHAPES] = hit
        else:
            try:
                _shape_node(g, node, memo)
            except ArchvizError as e:
                from archviz.passes.hints import batch_hint
                batch_hint(g, node, e)
                if failed:
                    from archviz.errors import MultipleErrors
                    raise MultipleErrors(failed + [e]) from None
                raise
        if by_node:
            for ex in by_node.get(node.id, ()):
                err = _expect_error(g, *ex)
                if err is not None:
                    failed.append(err)
    return failed


def _shape_node(g: LayerGraph, node: Node, memo: dict | None = None) -> None:
    ins = input_shapes(g, node)
    key = (node.op, id(node.attrs), *ins)        # see shapes_pass
    hit = memo.get(key) if memo is not None else None
    if hit is not None:
        node.meta[M.IN_SHAPES], node.meta[M.SHAPES] = hit
        return
    op = registry[node.op]
    node.meta[M.IN_SHAPES] = ins
    node.meta[M.SHAPES] = run_rule(node, op.evaluate, node.attrs, ins, ins=ins)
    for port, s in node.meta[M.SHAPES].items():
        if any(d < 1 for d in s):
            raise node_error(node, OpError(f"output '{port}' has an empty axis: {fmt_shape(s)}"), ins)
    if memo is not None:
        memo[key] = ins, node.meta[M.SHAPES]


def _expect_error(g: LayerGraph, ref, dims, span, spans, notes):
    """The ExpectError of one `expect:` (shape without the batch axis; null matches any
    size), or None when it holds."""
    from archviz.errors import ExpectError
    got = g.nodes[ref.node].meta[M.SHAPES][ref.port]
    want = list(dims)
    if len(got) - 1 == len(want) and all(w is None or w == d for w, d in zip(want, got[1:])):
        return None
    shown = "[" + ", ".join("*" if w is None else str(w) for w in want) + "]"
    return ExpectError(f"expected '{ref}' to have shape {shown}, got {list(got[1:])}",
                       span, code=E.EXPECT_MISMATCH, notes=[f"full shape with batch: {fmt_shape(got)}"] + notes,
                       hint="shapes in `expect` leave out the batch dimension")


def check_expects(g: LayerGraph) -> list:
    """Every failed `expect:` of a shaped graph."""
    return [e for e in (_expect_error(g, *ex) for ex in g.expects) if e is not None]


def cost_pass(g: LayerGraph) -> None:
    """Params (and the active params per token), MACs, element-wise ops and activation
    elements for every node (the op's rules once per distinct op, Attrs, input shapes and
    frozen, as the shape pass; what a node shares is its own)."""
    memo: dict = {}
    for node in g.topo_order():
        ins = node.meta[M.IN_SHAPES]
        key = (node.op, id(node.attrs), id(ins), node.frozen)     # equal shapes share one list
        hit = memo.get(key)
        if hit is None:
            op = registry[node.op]
            outs = node.meta[M.SHAPES]
            hit = memo[key] = (run_rule(node, op.count_params, node.attrs, ins, node.frozen, ins=ins),
                               run_rule(node, op.active_params, node.attrs, ins, ins=ins),
                               int(run_rule(node, op.count_macs, node.attrs, ins, outs, ins=ins)),
                               int(run_rule(node, op.count_elementwise, node.attrs, ins, outs, ins=ins)),
                               sum(numel(s) for s in outs.values()))
        meta = node.meta
        full, active, meta[M.MACS], meta[M.ELEMENTWISE], meta[M.ACT_ELEMS] = hit
        # what it shares is counted at the owner (SH.own_params): most layers share nothing
        meta[M.PARAMS] = own = SH.own_params(node, full) if meta.get(M.TIES) else full
        # the params one token uses: all of the node's own, less those it does not route to
        meta[M.ACTIVE] = own.total if active is None else own.total - (full.total - active)


def training_warnings(g: LayerGraph) -> None:
    """A layer torch runs at inference but cannot train at these shapes (its op's train_check:
    batch norm with one value per channel) is a warning, not an error: archviz analyses the
    inference graph, and train-smoke / bench --train refuse it."""
    from archviz.errors import SpecWarning
    for node in g.topo_order():
        try:
            registry[node.op].train_check(node.attrs, node.meta[M.IN_SHAPES])
        except OpError as e:
            g.warnings.append(SpecWarning(f"'{node.id}' ({node.op}): torch cannot train it at these shapes: "
                                          f"{e.message}", node.attr_spans.get(e.attr) if e.attr else node.span,
                                          code=E.UNTRAINABLE, hint=e.hint))


def _shapes(g: LayerGraph) -> None:
    """The shape pass, raising the `expect:`s that failed (all of them)."""
    errs = shapes_pass(g)
    if errs:
        from archviz.errors import MultipleErrors
        raise errs[0] if len(errs) == 1 else MultipleErrors(errs)


def _ties(g: LayerGraph) -> None:
    SH.ties_pass(g, run_rule)


def _lint(g: LayerGraph) -> None:
    from archviz.passes.hints import lint_warnings
    lint_warnings(g)


def _rf(g: LayerGraph, input: str | None = None):
    from archviz import _collector_paused      # run when asked, maybe after load's pause: its own
    with _collector_paused():
        return RF.rf_pass(g, input)


def _rf_check(g: LayerGraph, input: str | None = None) -> None:
    if input is not None and input not in g.inputs:
        raise KeyError(input)


@dataclass(frozen=True)
class Pass:
    """A pass: ``run(g, **options)`` writes the ``provides`` keys of every node's meta once
    the passes named in ``requires`` are done, and returns its result; ``check(g, **options)``
    refuses bad options before any work.  A pass that must never break the analysis
    (``optional``) has its failure recorded, and :func:`analyse` goes on without it; asking
    for it later raises that failure again."""
    name: str
    run: Callable
    requires: tuple = ()
    provides: tuple = ()
    optional: bool = False
    check: Callable | None = None
    lazy: bool = False          # analyse(g, lazy=True) leaves it to the readers that ask (run())


@dataclass
class Done:
    """What :func:`run` records in ``g.done[name]``: the options the pass ran with (those
    given, not None), and its result or its failure."""
    options: dict = field(default_factory=dict)
    result: object = None
    error: BaseException | None = None

    def answers(self, options: dict) -> bool:
        """A result answers every request whose given options it ran with (rf asked for no
        input answers with the input it has); a failure answers only the same request."""
        if self.error is not None:
            return options == self.options
        return all(self.options.get(k) == v for k, v in options.items())


PASSES = {p.name: p for p in (
    Pass("shapes", _shapes, provides=(M.SHAPES, M.IN_SHAPES)),
    Pass("ties", _ties, ("shapes",), (M.TIES, M.TIED_BY)),
    Pass("cost", cost_pass, ("shapes", "ties"), (M.PARAMS, M.ACTIVE, M.MACS, M.ELEMENTWISE, M.ACT_ELEMS)),
    Pass("training", training_warnings, ("shapes",)),       # adds to g.warnings
    Pass("lint", _lint, ("shapes",)),                       # adds to g.warnings
    # option: input (its name); lazy: a command that shows no field (validate, explain's counts,
    # draw, lowering) never pays for it (issue 17)
    Pass("rf", _rf, ("shapes",), (M.RF,), optional=True, check=_rf_check, lazy=True),
)}


def run(g: LayerGraph, name: str, **options):
    """Run pass `name` on `g` (after what it requires) unless it is done for these options;
    its result (rf: the Context).  ``run(g, "rf", input="b")`` re-runs the receptive-field
    pass on input b's axes; ``run(g, "rf")`` takes it for whichever input it last ran."""
    p = PASSES[name]
    options = {k: v for k, v in options.items() if v is not None}
    done = g.done.get(name)
    if done is not None and done.answers(options):
        if done.error is not None:
            raise done.error
        return done.result
    if p.check is not None:
        p.check(g, **options)
    for r in p.requires:
        run(g, r)
    g.done.pop(name, None)          # its results are being overwritten (no pass requires rf)
    try:
        result = p.run(g, **options)
    except Exception as e:
        if p.optional:
            g.done[name] = Done(options, error=e)
        raise
    g.done[name] = Done(options, result)
    return result


def analyse(g: LayerGraph, lazy: bool = False) -> LayerGraph:
    """Run every pass of the table (with `lazy`, not the lazy ones: rf runs when a reader asks
    for it). Raises the first ArchvizError (expect failures are collected); an optional pass's
    failure is recorded, not raised (receptive fields never break a summary: the model says
    why they are missing)."""
    for name, p in PASSES.items():
        if lazy and p.lazy:
            continue
        try:
            run(g, name)
        except Exception:
            if not p.optional:
                raise
    return g
