"""The generic layer graph: one box per layer (id, op, key attributes, output shape,
parameters), repeated blocks collapsed into one box marked ×N, block calls as clusters."""
from __future__ import annotations

from archviz.backends.render.clusters import cluster_tree, emit_tree
from archviz.backends.render.common import (FILL, FONT, dims, fill_for, fmt_int, is_layer, key_attrs, role_of,
                                            small, weight_summary)
from archviz.backends.render.dot import Dot, Html, html_escape
from archviz.backends.render.view import build_view, draw_ties, graph_outputs
from archviz.ops.describe import Role


def local_name(key: str, clusters: tuple) -> str:
    """The id relative to the innermost cluster (the cluster label carries the prefix)."""
    if clusters and key.startswith(clusters[-1] + "."):
        return key[len(clusters[-1]) + 1:]
    return key


def copies_alike(graph, key: str, members) -> bool:
    """Whether the copies of repeat `key` are the same layers (kind, kernel, width), so that
    '×N' is true.  The first copy may have more (ResNet's projection shortcut) and its
    strides may differ (the stage's down-sampling); VGG's stages, whose widths and conv
    counts change, are not alike."""
    from collections import Counter
    sigs: dict = {}
    for nid in members:
        rest = nid[len(key) + 1:] if nid.startswith(key + ".") else nid
        copy = rest.split(".", 1)[0]
        n = graph.nodes[nid]
        if is_layer(n.op):
            sigs.setdefault(copy, Counter())[(n.op, str(n.attrs.get("kernel")), n.attrs.get("out"))] += 1
    c = list(sigs.values())
    if len(c) < 2:
        return True
    return all(x == c[1] for x in c[2:]) and not (c[1] - c[0])


def per_copy(key: str, members) -> str:
    """' (13 each)' when every copy of repeat `key` has as many layers; ' (15, then 11 each)'
    when only the first differs (a stage's down-sampling copy); '' otherwise."""
    from collections import Counter
    sizes = Counter((nid[len(key) + 1:] if nid.startswith(key + ".") else nid).split(".", 1)[0] for nid in members)
    n = list(sizes.values())
    if len(set(n)) == 1:
        return f" ({n[0]} each)"
    if len(set(n[1:])) == 1:
        return f" ({n[0]}, then {n[1]} each)"
    return ""


def unit_label(view, key: str, shapes: bool) -> Html:
    u = view.units[key]
    g = view.graph
    n = g.nodes[u.head]
    name = html_escape(local_name(key, u.clusters))
    rows = []
    if u.kind == "node":
        attrs = key_attrs(n.op, n.attrs)
        rows.append(f"<B>{name}</B>  {small(n.op, 9, '#333333')}")
        if attrs:
            rows.append(html_escape(attrs))
    else:
        alike = u.kind == "repeat" and copies_alike(g, key, u.members)
        mark = f" ×{u.count}" if alike else ""
        rows.append(f"<B>{name}{mark}</B>")
        n_layers = len(u.members)
        # the total always; per copy when every copy has as many layers, or all but the first
        count = f"{n_layers} layer{'' if n_layers == 1 else 's'}" + (per_copy(key, u.members)
                                                                     if u.kind == "repeat" and u.count > 1 else "")
        what = u.block or "block"
        if u.kind == "repeat" and not alike:
            what = f"{u.count} × {what}, copies differ"
        rows.append(small(f"{what} · {count}", 9, "#333333"))
        summary = weight_summary(g, u.members)
        if summary:
            rows.append(html_escape(summary))
    facts = []
    if shapes:
        shp = view.shape(key)
        if shp is not None:
            facts.append(dims(shp))
    p = view.params(key)
    if p:
        facts.append(f"{fmt_int(p)} params")
    if facts:
        rows.append(small(" · ".join(facts)))
    return Html("<BR/>".join(rows))


def build(model, opts) -> Dot:
    g = model.graph
    view = build_view(g, opts.view_mode, opts.depth)
    rankdir = opts.rankdir or "TB"
    big = len(view.units) > 250
    dot = Dot(g.name, comment=f"archviz graph layout of '{g.name}' ({len(view.units)} boxes)",
              rankdir=rankdir, fontname=FONT, nodesep=0.25, ranksep=0.3, newrank=True,
              splines="spline", **({"nslimit": 2, "nslimit1": 2, "mclimit": 0.5, "searchsize": 10}
                                   if big else {}))
    dot.attrs("node", shape="box", style="rounded,filled", fontname=FONT, fontsize=10, margin="0.12,0.05",
              fillcolor="#f5f5f5", color="#666666")
    dot.attrs("edge", arrowsize=0.6, color="#444444", fontname=FONT, fontsize=8)

    def emit(key):
        u = view.units[key]
        op = g.nodes[u.head].op
        if role_of(op) is Role.INPUT:
            shp = view.shape(key)
            lab = f"<B>{html_escape(key)}</B>" + (f"<BR/>{small(dims(shp))}" if opts.shapes and shp else "")
            dot.node(key, label=Html(lab), shape="box", style="rounded", color="#888888")
            return
        if u.kind != "node":
            dot.node(key, label=unit_label(view, key, opts.shapes), fillcolor=FILL["block"], peripheries=2)
        else:
            dot.node(key, label=unit_label(view, key, opts.shapes), fillcolor=fill_for(op))

    def cattrs(c):
        info = view.containers[c]
        if info.kind == "repeat":
            return dict(label=f"{c} · {info.block} ×{info.count}", labeljust="l", style="rounded,dashed",
                        color="#7a5fa8", fontname=FONT, fontsize=10, fontcolor="#7a5fa8")
        return dict(label=f"{c} · {info.block}", labeljust="l", style="rounded,filled", color="#b0b0b0",
                    fillcolor="#fafafa", fontname=FONT, fontsize=10, fontcolor="#555555")

    emit_tree(dot, cluster_tree((view.units[k].clusters, k) for k in view.units), emit, cattrs)
    for a, b, lab in view.edges:
        dot.edge(a, b, label=lab or None)
    draw_ties(dot, view)
    for name, ref, src, oid, shp in graph_outputs(view):
        lab = f"<B>{html_escape(name)}</B>" + (f"<BR/>{small(dims(shp))}" if opts.shapes and shp else "")
        dot.node(oid, label=Html(lab), shape="box", style="rounded", color="#888888")
        dot.edge(src, oid, label=None if ref.port == "out" else ref.port)
    return dot
