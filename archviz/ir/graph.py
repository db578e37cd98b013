"""The LayerGraph: the IR every pass reads and writes.

Nodes keep their inputs in order (``concat`` and ``center_crop`` care), a hierarchical
id (``layer1.0.conv1``), the block-call scope path, the spec span of the node and of each
attribute, and a ``meta`` dict where passes write their results (keys in
:mod:`archviz.ir.meta`).  The networkx MultiDiGraph mirrors the edges for graph
algorithms (topological order, cycles, layouts); the node list is the source of truth.

The graph's own algorithms (stable topological order, acyclicity, what reaches an output,
consumers) read the nodes' inputs and a successor list kept beside them; the networkx graph
(``g``) is built only when a consumer asks for it (the sequence layouts), so a
100,000-layer graph does not pay for it in time and memory (issue 17).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from archviz.codes import E
from archviz.errors import ArchvizError, RefError, Span, SpecError, short_repr

Shape = tuple  # tuple[int, ...], batch dimension first

# the op of a graph input's node (declared under `inputs:`, not as a node)
INPUT_OP = "input"


@dataclass(frozen=True, slots=True)
class Ref:
    """An edge end: output `port` of node `node`."""
    node: str
    port: str = "out"

    def __str__(self) -> str:
        return self.node if self.port == "out" else f"{self.node}.{self.port}"


@dataclass(frozen=True)
class Tie:
    """`share:` of a node: its tensor `param` is node `owner`'s tensor `owner_param` (one
    tensor, as torch's `b.weight = a.weight`).  `param` None: every tensor of the node, each
    the owner's of the same name; `owner_param` None: the owner's tensor of `param`'s name."""
    param: str | None
    owner: str
    owner_param: str | None = None
    span: Span | None = None
    written: str = ""           # the owner as the spec names it (enc[0], or a layer of a shared call)
    lenient: bool = False       # a layer of a shared block call: no tensors, nothing shared


@dataclass(slots=True)      # no __dict__ per layer (issue 17)
class Node:
    id: str
    op: str
    attrs: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)          # list[Ref], ordered
    input_ports: list | None = None                     # named ports of the inputs, if any
    scope: tuple = ()                                   # block-call ids, outermost first
    span: Span | None = None
    attr_spans: dict = field(default_factory=dict)
    input_spans: list = field(default_factory=list)
    expect: Any = None                                  # (list of dims, span, list of spans)
    frozen: bool = False                                # parameters non-trainable
    ties: list | tuple = ()                             # [Tie]: tensors shared with other nodes
    notes: list = field(default_factory=list)           # expansion stack, for errors
    order: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def is_input(self) -> bool:
        """A graph input (no op computes it)."""
        return self.op == INPUT_OP


