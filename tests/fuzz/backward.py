"""What backward keeps, on the parity fuzzer's random cases (tests/fuzz/parity.py): archviz's
train_costs against torch's saved_tensors_hooks, the graph inputs needing a gradient (token ids
excepted).  tests/fuzz/test_backward_parity.py runs a fixed budget in CI;
scripts/fuzz_backward.py long campaigns."""
from __future__ import annotations

import warnings

DT_KINDS = {"float32": "act", "bool": "bool", "int64": "int64"}
# CUDA's dropout keeps a bool mask; the CPU kernel multiplies by one in the activation dtype
CPU_KIND = {("dropout", "mask"): "act", ("multihead_attention", "dropout mask"): "act"}


def expected_on_cpu(g) -> dict:
    """train_costs's per-layer records as the CPU holds them: elements by dtype kind."""
    from archviz.ir import meta as M
    out: dict = {}
    for node in g.topo_order():
        nb = node.meta.get(M.BACKWARD)
        for s, _key, n, new in (nb.kept if nb else ()):
            if new:
                k = CPU_KIND.get((node.op, s.extra), "act" if s.dtype == "opmath" else s.dtype)
                out[k] = out.get(k, 0) + n
    return out


def kept_and_flops(m, xs, device: str = "cpu", onednn: bool = True, flops: bool = True) -> tuple:
    """One forward of module `m` on `xs` (and, with `flops`, a backward of the sum of its
    outputs that need a gradient): (elements autograd keeps for backward, by dtype kind, the
    module's own parameters and buffers left out by storage, and counted on the CPU only;
    the forward's FLOPs; the backward's FLOPs), by saved_tensors_hooks and FlopCounterMode."""
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode
    state = {t.untyped_storage().data_ptr() for t in [*m.parameters(), *m.buffers()]}
    seen: dict = {}

    def pack(t):
        st = t.untyped_storage()
        if device == "cpu" and st.data_ptr() not in state:
            seen.setdefault(st.data_ptr(), (st.nbytes() // t.element_size(), DT_KINDS.get(str(t.dtype)[6:], str(t.dtype))))
        return t
    fc = FlopCounterMode(display=False) if flops else contextlib.nullcontext()
    bc = FlopCounterMode(display=False) if flops else contextlib.nullcontext()
    with warnings.catch_warnings(), torch.backends.mkldnn.flags(enabled=onednn):
        warnings.simplefilter("ignore")     # (torch warns about oneDNN flags on CPU)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), fc:
            y = m(*xs)
        if flops:
            ys = [t for t in (y.values() if isinstance(y, dict) else [y]) if t.requires_grad]
            with bc:
                if ys:                      # (a model with no parameters runs no backward)
                    sum(t.float().sum() for t in ys).backward()
    kinds: dict = {}
    for n, k in seen.values():
        kinds[k] = kinds.get(k, 0) + n
    return kinds, fc.get_total_flops() if flops else 0, bc.get_total_flops() if flops else 0


def saved_by_torch(model, xs) -> dict:
    """Elements autograd saves running the lowered model on `xs` in train mode (parameters and
    buffers excluded, by storage), by dtype kind; oneDNN off for recurrent layers."""
    from archviz.backends.torch.lower import to_torch
    from archviz.ops import registry
    m = to_torch(model, seed=0, train=True)
    recurrent = any(registry[n.op].recurrence(n.attrs) for n in model.graph.topo_order() if not n.is_input)
    return kept_and_flops(m, xs, onednn=not recurrent, flops=False)[0]


def judge_backward(case, directory: str):
    """(torch's elements, archviz's) for a case both run, or None where either refuses it (the
    parity judge checks those)."""
    from archviz.backends.torch.lower import example_inputs
    from archviz.errors import ArchvizError
    from archviz.passes.backward import train_costs

    from .parity import load_case
    try:
        model = load_case(case, directory)
    except ArchvizError:
        return None
    train_costs(model.graph, inputs_need_grad=True)
    xs = [x if name in case.tokens else x.requires_grad_(True)
          for name, x in zip(model.input_shapes, example_inputs(model))]
    try:
        got = saved_by_torch(model, xs)
    except (RuntimeError, ValueError, IndexError):      # torch refuses it: the parity judge's case
        return None
    return got, expected_on_cpu(model.graph)
