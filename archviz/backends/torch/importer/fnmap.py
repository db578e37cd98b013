"""torch functions and tensor methods → archviz ops (what a model computes between its modules).

`map_function(name, args, kwargs, out)` returns (op, attrs, input tensors, output ports or
None for the natural ones) or raises Unmapped.  Axes keep torch's numbering, the batch axis 0
(as archviz's attributes number them); an op that would move or merge the batch axis is refused,
since a spec's batch is implicit.
"""
from __future__ import annotations

import torch

from archviz.backends.torch.importer.modmap import Unmapped, _num, _pair, clean

INPLACE_NONE = {"__setitem__"}
_SHORT = {"scaled_dot_product_attention": "sdpa", "__getitem__": "getitem", "adaptive_avg_pool2d": "pool",
          "__matmul__": "matmul", "__truediv__": "div"}


def id_name(name: str) -> str:
    return _SHORT.get(name, name.strip("_").removesuffix("_") or "op")


def tensors_in(args, kwargs) -> list:
    out = []

    def walk(v, depth=0):
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)) and depth < 3:
            for x in v:
                walk(x, depth + 1)
        elif isinstance(v, dict) and depth < 3:
            for x in v.values():
                walk(x, depth + 1)
    walk(tuple(args))
    walk(tuple(kwargs.values()))
    return out


def tensors_with_ports(out) -> list:
    """[(port, tensor)] of an output: a tensor is 'out', a dict its keys, a tuple 0, 1, ...
    flattened depth first (an LSTM's (out, (h, c)) gives three)."""
    if isinstance(out, torch.Tensor):
        return [("out", out)]
    if isinstance(out, dict):
        return [(str(k), v) for k, v in out.items() if isinstance(v, torch.Tensor)]
    flat = []

    def walk(v):
        if isinstance(v, torch.Tensor):
            flat.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
    walk(out)
    return [(str(k), v) for k, v in enumerate(flat)]


def arange_of(name, args, kwargs, out, srcs):
    """n when `out` holds 0, 1, ..., n-1 (torch.arange(n), or a view or cast of one) made
    from constants only; else None."""
    if not isinstance(out, torch.Tensor):
        return None
    if name == "arange":
        nums = [a for a in args if isinstance(a, (int, float))]
        start, end, step = (0, nums[0], 1) if len(nums) == 1 else (nums + [1])[:3] if nums else (None, None, None)
        step = kwargs.get("step", step)
        ok = start == 0 and step == 1 and isinstance(end, int)
        return end if ok and out.numel() == end else None
    prior = [getattr(s, "arange", None) for s in srcs]
    if len(prior) == 1 and prior[0] is not None and out.numel() == prior[0] and name in (
            "unsqueeze", "view", "reshape", "expand", "to", "long", "int", "type_as", "__getitem__"):
        return prior[0]
    return None


def passthrough(name, args, kwargs, out) -> bool:
    """Calls that compute nothing archviz counts: a copy, a detach, a no-op cast, a cat of one."""
    first = args[0] if args else kwargs.get("tensors")
    if name in ("cat", "concat", "concatenate") and isinstance(first, (list, tuple)):
        return len(first) == 1 and isinstance(first[0], torch.Tensor)
    if not isinstance(out, torch.Tensor) or not isinstance(args[0] if args else None, torch.Tensor):
        return False
    x = args[0]
    same = tuple(out.shape) == tuple(x.shape) and out.dtype == x.dtype
    if name in ("contiguous", "clone", "detach"):
        return same
    if name in ("to", "type_as", "float", "type"):
        return same and out.device == x.device
    return False


