"""torch modules → archviz ops: the inverse of the lowering table (archviz/backends/torch/table.py
and each op's torch_spec rule).

A mapper takes (module, args, kwargs, output) of one call and returns (op, attrs, input
tensors in the op's port order, output port names in the order the output is flattened, or
None to keep the names of a dict output), or raises Unmapped with a reason and a hint.  Only
attributes that differ from the op's defaults are returned, so an imported spec reads like a
hand-written one.  Exact classes only: a subclass may change `forward`, so it is traced into.
"""
from __future__ import annotations

import torch
from torch import nn

from archviz.backends.torch import modules as AM, moe_module, seq_modules as SM
from archviz.ops import registry


class Unmapped(Exception):
    def __init__(self, reason: str, hint: str = ""):
        super().__init__(reason)
        self.reason, self.hint = reason, hint


def clean(op: str, attrs: dict) -> dict:
    """attrs without those equal to the op's defaults; pairs of equal sizes as one int."""
    schema = registry[op].attrs
    out = {}
    for k, v in attrs.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, list) and len(v) > 1 and all(x == v[0] for x in v) and isinstance(v[0], int) \
                and k in ("kernel", "stride", "padding", "dilation", "output_padding", "size"):
            v = v[0]
        d = schema[k].default
        if isinstance(d, (list, tuple)):
            d = list(d)
        if v == d and type(v) is type(d):
            continue
        if isinstance(v, float) and isinstance(d, (int, float)) and not isinstance(d, bool) and v == d:
            continue
        out[k] = v
    return out


def _tensors(args, kwargs, names=()):
    ts = [a for a in args if isinstance(a, torch.Tensor)]
    ts += [kwargs[n] for n in names if isinstance(kwargs.get(n), torch.Tensor)]
    return ts


def _first(args, kwargs):
    return [a for a in args if isinstance(a, torch.Tensor)][:1]


def _only_positional(mod, args, kwargs, allowed=()):
    extra = [k for k, v in kwargs.items() if v is not None and k not in allowed]
    if extra:
        raise Unmapped(f"called with {', '.join(extra)}=, which the archviz op does not take")


def simple(op, **fixed):
    """A module whose op reads only its first input and whose attrs are read off the module."""
    def m(mod, args, kwargs, out, _op=op):
        _only_positional(mod, args, kwargs)
        attrs = {k: (f(mod) if callable(f) else f) for k, f in fixed.items()}
        return _op, clean(_op, attrs), _first(args, kwargs), ["out"]
    return m


def _conv(mod, args, kwargs, out):
    if mod.padding_mode != "zeros":
        raise Unmapped(f"padding_mode='{mod.padding_mode}' (archviz convolutions pad with zeros)",
                       "pad explicitly (F.pad with the mode) before a padding=0 convolution")
    op = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d"}[type(mod)]
    pad = mod.padding if isinstance(mod.padding, str) else list(mod.padding)
    return op, clean(op, dict(out=mod.out_channels, kernel=list(mod.kernel_size), stride=list(mod.stride),
                              padding=pad, dilation=list(mod.dilation), groups=mod.groups,
                              bias=mod.bias is not None)), _first(args, kwargs), ["out"]


def _deconv(mod, args, kwargs, out):
    if len(args) > 1 or kwargs.get("output_size") is not None:
        raise Unmapped("called with output_size (the op's output_padding is fixed)", "set output_padding instead")
    return "conv_transpose2d", clean("conv_transpose2d", dict(
        out=mod.out_channels, kernel=list(mod.kernel_size), stride=list(mod.stride), padding=list(mod.padding),
        output_padding=list(mod.output_padding), dilation=list(mod.dilation), groups=mod.groups,
        bias=mod.bias is not None)), _first(args, kwargs), ["out"]


def _bn(mod, args, kwargs, out):
    op = "batchnorm2d" if isinstance(mod, nn.BatchNorm2d) else "batchnorm1d"
    return op, clean(op, dict(eps=mod.eps, momentum=mod.momentum, affine=mod.affine,
                              track_running_stats=mod.track_running_stats)), _first(args, kwargs), ["out"]


