"""Nested clusters from the units' container paths, in order of first appearance."""
from __future__ import annotations


def cluster_tree(paths_and_items):
    """[(path tuple, item)] → tree {"items": [...], "children": {key: tree}} (ordered)."""
    root = {"items": [], "children": {}}
    for path, item in paths_and_items:
        t = root
        for c in path:
            t = t["children"].setdefault(c, {"items": [], "children": {}})
        t["items"].append(item)
    return root


def emit_tree(dot, tree, emit_item, cluster_attrs, prefix: str = "cluster_"):
    """Write items, then child clusters as `subgraph cluster_<key>` with their attributes.

    Items and clusters keep the order in which they first appeared; children are written
    after the items of the same level, which dot does not mind (it ranks by edges)."""
    for item in tree["items"]:
        emit_item(item)
    for key, sub in tree["children"].items():
        with dot.subgraph(prefix + key, **cluster_attrs(key)):
            emit_tree(dot, sub, emit_item, cluster_attrs, prefix)
