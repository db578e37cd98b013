"""The drawn graph: layer-graph nodes grouped into *units* (one box each) and *containers*
(block calls and repeat groups, drawn as clusters).

Containers are read off the hierarchical ids: every proper prefix of a node id is a block
call (``graph.calls``) or a repeat group (``graph.repeats``), so ``layer2.rest.1.conv1``
lives in call ``layer2``, repeat group ``layer2.rest`` and call ``layer2.rest.1``.

Modes:

``collapse``  each innermost repeat group becomes one box marked ×N; other block calls are
              clusters (the default picture).
``expand``    every layer is a box; every block call and repeat group is a cluster.
``depth``     ids are cut to D dot-separated parts (as ``summary --depth``); what is cut
              becomes one box, shallower containers are clusters.
``runs``      consecutive identical copies of a repeat group are drawn once, in a cluster
              marked ×N (the residual picture: ``[3×3, 64; 3×3, 64] ×3``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from archviz.backends.render.common import fusable, macs_of, out_shape, params_of


@dataclass
class Container:
    key: str
    kind: str          # "call" | "repeat" | "run"
    block: str = ""    # block (or op) name
    count: int = 1     # copies drawn as this one (repeat groups, runs)
    label: str = ""


@dataclass
class Unit:
    key: str
    members: list                      # graph node ids, topological order
    kind: str = "node"                 # "node" | "repeat" | "call"
    clusters: tuple = ()               # container keys, outermost first
    count: int = 1
    block: str = ""
    fused: list = field(default_factory=list)   # node ids drawn inside this box after the head
    fused_heads: list = field(default_factory=list)  # one node id per fused layer (for labels)
    out_node: str = ""
    outputs: list = field(default_factory=list)      # members read outside the unit (or graph outputs)

    @property
    def head(self) -> str:
        return self.members[0]


class View:
    def __init__(self, graph):
        self.graph = graph
        self.units: dict[str, Unit] = {}
        self.containers: dict[str, Container] = {}
        self.edges: list = []          # (src unit, dst unit, label)
        self.unit_of: dict[str, str] = {}

    # -- queries ---------------------------------------------------------------------
    def node(self, key: str):
        return self.graph.nodes[self.units[key].head]

    def op(self, key: str) -> str:
        u = self.units[key]
        return self.graph.nodes[u.head].op if u.kind == "node" else u.block

    def out_node(self, key: str):
        return self.graph.nodes[self.units[key].out_node]

    def shape(self, key: str):
        return out_shape(self.out_node(key))

    def params(self, key: str) -> int:
        u = self.units[key]
        return sum(params_of(self.graph.nodes[m]) for m in u.members + u.fused)

    def macs(self, key: str) -> int:
        u = self.units[key]
        return sum(macs_of(self.graph.nodes[m]) for m in u.members + u.fused)

    def preds(self, key: str) -> list:
        return self._adj()[0].get(key, [])

    def succs(self, key: str) -> list:
        return self._adj()[1].get(key, [])

    def _adj(self):
        if getattr(self, "_adj_cache", None) is None or self._adj_n != len(self.edges):
            p, s = {}, {}
            for a, b, _ in self.edges:
                s.setdefault(a, []).append(b)
                p.setdefault(b, []).append(a)
            self._adj_cache, self._adj_n = (p, s), len(self.edges)
        return self._adj_cache

    def ordered_inputs(self, key: str) -> list:
        """Units feeding `key`'s head node, in the head's input order."""
        n = self.node(key)
        out = []
        for r in n.inputs:
            u = self.unit_of.get(r.node)
            if u is not None and u != key and u not in out:
                out.append(u)
        return out


def containers_of(graph, nid: str) -> list:
    """[(prefix, kind)] for the proper prefixes of a node id, outermost first."""
    parts = nid.split(".")
    out = []
    for i in range(1, len(parts)):
        p = ".".join(parts[:i])
        if p in graph.repeats:
            out.append((p, "repeat"))
        elif p in graph.calls:
            out.append((p, "call"))
    return out


def _repeat_block(graph, key: str) -> str:
    first = f"{key}.0"
    if first in graph.calls:
        return graph.calls[first]
    if first in graph.nodes:
        return graph.nodes[first].op
    return ""


def build_view(graph, mode: str = "collapse", depth: int | None = None, split_repeats: bool = False) -> View:
    """Group the graph's nodes into units (see the module doc). `split_repeats` (depth mode):
    a repeat group cut by the depth is drawn as its copies, not as one box.  Each node into
    its unit first, then the containers the units sit in, the edges between units, and
    which members each unit shows to the outside."""
    v = View(graph)
    runs = _Runs(graph) if mode == "runs" else None
    place = _placer(graph, mode, depth, split_repeats, runs)
    order = graph.topo_order()
    for n in order:
        key, kind, clusters = place(n.id)
        if key not in v.units:
            v.units[key] = _new_unit(graph, key, kind, clusters, runs)
        v.units[key].members.append(n.id)
        v.unit_of[n.id] = key
    _add_containers(v, runs)
    external = _add_edges(v, order, runs)
    outputs = {r.node for r in graph.outputs.values()}
    for u in v.units.values():
        outs = [m for m in u.members if m in external or m in outputs]
        u.outputs = outs or [u.members[-1]]
        u.out_node = u.outputs[-1]
        if u.kind == "node" and runs is not None:
            u.out_node = u.members[0]
    return v


def _placer(graph, mode: str, depth, split_repeats: bool, runs):
    """nid -> (unit key, unit kind, its container keys outermost first), by the mode."""
    leaf_repeats = {r for r in graph.repeats
                    if not any(o != r and o.startswith(r + ".") for o in graph.repeats)}

    def place(nid: str) -> tuple:
        chain = containers_of(graph, nid)
        key, kind, clusters = nid, "node", [c for c, _ in chain]
        if mode == "collapse":
            for i, (c, k) in enumerate(chain):
                if k == "repeat" and c in leaf_repeats:
                    return c, "repeat", [x for x, _ in chain[:i]]
        elif mode == "depth" and depth is not None:
            parts = nid.split(".")
            cut = depth
            if split_repeats and ".".join(parts[:cut]) in graph.repeats:
                cut += 1
            if len(parts) > cut:
                key = ".".join(parts[:cut])
                kind = "repeat" if key in graph.repeats else "call"
                clusters = [c for c, _ in chain if len(c.split(".")) < cut]
        elif mode == "runs":
            key = runs.canon(nid)
            clusters = [c for c in runs.clusters(key)]
        return key, kind, clusters
    return place


def _new_unit(graph, key: str, kind: str, clusters: list, runs) -> Unit:
    u = Unit(key, [], kind, tuple(clusters))
    if kind == "repeat":
        u.count, u.block = graph.repeats[key], _repeat_block(graph, key)
    elif kind == "call":
        u.block = graph.calls.get(key, "")
    if runs is not None and key in runs.run_len:
        u.count = runs.run_len[key]
    return u


def _add_containers(v: View, runs) -> None:
    graph = v.graph
    for u in v.units.values():
        for c in u.clusters:
            if c in v.containers:
                continue
            if runs is not None:
                v.containers[c] = runs.container(c)
            elif c in graph.repeats:
                v.containers[c] = Container(c, "repeat", _repeat_block(graph, c), graph.repeats[c])
            else:
                v.containers[c] = Container(c, "call", graph.calls.get(c, ""))


def _add_edges(v: View, order: list, runs) -> set:
    """One edge per pair of units, the ports it carries (other than 'out') as its label;
    returns the nodes read from another unit."""
    seen: dict = {}
    external = set()
    for n in order:
        b = v.unit_of[n.id]
        for r in n.inputs:
            if r.node not in v.unit_of:
                continue
            a = v.unit_of[r.node]
            if a == b:
                continue
            external.add(r.node)
            if runs is not None and runs.cross_copy(r.node, n.id):
                continue
            port = "" if r.port == "out" else r.port
            if (a, b) in seen:
                i = seen[(a, b)]
                labels = [x for x in v.edges[i][2].split(", ") if x]
                if port and port not in labels:
                    v.edges[i] = (a, b, ", ".join(labels + [port]))
                continue
            seen[(a, b)] = len(v.edges)
            v.edges.append((a, b, port))
    return external


class _Runs:
    """Consecutive identical copies of each repeat group (same ops, attributes, shapes and
    internal wiring), so that a run is drawn once with ×N."""

    def __init__(self, graph):
        self.graph = graph
        copies: dict = {}
        for n in sorted(graph.nodes.values(), key=lambda n: n.order):
            parts = n.id.split(".")
            for i in range(1, len(parts)):
                p = ".".join(parts[:i])
                if p in graph.repeats and parts[i].isdigit():
                    copies.setdefault(p, {}).setdefault(int(parts[i]), []).append(n)
        self.start: dict = {}      # (group, k) -> first copy index of its run
        self.run_len: dict = {}    # canonical copy id -> copies in the run
        self.run_end: dict = {}
        for p, by_k in copies.items():
            prev_sig, start = None, 0
            for k in sorted(by_k):
                sig = self._sig(p, k, by_k[k])
                if sig != prev_sig:
                    start = k
                prev_sig = sig
                self.start[(p, k)] = start
                cid = f"{p}.{start}"
                self.run_len[cid] = self.run_len.get(cid, 0) + 1
                self.run_end[cid] = k

    def _sig(self, p, k, nodes):
        pre = f"{p}.{k}"
        out = []
        for n in nodes:
            rel = n.id[len(pre):]
            ins = tuple((r.node[len(pre):], r.port) if r.node == pre or r.node.startswith(pre + ".")
                        else ("ext", r.port) for r in n.inputs)
            out.append((rel, n.op, repr(sorted(n.attrs.items())), ins,
                        repr(n.meta.get("in_shapes")), repr(n.meta.get("shapes"))))
        return tuple(out)

    def canon(self, nid: str) -> str:
        parts = nid.split(".")
        for i in range(1, len(parts)):
            p = ".".join(parts[:i])
            if p in self.graph.repeats and parts[i].isdigit():
                parts[i] = str(self.start.get((p, int(parts[i])), int(parts[i])))
        return ".".join(parts)

    def cross_copy(self, u: str, v: str) -> bool:
        """An edge between two different copies of one run (it folds into the ×N)."""
        pu, pv = u.split("."), v.split(".")
        for i in range(1, min(len(pu), len(pv))):
            if pu[:i] != pv[:i]:
                return False
            p = ".".join(pu[:i])
            if p in self.graph.repeats and pu[i].isdigit() and pv[i].isdigit() and pu[i] != pv[i]:
                a, b = (p, int(pu[i])), (p, int(pv[i]))
                return self.start.get(a) == self.start.get(b)
        return False

    def clusters(self, key: str) -> list:
        """Only runs of two or more copies are clusters (the ×N bracket)."""
        parts = key.split(".")
        out = []
        for i in range(1, len(parts)):
            p = ".".join(parts[:i])
            c = ".".join(parts[:i + 1])
            if p in self.graph.repeats and self.run_len.get(c, 1) > 1 and i + 1 < len(parts):
                out.append(c)
        return out

    def container(self, c: str) -> Container:
        p, k = c.rsplit(".", 1)
        n, end = self.run_len[c], self.run_end[c]
        block = self.graph.calls.get(c, "")
        label = f"{c}–{end}" if n > 1 else c
        return Container(c, "run", block, n, label)


# -- fusion --------------------------------------------------------------------------
def fuse(view: View, is_head) -> View:
    """Draw chains head → norm → activation as one box (conv · BN · ReLU); `is_head(op)`
    says which ops head a box.

    A node joins the box before it when it is a norm/activation/dropout, it is that box's
    only consumer, it reads only that box, and both are in the same clusters."""
    g = view.graph
    merged: dict[str, str] = {}
    for key in list(view.units):
        u = view.units[key]
        if u.kind != "node" or not fusable(g.nodes[u.head].op):
            continue
        preds = view.preds(key)
        if len(preds) != 1:
            continue
        p = merged.get(preds[0], preds[0])
        pu = view.units[p]
        if pu.kind != "node" or not is_head(g.nodes[pu.head].op) or pu.clusters != u.clusters:
            continue
        if len(view.succs(preds[0])) != 1 or any(r.node not in pu.members + pu.fused
                                                 for r in g.nodes[u.head].inputs):
            continue
        if pu.count != u.count:
            continue
        pu.fused += u.members
        pu.fused_heads.append(u.head)
        pu.out_node = u.out_node
        pu.outputs = list(u.outputs)
        merged[key] = p
    if not merged:
        return view
    for k in merged:
        del view.units[k]
    for nid, k in list(view.unit_of.items()):
        if k in merged:
            view.unit_of[nid] = merged[k]
    edges, seen = [], set()
    for a, b, lab in view.edges:
        a, b = merged.get(a, a), merged.get(b, b)
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            edges.append((a, b, lab))
    view.edges = edges
    view._adj_cache = None
    return view


def tie_edges(view) -> list:
    """[(owner unit, sharing unit, label)]: the units whose layers share weights (`share:`)
    held by another unit, once per pair, e.g. ('wte', 'lm_head', 'shares weight')."""
    from archviz.ir import meta as M
    out: dict = {}
    for nid, b in view.unit_of.items():
        for p, (o, _q, _s, _k) in (view.graph.nodes[nid].meta.get(M.TIES) or {}).items():
            a = view.unit_of.get(o)
            if a is not None and a != b:
                names = out.setdefault((a, b), [])
                if p not in names:
                    names.append(p)
    return [(a, b, "shares " + (", ".join(ns) if len(ns) <= 2 else f"{len(ns)} tensors")) for (a, b), ns in out.items()]


def draw_ties(dot, view) -> None:
    """A dashed, undirected line from each owner to the layer that shares its weights; it
    does not pull the layout (constraint=false)."""
    for a, b, lab in tie_edges(view):
        dot.edge(a, b, style="dashed", color="#7a5fa8", fontcolor="#7a5fa8", dir="none", constraint=False,
                 label=lab)


def graph_outputs(view):
    """The spec's outputs as drawn: (name, ref, the unit that produces it, its box id, shape)."""
    from archviz.backends.render.common import out_shape
    g = view.graph
    for name, ref in g.outputs.items():
        src = view.unit_of.get(ref.node)
        if src is not None:
            yield name, ref, src, f"output:{name}", out_shape(g.nodes[ref.node], ref.port)
