"""Shared pieces of the diagram layouts: op classes, label text, colours, node facts.

Everything here only READS the analysed graph (``node.meta`` written by the passes); no
shape or count is recomputed.  Op classes are by name so that ops added later (the
recurrent and attention families) are recognised as soon as they exist.
"""
from __future__ import annotations

import re

from archviz.backends.render.dot import html_escape
from archviz.ir import meta as M

FONT = "DejaVu Sans"

WEIGHT_OPS = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "linear",
              "embedding", "bilinear", "attention", "multihead_attention"}
UP_OPS = {"conv_transpose1d", "conv_transpose2d", "upsample", "pixel_shuffle"}
POOL_OPS = {"maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "adaptive_avgpool2d",
            "adaptive_maxpool2d", "global_avgpool", "global_maxpool"}
MERGE_OPS = {"add", "mul", "concat", "sub"}
# recurrences whose step attends over a memory and feeds the context back into the cell
# (Bahdanau et al. 2015): drawn as recurrent layers AND as the attention of a seq2seq step
ATTN_RECURRENT_OPS = {"attention_gru"}
RECURRENT_OPS = {"rnn", "lstm", "gru"} | ATTN_RECURRENT_OPS
CELL_OPS = {"rnn_cell", "lstm_cell", "gru_cell"}
ACT_OPS = {"relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "hardswish",
           "softmax", "log_softmax", "mish", "prelu", "selu"}


def is_attention(op: str) -> bool:
    return op.startswith("attention") or op in {"multihead_attention", "self_attention",
                                                "scaled_dot_product_attention"}


def family(op: str) -> str:
    from archviz.ops import registry
    if op in registry:
        return registry[op].family
    return "block"


def fusable(op: str) -> bool:
    """Ops drawn inside the box of the weight layer before them (conv → BN → ReLU)."""
    return op in ACT_OPS or op == "dropout" or family(op) in ("norm", "activation")


# -- text ---------------------------------------------------------------------------------
def fmt_int(n: int) -> str:
    return f"{n:,}"


def dims(shape, batch: bool = True) -> str:
    """(1, 64, 56, 56) → '1×64×56×56' (the batch dimension included unless batch=False)."""
    s = list(shape)[0 if batch else 1:]
    return "×".join(str(d) for d in s) if s else "scalar"


def spatial(shape) -> str:
    """Spatial size of (N, C, H, W): '572²' or 'H×W'; of (N, C, L): 'L'."""
    s = list(shape)[2:]
    if not s:
        return ""
    if len(s) == 2 and s[0] == s[1]:
        return f"{s[0]}²"
    return "×".join(map(str, s))


def _pair(v):
    if isinstance(v, (tuple, list)):
        return tuple(v)
    return (v, v)


def _k(v) -> str:
    p = _pair(v)
    if len(p) == 2 and p[0] == p[1]:
        return f"{p[0]}×{p[0]}"
    return "×".join(map(str, p))


def _is_one(v) -> bool:
    return all(x == 1 for x in _pair(v)) if v is not None else True


def _s(v) -> str:
    p = _pair(v)
    return str(p[0]) if len(set(p)) == 1 else "×".join(map(str, p))


TEXTBOOK = {"conv1d": "conv", "conv2d": "conv", "conv_transpose2d": "up-conv", "conv_transpose1d": "up-conv",
            "maxpool2d": "max pool", "avgpool2d": "avg pool", "global_avgpool": "global avg pool",
            "adaptive_avgpool2d": "adaptive avg pool", "linear": "fc", "batchnorm2d": "BN",
            "batchnorm1d": "BN", "layernorm": "LayerNorm", "relu": "ReLU", "gelu": "GELU", "silu": "SiLU",
            "sigmoid": "σ", "tanh": "tanh", "dropout": "dropout", "add": "+", "concat": "concat",
            "flatten": "flatten", "upsample": "upsample", "center_crop": "crop", "leaky_relu": "LeakyReLU",
            "elu": "ELU", "hardswish": "hardswish", "softmax": "softmax", "lrn": "LRN", "identity": "identity",
            "rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "embedding": "embedding",
            "rnn_cell": "RNN cell", "lstm_cell": "LSTM cell", "gru_cell": "GRU cell",
            "multihead_attention": "multi-head attention", "attention": "attention",
            "attention_gru": "GRU + attention"}


def textbook(op: str) -> str:
    return TEXTBOOK.get(op, op)


