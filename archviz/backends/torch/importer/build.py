"""From a trace to the spec text: inputs, outputs, the params a user would change."""
from __future__ import annotations

import re

from archviz.backends.torch.importer import emit, repeat
from archviz.backends.torch.importer.fnmap import tensors_with_ports
from archviz.codes import E
from archviz.errors import TorchImportError

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def spec_name(module, name) -> str:
    n = name or type(module).__name__
    n = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", n).lower()
    return re.sub(r"[^a-z0-9_]+", "_", n).strip("_") or "imported"


def outputs_of(tr, out) -> dict:
    flat = tensors_with_ports(out)
    if not flat:
        raise TorchImportError(f"the model returns no tensor ({type(out).__name__})", code=E.TORCH_IMPORT)
    res = {}
    for port, x in flat:
        src = tr.src.get(id(x))
        if not isinstance(src, tuple):
            raise TorchImportError(f"the model's output {port!r} is not computed from its inputs "
                                   f"({getattr(src, 'what', 'an unknown tensor')})", code=E.TORCH_IMPORT)
        key = port if _ID.match(port) and port not in ("out",) else ("out" if port == "out" else f"out{port}")
        res[key] = src
    return res


def hyper_params(tr, outputs: dict) -> tuple[dict, dict]:
    """({name: value}, {(node id, attr): "${name}"}): the classifier's width as num_classes, or
    the vocabulary when an embedding and the output layer share its size."""
    from archviz.ops import registry
    from archviz.ops.describe import Role
    recs = {r.id: r for r in tr.recs}
    params, exprs = {}, {}
    heads = [recs[n] for n, _p in outputs.values()
             if n in recs and registry[recs[n].op].role is Role.WEIGHT and "out" in recs[n].attrs]
    if len(heads) != 1 or len(tr.recs) == 1:      # (a model of one layer has no classes to name)
        return params, exprs
    width = heads[0].attrs["out"]
    embs = [r for r in tr.recs if registry[r.op].token_vocab(registry[r.op].attrs_of(r.attrs)) == width]
    key = "vocab" if embs else "num_classes"
    params[key] = width
    exprs[(heads[0].id, "out")] = "${%s}" % key
    for r in embs:
        exprs[(r.id, "num")] = "${%s}" % key
    return params, exprs


def left_out(unused: dict) -> str:
    """The sentence naming what the forward never called (so it is not in the spec)."""
    names = ", ".join(f"{k} ({v:,})" for k, v in list(unused.items())[:8]) + (", ..." if len(unused) > 8 else "")
    return (f"Left out: the forward never called {names} (tensor elements), so the spec does not hold their "
            f"{sum(unused.values()):,} elements.")


def sub_blocks(recs) -> dict:
    """{name: block} of the sub-networks the ops hold (modmap.SubBlock: the moe op's expert),
    each attribute replaced by {op: name}; equal sub-networks share one block."""
    from archviz.backends.torch.importer.modmap import SubBlock
    from archviz.ops import registry
    blocks: dict = {}
    for r in recs:
        for key, v in list(r.attrs.items()):
            if not isinstance(v, SubBlock):
                continue
            base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", v.cls).lower()
            base = re.sub(r"[^a-z0-9_]+", "_", base).strip("_") or "block"
            base += "_block" if base in registry else ""
            name, k = base, 1
            while name in blocks and (blocks[name]["nodes"], blocks[name]["out"]) != (v.nodes, v.out):
                k += 1
                name = f"{base}_{k}"
            blocks.setdefault(name, {"doc": f"{v.cls}: the {key} of {r.id.replace('__', '.')} (and of each op holding "
                                            "the same network)", "nodes": v.nodes, "out": v.out, "uses_i": False})
            r.attrs[key] = {"op": name}
    return blocks


def spec_from_trace(module, inputs: dict, tr, out, name=None) -> str:
    import torch
    ins = {}
    for k, x in inputs.items():
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            raise TorchImportError(f"input '{k}' is not a tensor with a batch axis", code=E.IMPORT_INPUTS)
        dtype = None if x.dtype.is_floating_point else str(x.dtype).removeprefix("torch.")
        ins[k] = (tuple(x.shape[1:]), dtype)
    outs = outputs_of(tr, out)
    subs = sub_blocks(tr.recs)
    params, exprs = hyper_params(tr, outs)
    cls = f"{type(module).__module__}.{type(module).__qualname__}"
    b = next(iter(inputs.values())).shape[0]
    doc = (f"Imported from torch: {cls} (archviz import, traced on the meta device at batch {b}). Node ids are "
           "the modules' qualified names, '__' for '.'.")
    if tr.unused:
        doc += " " + left_out(tr.unused)
    sname = spec_name(module, name)
    flat = emit.spec_text(sname, doc, ins, tr.recs, outs, params, exprs, subs)
    classes = {q: f"{type(m).__module__}.{type(m).__qualname__}" for q, m in module.named_modules()}
    col = repeat.collapse(tr.recs, outs, classes, set(subs))
    if col is None:
        return flat
    items, blocks, renames = col
    text = emit.spec_text(sname, doc, ins, items, outs, params, exprs, {**subs, **blocks}, renames)
    return text if same_graph(flat, text) else flat


def same_graph(a: str, b: str) -> bool:
    """Do two spec texts compile to the same layers (torch path, op, attributes, inputs)?"""
    from archviz.backends.torch.importer.loadtext import load_text
    from archviz.backends.torch.lower import torch_path
    try:
        ga, gb = (load_text(t, 2).graph for t in (a, b))
    except TorchImportError:
        return False

    def layers(g):
        return {torch_path(n.id): (n.op, dict(n.attrs), [(torch_path(r.node), r.port) for r in n.inputs])
                for n in g.topo_order()}
    return layers(ga) == layers(gb)