def _trailing(mod, x, what):
    shape = tuple(mod.normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape or len(shape) >= x.dim():
        raise Unmapped(f"{what} over {list(shape)} is not over the last axes of {list(x.shape)} past the batch")
    return len(shape)


def _layernorm(mod, args, kwargs, out):
    x = _first(args, kwargs)
    return "layernorm", clean("layernorm", dict(dims=_trailing(mod, x[0], "LayerNorm"), eps=mod.eps,
                                                elementwise_affine=mod.elementwise_affine,
                                                bias=getattr(mod, "bias", None) is not None or not mod.elementwise_affine)), x, ["out"]


def _rmsnorm(mod, args, kwargs, out):
    x = _first(args, kwargs)
    return "rmsnorm", clean("rmsnorm", dict(dims=_trailing(mod, x[0], "RMSNorm"), eps=mod.eps,
                                            elementwise_affine=mod.elementwise_affine)), x, ["out"]


def _embedding(mod, args, kwargs, out):
    if mod.max_norm is not None or mod.scale_grad_by_freq or mod.sparse:
        raise Unmapped("max_norm, scale_grad_by_freq or sparse (the embedding op is a plain lookup)")
    return "embedding", clean("embedding", dict(num=mod.num_embeddings, dim=mod.embedding_dim,
                                                padding_idx=mod.padding_idx)), _first(args, kwargs), ["out"]


def _recurrent(op: str, extra: str = ""):
    """nn.RNN / GRU / LSTM (and archviz's Seq* wrappers) as `op`; `extra` names the one
    attribute of its own (rnn: nonlinearity, lstm: proj_size)."""
    def m(mod, args, kwargs, out):
        if not mod.batch_first:
            raise Unmapped(f"{type(mod).__name__} with batch_first=False (archviz sequences are (N, T, F))",
                           "construct it with batch_first=True (and feed (N, T, F))")
        a = dict(out=mod.hidden_size, num_layers=mod.num_layers, bidirectional=mod.bidirectional, bias=mod.bias,
                 dropout=float(mod.dropout))
        if extra:
            a[extra] = getattr(mod, extra)
        ins = list(_first(args, kwargs))
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        if isinstance(hx, (tuple, list)):
            ins += list(hx)
        elif isinstance(hx, torch.Tensor):
            ins.append(hx)
        ins += [a_ for a_ in args[2:] if isinstance(a_, torch.Tensor)]
        if ins[0].dim() != 3:
            raise Unmapped(f"an input of {ins[0].dim()} axes (archviz recurrent layers read (N, T, F))")
        return op, clean(op, a), ins, None if isinstance(out, dict) else list(registry[op].outputs)
    return m


def _cell(op: str, extra: str = ""):
    def m(mod, args, kwargs, out):
        a = dict(out=mod.hidden_size, bias=mod.bias)
        if extra:
            a[extra] = getattr(mod, extra)
        ins = list(_first(args, kwargs))
        rest = list(args[1:]) + [v for k, v in kwargs.items() if k in ("hx", "h", "c")]
        for h in rest:
            ins += list(h) if isinstance(h, (tuple, list)) else [h] if isinstance(h, torch.Tensor) else []
        return op, clean(op, a), ins, None if isinstance(out, dict) else list(registry[op].outputs)
    return m


def _mha(mod, args, kwargs, out):
    if not mod.batch_first:
        raise Unmapped("nn.MultiheadAttention with batch_first=False (archviz sequences are (N, T, F))",
                       "construct it with batch_first=True")
    if mod.bias_k is not None or mod.add_zero_attn:
        raise Unmapped("add_bias_kv or add_zero_attn (not in the multihead_attention op)")
    names = ("query", "key", "value")
    q, k, v = (list(args) + [kwargs.get(n) for n in names[len(args):]])[:3]
    mask = "none"
    if kwargs.get("is_causal") and kwargs.get("attn_mask") is None:
        raise Unmapped("is_causal=True without attn_mask (torch ignores is_causal alone here)")
    if kwargs.get("attn_mask") is not None or kwargs.get("key_padding_mask") is not None:
        raise Unmapped("an attn_mask or key_padding_mask tensor (the op's masks are none or causal)",
                       "for a causal mask use F.scaled_dot_product_attention(..., is_causal=True)")
    ins = [q] if (k is q and v is q) else [q, k] if v is k else [q, k, v]
    a = dict(heads=mod.num_heads, bias=mod.in_proj_bias is not None, dropout=float(mod.dropout), mask=mask,
             average_weights=kwargs.get("average_attn_weights", True))
    need = kwargs.get("need_weights", True)
    return "multihead_attention", clean("multihead_attention", a), ins, ["out", "weights"] if need else ["out"]


def _archviz_mha(mod, args, kwargs, out):
    ins = [a for a in args if isinstance(a, torch.Tensor)]
    a = dict(heads=mod.num_heads, bias=mod.in_proj_bias is not None, dropout=float(mod.dropout), mask=mod.mask,
             window=mod.window, average_weights=mod.average_weights)
    return "multihead_attention", clean("multihead_attention", a), ins, None


def _call(mod, args, kwargs, out):
    """archviz's own Call module (permute, transpose, reshape, matmul, scale, mean/sum/amax)."""
    m = _CALLS.get(mod.fn)
    if m is None:
        raise Unmapped(f"archviz's Call of '{mod.fn}'")
    return m(mod, args, out)


def _reduce_call(op):
    return lambda mod, args, out: (op, clean(op, {"dims": list(mod.kwargs["dim"]),
                                                  "keepdim": mod.kwargs.get("keepdim", False)}), [args[0]], ["out"])


def _rows(*rows) -> dict:
    return {n: m for names, m in rows for n in names.split()}


# Call's torch function → the op (archviz/ops/tensor.py lowers these ops to Call)
_CALLS = _rows(
    ("matmul", lambda mod, args, out: ("matmul", {}, list(args), ["out"])),
    ("mul", lambda mod, args, out: ("scale", {"by": mod.args[0]}, [args[0]], ["out"])),
    ("permute", lambda mod, args, out: ("permute", {"dims": list(mod.args)}, [args[0]], ["out"])),
    ("transpose", lambda mod, args, out: ("transpose", {"dim0": mod.args[0], "dim1": mod.args[1]}, [args[0]],
                                          ["out"])),
    ("reshape", lambda mod, args, out: ("reshape", {"shape": list(out.shape[1:])}, [args[0]], ["out"])),
    ("mean", _reduce_call("mean")), ("sum", _reduce_call("sum")), ("amax", _reduce_call("max")),
)


def _adaptive(mod, args, kwargs, out):
    size = mod.output_size
    size = [size, size] if isinstance(size, int) else list(size)
    x = _first(args, kwargs)
    if None in size:
        raise Unmapped("an output size with None")
    if size == [1, 1]:
        return "global_avgpool", {}, x, ["out"]
    return "adaptive_avgpool2d", clean("adaptive_avgpool2d", {"size": size}), x, ["out"]


def _pool(op, maxpool: bool):
    def m(mod, args, kwargs, out):
        a = dict(kernel=_pair(mod.kernel_size), stride=_pair(mod.stride), padding=_pair(mod.padding),
                 ceil_mode=mod.ceil_mode)
        if maxpool:
            if mod.return_indices:
                raise Unmapped("return_indices=True (the op returns the values only)")
            a["dilation"] = _pair(mod.dilation)
        else:
            if mod.divisor_override is not None:
                raise Unmapped("divisor_override (not in the avgpool2d op)")
            a["count_include_pad"] = mod.count_include_pad
        return op, clean(op, a), _first(args, kwargs), ["out"]
    return m


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _upsample(mod, args, kwargs, out):
    if mod.mode not in ("nearest", "bilinear"):
        raise Unmapped(f"mode '{mod.mode}' (the upsample op is nearest or bilinear)")
    a = dict(mode=mod.mode, align_corners=mod.align_corners)
    if mod.size is not None:
        a["size"] = _pair(mod.size)
    else:
        s = mod.scale_factor
        a["scale"] = [_num(x) for x in s] if isinstance(s, (tuple, list)) else _num(s)
    return "upsample", clean("upsample", a), _first(args, kwargs), ["out"]


def _num(x):
    return int(x) if float(x).is_integer() else float(x)


def _own_tensor(mod, args, kwargs, out):
    shape = list(mod.weight.shape if mod.learned else mod.table.shape)
    op = "parameter" if mod.learned else "constant"
    return op, {"shape": shape, "init": "zeros"}, _first(args, kwargs), ["out"]


def _attention(mod, args, kwargs, out):
    a = {"score": mod.score}
    if hasattr(mod, "W_a"):
        a["bias"] = mod.W_a.bias is not None
    if mod.score in ("additive", "concat"):
        a["dim"] = mod.U_a.out_features
    return "attention", clean("attention", a), [x for x in args if isinstance(x, torch.Tensor)], None


def _attention_gru(mod, args, kwargs, out):
    a = dict(out=mod.cell.hidden_size, dim=mod.attn.U_a.out_features, bias=mod.cell.bias,
             score_bias=mod.attn.W_a.bias is not None)
    return "attention_gru", clean("attention_gru", a), [x for x in args if isinstance(x, torch.Tensor)], None


def _act(op, **fields):
    return simple(op, **{k: (lambda m, f=f: getattr(m, f)) for k, f in fields.items()})


MODULES = {
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.ConvTranspose2d: _deconv,
    nn.BatchNorm1d: _bn, nn.BatchNorm2d: _bn, nn.LayerNorm: _layernorm, nn.RMSNorm: _rmsnorm,
    nn.LocalResponseNorm: simple("lrn", size=lambda m: m.size, alpha=lambda m: m.alpha / m.size,
                                 beta=lambda m: m.beta, k=lambda m: m.k),
    nn.Linear: lambda m, a, k, o: ("linear", clean("linear", dict(out=m.out_features, bias=m.bias is not None)),
                                   _first(a, k), ["out"]),
    nn.Embedding: _embedding,
    nn.ReLU: simple("relu"), nn.ReLU6: simple("relu6"), nn.SiLU: simple("silu"), nn.Sigmoid: simple("sigmoid"),
    nn.Tanh: simple("tanh"), nn.Hardswish: simple("hardswish"), nn.Hardsigmoid: simple("hardsigmoid"),
    nn.Mish: simple("mish"), nn.Identity: simple("identity"),
    nn.GELU: _act("gelu", approximate="approximate"), nn.ELU: _act("elu", alpha="alpha"),
    nn.LeakyReLU: _act("leaky_relu", negative_slope="negative_slope"),
    nn.Hardtanh: _act("hardtanh", min_val="min_val", max_val="max_val"),
    nn.Softplus: _act("softplus", beta="beta", threshold="threshold"), nn.Softmax: _act("softmax", dim="dim"),
    nn.Dropout: _act("dropout", p="p"),
    nn.MaxPool2d: _pool("maxpool2d", True), nn.AvgPool2d: _pool("avgpool2d", False), nn.AdaptiveAvgPool2d: _adaptive,
    nn.Flatten: _act("flatten", start_dim="start_dim", end_dim="end_dim"), nn.Upsample: _upsample,
    nn.PixelShuffle: _act("pixel_shuffle", factor="upscale_factor"),
    nn.PixelUnshuffle: _act("pixel_unshuffle", factor="downscale_factor"),
    nn.ChannelShuffle: _act("channel_shuffle", groups="groups"),
    nn.RNN: _recurrent("rnn", "nonlinearity"), nn.GRU: _recurrent("gru"), nn.LSTM: _recurrent("lstm", "proj_size"),
    nn.RNNCell: _cell("rnn_cell", "nonlinearity"), nn.GRUCell: _cell("gru_cell"), nn.LSTMCell: _cell("lstm_cell"),
    nn.MultiheadAttention: _mha,
    # archviz's own modules (a lowered spec imports back: the round trip of the library)
    AM.Add: lambda m, a, k, o: ("add", {}, list(a), ["out"]),
    AM.Mul: lambda m, a, k, o: ("mul", {}, list(a), ["out"]),
    AM.Concat: lambda m, a, k, o: ("concat", clean("concat", {"axis": m.dim}), list(a), ["out"]),
    AM.CenterCrop: lambda m, a, k, o: ("center_crop", {}, list(a), ["out"]),
    AM.Pad: lambda m, a, k, o: ("pad", clean("pad", {"pads": list(m.pads), "mode": m.mode, "value": m.value}),
                                list(a), ["out"]),
    AM.Call: _call, AM.OwnTensor: _own_tensor,
    AM.StochasticDepth: _act("stochastic_depth", p="p", mode="mode"),
    AM.Split: lambda m, a, k, o: ("split", {"sizes": list(m.sizes), "dim": m.dim}, list(a), None),
    AM.Slice: lambda m, a, k, o: ("slice", clean("slice", {"dim": m.dim, "start": m.start, "end": m.stop,
                                                          "step": m.step}), list(a), ["out"]),
    AM.ChannelShuffle: _act("channel_shuffle", groups="groups"),
    AM.UpsampleLike: lambda m, a, k, o: ("upsample", clean("upsample", {"mode": m.mode,
                                                                        "align_corners": m.align_corners}),
                                         list(a), ["out"]),
    SM.SeqRNN: _recurrent("rnn", "nonlinearity"), SM.SeqGRU: _recurrent("gru"),
    SM.SeqLSTM: _recurrent("lstm", "proj_size"), SM.SeqLSTMCell: _cell("lstm_cell"),
    SM.SelectStep: lambda m, a, k, o: ("select_step", clean("select_step", {"index": m.index, "axis": m.axis}),
                                       list(a), ["out"]),
    SM.Reverse: lambda m, a, k, o: ("reverse", clean("reverse", {"axis": m.axis}), list(a), ["out"]),
    SM.BatchFirstMHA: _archviz_mha, SM.Attention: _attention, SM.AttentionGRU: _attention_gru,
    SM.SDPA: lambda m, a, k, o: ("sdpa", clean("sdpa", {"mask": m.mask, "window": m.window, "scale": m.scale}),
                                 list(a), ["out"]),
    SM.RoPE: lambda m, a, k, o: ("rope", clean("rope", {"base": _num(m.base),
                                                       "fraction": _frac(m.rotated, a[0].shape[-1])}),
                                 list(a), ["out"]),
}


# torch.nn modules traced into (what they compute between their children is mapped)
COMPOSITE = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Transformer, nn.TransformerEncoder,
             nn.TransformerDecoder, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def is_leaf(mod) -> bool:
    """Recorded whole: a module archviz maps, or a torch.nn layer it does not (reported by name
    rather than by the functions inside it)."""
    t = type(mod)
    return t in MODULES or (t.__module__.startswith("torch.nn.") and t not in COMPOSITE)


def mapper(mod):
    m = MODULES.get(type(mod))
    if m is None:
        def m(mod, args, kwargs, out):
            raise Unmapped(f"torch.nn.{type(mod).__name__} has no archviz op",
                           "run `python -m archviz ops` for the ops archviz has")
    return m


class SubBlock:
    """A sub-network an op holds (the moe op's `expert`), imported from a submodule's own graph:
    build.py writes it as a block of the spec and the attribute as {op: that block}."""

    def __init__(self, cls: str, nodes: list, out: str):
        self.cls, self.nodes, self.out = cls, nodes, out

    def __eq__(self, o) -> bool:
        return isinstance(o, SubBlock) and (o.nodes, o.out) == (self.nodes, self.out)


def _structure(m) -> list:
    """What makes two submodules the same network: each module's class, code (a GraphModule's
    forward) and settings, each tensor's name, shape and dtype."""
    mods = [(q, type(s).__name__, getattr(s, "code", None) if isinstance(s, torch.fx.GraphModule) else None,
             s.extra_repr()) for q, s in m.named_modules()]
    return mods + [(q, tuple(t.shape), t.dtype) for q, t in list(m.named_parameters()) + list(m.named_buffers())]


class Sub:
    """A request in a mapper's attrs: import `module`, called on a tensor shaped like `x`, as a
    block (trace.Tracer does it and puts the SubBlock in its place); `what` names it in errors."""

    def __init__(self, module, x, what: str):
        self.module, self.x, self.what = module, x, what


def _moe(mod, args, kwargs, out):
    """archviz's MoE (the moe op's lowering): the expert is the first expert's own graph, a block."""
    _only_positional(mod, args, kwargs)
    x = _first(args, kwargs)
    first = _structure(mod.experts[0])
    for k, e in enumerate(mod.experts):
        other = _structure(e)
        if other != first:
            diff = next((f"{a} vs {b}" for a, b in zip(other, first) if a != b), f"{len(other)} vs {len(first)} parts")
            raise Unmapped(f"experts.{k} differs from experts.0 ({diff}): the moe op's experts are copies of one "
                           "block", "give every expert the same layers and sizes")
    attrs = clean("moe", dict(experts=mod.num_experts, top_k=mod.top_k, renormalize=mod.renormalize))
    attrs["expert"] = Sub(mod.experts[0], x[0], "its expert (experts.0)")
    return "moe", attrs, x, ["out"]


MODULES[moe_module.MoE] = _moe


def _frac(rotated, d):
    from fractions import Fraction
    f = Fraction(rotated, d)
    return 1 if f == 1 else float(f)
