"""Run a torch module once on meta tensors and record what it computes, as archviz ops.

Why run rather than trace symbolically (torch.fx.symbolic_trace) or export (torch.export):
running sees concrete shapes, so shape-dependent Python (``if x.dim() == 3``,
``x.view(x.size(0), -1)``, nn.TransformerEncoderLayer's fast-path checks) just works, where a
symbolic trace stops at the first ``bool(proxy)``; and it keeps the user's modules whole,
named by their qualified names, where torch.export decomposes them into aten ops. Two
interceptions do the work: forward hooks on the modules archviz has an op for (each call one
record, its inside not looked at), and a TorchFunctionMode for everything computed between
them (``x + y``, ``torch.cat``, ``F.scaled_dot_product_attention``, ``x.view``). Tensors are
followed by identity. Meta tensors carry no values, so control flow on values fails: the
mode stops it at ``bool()``/``item()`` and names the user's line.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode

from archviz.backends.torch.importer import fnmap, modmap
from archviz.backends.torch.lower import torch_path
from archviz.codes import E
from archviz.errors import TorchImportError

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # archviz/
# reading values out of a tensor: the model's control flow depends on data
_DATA = {"__bool__", "item", "tolist", "__int__", "__float__", "__index__", "nonzero", "any", "all"}


@dataclass
class Rec:
    """One node of the imported spec, or one thing that maps to no op (op None)."""
    id: str
    op: str | None
    attrs: dict
    inputs: list            # [(node id or input name, port)]
    where: str              # the module path and the function or class, for messages
    line: str = ""
    share: dict = field(default_factory=dict)
    problem: str = ""
    hint: str = ""
    outs: dict = field(default_factory=dict)      # port -> shape (batch included)


class Const:
    """A tensor not made from the inputs: a parameter used directly, a buffer, torch.arange."""

    def __init__(self, what: str, line: str = "", arange: int | None = None):
        self.what, self.line = what, line
        self.arange = arange        # torch.arange(n) (and views of it): a table's positions 0..n-1


def id_of(path: str) -> str:
    """A node id for a qualified name, the inverse of the lowering's torch_path: '.' → '__', a
    first segment of digits N → _N; any other character an id cannot hold → '_' (RegNet's
    `block1-0`: that name's state-dict keys then differ from the model's)."""
    import re
    segs = [re.sub(r"[^A-Za-z0-9_]", "_", s) for s in path.split(".")] if path else []
    if segs and segs[0][:1].isdigit():
        segs[0] = "_" + segs[0]
    return "__".join(segs)


def _snake(name: str) -> str:
    """The id of a model that is one layer (it has no qualified name): its class in snake case."""
    import re
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def user_line() -> str:
    """file:line of the innermost frame outside torch and archviz (the user's code)."""
    f = inspect.currentframe()
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_TORCH_DIR) and not fn.startswith(_OWN_DIR + os.sep) \
                and "<frozen" not in fn and not fn.endswith("contextlib.py"):
            return f"{fn}:{f.f_lineno}"
        f = f.f_back
    return ""


def import_block(req) -> modmap.SubBlock:
    """The graph of a submodule (modmap.Sub: the moe op's expert) called on a tensor shaped like
    req.x, as a block (input `x`), its node ids the submodule's own qualified names (so its
    state-dict keys stay the submodule's)."""
    from archviz.backends.torch.importer import emit
    from archviz.ir.body import BODY_INPUT
    tr = Tracer(req.module)
    out = tr.run({BODY_INPUT: torch.empty(req.x.shape, dtype=req.x.dtype, device="meta")})
    bad = [r for r in tr.recs if r.op is None]
    if bad:
        raise modmap.Unmapped(f"{req.what}: " + "; ".join(f"{r.where}: {r.problem}" for r in bad), bad[0].hint)
    if tr.unused:
        raise modmap.Unmapped(f"{req.what}: its forward never calls {', '.join(tr.unused)}, whose tensors a "
                              "block could not hold")
    src = tr.src.get(id(out)) if isinstance(out, torch.Tensor) else None
    if not isinstance(src, tuple) or src[0] == BODY_INPUT:
        raise modmap.Unmapped(f"{req.what} does not return one tensor computed from its input")
    return modmap.SubBlock(type(req.module).__name__, [emit.rec_node(r, {}, {}) for r in tr.recs], emit.ref(src))


class _Mode(TorchFunctionMode):
    def __init__(self, tracer):
        super().__init__()
        self.t = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t = self.t
        name = getattr(func, "__name__", str(func))
        if t.depth:
            return func(*args, **kwargs)
        if name in _DATA and any(t.known(a) or a.device.type == "meta" for a in args if isinstance(a, torch.Tensor)):
            raise TorchImportError(
                f"the model reads a tensor's values ({name}) at {user_line() or 'an unknown line'}: control flow "
                "that depends on data cannot be traced (meta tensors hold no values)", code=E.IMPORT_DATA_FLOW,
                hint="make the branch depend on shapes or on module attributes, or import a variant without it")
        out = func(*args, **kwargs)
        t.on_function(func, name, args, kwargs, out)
        return out