def _arg(args, kwargs, i, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _ndim(x) -> int:
    return x.dim()


def _axis(d, nd, what="axis"):
    d = d + nd if d < 0 else d
    if d == 0:
        raise Unmapped(f"it works on the batch axis ({what} 0)", "archviz keeps the batch axis first and whole")
    return d


def _binary(op_tensor, scalar_fn):
    def m(name, args, kwargs, out):
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        if kwargs.get("alpha", 1) != 1:
            raise Unmapped("alpha != 1")
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if op_tensor is None:
                raise Unmapped(f"{name} of two tensors has no archviz op")
            return op_tensor, {}, [a, b], ["out"]
        x, s = (a, b) if isinstance(a, torch.Tensor) else (b, a)
        if scalar_fn is None or (name.startswith("__r") and name in ("__rtruediv__", "__rsub__")):
            raise Unmapped(f"{name} with the constant {s!r} has no archviz op")
        return "scale", {"by": scalar_fn(s)}, [x], ["out"]
    return m


def _reshape(name, args, kwargs, out):
    x = args[0]
    if out.dim() == 0 or x.dim() == 0 or out.shape[0] != x.shape[0]:
        raise Unmapped(f"{name} to {list(out.shape)} from {list(x.shape)} does not keep the batch axis first and whole",
                       "keep the batch axis: x.view(x.size(0), ...), or flatten(1)")
    return "reshape", {"shape": list(out.shape[1:])}, [x], ["out"]


def _flatten(name, args, kwargs, out):
    x = args[0]
    s, e = _arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1)
    s = s + x.dim() if s < 0 else s
    if s == 0:
        return _reshape(name, args, kwargs, out)
    return "flatten", clean("flatten", {"start_dim": s, "end_dim": e}), [x], ["out"]


def _permute(name, args, kwargs, out):
    x = args[0]
    dims = args[1:] if len(args) > 2 or (len(args) == 2 and isinstance(args[1], int)) else \
        _arg(args, kwargs, 1, "dims")
    dims = [d + x.dim() if d < 0 else d for d in dims]
    if dims[0] != 0:
        raise Unmapped("a permutation that moves the batch axis", "keep axis 0 first")
    return "permute", {"dims": dims}, [x], ["out"]


def _transpose(name, args, kwargs, out):
    x = args[0]
    d0, d1 = _arg(args, kwargs, 1, "dim0"), _arg(args, kwargs, 2, "dim1")
    if d0 is None or d1 is None:
        raise Unmapped(f"{name} without two axes")
    return "transpose", {"dim0": _axis(d0, x.dim()) if d0 < 0 else _axis(d0, x.dim()),
                         "dim1": _axis(d1, x.dim())}, [x], ["out"]


def _cat(name, args, kwargs, out):
    ts = list(_arg(args, kwargs, 0, "tensors"))
    d = _arg(args, kwargs, 1, "dim", 0)
    return "concat", {"axis": _axis(d, out.dim())}, ts, ["out"]


def _parts(chunked: bool):
    return lambda name, args, kwargs, out: _cut(chunked, args, kwargs, out)


def _cut(chunked, args, kwargs, out):
    x = args[0]
    d = _arg(args, kwargs, 2, "dim", 0)
    d = _axis(d, x.dim())
    sizes = [t.shape[d] for t in out]
    ports = [str(k) for k in range(len(out))]
    if chunked:
        n = _arg(args, kwargs, 1, "chunks")
        if len(out) == n:
            return "chunk", {"chunks": n, "dim": d}, [x], ports
    return "split", {"sizes": sizes, "dim": d}, [x], ports


def _getitem(name, args, kwargs, out):
    x, idx = args[0], args[1]
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(i is None or isinstance(i, (torch.Tensor, list, bool)) for i in idx) or idx.count(Ellipsis) > 1:
        raise Unmapped(f"indexing with {idx!r} (archviz ops take one slice or one index along one axis)")
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.dim() - len(idx) + 1) + idx[k + 1:]
    real = [(d, i) for d, i in enumerate(idx) if not (isinstance(i, slice) and i == slice(None))]
    if not real:
        raise Unmapped(f"indexing with {idx!r} selects everything")
    if any(d == 0 for d, _i in real):
        raise Unmapped("indexing the batch axis", "archviz keeps the batch axis whole")
    steps = []
    for d, i in reversed(real):     # the last axis first: an index drops its axis, the others keep their numbers
        if isinstance(i, int):
            steps.append(("select_step", clean("select_step", {"index": i, "axis": d})))
        else:
            a = {"dim": d, "start": i.start, "end": i.stop, "step": 1 if i.step is None else i.step}
            steps.append(("slice", clean("slice", a)))
    if len(steps) == 1:
        return steps[0][0], steps[0][1], [x], ["out"]
    return steps[0][0], steps, [x], ["out"]      # several steps: a chain (attrs the list of them)