def key_attrs(op: str, a: dict) -> str:
    """The attributes a reader looks for, in textbook order: 'conv 3×3, 64, /2'."""
    a = a or {}
    if op.startswith("conv"):
        parts = [_k(a["kernel"]) if "kernel" in a else "", str(a.get("out", ""))]
        if not _is_one(a.get("stride", 1)):
            parts.append(("×" if "transpose" in op else "/") + _s(a["stride"]))
        if not _is_one(a.get("dilation", 1)):
            parts.append(f"dil {_s(a['dilation'])}")
        if a.get("groups", 1) not in (1, None):
            parts.append(f"groups {a['groups']}")
        return ", ".join(p for p in parts if p)
    if op in ("maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d"):
        st = a.get("stride") or a.get("kernel")
        same = _pair(st) == _pair(a["kernel"])
        return _k(a["kernel"]) + ("" if same or _is_one(st) else f", /{_s(st)}")
    if op == "adaptive_avgpool2d":
        return f"→ {_k(a['size'])}"
    if op == "upsample":
        if a.get("scale") is not None:
            return f"×{_s(a['scale'])}" + (f", {a['mode']}" if a.get("mode") not in (None, "nearest") else "")
        return f"→ {_k(a['size'])}" if a.get("size") is not None else ""
    if op == "embedding":
        return f"{a.get('num')} → {a.get('dim')}"
    if op == "multihead_attention":
        return f"{a.get('heads')} heads"
    if op == "attention":
        return str(a.get("score", ""))
    if op in ("linear",) or op in RECURRENT_OPS or op in CELL_OPS:
        extra = []
        for k in ("num_layers", "bidirectional"):
            if a.get(k) not in (None, False, 1):
                extra.append(f"{a[k]} layers" if k != "bidirectional" else "bidirectional")
        return ", ".join([str(a["out"])] + extra) if "out" in a else ""
    if op == "dropout":
        return f"p={a.get('p')}"
    return generic_attrs(op, a)


def _outs_text(outs: list) -> str:
    if len(outs) == 1:
        return str(outs[0])
    return "/".join(map(str, outs)) if len(outs) <= 3 else f"{outs[0]}…{outs[-1]}"


def weight_summary(graph, members, limit: int = 3) -> str:
    """The weight layers inside a collapsed box in textbook form, alike ones merged:
    'conv 3×3, 64' (VGG's block), 'conv 1×1, 64/256 · conv 3×3, 64' (a bottleneck), the
    widths of copies that differ joined ('conv 3×3, 64…512')."""
    groups: dict = {}   # (op, attrs but out) -> (attrs of the first such layer, [outs])
    for nid in members:
        n = graph.nodes[nid]
        if n.op not in WEIGHT_OPS:
            continue
        a = {k: v for k, v in (n.attrs or {}).items() if k != "stride"}   # a stage's first stride aside
        out = a.pop("out", None)
        _, outs = groups.setdefault((n.op, key_attrs(n.op, a)), (a, []))
        if out is not None and out not in outs:
            outs.append(out)
    parts = []
    for (op, _k), (a, outs) in groups.items():
        a = dict(a, out=_outs_text(outs)) if outs else a
        parts.append((textbook(op) + " " + key_attrs(op, a)).strip())
    return " · ".join(parts[:limit]) + (" · …" if len(parts) > limit else "")


def generic_attrs(op: str, a: dict) -> str:
    """Non-default attributes as k=v (for ops without a textbook form)."""
    from archviz.ops import registry
    if op not in registry:
        return ""
    out = []
    for k, spec in registry[op].attrs.items():
        if k not in a or k == "shape":
            continue
        v = a[k]
        if not spec.required and v == spec.default:
            continue
        if isinstance(v, tuple):
            v = list(v)
        out.append(f"{k}={v}")
    return ", ".join(out)


def out_shape(node, port: str = "out"):
    shapes = node.meta.get(M.SHAPES) or {}
    if port in shapes:
        return shapes[port]
    return next(iter(shapes.values())) if shapes else None


def in_shapes(node) -> list:
    return list(node.meta.get(M.IN_SHAPES) or [])


def params_of(node) -> int:
    p = node.meta.get(M.PARAMS)
    return p.total if p is not None else 0


def macs_of(node) -> int:
    return int(node.meta.get(M.MACS) or 0)


_SUBSCRIPT = re.compile(r"(?<=[^\W_]|[\u0300-\u036f])_(\{[^}]*\}|[^\W_]+)")


def with_subscripts(text: str) -> str:
    """Spec text (docs) as HTML with its TeX-like subscripts drawn: 'W_c' → W<SUB>c</SUB>,
    'h̃_t' → h̃<SUB>t</SUB>, 'x_{t-1}' → x<SUB>t-1</SUB>."""
    return _SUBSCRIPT.sub(lambda m: "<SUB>" + m.group(1).strip("{}") + "</SUB>", html_escape(text))


def stack(lines, pad: int = 2, align: str = "CENTER") -> str:
    """Lines of HTML text one under another, as a borderless table: one row per line.

    Graphviz does not count a <SUB>script's drop in the height of a line broken with
    <BR/>, so a subscript ran into the line below it; a table row is as tall as its text
    and the cell padding keeps the subscript clear of the next row."""
    rows = "".join(f'<TR><TD ALIGN="{align}">{ln}</TD></TR>' for ln in lines if ln is not None)
    return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="{pad}">{rows}</TABLE>'


def small(text: str, size: int = 8, color: str = "#555555") -> str:
    return f'<FONT POINT-SIZE="{size}" COLOR="{color}">{html_escape(text)}</FONT>'


# -- colours by op family -------------------------------------------------------------------
FILL = {"conv": "#dae8fc", "dense": "#d5e8d4", "norm": "#eeeeee", "activation": "#fde9c8",
        "pool": "#f8cecc", "merge": "#ffffff", "shape": "#f5f5f5", "recurrent": "#cfe2f3",
        "attention": "#ead1dc", "embedding": "#fff2cc", "block": "#e4dcf1", "input": "#ffffff"}


def fill_for(op: str) -> str:
    if op in RECURRENT_OPS or op in CELL_OPS:
        return FILL["recurrent"]
    if is_attention(op):
        return FILL["attention"]
    return FILL.get(family(op), "#f5f5f5")