class Tracer:
    def __init__(self, root: torch.nn.Module):
        self.root = root
        self.src: dict[int, object] = {}      # id(tensor) -> (node, port) or Const
        self.keep: list = []                  # the tensors seen (so their ids are not reused)
        self.recs: list[Rec] = []
        self.depth = 0
        self.stack: list[str] = []            # qualified names of the modules being run
        self.names = {}
        for q, m in root.named_modules(remove_duplicate=False):
            self.names.setdefault(id(m), q)
        self.taken = set(q for q, _ in root.named_modules(remove_duplicate=False))
        self.used: set = set()
        self.called: set = set()
        self.unused: dict = {}          # qualified names of the modules the forward called
        self._pending: list = []
        self.calls: dict[int, int] = {}       # id(module) -> calls so far
        self.owner: dict[int, tuple] = {}     # id(param) -> (node id, param name) of its first use
        for q, p in list(root.named_parameters(remove_duplicate=False)) + list(root.named_buffers(remove_duplicate=False)):
            self.src.setdefault(id(p), Const(f"the tensor '{q}' used directly"))
            self.keep.append(p)

    # -- tensors --------------------------------------------------------------
    def known(self, x) -> bool:
        return isinstance(x, torch.Tensor) and isinstance(self.src.get(id(x)), tuple)

    def put(self, x, src) -> None:
        self.src[id(x)] = src
        self.keep.append(x)

    def source(self, x):
        s = self.src.get(id(x))
        return s if s is not None else Const("a tensor the model holds (not a parameter, buffer or input)")

    # -- ids --------------------------------------------------------------------
    def new_id(self, path: str, function: bool = False) -> str:
        """A node id from a qualified name: '.' becomes '__' (ids cannot hold dots; the lowering
        turns '__' back into '.'); a name taken already gets _2, _3, ... (a function's node
        also avoids the names of the model's modules)."""
        base = id_of(path) or "out"
        nid, k = base, 1
        while nid in self.used or (function and torch_path(nid) in self.taken):
            k += 1
            nid = f"{base}_{k}"
        self.used.add(nid)
        return nid

    def scope(self) -> str:
        return self.stack[-1] if self.stack else ""

    def where(self, what: str) -> str:
        s = self.scope()
        cls = type(self.root.get_submodule(s)).__name__ if s else type(self.root).__name__
        return f"{s or '(top)'} ({cls}): {what}"

    # -- module calls ------------------------------------------------------------
    def pre(self, mod, args, kwargs):
        if self.depth:
            self.depth += 1 if modmap.is_leaf(mod) else 0
            return None
        if modmap.is_leaf(mod):
            self.called.add(self.names.get(id(mod), "?"))
            self.depth = 1
            self._pending.append((args, kwargs))
        else:
            self.stack.append(self.names.get(id(mod), "?"))
        self.called.add(self.names.get(id(mod), "?"))
        return None

    def post(self, mod, args, kwargs, out):
        if not modmap.is_leaf(mod):
            if not self.depth:
                self.stack.pop()
            return None
        self.depth -= 1
        if self.depth:
            return None
        args, kwargs = self._pending.pop()
        self.on_module(mod, args, kwargs, out)
        return None

    def on_module(self, mod, args, kwargs, out) -> None:
        q = self.names.get(id(mod), "?")
        pos = self.source(args[0]) if args and isinstance(args[0], torch.Tensor) else None
        if type(mod) is torch.nn.Embedding and isinstance(pos, Const) and pos.arange is not None:
            return self._position_table(mod, q, pos.arange, out)
        n = self.calls[id(mod)] = self.calls.get(id(mod), 0) + 1
        nid = self.new_id((q or _snake(type(mod).__name__)) if n == 1 else f"{q}_{n}")
        where = f"{q or '(top)'} ({type(mod).__module__}.{type(mod).__name__})"
        tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
        rec = Rec(nid, None, {}, [], where, user_line())
        self.depth += 1             # a mapper that runs a submodule (an expert's graph) is not recorded here
        try:
            op, attrs, ins, ports = modmap.mapper(mod)(mod, args, kwargs, out)
            for k, v in attrs.items():
                if isinstance(v, modmap.Sub):
                    attrs[k] = import_block(v)
            rec.op, rec.attrs = op, attrs
            tensors = ins
        except modmap.Unmapped as u:
            rec.problem, rec.hint = u.reason, u.hint
            ports = None
        finally:
            self.depth -= 1
        self._link(rec, tensors)
        self._outputs(rec, out, ports)
        self._ties(rec, mod)
        self.recs.append(rec)

    def _position_table(self, mod, q, n, out) -> None:
        """`wpe(torch.arange(n))`: the first n rows of a learned position table, the same for
        every example: a `parameter` node of the table's shape (its tensor is the embedding's
        weight, same name) and a slice of its first n rows. Its output has a batch axis where
        torch's broadcasts; the sums that read it are the same."""
        first = next(iter(self.inputs))
        nid = self.new_id(q)
        rec = Rec(nid, "parameter", {"shape": list(mod.weight.shape)}, [(first, "out")],
                  self.where(f"nn.Embedding '{q}' of torch.arange({n})"), user_line())
        self._ties(rec, mod)
        self.recs.append(rec)
        if n != mod.num_embeddings:
            rec = Rec(self.new_id(q + "_used", function=True), "slice", {"dim": 1, "end": n},
                      [(nid, "out")], rec.where, rec.line)
            self.recs.append(rec)
        rec.outs["out"] = (1, *out.shape[-2:])
        self.put(out, (rec.id, "out"))

    def _ties(self, rec: Rec, mod) -> None:
        """A tensor met before (tied weights, or a module called again) is shared, not new."""
        if rec.op is None:
            return
        for pname, p in list(mod.named_parameters(recurse=True)) + list(mod.named_buffers(recurse=True)):
            first = self.owner.get(id(p))
            if first is None:
                self.owner[id(p)] = (rec.id, pname)
            else:
                rec.share[pname] = first[0] if first[1] == pname else f"{first[0]}.{first[1]}"

    # -- functions ----------------------------------------------------------------
    def on_function(self, func, name, args, kwargs, out) -> None:
        flat = fnmap.tensors_in(args, kwargs)
        outs = fnmap.tensors_in((out,), {})
        if not outs and name not in fnmap.INPLACE_NONE:
            return                                      # a query (size, dim, shape): nothing computed
        srcs = [self.source(x) for x in flat]
        if not any(isinstance(s, tuple) for s in srcs):  # made from constants only: a constant too
            n = fnmap.arange_of(name, args, kwargs, out, srcs)
            for o in outs:
                self.put(o, Const(f"a tensor made in forward by {name}", user_line(), n))
            return
        if fnmap.passthrough(name, args, kwargs, out):
            self.put(out, srcs[0] if isinstance(srcs[0], tuple) else next(s for s in srcs if isinstance(s, tuple)))
            return
        rec = Rec("", None, {}, [], self.where(f"{name}"), user_line())
        ports = None
        try:
            op, attrs, ins, ports = fnmap.map_function(name, args, kwargs, out)
            rec.op, rec.attrs = op, attrs
            flat = ins
        except fnmap.Unmapped as u:
            rec.problem, rec.hint = u.reason, u.hint
        scope = self.scope()
        base = (scope + "." if scope else "") + fnmap.id_name(name)
        rec.id = self.new_id(base, function=True)
        self._link(rec, flat)
        if isinstance(rec.attrs, list):     # one call, several ops (x[:, :, a:b, c:d]: a slice per axis)
            steps, rec.op, rec.attrs = rec.attrs, *rec.attrs[0]
            for op, attrs in steps[1:]:
                self.recs.append(rec)
                rec = Rec(self.new_id(base, function=True), op, attrs, [(self.recs[-1].id, "out")], rec.where,
                          rec.line)
        self._outputs(rec, out, ports)
        self.recs.append(rec)

    # -- plumbing ------------------------------------------------------------------
    def _link(self, rec: Rec, tensors) -> None:
        for x in tensors:
            s = self.source(x)
            if isinstance(s, Const):
                if rec.op is not None or not rec.problem:
                    rec.problem = f"it reads {s.what}" + (f" ({s.line})" if s.line else "")
                    rec.hint = ("archviz layers read the inputs and other layers' outputs; a tensor of the model's "
                                "own must live in a module archviz maps (nn.Embedding, nn.Linear, ...)")
                    rec.op = None
                continue
            rec.inputs.append(s)

    def _outputs(self, rec: Rec, out, ports) -> None:
        flat = fnmap.tensors_with_ports(out)
        for k, (port, x) in enumerate(flat):
            if ports is not None:
                if k >= len(ports):
                    break
                port = ports[k]
            rec.outs[port] = tuple(x.shape)
            self.put(x, (rec.id, port))

    # -- the run ----------------------------------------------------------------------
    def run(self, inputs: dict):
        self.used |= set(inputs)
        self.inputs = inputs
        for name, x in inputs.items():
            self.put(x, (name, "out"))
        hooks = []
        for m in self.root.modules():
            hooks.append(m.register_forward_pre_hook(self.pre, with_kwargs=True))
            hooks.append(m.register_forward_hook(self.post, with_kwargs=True))
        try:
            with torch.no_grad(), _Mode(self):
                out = self.root(*inputs.values())
            self.unused = self._never_called()
        finally:
            for h in hooks:
                h.remove()
        return out

    def _never_called(self) -> dict:
        """{module path: tensor elements} of the modules whose tensors no recorded layer holds
        (the forward never called them: GoogLeNet's auxiliary classifiers at inference)."""
        out: dict = {}
        for q, p in list(self.root.named_parameters()) + list(self.root.named_buffers()):
            if id(p) in self.owner:
                continue
            parts = q.split(".")[:-1]
            top = next((".".join(parts[:k]) for k in range(1, len(parts) + 1)
                        if ".".join(parts[:k]) not in self.called), ".".join(parts) or q)
            out[top] = out.get(top, 0) + p.numel()
        return out