def _reduce(op):
    def m(name, args, kwargs, out):
        x = args[0]
        dims = _arg(args, kwargs, 1, "dim")
        if dims is None or not isinstance(out, torch.Tensor):
            raise Unmapped(f"{name} over every axis, the batch too" if dims is None else f"{name} with indices")
        dims = [dims] if isinstance(dims, int) else list(dims)
        dims = [_axis(d, x.dim()) for d in dims]
        return op, clean(op, {"dims": dims if len(dims) > 1 else dims[0],
                              "keepdim": _arg(args, kwargs, 2, "keepdim", False)}), [x], ["out"]
    return m


def _act(op, **names):
    def m(name, args, kwargs, out):
        a = {}
        for k, (i, tname, default) in names.items():
            a[k] = _arg(args, kwargs, i, tname, default)
        return op, clean(op, a), [args[0]], ["out"]
    return m


def _softmax(name, args, kwargs, out):
    d = _arg(args, kwargs, 1, "dim")
    if d is None:
        raise Unmapped("softmax without dim")
    return "softmax", clean("softmax", {"dim": d}), [args[0]], ["out"]


def _sdpa(name, args, kwargs, out):
    q, k, v = (list(args) + [kwargs.get(n) for n in ("query", "key", "value")][len(args):])[:3]
    if _arg(args, kwargs, 3, "attn_mask") is not None:
        raise Unmapped("an attn_mask tensor (the sdpa op's masks are none or causal)", "use is_causal=True")
    if _arg(args, kwargs, 4, "dropout_p", 0.0):
        raise Unmapped("dropout_p > 0 (the sdpa op has no dropout)",
                       "import in eval mode, or pass dropout_p=0.0 when not training")
    a = {"mask": "causal" if _arg(args, kwargs, 5, "is_causal", False) else "none",
         "scale": kwargs.get("scale")}
    return "sdpa", clean("sdpa", a), [q, k, v], ["out"]


def _fpool(op, maxpool: bool):
    def m(name, args, kwargs, out):
        x = args[0]
        k = _pair(_arg(args, kwargs, 1, "kernel_size"))
        s = _arg(args, kwargs, 2, "stride")
        a = {"kernel": k, "stride": k if s is None or s == [] else _pair(s),
             "padding": _pair(_arg(args, kwargs, 3, "padding", 0))}
        if maxpool:
            a["dilation"] = _pair(_arg(args, kwargs, 4, "dilation", 1))
            a["ceil_mode"] = _arg(args, kwargs, 5, "ceil_mode", False)
        else:
            a["ceil_mode"] = _arg(args, kwargs, 4, "ceil_mode", False)
            a["count_include_pad"] = _arg(args, kwargs, 5, "count_include_pad", True)
        return op, clean(op, a), [x], ["out"]
    return m


def _fadaptive(name, args, kwargs, out):
    size = _pair(_arg(args, kwargs, 1, "output_size"))
    if size == [1, 1]:
        return "global_avgpool", {}, [args[0]], ["out"]
    return "adaptive_avgpool2d", clean("adaptive_avgpool2d", {"size": size}), [args[0]], ["out"]


def _interpolate(name, args, kwargs, out):
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    if mode not in ("nearest", "bilinear"):
        raise Unmapped(f"mode '{mode}' (the upsample op is nearest or bilinear)")
    size, scale = _arg(args, kwargs, 1, "size"), _arg(args, kwargs, 2, "scale_factor")
    a = {"mode": mode, "align_corners": _arg(args, kwargs, 4, "align_corners")}
    if size is not None:
        a["size"] = _pair(size)
    else:
        a["scale"] = [_num(s) for s in scale] if isinstance(scale, (tuple, list)) else _num(scale)
    return "upsample", clean("upsample", a), [args[0]], ["out"]


