"""Mixture of experts: top-k routing of each token over E experts, each expert a block.

    p = softmax(x · W_gᵀ)                      router: a linear layer d → E, no bias
    S = the top_k indices of p                 (Shazeer et al. 2017; Switch, Fedus et al. 2021)
    g_i = p_i / Σ_{j∈S} p_j  (renormalize)     (Mixtral, Jiang et al. 2024; else g_i = p_i)
    y = Σ_{i∈S} g_i · expert_i(x)

The expert is written like a node without `id` and `in` (``expert: {op: llama.mlp, ffn: 64}``)
and compiled into a graph of its own (archviz.ir.body, archviz.spec.bodies), analysed by the ordinary passes:
its params and MACs come from its layers' own rules.

Counting convention: params count the router and every expert; MACs count the router on
every token and top_k experts per token, as the lowering computes them (it routes: each
token runs its top_k experts, no other); the active params per token are the router and
top_k experts.
"""
from __future__ import annotations

from archviz.errors import ArchvizError, OpError
from archviz.ir import meta as M
from archviz.ir.body import BODY_INPUT
from archviz.ir.graph import INPUT_OP, LayerGraph, Node, Ref
from archviz.ops.base import Attr, Line, Op, Params, fmt_shape, keep_extra, keep_in, numel, register_op, registry
from archviz.ops.schema import Attrs
from archviz.ops.describe import Keeps, Role, lowered
from archviz.ops.terms import C, Numel, Parts, Prod, V

MAX_EXPERTS = 65536


def expert_layers(g):
    """The body's layers (no input node), in stable topological order."""
    return [n for n in g.topo_order() if not n.is_input]


def expert_params(g) -> Params:
    p = Params()
    for n in expert_layers(g):
        p = p + n.meta[M.PARAMS]
    return p


