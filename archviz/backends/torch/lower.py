"""Lower an analysed model to a ``torch.fx.GraphModule``.

Every node lowers through its own op's ``torch_spec`` rule (built by table.py) to one submodule whose
qualified name is the node id (``layer1.0.conv1``), so state-dict keys read like the
spec.  Ops with several output ports return a dict; consumers read a port through
``operator.getitem``.  ``forward`` takes the spec's inputs in spec order (or by name)
and returns the output tensor, or a dict of them when the spec has several outputs.
"""
from __future__ import annotations

import operator

from archviz.codes import E
from archviz.errors import LoweringError, MissingRuleError
from archviz.ir import meta as M
from archviz.ops import registry
from archviz.ops.describe import Keeps
from archviz.passes.tokens import token_inputs as _token_inputs
from archviz.backends.torch.table import module, register_graph_lowering


def torch_path(nid: str) -> str:
    """The qualified module name of node `nid`: '__' in an id stands for '.', and a first segment
    `_N` (N digits) for `N` (an imported spec's `layer1__0__conv1` lowers to torch's `layer1.0.conv1`,
    `_0` to the `0` of a Sequential, so state-dict keys are the original model's; ids cannot hold
    dots, the port separator, nor start with a digit)."""
    if "__" not in nid and "_" != nid[:1]:
        return nid
    segs = [s for seg in nid.split(".") for s in seg.replace("__", ".").split(".")]
    if segs[0][:1] == "_" and segs[0][1:].isdigit():
        segs[0] = segs[0][1:]
    return ".".join(segs) if all(segs) else nid


def check_id(node) -> None:
    """Every part of a node id becomes a submodule attribute: it must not shadow nn.Module's own."""
    import torch.nn as nn
    for part in torch_path(node.id).split("."):
        if hasattr(nn.Module, part):
            raise LoweringError(f"node id '{node.id}' cannot be a torch submodule name: '{part}' is an "
                                "attribute of torch.nn.Module", node.span, code=E.TORCH_NAME_CLASH,
                                hint="rename the node (e.g. '" + part + "_')")


def lower_node(node):
    """The torch module of one node, via its op's torch_spec rule."""
    check_id(node)
    op = registry[node.op]
    try:
        mod = module(op, node.attrs, node.meta[M.IN_SHAPES], node.meta[M.SHAPES])
    except MissingRuleError as e:
        raise LoweringError(f"op '{node.op}' has no torch lowering (node '{node.id}')", node.span,
                            code=E.NO_TORCH_RULE) from e
    return mod


def overwritable(node) -> bool:
    """May a consumer overwrite this node's output?  Only when the op's backward does not
    read its output and the output is not a view of its input (whose producer may need it)."""
    op = registry[node.op]
    if node.is_input or op.aliases or op.backward_keeps(node.attrs) in (Keeps.OUTPUT, Keeps.BOTH):
        return False
    return list(node.meta[M.SHAPES]) == ["out"]


def inplace_ok(g, node) -> bool:
    """May `node` write its result into its first input (if its module can: nn.ReLU, Add)?
    Only when nothing else reads that tensor, it is not a graph input or output, it has the
    output's shape, and its producer's backward does not need it (as torchvision's in-place
    ReLU and `out += identity`)."""
    if not node.inputs:
        return False
    ref = node.inputs[0]
    src = g.nodes[ref.node]
    if not overwritable(src):
        return False
    if ref in g.outputs.values() or sum(1 for n in g.consumers(src.id) for r in n.inputs if r.node == src.id) != 1:
        return False
    out = node.meta[M.SHAPES].get("out")        # (a split's parts are views: never in place)
    return out is not None and tuple(src.meta[M.SHAPES]["out"]) == tuple(out)


