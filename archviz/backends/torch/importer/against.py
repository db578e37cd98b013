"""`archviz verify SPEC --against TARGET`: does a hand-written spec stand for a torch model?

`verify` alone compares archviz with its own lowering; this compares the spec with the model
the user has: params, buffers, output shapes and FLOPs (torch's counts on meta), and the same
function — the model built on the CPU with random weights, the spec lowered in float64 and
loaded with the model's tensors (by name where the names agree, else in order where every shape
agrees), outputs equal on random inputs (max |Δ| ≤ 1e-9).
"""
from __future__ import annotations

from archviz.backends.torch.importer.check import TOLERANCE, Check, static_check
from archviz.codes import E
from archviz.errors import ArchvizError, TorchImportError


def use_order(module, xs) -> list:
    """[(state-dict key, tensor)] in the order the forward first uses each module's own tensors
    (then those of modules it never calls): an order two writings of one network share, where
    registration order need not (archviz's lowering registers by graph position)."""
    import torch
    seen, hooks = [], []
    for name, m in module.named_modules():
        if list(m.parameters(recurse=False)) or list(m.buffers(recurse=False)):
            hooks.append(m.register_forward_pre_hook(lambda mod, args, n=name: seen.append(n)))
    try:
        with torch.no_grad():
            module(*xs)
    finally:
        for h in hooks:
            h.remove()
    state = module.state_dict(keep_vars=True)
    rank = {n: i for i, n in enumerate(dict.fromkeys(seen))}
    return sorted(state.items(), key=lambda kv: rank.get(kv[0].rpartition(".")[0], len(rank)))


def pair_state(ours: list, theirs: list):
    """{our key: their tensor}: by name when the key sets agree, else in use order when the counts
    and every shape agree; None when neither pairs them."""
    a, b = dict(ours), dict(theirs)
    if set(a) == set(b):
        return {k: b[k].detach() for k in a}
    if len(ours) == len(theirs) and all(tuple(x.shape) == tuple(y.shape) for (_k, x), (_l, y) in zip(ours, theirs)):
        return {k: y.detach() for (k, _x), (_l, y) in zip(ours, theirs)}
    return None


def compare(model, target: str, kwargs: dict) -> Check:
    import torch
    from archviz.backends.torch.importer.fnmap import tensors_with_ports
    from archviz.backends.torch.importer.target import build, find
    from archviz.backends.torch.lower import example_inputs, to_torch
    fn = find(target)
    meta_model = build(fn, kwargs)
    metas = dict(zip(model.input_shapes, example_inputs(model, device="meta")))
    c = static_check(model, meta_model, metas)
    torch.manual_seed(0)
    ref = build(fn, kwargs, "cpu").double().eval()
    gm = to_torch(model, dtype=torch.float64).eval()
    xs = example_inputs(model, dtype=torch.float64, seed=0)
    ours, theirs = use_order(gm, xs), use_order(ref, xs)
    paired = pair_state(ours, theirs)
    if paired is None:
        c.add("same function", "the spec's tensors pair with the model's neither by name nor in the order "
              f"the forward uses them ({len(ours)} and {len(theirs)} tensors)", "", False)
        return c
    gm.load_state_dict(paired)
    with torch.no_grad():
        a = [x for _p, x in tensors_with_ports(ref(*xs))]
        b = [x for _p, x in tensors_with_ports(gm(*xs))]
    same_shapes = len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    d = max((float((x - y).abs().max()) for x, y in zip(a, b) if x.numel()), default=0.0) if same_shapes \
        else float("inf")
    c.max_delta = d
    c.add(f"same function (float64, max |delta| <= {TOLERANCE:g})", f"max |delta| {d:.3g}", "", d <= TOLERANCE)
    return c


def add_against(verify_cmd):
    """Give the verify command `--against TARGET` and `--kwargs JSON` (a hook, so cli.py stays as
    it is): with --against, verify compares SPEC with that torch model instead."""
    import functools

    import click

    from archviz.clikit import _console, load_model

    def keep(ctx, param, value):
        if value is not None:
            ctx.meta["against"] = value
        return value
    verify_cmd.params.append(
        click.Option(["--against"], metavar="TARGET", expose_value=False, callback=keep,
                     help="Compare SPEC with a torch model (file.py:callable or package.module:callable, "
                     "its --kwargs): counts, and the same outputs with the model's weights (float64)."))
    verify_cmd.help += "\n\n\b\nAgainst your own model:\n  archviz verify specs/resnet18.yaml --against torchvision.models:resnet18"
    inner = verify_cmd.callback

    @functools.wraps(inner)
    def callback(spec, batch, params, **kw):
        meta = click.get_current_context().meta
        if "against" not in meta:
            return inner(spec, batch, params, **kw)
        return _against(spec, batch, params, meta, load_model, _console)
    verify_cmd.callback = callback
    return verify_cmd


def _against(spec, batch, params, meta, load_model, console):
    import sys

    import click

    from archviz.clikit import format_error
    try:
        c = compare(load_model(spec, params, batch, collect=True), meta["against"], meta.get("torch_kwargs", {}))
    except ArchvizError as e:
        if click.get_current_context().find_root().params.get("traceback"):
            raise
        click.echo(format_error(e), err=True)
        sys.exit(1)
    click.echo(c.text())
    if not c.ok:
        err = TorchImportError(f"{spec} does not match {meta['against']}", code=E.IMPORT_CHECK)
        click.echo(format_error(err), err=True)
        sys.exit(1)