@register_op
class MoE(Op):
    name = "moe"
    family = "moe"
    doc = ("Mixture of experts (Shazeer et al. 2017; Switch Transformer, Fedus et al. 2021; Mixtral, Jiang et "
           "al. 2024): a router (linear d → E, no bias, named `gate`) scores E experts per token; softmax, the "
           "top_k kept, renormalised to sum 1 (`renormalize`, Mixtral; false keeps the softmax probabilities, "
           "as Switch), and the chosen experts' outputs summed with those weights. `expert` is the expert "
           "written as a node without id and in: {op: BLOCK or OP, its params}; it sees each token on its own "
           "and must map d features to d. Params: the router and all E experts; MACs: the router and top_k "
           "experts per token (the lowering routes).")
    attrs = {"experts": Attr("int", doc="E, the number of experts", max=MAX_EXPERTS),
             "top_k": Attr("int", doc="experts run per token (1 <= top_k <= experts)"),
             "expert": Attr("block", doc="the expert: {op: BLOCK or OP, its params}, a node without id and in"),
             "renormalize": Attr("bool", True, "divide the top_k weights by their sum (Mixtral); "
                                               "false: the softmax probabilities (Switch)")}
    samples = [{"attrs": {"experts": 4, "top_k": 2, "expert": {"op": "linear", "out": 6}}, "inputs": [(2, 5, 6)]},
               {"attrs": {"experts": 3, "top_k": 1, "renormalize": False,
                          "expert": {"op": "linear", "out": 8, "bias": False}}, "inputs": [(4, 8)]}]
    role = Role.WEIGHT
    label = "MoE"
    features_last = True
    keeps = Keeps.INPUTS

    def caption(self, a):
        if "experts" not in a or "top_k" not in a:
            return super().caption(a)
        return f"{a['top_k']} of {a['experts']}" + (f" × {a['expert']}" if "expert" in a else "")

    def check(self, a, ins):
        E, k = a.experts, a.top_k
        if E < 1:
            raise OpError(f"experts={E}: a mixture needs at least one expert", attr="experts",
                          hint="experts: E >= 1 (Mixtral-8x7B has 8)")
        if k < 1:
            raise OpError(f"top_k={k}: each token must run at least one expert", attr="top_k",
                          hint="1 <= top_k <= experts (Switch routes to 1 expert, Mixtral to 2)")
        if k > E:
            raise OpError(f"top_k={k} experts per token, but there are only experts={E}", attr="top_k",
                          hint=f"top_k is at most experts ({E}); raise experts or lower top_k")
        x = ins[0]
        if len(x) < 2:
            raise OpError(f"expects (N, ..., features), got {fmt_shape(x)}")
        g = self.body(a, ins)
        ref = g.outputs["out"]
        got = tuple(g.nodes[ref.node].meta[M.SHAPES][ref.port])
        if got != tuple(x):
            raise OpError(f"the expert {a.expert} maps {fmt_shape(x)} to {fmt_shape(got)}: an expert's output "
                          "is summed into the token it read, so it must keep its input's shape", attr="expert",
                          hint="end the expert with a projection back to the input's features, e.g. "
                               "out: ${shape(x)[-1]}")

    def body(self, a, ins):
        """The expert's analysed graph on this input (every token, as the analysis sees it): the
        spec's compiler made it (archviz.spec.bodies); an expert given as a mapping outside a
        spec (Python, the registry samples) is one op, built here by that op's rules."""
        key = tuple(ins[0])
        g = a.expert.graphs.get(key)
        if g is None:
            g = a.expert.graphs[key] = _one_op(a.expert.written, key)
        return g

    def infer_shape(self, a, ins):
        return {"out": tuple(ins[0])}

    def explain_shape(self, a, ins, outs):
        s = outs["out"]
        return [Line("output shape", "same as input", fmt_shape(s), s)]

    # -- params ----------------------------------------------------------------
    def param_tensors(self, a, ins):
        """gate.weight (E, d), then each expert's tensors under experts.{i}.{its layer id}
        (a tensor the expert shares within itself is counted once, at its owner)."""
        g = self.body(a, ins)
        one = []
        for n in expert_layers(g):
            tied = n.meta.get(M.TIES) or {}
            one += [(f"{n.id}.{p}", s, kind) for p, s, kind in registry[n.op].param_tensors(n.attrs, n.meta[M.IN_SHAPES])
                    if p not in tied]
        return [("gate.weight", (a.experts, ins[0][-1]), "param")] + \
            [(f"experts.{i}.{p}", s, kind) for i in range(a.experts) for p, s, kind in one]

    def count_params(self, a, ins, frozen=False):
        one = expert_params(self.body(a, ins))
        router = a.experts * ins[0][-1]
        p = Params(router + a.experts * one.trainable, a.experts * one.non_trainable, a.experts * one.buffers)
        return Params(0, p.total, p.buffers) if frozen else p

    def active_params(self, a, ins):
        """Params one token uses: the router and top_k experts."""
        return a.experts * ins[0][-1] + a.top_k * expert_params(self.body(a, ins)).total

    def explain_params(self, a, ins):
        one = expert_params(self.body(a, ins)).total
        d, E, k = ins[0][-1], a.experts, a.top_k
        return [Line("params: router gate.weight", "E · d", f"{E} · {d} = {E * d:,}", E * d),
                Line("params: one expert", f"{a.expert} (its layers' own counts)", f"{one:,}", one),
                Line("params", "E · d + E · expert", f"{E * d:,} + {E} · {one:,} = {E * d + E * one:,}", E * d + E * one),
                Line("active params per token", "E · d + top_k · expert",
                     f"{E * d:,} + {k} · {one:,} = {E * d + k * one:,}", E * d + k * one)]

    # -- work ------------------------------------------------------------------
    def macs_terms(self, a, ins, outs):
        """router: tokens · d · E; experts: top_k · (one expert's MACs over every token)."""
        x = ins[0]
        macs = sum(n.meta[M.MACS] for n in expert_layers(self.body(a, ins)))
        return Parts([("router", Prod(Numel(x[:-1], "tokens"), V("d", x[-1]), V("E", a.experts))),
                      ("experts", Prod(V("top_k", a.top_k), V("expert_macs", macs)),
                       " (expert_macs: one expert on every token, from its layers' rules; each token runs top_k)")])

    def elementwise_terms(self, a, ins, outs):
        """softmax over E (3 per score), the renormalisation (a sum and a divide per chosen
        weight), the weighted sum (a multiply and an add per chosen output element), and
        top_k times one expert's element-wise work over every token."""
        x = ins[0]
        tokens, k = Numel(x[:-1], "tokens"), V("top_k", a.top_k)
        ew = sum(n.meta[M.ELEMENTWISE] for n in expert_layers(self.body(a, ins)))
        parts = [("router softmax", C(3) * tokens * V("E", a.experts))]
        if a.renormalize:
            parts.append(("renormalise", C(2) * tokens * k))
        parts += [("weighted sum", C(2) * tokens * k * V("d", x[-1])),
                  ("experts", k * V("expert_elementwise", ew))]
        return Parts(parts, what="element-wise ops")

    def decode_macs(self, a, ins, outs, tokens, context):
        """Per token: the router and top_k experts, each token on its own: MACs / T."""
        x = ins[0]
        if len(x) < 3 or x[1] != tokens:
            raise OpError(f"reads {fmt_shape(x)}, with no token axis of length {tokens} after the batch")
        return self.count_macs(a, ins, outs) // tokens

    def tensor_parallel(self, a, ins, outs, split, t):
        raise OpError("a mixture of experts under tensor parallelism (expert parallelism) is not sized",
                      hint="size it with data parallelism and a sharded strategy (--strategy zero3)")

    # -- training (archviz.passes.backward adds the experts' own backward: inner_graph) ------
    def inner_graph(self, a, ins):
        """The expert, run top_k times over the tokens in all (each token by its top_k)."""
        return self.body(a, ins), a.top_k

    def saved(self, a, ins, outs, need):
        """The routing, as the lowering (backends/torch/moe_module.py) keeps it: the router's
        input (for its weight), the softmax probabilities (opmath), top_k's indices, with
        renormalize the top_k weights and their sum (opmath), each expert's token and slot
        indices (one int64 pair per routed token), the experts' outputs (for the weights'
        gradient), the chosen weights (for the outputs') and the weighted outputs (index_add_
        keeps its source).  The experts' own tensors come from
        their graph (inner_graph)."""
        x = ins[0]
        tokens, d, k = numel(x[:-1]), x[-1], a.top_k
        expert_grad = need.input(0) or need.weights
        out = [keep_in(ins)] if need.weights else []
        out += [keep_extra("router probabilities", tokens * a.experts, "opmath"),
                keep_extra("top_k indices", tokens * k, "int64")]
        if a.renormalize:
            out += [keep_extra("top_k weights", tokens * k, "opmath"), keep_extra("their sums", tokens, "opmath")]
        out += [keep_extra("token and slot indices", 2 * tokens * k, "int64"),
                keep_extra("expert outputs", tokens * k * d),
                keep_extra("weighted expert outputs (index_add_'s source)", tokens * k * d)]
        return out + ([keep_extra("chosen weights", tokens * k)] if expert_grad else [])

    def backward_macs_terms(self, a, ins, outs, need):
        """The router's (grad x, grad W_g, each tokens · d · E); the experts' own are added by
        archviz.passes.backward from their graph (inner_graph), top_k times."""
        x = ins[0]
        r = Prod(Numel(x[:-1], "tokens"), V("d", x[-1]), V("E", a.experts))
        parts = [(p, r) for p, on in (("router: grad x", need.input(0)), ("router: grad W_g", need.weights)) if on]
        return Parts(parts) if parts else V("no gradient computed", 0)

    def receptive_field(self, a, ins, outs):
        """Each token's output reads that token's features only (the router and the experts
        see one token at a time)."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.along(x, {len(x) - 1: R.All(x[-1])})]}

    def torch_spec(self, a, ins, outs):
        # the expert as its analysed graph: the torch backend lowers it like a model, once per expert
        return lowered("MoE", ins[0][-1], a.experts, a.top_k, a.renormalize, expert=self.body(a, ins),
                       rank=len(ins[0]))


def _one_op(written: dict, in_shape: tuple):
    """The graph of an expert that is one registered op, outside a spec: its node analysed
    by the op's own rules (shape, params, MACs, element-wise work), as the cost pass does."""
    name = written.get("op")
    op = registry.get(name) if isinstance(name, str) else None
    if op is None or name == INPUT_OP:
        raise OpError(f"the expert {{op: {name}}} is not an op: outside a spec an expert is one op "
                      "(a block is written in a spec)", attr="expert")
    try:
        a = op.attrs_of({k: v for k, v in written.items() if k != "op"})
    except ArchvizError as e:
        raise OpError(f"the expert {name}: {e.message}", attr="expert", hint=e.hint) from None
    g = LayerGraph(f"{name} expert")
    x = g.add_node(Node(BODY_INPUT, INPUT_OP, attrs=Attrs(shape=in_shape[1:], batch=in_shape[0])))
    x.meta[M.SHAPES] = {"out": in_shape}
    g.inputs[BODY_INPUT] = BODY_INPUT
    n = g.add_node(Node(name, name, attrs=a, inputs=[Ref(BODY_INPUT)]))
    g.outputs["out"] = Ref(name)
    g.connect()
    ins = [in_shape]
    try:
        outs = op.evaluate(a, ins)
        n.meta.update({M.IN_SHAPES: ins, M.SHAPES: outs, M.PARAMS: op.count_params(a, ins),
                       M.MACS: op.count_macs(a, ins, outs), M.ELEMENTWISE: op.count_elementwise(a, ins, outs),
                       M.ACT_ELEMS: sum(numel(s) for s in outs.values())})
    except OpError as e:
        raise OpError(f"the expert {name}: {e.message}", attr="expert", hint=e.hint) from None
    return g