def lower_graph_node(g, node, inplace: bool = True):
    """lower_node plus the in-place choice the graph allows (set_inplace switches only the
    modules that can run in place)."""
    mod = lower_node(node)
    if inplace and inplace_ok(g, node):
        from archviz.backends.torch.modules import set_inplace
        set_inplace(mod)
    return mod


def to_torch(model, *, seed: int | None = None, dtype=None, device=None, train: bool = False,
             inplace: bool = True):
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    gm = lower_graph(model.graph, _class_name(model.name), inplace)
    gm.train(train)
    if dtype is not None or device is not None:
        gm = gm.to(device=device, dtype=dtype)
    return gm


def lower_graph(g, class_name: str, inplace: bool = True):
    """The GraphModule of an analysed LayerGraph (a model's, or an expert's: archviz.ops.body)."""
    import torch.fx as fx

    graph = fx.Graph()
    modules = {}
    env = {}
    for name in g.inputs:
        env[(name, "out")] = graph.placeholder(name)
    for node in g.topo_order():
        if node.is_input:
            continue
        mod = lower_graph_node(g, node, inplace)
        if node.frozen:                 # `frozen: true`: its parameters are not trained
            mod.requires_grad_(False)
        modules[torch_path(node.id)] = mod
        args = tuple(env[(r.node, r.port)] for r in node.inputs)
        out = graph.call_module(torch_path(node.id), args)
        ports = node.meta[M.SHAPES]
        if list(ports) == ["out"]:
            env[(node.id, "out")] = out
        else:
            for p in ports:
                env[(node.id, p)] = graph.call_function(operator.getitem, (out, p))
    tie_weights(g, modules)
    outs = {k: env[(r.node, r.port)] for k, r in g.outputs.items()}
    graph.output(next(iter(outs.values())) if len(outs) == 1 else outs)
    return fx.GraphModule(modules, graph, class_name=class_name)


register_graph_lowering(lower_graph)     # a sub-network argument (an expert) lowers like a model


def ties(g) -> list:
    """[(node id, its tensor, owner id, owner's tensor)] of every shared tensor (`share:`,
    resolved by archviz.passes.share), in graph order."""
    return [(n.id, p, o, q) for n in g.topo_order() for p, (o, q, _s, _k) in (n.meta.get(M.TIES) or {}).items()]


def tie_weights(g, modules: dict) -> None:
    """Make each shared tensor the owner's object, as torch's `lm_head.weight = wte.weight`:
    `parameters()` and `buffers()` then hold it once, and a gradient step moves both uses."""
    for nid, p, o, q in ties(g):
        nid, o = torch_path(nid), torch_path(o)
        src = modules[o].get_parameter(q) if q in dict(modules[o].named_parameters()) else modules[o].get_buffer(q)
        *path, leaf = p.split(".")
        holder = modules[nid].get_submodule(".".join(path)) if path else modules[nid]
        setattr(holder, leaf, src)


def _class_name(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "_" for ch in name)
    return (s[:1].upper() + s[1:]) if s and not s[0].isdigit() else "Model_" + s


def example_inputs(model, *, dtype=None, device=None, seed: int = 0) -> list:
    """Random inputs of the spec's input shapes (batch included), in spec order; inputs
    read by an embedding are integer tokens below its vocabulary size."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    vocab = token_inputs(model)
    out = []
    for name, shape in model.input_shapes.items():
        if device is not None and str(device) == "meta":    # shapes only: no storage, whatever the size
            out.append(torch.empty(tuple(shape), device="meta",
                                   dtype=torch.int64 if name in vocab else dtype or torch.float32))
            continue
        if name in vocab:
            t = torch.randint(0, vocab[name], tuple(shape), generator=gen)
        else:
            t = torch.randn(tuple(shape), generator=gen, dtype=dtype or torch.float32)
        out.append(t.to(device) if device is not None else t)
    return out


def token_inputs(model) -> dict:
    """Inputs read by an embedding are integer tokens: name -> vocabulary size."""
    return _token_inputs(model.graph)
