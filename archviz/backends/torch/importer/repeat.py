"""Repeated submodules → a block with `repeat` (torchvision's layer1 → 3 copies of `bottleneck`).

A run of copies is the nodes of `P.0`, `P.1`, ... (a ModuleList or Sequential of one class), in
order, each copy reading only itself and the copy before it (the first: one outside tensor), and
nothing after the run reading any copy but the last one's output.  The block holds the union
of the copies' nodes: an attribute that differs between copies becomes `${[a, b, c][i]}`, a
node only some copies have `when: ${i == 0}` (torchvision's downsample of the first copy).
Whether the block is right is not argued: both texts are compiled and their graphs compared
node by node (torch path, op, attributes, inputs); any difference keeps the flat spec.
"""
from __future__ import annotations

import re

from archviz.ops import registry


class _Abort(Exception):
    pass


def _split(nid: str):
    """(P, k, rel) for an id P__k__rel (the outermost numeric segment), else None."""
    parts = nid.split("__")
    for p in range(1, len(parts)):
        if parts[p].isdigit():
            return "__".join(parts[:p]), int(parts[p]), "__".join(parts[p + 1:])
    return None


def runs(recs) -> list:
    """[(P, [copy recs lists], start index, end index)] of candidate runs, in order."""
    out, i = [], 0
    while i < len(recs):
        s = _split(recs[i].id)
        if s is None or s[1] != 0:
            i += 1
            continue
        P, copies, j, k = s[0], [], i, 0
        while j < len(recs):
            t = _split(recs[j].id)
            if t is None or t[0] != P or t[1] not in (k, k + 1) or (t[1] == k + 1 and not copies) \
                    or (t[1] == k and copies and len(copies) != k + 1):
                break
            if t[1] == k + 1 or not copies:
                copies.append([])
                k = t[1]
            copies[-1].append(recs[j])
            j += 1
        if len(copies) >= 2:
            out.append((P, copies, i, j))
        i = max(j, i + 1)
    return out


def _py(v) -> str:
    """A value as a literal of the spec's expressions (Python's syntax)."""
    if isinstance(v, (bool, int, float, str)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    raise _Abort(f"a value {v!r} that differs between copies and has no literal")


def _expr_list(vals):
    return "${[" + ", ".join(_py(v) for v in vals) + "][i]}"


def block_of(P, copies, cls_name, recs_after, outputs):
    """(block dict, call dict, last id) for one run, or raise _Abort."""
    n = len(copies)
    ids = [{r.id for r in c} for c in copies]
    pre = [f"{P}__{k}__" for k in range(n)]
    outs = [c[-1].id for c in copies]
    outside = None
    rows = {}                  # rel id -> {k: rec}
    order: list = []
    for k, c in enumerate(copies):
        prev_rel = None
        for r in c:
            if r.share:
                raise _Abort("shared weights inside a copy")
            rel = r.id[len(pre[k]):] if r.id.startswith(pre[k]) else None
            if not rel:
                raise _Abort("a copy that is one layer")
            if rel not in rows:
                order.insert(order.index(prev_rel) + 1 if prev_rel in order else len(order), rel)
                rows[rel] = {}
            rows[rel][k] = r
            prev_rel = rel
            for src in r.inputs:
                if src[0] in ids[k]:
                    continue
                ext = outs[k - 1] if k else None
                if k == 0 and src[0] not in ids[0]:
                    if outside not in (None, src):
                        raise _Abort("a first copy reading two outside tensors")
                    outside = src
                elif not (src[0] == ext and src[1] == "out"):
                    raise _Abort("a copy reading a tensor outside itself and the copy before")
    run_ids = set().union(*ids)
    for r in recs_after:
        if any(s[0] in run_ids and s[0] != outs[-1] or (s[0] == outs[-1] and s[1] != "out") for s in r.inputs):
            raise _Abort("a later layer reads inside the run")
    if any(s[0] in run_ids and s[0] != outs[-1] for s in outputs.values()):
        raise _Abort("an output inside the run")
    nodes, uses_i = [], False
    for rel in order:
        present = rows[rel]
        ks = sorted(present)
        ops = {present[k].op for k in ks}
        if len(ops) != 1:
            raise _Abort(f"'{rel}' is a different op in different copies")
        op = ops.pop()
        full = max(ks, key=lambda k: len(copies[k]))
        rec = present[full]
        node = {"id": rel, "op": op}
        node["in"] = [_rel(s, pre[full], outs[full - 1] if full else None, outside) for s in rec.inputs]
        keys = list(dict.fromkeys(k_ for k in ks for k_ in present[k].attrs))
        schema = registry[op].attrs
        for key in keys:
            vals = [present[k].attrs.get(key, schema[key].default) if k in present else None for k in range(n)]
            fill = next(v for v in vals if v is not None)
            vals = [fill if v is None else v for v in vals]
            if all(v == vals[0] and type(v) is type(vals[0]) for v in vals):
                node[key] = vals[0]
            else:
                node[key] = _expr_list(vals)
                uses_i = True
        if len(ks) != n:
            node["when"] = "${" + " or ".join(f"i == {k}" for k in ks) + "}"
            if len(node["in"]) > 1:
                node["bypass"] = node["in"][0]
            uses_i = True
        nodes.append(node)
    block = {"name": re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls_name).lower() or "block", "nodes": nodes,
             "out": _rel((outs[-1], "out"), pre[-1], None, None), "uses_i": uses_i}
    call = {"id": P, "op": None, "in": outside, "repeat": n, "uses_i": uses_i}
    return block, call, outs[-1]


def _rel(src, prefix, prev_out, outside):
    node, port = src
    if node.startswith(prefix):
        r = node[len(prefix):]
        return r if port == "out" else f"{r}.{port}"
    if (prev_out is not None and node == prev_out) or (outside is not None and src == outside):
        return "x"
    raise _Abort("an input outside the copy")


def collapse(recs, outputs, classes: dict, taken=()):
    """(items, blocks, renames) with each run that can be a repeated block made one, or None when
    there is none. items: recs and block calls in order; renames: {last id of a run: P}; taken:
    block names in use already."""
    found = runs(recs)
    if not found:
        return None
    items, blocks, renames, pos = [], {}, {}, 0
    for P, copies, i0, i1 in found:
        try:
            cls = classes.get(P.replace("__", ".") + ".0", "block")
            block, call, last = block_of(P, copies, cls.rpartition(".")[2], recs[i1:], outputs)
            block["doc"] = f"{cls}: the {len(copies)} copies of {P.replace('__', '.')}"
        except _Abort:
            continue
        name = block["name"]
        if name in registry:
            name += "_block"
        base, k = name, 1
        while name in taken or (name in blocks and blocks[name]["nodes"] != block["nodes"]):
            k += 1
            name = f"{base}_{k}"
        blocks[name] = block
        call["op"] = name
        items += recs[pos:i0]
        items.append(call)
        renames[last] = P
        pos = i1
    if not blocks:
        return None
    items += recs[pos:]
    return items, blocks, renames
