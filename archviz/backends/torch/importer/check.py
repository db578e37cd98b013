"""The round trip check (archviz import --check, and the tests): the imported spec's params,
buffers, output shapes and 2 × MACs equal torch's (parameters(), buffers(), FlopCounterMode on
the meta device), and the module lowered from the spec, loaded with the original's
state_dict, computes the same outputs (float64, max |Δ| ≤ 1e-9)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from archviz.codes import E
from archviz.errors import TorchImportError

TOLERANCE = 1e-9


@dataclass
class Check:
    rows: list = field(default_factory=list)      # (what, archviz, torch, ok)
    max_delta: float | None = None

    @property
    def ok(self) -> bool:
        return all(r[3] for r in self.rows)

    def add(self, what, ours, theirs, ok=None):
        self.rows.append((what, ours, theirs, ours == theirs if ok is None else ok))

    def text(self) -> str:
        out = []
        for what, a, t, ok in self.rows:
            out.append(f"{'ok  ' if ok else 'DIFF'} {what}: " + (f"archviz {a}, torch {t}" if t != "" else a))
        return "\n".join(out)


def torch_counts(module, inputs: dict) -> tuple:
    """(params, buffers, output shapes, flops) of the torch module, run on the meta device."""
    import torch
    from torch.nn.utils.stateless import _reparametrize_module
    from torch.utils.flop_counter import FlopCounterMode
    from archviz.backends.torch.importer.fnmap import tensors_with_ports
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    state = {n: torch.empty_like(t, device="meta") for n, t in
             list(module.named_parameters()) + list(module.named_buffers())}
    metas = [torch.empty_like(x, device="meta") for x in inputs.values()]
    was = module.training
    module.eval()
    try:
        with _reparametrize_module(module, state, tie_weights=True), torch.no_grad(), \
                FlopCounterMode(display=False) as fc:
            out = module(*metas)
    finally:
        module.train(was)
    shapes = [tuple(x.shape) for _p, x in tensors_with_ports(out)]
    return params, buffers, shapes, fc.get_total_flops()


def same_function(module, model, seed: int = 0) -> float:
    """max |Δ| between the original (a float64 copy) and the lowered spec loaded with its
    state_dict, on random inputs (tokens below the vocabulary)."""
    import torch
    from archviz.backends.torch.importer.fnmap import tensors_with_ports
    from archviz.backends.torch.lower import example_inputs, to_torch
    ref = copy.deepcopy(module).double().eval()
    gm = to_torch(model, dtype=torch.float64).eval()
    sd = ref.state_dict()
    missing, unexpected = gm.load_state_dict(sd, strict=False)
    tied = _tied_names(gm)
    if unexpected or set(missing) - tied:
        raise TorchImportError(f"the lowered spec's state_dict keys differ from the model's: missing "
                               f"{sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]}",
                               code=E.IMPORT_CHECK)
    xs = example_inputs(model, dtype=torch.float64, seed=seed)
    with torch.no_grad():
        a = [t for _p, t in tensors_with_ports(ref(*xs))]
        b = [t for _p, t in tensors_with_ports(gm(*xs))]
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return float("inf")
    return max((float((x.double() - y.double()).abs().max()) for x, y in zip(a, b) if x.numel()), default=0.0)


def _tied_names(gm) -> set:
    """Names of tensors that are another name's tensor (`share:`): loaded through the owner."""
    seen, tied = {}, set()
    for n, t in list(gm.named_parameters(remove_duplicate=False)) + list(gm.named_buffers(remove_duplicate=False)):
        if id(t) in seen:
            tied.add(n)
        seen.setdefault(id(t), n)
    return tied


def check(module, inputs: dict, model, function: bool = True) -> Check:
    """Compare; raise TorchImportError (E0616) listing every difference."""
    c = static_check(model, module, inputs)
    on_meta = any(p.device.type == "meta" for p in module.parameters())
    if function and not on_meta:
        d = same_function(module, model)
        c.max_delta = d
        c.add(f"same function (float64, max |delta| <= {TOLERANCE:g})", f"max |delta| {d:.3g}", "", d <= TOLERANCE)
    if not c.ok:
        raise TorchImportError("the imported spec does not match the torch model", code=E.IMPORT_CHECK,
                               notes=[line for line in c.text().splitlines() if line.startswith("DIFF")])
    return c


def static_check(model, module, inputs) -> "Check":
    """A Check holding archviz's params, buffers, output shapes and 2 x MACs against torch's
    (parameters(), buffers(), a run, FlopCounterMode) for `module` on `inputs`."""
    params, buffers, shapes, flops = torch_counts(module, inputs)
    c = Check()
    t = model.totals
    c.add("params", t["params"], params)
    c.add("buffers", t["buffers"], buffers)
    c.add("output shapes", [tuple(s) for s in model.output_shapes.values()], shapes)
    c.add("FLOPs (2 x MACs; torch: FlopCounterMode)", 2 * t["macs"], flops)
    return c
