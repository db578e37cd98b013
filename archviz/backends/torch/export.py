"""`archviz export`: a standalone, readable PyTorch file (.py), ONNX (.onnx) or a
torch.export program (.pt2).

The .py file imports only torch: archviz's small helper modules are copied in by their
source, every layer is constructed from the arguments its `torch_spec` rule gave (recorded
by `make`), submodules nest as in the spec ids (state-dict keys ``layer1.0.conv1.weight``),
and ``python model.py`` builds the model, runs a forward pass on random input and prints
the output shape(s).
"""
from __future__ import annotations

import warnings

import inspect
import io
import keyword
import os

from archviz.backends.files import atomic_target
from archviz.codes import E
from archviz.errors import LoweringError
from archviz.ir import meta as M
from archviz.ops import registry


def _lit(v) -> str:
    if isinstance(v, float) and v != v:  # nan
        return "float('nan')"
    if isinstance(v, tuple):
        return "(" + ", ".join(_lit(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    if isinstance(v, (int, float, str, bool)) or v is None:
        return repr(v)
    raise LoweringError(f"cannot write constructor argument {v!r} into a .py file")


def _ctor(mod, custom: dict, graphs: dict | None = None) -> str:
    """The constructor call that rebuilds `mod`.  An argument that lowers a sub-network (a
    mixture of experts' expert: a function making one module per call) is written as a class
    of its own, generated like the model's (`graphs`: its source, named _SUB -> its class name)."""
    import torch.nn as nn
    rec = getattr(mod, "_archviz_ctor", None)
    if rec is None:
        raise LoweringError(f"module {type(mod).__name__} was not built with archviz's `make`; "
                            "cannot write it to a standalone file")
    cls, args, kwargs = rec
    if getattr(nn, cls.__name__, None) is cls:
        name = f"nn.{cls.__name__}"
    else:
        name = cls.__name__
        custom[name] = cls

    def lit(v):
        sub = _subgraph(v)
        if sub is None or graphs is None:
            return _lit(v)
        text = _class_text(sub, _SUB, custom, graphs)       # one class per distinct expert (not per layer)
        return graphs.setdefault(text, f"Expert{len(graphs) + 1}")
    parts = [lit(a) for a in args] + [f"{k}={lit(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


_SUB = "ArchvizSubnetwork"


def _subgraph(v):
    """The LayerGraph a sub-network argument lowers (archviz.backends.torch.table.build), or None."""
    from functools import partial
    from archviz.ir.graph import LayerGraph
    if isinstance(v, partial) and v.args and isinstance(v.args[0], LayerGraph):
        return v.args[0]
    return None


def _class_source(cls, seen: dict) -> list[str]:
    """Source of cls and of its archviz-defined bases, bases first."""
    import torch.nn as nn
    out = []
    for b in cls.__mro__[1:]:
        if b.__module__.startswith("archviz") and b.__name__ not in seen:
            out += _class_source(b, seen)
    if cls.__name__ not in seen:
        seen[cls.__name__] = True
        text = inspect.getsource(cls)
        out += _helper_functions(cls, text, seen)
        out.append(text)
    return out


def _helper_functions(cls, text: str, seen: dict) -> list[str]:
    """Source of the functions of cls's own module that its source calls (SDPA's
    attention_mask): a copied class must not name a function the file lacks."""
    import re
    import sys
    mod = sys.modules[cls.__module__]
    out = []
    for name, fn in vars(mod).items():
        if inspect.isfunction(fn) and fn.__module__ == mod.__name__ and name not in seen \
                and re.search(rf"\b{re.escape(name)}\(", text):
            seen[name] = True
            out.append(inspect.getsource(fn))
    return out


def _var(nid: str, used: set) -> str:
    v = nid.replace(".", "_")
    if keyword.iskeyword(v) or v in ("self", "torch", "nn", "F"):
        v += "_"
    base, k = v, 1
    while v in used:
        k += 1
        v = f"{base}_{k}"
    used.add(v)
    return v


def _access(nid: str) -> str:
    head, *rest = nid.split(".")
    return "self." + head + "".join(f"[{p!r}]" for p in rest)


def _class_text(g, cls_name: str, custom: dict, graphs: dict) -> str:
    """The source of an nn.Module class computing analysed graph `g` (its layers are submodules
    named by their ids, its forward takes the graph's inputs)."""
    from archviz.backends.torch.lower import lower_graph_node, ties, torch_path
    init, fwd = [], []
    containers = set()
    used = set(g.inputs)
    env = {(name, "out"): name for name in g.inputs}
    for node in g.topo_order():
        if node.is_input:
            continue
        mod = lower_graph_node(g, node)
        path = torch_path(node.id)
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in containers:
                containers.add(prefix)
                init.append(f"        {_access(prefix)} = nn.ModuleDict()")
        init.append(f"        {_access(path)} = {_ctor(mod, custom, graphs)}")
        var = _var(node.id, used)
        args = ", ".join(env[(r.node, r.port)] for r in node.inputs)
        fwd.append(f"        {var} = {_access(path)}({args})")
        ports = node.meta[M.SHAPES]
        if list(ports) == ["out"]:
            env[(node.id, "out")] = var
        else:
            for p in ports:
                env[(node.id, p)] = f"{var}[{p!r}]"
    for nid, p, o, q in ties(g):   # one tensor in two layers: torch's `lm_head.weight = wte.weight`
        init.append(f"        {_access(torch_path(nid))}.{p} = {_access(torch_path(o))}.{q}")
    outs = {k: env[(r.node, r.port)] for k, r in g.outputs.items()}
    if len(outs) == 1:
        fwd.append(f"        return {next(iter(outs.values()))}")
    else:
        fwd.append("        return {" + ", ".join(f"{k!r}: {v}" for k, v in outs.items()) + "}")
    return (f"class {cls_name}(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            + "\n".join(init) + "\n\n" + f"    def forward(self, {', '.join(g.inputs)}):\n" + "\n".join(fwd) + "\n")


def to_python(model, spec_path: str | None = None) -> str:
    from archviz.backends.torch.lower import _class_name, token_inputs
    g = model.graph
    cls_name = _class_name(model.name)
    custom: dict = {}
    graphs: dict = {}
    main_class = _class_text(g, cls_name, custom, graphs)
    seen: dict = {}
    helpers = []
    for c in custom.values():
        helpers += _class_source(c, seen)
    helpers += [text.replace(f"class {_SUB}(", f"class {name}(", 1) for text, name in graphs.items()]   # before the model
    shapes = model.input_shapes
    src = io.StringIO()
    w = src.write
    w(f'"""{model.name}: generated by archviz{" from " + os.path.basename(spec_path) if spec_path else ""}.\n\n')
    if g.doc:
        w(g.doc.strip().replace('"""', "'''") + "\n\n")
    t = model.totals
    w(f"Static analysis (batch {model.batch}): {t['params']:,} params, {t['macs']:,} MACs.\n")
    w("Standalone: needs only torch. Run `python this_file.py` for a forward pass on random input.\n")
    w('"""\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n')
    for h in helpers:
        w(h.rstrip() + "\n\n\n")
    w(main_class + "\n\n")
    vocab = token_inputs(model)
    w("INPUT_SHAPES = {" + ", ".join(f"{k!r}: {tuple(v)!r}" for k, v in shapes.items()) + "}\n")
    w("TOKEN_VOCAB = {" + ", ".join(f"{k!r}: {v}" for k, v in vocab.items()) + "}  # integer token inputs\n\n\n")
    w("def example_inputs():\n")
    w("    return [torch.randint(0, TOKEN_VOCAB[k], s) if k in TOKEN_VOCAB else torch.randn(s)\n"
      "            for k, s in INPUT_SHAPES.items()]\n\n\n")
    w('if __name__ == "__main__":\n')
    w(f"    model = {cls_name}().eval()\n")
    w("    with torch.no_grad():\n        out = model(*example_inputs())\n")
    only = next(iter(model.output_shapes), "out")   # a single output is returned bare: print its spec name
    w(f"    outs = out if isinstance(out, dict) else {{{only!r}: out}}\n")
    w("    for name, t in outs.items():\n        print(name, tuple(t.shape))\n")
    w("    print('params', sum(p.numel() for p in model.parameters()))\n")
    return src.getvalue()


def export_onnx(model, path: str, opset: int = 17) -> None:
    import torch
    from archviz.backends.torch.lower import example_inputs, to_torch
    gm = to_torch(model, seed=0).eval()
    inputs = tuple(example_inputs(model))
    with atomic_target(path) as tmp:
        names = list(model.graph.inputs) + list(model.graph.outputs)
        # A symbolic batch axis, except where a layer's exported graph uses the traced batch
        # size (recurrent layers' zero initial states, batch norm without running statistics)
        fixed = [n.id for n in model.graph.nodes.values() if registry[n.op].static_batch(n.attrs)]
        dynamic = None if fixed else {n: {0: "batch"} for n in names}
        with warnings.catch_warnings():     # the TorchScript exporter: dynamo=True needs onnxscript
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                torch.onnx.export(gm, inputs, tmp, opset_version=opset, input_names=list(model.graph.inputs),
                                  output_names=list(model.graph.outputs), dynamo=False,
                                  dynamic_axes=dynamic)
            except OSError:             # writing the file (a full disk): the output's own error, E0801
                raise
            except Exception as e:      # torch's exporter asserts and raises many kinds: never a traceback
                msg = str(e).splitlines()[0] if str(e) else ""
                raise LoweringError(f"torch's ONNX exporter failed: {type(e).__name__}: {msg}", code=E.ONNX_FAILED,
                                    hint="run with --traceback for details; the .py and .pt2 exports "
                                         "may still work") from e


def export_pt2(model, path: str) -> None:
    import torch
    from archviz.backends.torch.lower import example_inputs, to_torch
    gm = to_torch(model, seed=0).eval()
    prog = torch.export.export(gm, tuple(example_inputs(model)))
    with atomic_target(path) as tmp:
        torch.export.save(prog, tmp)
