"""The JSON contract's `layers` written as text, one entry at a time, without building the
entry's dicts (issue 17): for a 100,000-layer graph, making the dicts of
:meth:`archviz.model.Model.layer_entries` and encoding them took 1.1 s; the text of an entry
here is put together from its parts, and a part that many layers share (an op, an output
shape, the receptive field an element-wise layer passes on) is encoded once.

The text is exactly that of ``json.dumps(entry, separators=(",", ":"))`` for each entry of
``layer_entries()`` (tests compare them for every bundled spec): strings through the json
module's own escaping (ASCII), ints as ``int.__repr__``, keys in the same order.  What this
writer does not spell itself (a shared weight's keys, a warning, a field that is not affine
or global) it hands to the json encoder."""
from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _str

from archviz.ir import meta as M
from archviz.ir.once import by_id

_enc = json.JSONEncoder(separators=(",", ":")).encode


def layer_texts(model):
    """The compact JSON text of each entry of ``model.layer_entries()``, in order."""
    failed = model.rf_failure()
    if failed is not None:          # every entry says why (rare): the dicts, encoded
        yield from map(_enc, model.layer_entries())
        return
    from archviz.passes import rf as RF
    ops: dict = {}
    shapes: dict = {}       # an output shape's text once (shapes are shared objects)
    rfs: dict = {}          # id(fields list) -> text: an element-wise layer passes its input's on
    heads: dict = {}        # axis name -> the start of its object
    for node in model.layer_nodes():       # (the nodes of model.layers, without a Layer each)
        meta = node.meta
        p, macs = meta[M.PARAMS], meta[M.MACS]
        params = p.trainable + p.non_trainable
        if type(params) is not int or type(macs) is not int:    # what the encoder would write
            params, macs, flops = _enc(params), _enc(macs), _enc(2 * macs)
        else:
            flops = 2 * macs
        op = ops.get(node.op) or ops.setdefault(node.op, _str(node.op))
        outs = meta[M.SHAPES]
        out = outs["out"] if "out" in outs else next(iter(outs.values()))      # as Model.layers
        shape = by_id(shapes, out, _shape_text)
        rec = meta[M.RF]
        fields = rec.fields.get("out")
        rf = rfs.get(id(fields)) if fields else None
        if rf is None:
            rf = _rf_text(node, rec, rfs, RF, heads)
        if meta.get(M.TIES) or meta.get(M.TIED_BY):
            from archviz.backends.sharing import json_keys
            rf = "," + _enc(json_keys(node))[1:-1] + rf
        if rec.warnings:
            rf += ',"rf_warnings":' + _enc(list(rec.warnings))
        ins = ",".join([_str(r.node if r.port == "out" else str(r)) for r in node.inputs])
        yield (f'{{"id":{_str(node.id)},"op":{op},"inputs":[{ins}],'
               f'"output_shape":{shape},"params":{params},"macs":{macs},"flops":{flops}{rf}}}')


def _shape_text(shape) -> str:
    return _enc(list(shape))


def _rf_text(node, rec, memo: dict, RF, heads: dict) -> str:
    """',"rf":...' (and ',"rf_note":...' where there is none) of one layer; kept in `memo`
    for its fields list (by id: the lists live in the graph while the text is written)."""
    fields = rec.fields.get("out") if rec.ctx.axes else None
    if fields:
        parts = []
        for f, ax in zip(fields, rec.ctx.axes):
            head = heads.get(ax.name) or heads.setdefault(ax.name, '{"axis":' + _str(ax.name) + ',"size_min":')
            if f is None:
                break
            if f.kind == "periodic" and f.P == 1:       # affine: as rf._axis_json
                lo, J = f.lo[0], f.J
                if lo is None:
                    break
                size = f.hi[0] - lo + 1
                if type(size) is not int or type(lo) is not int or type(J) is not int:
                    break
                parts.append(f'{head}{size},"size_max":{size},"jump":{J},"start":{lo},"global":false}}')
            elif f.kind == "global" and type(ax.size) is int:
                parts.append(f'{head}{ax.size},"size_max":{ax.size},"jump":null,"start":0,"global":true}}')
            else:
                break
        else:
            text = memo[id(fields)] = ',"rf":[' + ",".join(parts) + "]"
            return text
    entry, note = RF.layer_json(node)
    text = ',"rf":' + _enc(entry)
    if entry is None and note:
        text += ',"rf_note":' + _str(note)
    return text
