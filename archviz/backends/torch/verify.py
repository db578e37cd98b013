"""`archviz verify`: run the lowered module and compare every static number with torch.

What this proves and what it does not: both sides come from the same spec. It proves that
the static analysis (shapes, parameters, MACs) agrees with the torch module archviz builds
from the spec, so a wrong shape rule, count or lowering is caught. It does not prove that
the spec computes the same function as the network it stands for: a GPT-2 spec without its
causal mask, or a ResNet without a shortcut, passes. That needs a reference model.

* every node's output shape(s) == the runtime tensor shapes;
* total params == Σ numel of the module's parameters; buffers == Σ numel of buffers;
  and per node, param names/shapes == the op's ``param_tensors``;
* per node, 2 × static MACs == ``torch.utils.flop_counter.FlopCounterMode``'s count,
  where torch counts the op (FlopCounterMode counts matmul-like aten ops: convolution,
  mm/addmm/bmm, scaled-dot-product attention; it ignores element-wise ops). A node whose
  static MACs are > 0 but whose torch count is 0 is reported as "not counted by torch",
  never as agreement.

It runs on the meta device first (fake storage: a 4096×4096 input costs nothing) and
falls back to the CPU when an op has no meta kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from archviz.ir import meta as M
from archviz.ops import registry


@dataclass
class NodeCheck:
    id: str
    op: str
    static_shapes: dict
    torch_shapes: dict
    static_flops: int
    torch_flops: int
    static_params: dict
    torch_params: dict
    problems: list = field(default_factory=list)

    @property
    def flops_status(self) -> str:
        if self.static_flops == self.torch_flops:
            return "ok"
        if self.torch_flops == 0:
            return "not counted by torch"
        return "MISMATCH"


@dataclass
class Verification:
    device: str
    nodes: list
    params: tuple           # (static, torch)
    buffers: tuple
    problems: list

    @property
    def ok(self) -> bool:
        return not self.problems


def _shape_of(v) -> dict:
    import torch
    if isinstance(v, torch.Tensor):
        return {"out": tuple(v.shape)}
    if isinstance(v, dict):
        return {k: tuple(t.shape) for k, t in v.items()}
    if isinstance(v, (tuple, list)):
        return {str(i): tuple(t.shape) for i, t in enumerate(v)}
    return {}


def _run(model, device: str):
    import torch
    from torch.fx import Interpreter
    from torch.utils.flop_counter import FlopCounterMode

    from archviz.backends.torch.lower import example_inputs, to_torch

    if device == "meta":
        with torch.device("meta"):
            gm = to_torch(model)
        inputs = example_inputs(model, device="meta")
    else:
        gm = to_torch(model, seed=0, device=device)
        inputs = example_inputs(model, device=device)
    gm.eval()
    records = {}

    class Recorder(Interpreter):
        def call_module(self, target, args, kwargs):
            with FlopCounterMode(display=False) as fc:
                out = super().call_module(target, args, kwargs)
            records[target] = (_shape_of(out), fc.get_total_flops())
            return out

    with torch.no_grad():
        Recorder(gm).run(*inputs)
    return gm, records


def verify(model, device: str = "auto") -> Verification:
    import torch
    from archviz.backends.torch.lower import torch_path
    tried = ["meta", "cpu"] if device == "auto" else [device]
    last = None
    for dev in tried:
        try:
            gm, records = _run(model, dev)
            break
        except (NotImplementedError, RuntimeError) as e:  # no meta kernel: fall back
            last = e
            if dev == tried[-1]:
                raise
    else:  # pragma: no cover
        raise last
    problems = []
    nodes = []
    mods = dict(gm.named_modules())
    for n in model.graph.topo_order():
        if n.is_input:
            continue
        op = registry[n.op]
        tshapes, tflops = records.get(torch_path(n.id), ({}, 0))
        sshapes = {k: tuple(v) for k, v in n.meta[M.SHAPES].items()}
        sparams = {name: tuple(s) for name, s, _k in op.param_tensors(n.attrs, n.meta[M.IN_SHAPES])}
        mod = mods[torch_path(n.id)]
        tparams = {k: tuple(v.shape) for k, v in
                   list(mod.named_parameters(recurse=True)) + list(mod.named_buffers(recurse=True))}
        c = NodeCheck(n.id, n.op, sshapes, tshapes, 2 * n.meta[M.MACS], int(tflops), sparams, tparams)
        if sshapes != tshapes:
            c.problems.append(f"shape: static {sshapes} vs torch {tshapes}")
        if sparams != tparams:
            c.problems.append(f"parameters: static {sparams} vs torch {tparams}")
        if c.flops_status == "MISMATCH":
            c.problems.append(f"FLOPs: static 2×MACs {c.static_flops:,} vs torch {c.torch_flops:,}")
        problems += [f"'{n.id}' ({n.op}): {p}" for p in c.problems]
        nodes.append(c)
    t = model.totals
    tp = sum(p.numel() for p in gm.parameters())
    tb = sum(b.numel() for b in gm.buffers())
    if tp != t["params"]:
        problems.append(f"total params: static {t['params']:,} vs torch {tp:,}")
    if tb != t["buffers"]:
        problems.append(f"total buffers: static {t['buffers']:,} vs torch {tb:,}")
    return Verification(dev, nodes, (t["params"], tp), (t["buffers"], tb), problems)