class LayerGraph:
    def __init__(self, name: str = "model", doc: str = ""):
        self.name = name
        self.doc = doc
        self.nodes: dict[str, Node] = {}
        self.inputs: dict[str, str] = {}       # input name -> node id
        self.outputs: dict[str, Ref] = {}      # output name -> ref
        self.expects: list = []                # (Ref, dims, span, dim spans, notes)
        self.calls: dict[str, str] = {}        # block-call id -> block name
        self.repeats: dict[str, int] = {}      # repeated node id -> copies
        self.output_spans: dict[str, Span] = {}
        self.warnings: list = []               # SpecWarning found while compiling
        self.params: dict[str, Any] = {}       # resolved spec params
        self.loss: str | None = None
        self.source: str | None = None
        self._g = None                         # networkx MultiDiGraph, built when asked for
        self._succ: dict[str, list[str]] | None = None  # node id -> consumers' ids (_successors)
        self._topo: list[str] | None = None
        self._topo_nodes: list | None = None   # the nodes of _topo (the passes ask for it often)
        self.done: dict = {}                   # pass name -> what the pass driver recorded

    # -- building -------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        # an id is a name: it becomes a qualified module name, a state-dict key and a diagram
        # label (a YAML key such as `~` or `true` reads as None or True)
        if not isinstance(node.id, str) or not node.id:
            raise SpecError(f"node id {short_repr(node.id)} is not a name", node.span, code=E.BAD_NODE_ID)
        if node.id in self.nodes:
            raise RefError(f"duplicate node id '{node.id}'", node.span, code=E.DUPLICATE_ID,
                           notes=[f"first defined at {self.nodes[node.id].span}"])
        node.order = len(self.nodes)
        self.nodes[node.id] = node
        self._succ = None
        self._g = None
        self._topo = None
        self._topo_nodes = None
        return node

    def connect(self) -> None:
        """(Re)build the edge set from the nodes' ordered inputs (when it is next read: a
        summary asks for the consumers of its inputs only)."""
        self._succ = None
        self._g = None
        self._topo = None
        self._topo_nodes = None

    def _successors(self) -> dict:
        """Node id -> its consumers' ids, one per edge, in edge order."""
        if self._succ is None:
            succ = self._succ = {k: [] for k in self.nodes}
            for n in self.nodes.values():
                for ref in n.inputs:
                    if ref.node in succ:
                        succ[ref.node].append(n.id)
        return self._succ

    @property
    def g(self):
        """The edges as a networkx MultiDiGraph (edge key = input index, with `port` and
        `index`), for graph algorithms of the backends; built on first use."""
        if self._g is None:
            import networkx as nx
            g = nx.MultiDiGraph()
            g.add_nodes_from(self.nodes)
            for n in self.nodes.values():
                for i, ref in enumerate(n.inputs):
                    if ref.node in self.nodes:
                        g.add_edge(ref.node, n.id, key=i, port=ref.port, index=i)
            self._g = g
        return self._g

    # -- queries -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes.values())

    def __getitem__(self, nid: str) -> Node:
        return self.nodes[nid]

    def _kahn(self) -> list[str]:
        """Kahn's algorithm taking the earliest node in spec order among those ready: the
        lexicographically smallest topological order by spec order (networkx's
        lexicographical_topological_sort with that key gives the same, unique, order). On a
        cycle, the nodes before it only."""
        nodes, succ = self.nodes, self._successors()
        indeg = {k: 0 for k in nodes}
        for outs in succ.values():
            for v in outs:
                indeg[v] += 1
        ready = [(n.order, k) for k, n in nodes.items() if not indeg[k]]
        heapq.heapify(ready)
        out = []
        while ready:
            _, k = heapq.heappop(ready)
            out.append(k)
            for v in succ[k]:
                indeg[v] -= 1
                if not indeg[v]:
                    heapq.heappush(ready, (nodes[v].order, v))
        return out

    def topo_order(self) -> list[Node]:
        """Stable topological order: spec order wherever the edges allow it."""
        if self._topo is None:
            order = self._kahn()
            if len(order) < len(self.nodes):        # a cycle: networkx says so, as before
                import networkx as nx
                key = {k: n.order for k, n in self.nodes.items()}
                order = list(nx.lexicographical_topological_sort(self.g, key=key.__getitem__))
            self._topo = order
            self._topo_nodes = None
        if self._topo_nodes is None:
            nodes = self.nodes
            self._topo_nodes = [nodes[k] for k in self._topo]
        return list(self._topo_nodes)       # a copy: a caller may change its list

    def unreached(self) -> list[str]:
        """Ids of the nodes (graph inputs included) whose output reaches no graph output, in
        spec order: a branch that a bypass or a wrong reference cut off. (A node's inputs
        changed in place: connect() first, as for every edge query.)"""
        nodes = self.nodes
        todo = [r.node for r in self.outputs.values() if r.node in nodes]
        live = set(todo)
        succ = self._succ
        # every node read by another or an output: then every node reaches an output (follow
        # the readers from any node: in a graph without cycles, which lint found when it left a
        # topological order, they end at an output; issue 17: no second walk over the nodes)
        if succ is not None and self._topo is not None and len(self._topo) == len(nodes) \
                and all(v or k in live for k, v in succ.items()):
            return []
        while todo:
            for r in nodes[todo.pop()].inputs:
                k = r.node
                if k not in live and k in nodes:
                    live.add(k)
                    todo.append(k)
        return [k for k in nodes if k not in live]

    def consumers(self, nid: str) -> list[Node]:
        return [self.nodes[v] for v in dict.fromkeys(self._successors()[nid])]

    # -- invariants ----------------------------------------------------------
    def lint(self, reg) -> list[ArchvizError]:
        """Check invariants: references resolve, ports exist, arity, acyclicity.  `reg` is
        the op registry (the ir knows nothing of ops)."""
        problems: list[ArchvizError] = []
        nodes = self.nodes
        forward = True          # every edge from an earlier node of the spec to a later one
        # the answers per op and Attrs (shared by the layers written alike, issue 17): a port
        # that exists, an input count that fits
        ports_ok: set = set()
        arity: dict = {}
        succ = {k: [] for k in nodes}       # the readers, as _successors (made here, on the way)
        for n in nodes.values():
            order = n.order
            for i, ref in enumerate(n.inputs):
                src = nodes.get(ref.node)
                if src is None:
                    sp = n.input_spans[i] if i < len(n.input_spans) else n.span
                    problems.append(RefError(f"'{n.id}' reads unknown node '{ref.node}'", sp,
                                             code=E.UNKNOWN_NODE))
                    continue
                succ[ref.node].append(n.id)
                if src.order >= order:
                    forward = False
                key = (src.op, id(src.attrs), ref.port)
                if key in ports_ok or src.op not in reg:
                    continue
                ports = reg[src.op].output_ports(src.attrs)
                if ref.port in ports:
                    ports_ok.add(key)
                else:
                    sp = n.input_spans[i] if i < len(n.input_spans) else n.span
                    problems.append(RefError(
                        f"'{src.id}' ({src.op}) has no output '{ref.port}'", sp, code=E.UNKNOWN_OUTPUT,
                        hint="available outputs: " + ", ".join(ports)))
            bounds = arity.get(n.op)
            if bounds is None:
                op = reg[n.op] if n.op in reg else None
                bounds = arity[n.op] = (op.min_inputs, op.max_inputs) if op is not None else ()
            if bounds:
                k = len(n.inputs)
                lo, hi = bounds
                if k < lo or (hi is not None and k > hi):
                    want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
                    problems.append(RefError(f"'{n.id}' ({n.op}) takes {want} input(s), got {k}",
                                             n.span, code=E.INPUT_COUNT))
        # the spec order when every edge runs forward: then it is the smallest topological
        # order by spec order, the one _kahn finds (issue 17: no heap for a large graph)
        self._succ = succ
        order = list(nodes) if forward else self._kahn()
        if len(order) == len(self.nodes):
            self._topo = order
            self._topo_nodes = None
        else:
            self._topo = self._topo_nodes = None    # (an order found before the graph changed: none now)
            import networkx as nx
            cyc = nx.find_cycle(self.g)
            path = [e[0] for e in cyc] + [cyc[0][0]]
            first = self.nodes[cyc[0][1]]
            problems.append(RefError("cycle in the layer graph: " + " -> ".join(path), first.span,
                                     code=E.CYCLE, hint="a layer cannot read its own output, "
                                     "directly or through others"))
        return problems