def _pad(name, args, kwargs, out):
    mode = _arg(args, kwargs, 2, "mode", "constant")
    a = {"pads": list(_arg(args, kwargs, 1, "pad")), "mode": mode, "value": _arg(args, kwargs, 3, "value", 0.0) or 0.0}
    return "pad", clean("pad", a), [args[0]], ["out"]


def _select(name, args, kwargs, out):
    d, i = _arg(args, kwargs, 1, "dim"), _arg(args, kwargs, 2, "index")
    return "select_step", clean("select_step", {"index": i, "axis": _axis(d, args[0].dim())}), [args[0]], ["out"]


def _flip(name, args, kwargs, out):
    dims = list(_arg(args, kwargs, 1, "dims"))
    if len(dims) != 1:
        raise Unmapped("a flip of several axes")
    return "reverse", clean("reverse", {"axis": _axis(dims[0], args[0].dim())}), [args[0]], ["out"]


def _matmul(name, args, kwargs, out):
    a, b = args[0], args[1]
    return "matmul", {}, [a, b], ["out"]


_ADD = _binary("add", None)
_MUL = _binary("mul", lambda s: s)
_DIV = _binary(None, lambda s: _num(1 / s) if s else None)
_SUB = _binary(None, None)

def _rows(*rows) -> dict:
    """{torch name: mapper} from rows ("name other_name ...", mapper): a torch function, its
    tensor method, its operator and in-place forms map alike."""
    return {n: m for names, m in rows for n in names.split()}


FUNCTIONS = _rows(
    ("__add__ __radd__ __iadd__ add add_", _ADD), ("__mul__ __rmul__ __imul__ mul mul_ multiply", _MUL),
    ("__truediv__ __itruediv__ div div_ divide __rtruediv__", _DIV),
    ("__sub__ __rsub__ sub subtract __isub__ sub_", _SUB), ("matmul __matmul__ bmm", _matmul),
    ("cat concat concatenate", _cat), ("view reshape unsqueeze squeeze unflatten view_as reshape_as", _reshape),
    ("flatten", _flatten), ("permute", _permute), ("transpose swapaxes", _transpose),
    ("chunk", _parts(True)), ("split", _parts(False)), ("__getitem__", _getitem), ("select", _select),
    ("flip", _flip), ("mean", _reduce("mean")), ("sum", _reduce("sum")), ("amax", _reduce("max")),
    ("softmax", _softmax), ("scaled_dot_product_attention", _sdpa),
    ("relu relu_", _act("relu")), ("sigmoid sigmoid_", _act("sigmoid")), ("tanh tanh_", _act("tanh")),
    ("silu", _act("silu")), ("hardswish", _act("hardswish")), ("hardsigmoid", _act("hardsigmoid")),
    ("relu6", _act("relu6")), ("mish", _act("mish")),
    ("gelu", _act("gelu", approximate=(1, "approximate", "none"))),
    ("leaky_relu", _act("leaky_relu", negative_slope=(1, "negative_slope", 0.01))),
    ("elu", _act("elu", alpha=(1, "alpha", 1.0))),
    ("softplus", _act("softplus", beta=(1, "beta", 1.0), threshold=(2, "threshold", 20.0))),
    ("hardtanh", _act("hardtanh", min_val=(1, "min_val", -1.0), max_val=(2, "max_val", 1.0))),
    ("dropout", _act("dropout", p=(1, "p", 0.5))),
    ("max_pool2d", _fpool("maxpool2d", True)), ("avg_pool2d", _fpool("avgpool2d", False)),
    ("adaptive_avg_pool2d", _fadaptive), ("interpolate", _interpolate), ("pad", _pad),
    ("pixel_shuffle", _act("pixel_shuffle", factor=(1, "upscale_factor", None))),
    ("pixel_unshuffle", _act("pixel_unshuffle", factor=(1, "downscale_factor", None))),
    ("channel_shuffle", _act("channel_shuffle", groups=(1, "groups", None))),
)


def map_function(name, args, kwargs, out):
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise Unmapped(f"{name} has no archviz op",
                       "run `python -m archviz ops` for the ops; write it with mapped modules and functions, "
                       "or ask for the op")
    return fn(name, args, kwargs, out)
