"""Import a torch module as an archviz spec: `from_torch(module, example_inputs) -> Model`.

The module runs once on the meta device (no weights, no arithmetic: a 7B model imports on a
laptop), recorded by trace.Tracer; modmap and fnmap map each module call and function to an
archviz op; emit writes the spec text, which the normal pipeline compiles. Node ids are the
modules' qualified names with '__' for '.', which the lowering turns back into '.', so the
lowered module's state_dict keys are the original's.
"""
from __future__ import annotations

import inspect
import os
import re
import traceback

from archviz.backends.torch.importer.loadtext import load_text  # noqa: F401  (the package's API)
from archviz.codes import E
from archviz.errors import ArchvizError, TorchImportError

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def name_inputs(module, example_inputs) -> dict:
    """{name: tensor}: a dict as given, else named after forward's parameters."""
    import torch
    if isinstance(example_inputs, dict):
        return dict(example_inputs)
    xs = [example_inputs] if isinstance(example_inputs, torch.Tensor) else list(example_inputs)
    try:
        names = [p.name for p in inspect.signature(module.forward).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    names = [n if _ID.match(n) and n != "self" else f"x{k}" for k, n in enumerate(names)]
    names += [f"x{k}" for k in range(len(names), len(xs))]
    return dict(zip(names[:len(xs)], xs))


def _meta_state(module):
    import torch
    state = {}
    for n, t in list(module.named_parameters()) + list(module.named_buffers()):
        state[n] = torch.empty_like(t, device="meta")
    return state


def run_trace(module, inputs: dict):
    """Run `module` on meta copies of `inputs` (and of its weights, unless they are on meta
    already) under the recorder. Returns (tracer, output)."""
    import torch
    from archviz.backends.torch.importer.trace import Tracer
    metas = {k: torch.empty_like(v, device="meta") if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    on_meta = all(t.device.type == "meta" for t in list(module.parameters()) + list(module.buffers()))
    was = module.training
    module.eval()
    tr = Tracer(module)
    try:
        if on_meta:
            out = tr.run(metas)
        else:
            state = _meta_state(module)
            out = _run_with(module, tr, metas, state)
    except ArchvizError:
        raise
    except Exception as e:          # the model's own code refused these inputs
        raise TorchImportError(f"the model's forward raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                               f" ({_user_frame(e)})", code=E.IMPORT_INPUTS,
                               hint="check the input shapes (without the batch) and dtypes (tokens are int64)") from e
    finally:
        module.train(was)
    return tr, out


def _run_with(module, tr, metas, state):
    """tr.run with the module's tensors swapped for meta ones during the call (torch's own
    reparametrisation, as torch.func.functional_call: tied tensors stay one tensor)."""
    from torch.nn.utils.stateless import _reparametrize_module
    from archviz.backends.torch.importer.trace import Const
    with _reparametrize_module(module, state, tie_weights=True):
        for n, t in list(module.named_parameters(remove_duplicate=False)) + \
                list(module.named_buffers(remove_duplicate=False)):
            tr.src[id(t)] = Const(f"the tensor '{n}' used directly")
            tr.keep.append(t)
        return tr.run(metas)


def _user_frame(e) -> str:
    import torch
    tdir = os.path.dirname(torch.__file__) + os.sep
    own = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))   # archviz/
    last = ""
    for fr in traceback.extract_tb(e.__traceback__):
        fn = os.path.abspath(fr.filename)
        if not fn.startswith(tdir) and not fn.startswith(own + os.sep):
            last = f"{fr.filename}:{fr.lineno}"
    return last or "inside torch"


def unmapped_error(recs) -> TorchImportError:
    bad = [r for r in recs if r.op is None]
    notes = [f"{r.where}: {r.problem}" + (f" [{r.line}]" if r.line else "") + (f" — {r.hint}" if r.hint else "")
             for r in bad]
    names = list(dict.fromkeys(r.where for r in bad))
    return TorchImportError(f"{len(bad)} call(s) of the model map to no archviz op: {'; '.join(names)[:400]}",
                            code=E.IMPORT_UNMAPPED, notes=notes,
                            hint="each note names the module path and the function; map them to archviz ops "
                                 "(python -m archviz ops) or rewrite that part of the model with mapped ones")


def import_text(module, example_inputs, name: str | None = None, notes: list | None = None) -> str:
    """The spec text of `module` traced on `example_inputs` (tensors, a tuple or a dict); what
    it leaves out (modules the forward never called) is said in the spec's doc and added to
    `notes`."""
    from archviz.backends.torch.importer import build
    inputs = name_inputs(module, example_inputs)
    tr, out = run_trace(module, inputs)
    if any(r.op is None for r in tr.recs):
        raise unmapped_error(tr.recs)
    if tr.unused and notes is not None:
        notes.append(build.left_out(tr.unused))
    return build.spec_from_trace(module, inputs, tr, out, name)


def from_torch(module, example_inputs, name: str | None = None, batch: int | None = None):
    """The analysed Model of a torch module (archviz.from_torch). Its spec text is
    `archviz.to_spec(model)`."""
    import torch
    inputs = name_inputs(module, example_inputs)
    notes: list = []
    text = import_text(module, inputs, name, notes)
    first = next(iter(inputs.values()))
    b = batch or (first.shape[0] if isinstance(first, torch.Tensor) and first.dim() else 1)
    model = load_text(text, b, "imported")
    model.spec_text = text
    model.import_notes = notes
    return model


def to_spec(model) -> str:
    """The spec text of an imported model (archviz.to_spec)."""
    from archviz import to_spec as _to_spec
    return _to_spec(model)
