"""The parity fuzzer's generator and judge, shared by tests/fuzz/test_parity.py (hypothesis,
a fixed budget in CI) and scripts/fuzz_parity.py (long campaigns with a seed).

A *case* is a small spec: one to three graph inputs and one op, or a short chain of ops,
with random attributes (valid and invalid ones: zero and negative sizes, fractions,
infinities) and random input shapes.  The judge runs it through archviz's whole pipeline
(the spec text is compiled and analysed as a user's would be) and through torch — the
independent references of tests/ops/torch_ref.py, node by node on real tensors, under
FlopCounterMode — and compares:

* accept / refuse: archviz refuses (an ArchvizError, never another exception) exactly where
  torch raises, at the same node;
* every node's output shapes, parameters, buffers, and 2 × MACs == torch's FLOP count;
* archviz's own lowering (``verify`` on the CPU) agrees with the static numbers, and
  ``explain`` and the receptive-field summaries run.

Where archviz refuses on purpose something torch runs, the case is *deliberate* when it
matches one of :data:`DELIBERATE` and the error says why (its marker); the README lists them.

Generation goes through a tiny drawing interface (``integers``, ``choice``) so the same
generator runs under hypothesis (:class:`HypothesisDraw`) and from a seeded
``random.Random`` (:class:`RandomDraw`, one per case: case i of seed s is reproducible alone).
"""
from __future__ import annotations

import random
import re
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

from tests.ops.spec_cases import Raw, _yaml     # one YAML writer for the test specs

# -- drawing --------------------------------------------------------------------------------


class RandomDraw:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def integers(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, seq):
        seq = list(seq)
        return seq[self.rng.randrange(len(seq))]


class HypothesisDraw:
    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def integers(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, seq):
        return self.data.draw(self.st.sampled_from(list(seq)))


def case_for(seed: int, index: int) -> "Case":
    """Case `index` of the campaign with `seed` (reproducible on its own)."""
    return generate(RandomDraw(random.Random(f"{seed}:{index}")))


# -- values ---------------------------------------------------------------------------------


def rare(d, n: int = 8) -> bool:
    return d.integers(0, n - 1) == 0


def size(d, lo=1, hi=6):
    """A positive size, now and then 0 or negative (torch's answer decides)."""
    if rare(d, 14):
        return d.choice([0, -1])
    return d.integers(lo, hi)


def pair(d, gen):
    return gen() if d.integers(0, 2) else [gen(), gen()]


def number(d, typical):
    """A float attribute: a typical value, a fraction ${a/b}, an int, now and then an
    extreme one (negative, huge, inf, nan)."""
    k = d.integers(0, 19)
    if k < 13:
        return d.choice(typical)
    if k < 16:
        return Fraction(d.integers(0, 6), d.integers(1, 7))
    if k < 18:
        return d.integers(-1, 3)
    return d.choice([Raw(".inf"), Raw("-.inf"), Raw(".nan"), -0.5, 1e30])


def shape(d, rank_lo, rank_hi, lo=1, hi=7):
    """Dims without the batch axis (a rank counts the batch)."""
    r = d.integers(rank_lo, rank_hi)
    return [d.integers(lo, hi) for _ in range(r - 1)]


# -- the case ---------------------------------------------------------------------------------
@dataclass
class Node:
    id: str
    op: str
    ins: list                      # references: "x0", "n0", "n0.h"
    attrs: dict
    by_port: bool = False          # written as a mapping `in: {port: ref}` (the op's ports, in order)


@dataclass
class Case:
    batch: int
    inputs: dict                   # name -> dims without batch
    nodes: list
    tokens: dict = field(default_factory=dict)   # input name -> vocabulary (read by an embedding)

    def spec(self) -> str:
        lines = ["archviz: 1", "name: fuzz", "inputs:"]
        for k, s in self.inputs.items():
            lines.append(f"  {k}: {{shape: {_yaml(s)}}}")
        lines.append("nodes:")
        for n in self.nodes:
            body = ", ".join(f"{k}: {_yaml(v)}" for k, v in n.attrs.items())
            if n.by_port:
                from archviz.ops import registry
                ports = registry[n.op].input_ports
                ins = "{" + ", ".join(f"{p}: {r}" for p, r in zip(ports, n.ins)) + "}"
            else:
                ins = n.ins[0] if len(n.ins) == 1 else _yaml([Raw(r) for r in n.ins])
            lines.append(f"  - {{id: {n.id}, op: {n.op}, in: {ins}" + (f", {body}" if body else "") + "}")
        last = self.nodes[-1]
        ports = _parts_of(last)
        if ports:           # an op whose outputs are parts (split, chunk): each one an output
            lines.append("outputs: {" + ", ".join(f"p{p}: {last.id}.{p}" for p in ports) + "}")
        return "\n".join(lines) + "\n"

    def short(self) -> str:
        s = f"batch {self.batch}, " + ", ".join(f"{k} {s}" for k, s in self.inputs.items())
        for n in self.nodes:
            s += f" | {n.op}({', '.join(f'{k}={_yaml(v)}' for k, v in n.attrs.items())})"
        return s


# -- generators per op: (attrs, [input dims (without batch)]) or a list of nodes ------------------
IMAGE, SEQ, VEC = "image", "seq", "vec"


def g_conv2d(d):
    groups = d.choice([1, 1, 1, 2, 3]) if not rare(d, 20) else d.choice([0, -1])
    c = d.integers(1, 3) * max(groups, 1) if d.integers(0, 3) else d.integers(1, 6)
    a = {"out": d.integers(1, 3) * max(groups, 1) if d.integers(0, 3) else size(d),
         "kernel": pair(d, lambda: size(d, 1, 5))}
    if d.integers(0, 1):
        a["stride"] = pair(d, lambda: size(d, 1, 3))
    if d.integers(0, 1):
        a["padding"] = d.choice(["same", "valid"]) if rare(d, 4) else pair(d, lambda: d.integers(-1, 3))
    if d.integers(0, 2) == 0:
        a["dilation"] = pair(d, lambda: size(d, 1, 3))
    if groups != 1:
        a["groups"] = groups
    if d.integers(0, 1):
        a["bias"] = d.choice([True, False])
    rank = 4 if not rare(d, 12) else d.choice([3, 5])
    return a, [[c] + [d.integers(1, 12) for _ in range(rank - 2)]]


def g_conv1d(d):
    a, _ = g_conv2d(d)
    for k in ("kernel", "stride", "dilation"):
        if isinstance(a.get(k), list):
            a[k] = a[k][0]
    if isinstance(a.get("padding"), list):
        a["padding"] = a["padding"][0]
    c = d.integers(1, 3) * max(a.get("groups", 1), 1)
    rank = 3 if not rare(d, 12) else d.choice([2, 4])
    return a, [[c] + [d.integers(1, 14) for _ in range(rank - 2)]]


def g_conv_t(d):
    a, ins = g_conv2d(d)
    if a.get("padding") in ("same", "valid"):
        del a["padding"]
    if d.integers(0, 2) == 0:
        a["output_padding"] = pair(d, lambda: d.integers(0, 3))
    ins[0][1:] = [d.integers(1, 8) for _ in ins[0][1:]]
    return a, ins


def g_pool(max_pool):
    def g(d):
        a = {"kernel": pair(d, lambda: size(d, 1, 5))}
        if d.integers(0, 1):
            a["stride"] = pair(d, lambda: size(d, 1, 4))
        if d.integers(0, 1):
            a["padding"] = pair(d, lambda: d.integers(-1, 3))
        if d.integers(0, 1):
            a["ceil_mode"] = d.choice([True, False])
        if max_pool and d.integers(0, 2) == 0:
            a["dilation"] = pair(d, lambda: size(d, 1, 3))
        if not max_pool and d.integers(0, 2) == 0:
            a["count_include_pad"] = d.choice([True, False])
        rank = 4 if not rare(d, 10) else d.choice([3, 5])
        return a, [[d.integers(1, 3)] + [d.integers(1, 13) for _ in range(rank - 2)]]
    return g


def g_adaptive(d):
    rank = 4 if not rare(d, 10) else d.choice([3, 5])
    return {"size": pair(d, lambda: size(d, 1, 9))}, [shape(d, rank, rank, 1, 10)]


def g_gap(d):
    return {}, [shape(d, 2, 5, 1, 6)]


def g_upsample(d):
    a = {"mode": d.choice(["nearest", "bilinear"])} if d.integers(0, 2) else {}
    which = d.integers(0, 19)
    if which < 7 or which == 19:         # 19: both (torch refuses); 18: neither (refused too)
        a["size"] = pair(d, lambda: size(d, 1, 20))
    if which >= 7 and which != 18:
        a["scale"] = pair(d, lambda: d.choice([2, 3, 0.5, 1.5, 2.25, Fraction(3, 2), Fraction(15, 11),
                                               Fraction(1, 3), Fraction(7, 5), 1, Raw(".inf"), 0, -1]))
    if d.integers(0, 2) == 0:
        a["align_corners"] = d.choice([True, False])
    rank = 4 if not rare(d, 10) else d.choice([3, 5])
    x = shape(d, rank, rank, 1, 12)
    if rare(d, 5):                       # to the size of a second input (scale and size left out)
        if d.integers(0, 3):
            a.pop("size", None), a.pop("scale", None)
        return a, [x, shape(d, 4, 4, 1, 12) if not rare(d, 8) else shape(d, 3, 5, 1, 6)]
    return a, [x]


def g_bn(rank_lo, rank_hi):
    def g(d):
        a = {}
        if d.integers(0, 2) == 0:
            a["track_running_stats"] = d.choice([True, False])
        if d.integers(0, 2) == 0:
            a["affine"] = d.choice([True, False])
        if d.integers(0, 3) == 0:
            a["eps"] = number(d, [1e-5, 1e-3, 0.1])
        if d.integers(0, 3) == 0:
            a["momentum"] = number(d, [0.1, 0.01, 0.9])
        r = d.integers(rank_lo, rank_hi) if not rare(d, 10) else d.choice([2, 3, 4, 5])
        return a, [shape(d, r, r, 1, 4)]
    return g


def g_layernorm(d):
    r = d.integers(2, 4)
    a = {"dims": d.integers(1, r + 1)} if d.integers(0, 3) else {}
    if d.integers(0, 2) == 0:
        a["elementwise_affine"] = d.choice([True, False])
    if d.integers(0, 2) == 0:
        a["bias"] = d.choice([True, False])
    if rare(d, 5):
        a["eps"] = number(d, [1e-5, 1e-6])
    return a, [shape(d, r, r, 1, 6)]


def g_rmsnorm(d):
    r = d.integers(2, 4)
    a = {"dims": d.integers(1, r + 1)} if d.integers(0, 3) else {}
    if d.integers(0, 2) == 0:
        a["elementwise_affine"] = d.choice([True, False])
    if d.integers(0, 2) == 0:
        a["eps"] = number(d, [1e-5, 1e-6])
    return a, [shape(d, r, r, 1, 6)]


def g_lrn(d):
    a = {"size": size(d, 1, 6)} if d.integers(0, 1) else {}
    for k, typical in (("alpha", [1e-4, 0.001]), ("beta", [0.75, 0.5]), ("k", [2.0, 1.0])):
        if rare(d, 4):
            a[k] = number(d, typical)
    return a, [shape(d, 2, 5, 1, 6)]


def g_act(attrs=None):
    def g(d):
        a = {}
        for k, gen in (attrs or {}).items():
            if d.integers(0, 1):
                a[k] = gen(d)
        return a, [shape(d, 1, 5, 1, 5)]
    return g


def g_softmax(d):
    return ({"dim": d.integers(-5, 4)} if d.integers(0, 3) else {}), [shape(d, 1, 4, 1, 5)]


def g_dropout(d):
    return ({"p": number(d, [0.0, 0.1, 0.5, 1.0, 1.5, -0.1])} if d.integers(0, 3) else {}), [shape(d, 1, 3, 1, 5)]


def g_flatten(d):
    a = {}
    if d.integers(0, 3):
        a["start_dim"] = d.integers(-6, 5)
    if d.integers(0, 2):
        a["end_dim"] = d.integers(-6, 5)
    return a, [shape(d, 1, 5, 1, 4)]


def g_linear(d):
    a = {"out": size(d, 1, 8)}
    if d.integers(0, 2) == 0:
        a["bias"] = d.choice([True, False])
    return a, [shape(d, 1, 4, 1, 6)]


def g_pad(d):
    r = d.integers(1, 5)
    mode = d.choice(["constant", "constant", "reflect", "replicate"])
    n = d.integers(1, 3) if not rare(d, 5) else d.integers(0, r + 1)
    pads = [d.integers(-3, 4) for _ in range(2 * n + (1 if rare(d, 15) else 0))]
    a = {"pads": pads}
    if mode != "constant" or d.integers(0, 2) == 0:
        a["mode"] = mode
    if mode == "constant" and rare(d, 4):
        a["value"] = number(d, [0, 1.5, -2])
    return a, [shape(d, r, r, 1, 5)]


def g_center_crop(d):
    r = d.integers(3, 5) if not rare(d, 10) else 2
    x = shape(d, r, r, 1, 9)
    ref = [d.integers(1, 4)] + [d.integers(1, 9) for _ in x[1:]] if x else []
    if rare(d, 10):
        ref = ref + [2]
    return {}, [x, ref]


def g_broadcast(d):
    x = shape(d, 2, 4, 1, 3)
    ins = [x]
    for _ in range(d.integers(1, 2)):
        r = d.integers(0, len(x))
        ins.append([d.choice([v, 1, 1, 2]) for v in x[len(x) - r:]])
    return {}, ins


def g_concat(d):
    x = shape(d, 2, 4, 1, 4)
    ins = []
    for _ in range(d.integers(2, 3)):
        ins.append([v if d.integers(0, 4) else d.integers(1, 4) for v in x] if d.integers(0, 1) else list(x))
    if rare(d, 6):
        ins[-1] = shape(d, 1, 4, 1, 4)
    return ({"axis": d.integers(-5, 4)} if d.integers(0, 3) else {}), ins


def g_embedding(d):
    a = {"num": size(d, 1, 20), "dim": size(d, 1, 6)}
    if d.integers(0, 2) == 0:
        a["padding_idx"] = d.integers(-25, 22)
    return a, [shape(d, 1, 3, 1, 5)]


def g_select_step(d):
    x = shape(d, 1, 4, 1, 5)
    return {"index": d.integers(-6, 5), **({"axis": d.integers(-4, 3)} if d.integers(0, 2) == 0 else {})}, [x]


def g_reverse(d):
    return ({"axis": d.integers(-4, 3)} if d.integers(0, 2) == 0 else {}), [shape(d, 1, 4, 1, 5)]


def g_last_step(d):
    return {}, [shape(d, 1, 4, 1, 5)]


def g_recurrent(kind):
    def attrs(d):
        a = {"out": size(d, 1, 6)}
        if d.integers(0, 1):
            a["num_layers"] = size(d, 1, 3)
        if d.integers(0, 1):
            a["bidirectional"] = d.choice([True, False])
        if d.integers(0, 2) == 0:
            a["bias"] = d.choice([True, False])
        if d.integers(0, 2) == 0:
            a["dropout"] = number(d, [0.0, 0.5, 1.0, 1.5, -0.1])
        if kind == "rnn" and d.integers(0, 2) == 0:
            a["nonlinearity"] = d.choice(["tanh", "relu"])
        if kind == "lstm" and d.integers(0, 2) == 0:
            a["proj_size"] = d.integers(0, 7)
        return a

    def g(d):
        a = attrs(d)
        r = 3 if not rare(d, 8) else d.choice([2, 4])
        x = shape(d, r, r, 1, 5)
        if rare(d, 4) and r == 3:
            # an encoder's final state as the initial state of a decoder (torch's layout (L·D, N, h))
            b = attrs(d)
            for k in ("num_layers", "bidirectional", "out", "proj_size"):
                if k in a and d.integers(0, 3):
                    b[k] = a[k]
                elif k in b and d.integers(0, 1):
                    del b[k]
            ins2 = ["x1", "n0.h"] + (["n0.c"] if kind == "lstm" else [])
            return [(kind, ["x0"], a), (kind, ins2, b)], [x, shape(d, 3, 3, 1, 5)]
        return a, [x]
    return g


def g_cell(kind):
    def g(d):
        a = {"out": size(d, 1, 6)}
        if d.integers(0, 2) == 0:
            a["bias"] = d.choice([True, False])
        if kind == "rnn" and d.integers(0, 2) == 0:
            a["nonlinearity"] = d.choice(["tanh", "relu"])
        r = 2 if not rare(d, 8) else d.choice([1, 3])
        x = shape(d, r, r, 1, 5)
        ins = [x]
        if d.integers(0, 1):
            good = [max(a["out"], 1)]
            for _ in range(2 if kind == "lstm" and d.integers(0, 5) else 1):
                ins.append(good if d.integers(0, 3) else [good[0] + d.choice([1, -1, 2])])
        return a, ins
    return g


def g_attention(d):
    score = d.choice(["dot", "scaled_dot", "general", "additive", "concat"])
    a = {"score": score} if score != "dot" or d.integers(0, 1) else {}
    if d.integers(0, 3) == 0 or (score in ("additive", "concat") and d.integers(0, 1)):
        a["dim"] = size(d, 1, 6)
    if d.integers(0, 2) == 0:
        a["bias"] = d.choice([True, False])
    tk, dk = d.integers(1, 4), d.integers(1, 5)
    dq = dk if d.integers(0, 1) else d.integers(1, 5)
    q = [dq] if d.integers(0, 2) == 0 else [d.integers(1, 4), dq]
    k = [tk, dk] if not rare(d, 10) else [dk]
    ins = [q, k]
    if d.integers(0, 1):
        ins.append([tk if d.integers(0, 4) else tk + 1, d.integers(1, 5)])
    return a, ins


def g_mha(d):
    heads = size(d, 1, 4)
    e = max(heads, 1) * d.integers(1, 3) if d.integers(0, 4) else d.integers(1, 7)
    a = {"heads": heads}
    for k in ("bias", "average_weights"):
        if d.integers(0, 2) == 0:
            a[k] = d.choice([True, False])
    if d.integers(0, 3) == 0:
        a["dropout"] = number(d, [0.0, 0.1, 1.0, 1.5])
    _mask(d, a)
    r = 3 if not rare(d, 8) else 2
    ins = [shape(d, r, r, 1, 4)[:-1] + [e]]
    if d.integers(0, 1):
        tk = d.integers(1, 4)
        ins.append([tk, e if d.integers(0, 1) else d.integers(1, 6)])
        if d.integers(0, 1):
            ins.append([tk if d.integers(0, 5) else tk + 1, d.integers(1, 6)])
    return a, ins


def _mask(d, a):
    if d.integers(0, 2) == 0:
        a["mask"] = d.choice(["causal", "none"])
        if d.integers(0, 2) == 0:
            a["window"] = size(d, 1, 4)


def g_sdpa(d):
    kv = d.integers(1, 3)
    hq = max(kv, 1) * d.integers(1, 3) if not rare(d, 6) else d.integers(1, 5)
    n, t, s, e = d.integers(1, 2), d.integers(1, 6), d.integers(1, 6), d.integers(1, 4)
    a = {}
    _mask(d, a)
    if d.integers(0, 3) == 0:
        a["scale"] = number(d, [0.5, 0.125])
    ins = [[hq, t, e], [kv, s, e if not rare(d, 8) else e + 1], [kv, s, d.integers(1, 4)]]
    if rare(d, 8):
        ins[0] = ins[0][1:]
    return a, ins


def g_rope(d):
    a = {}
    if d.integers(0, 2) == 0:
        a["fraction"] = d.choice([1.0, 0.5, 0.25, Fraction(1, 3), 0.0])
    if d.integers(0, 3) == 0:
        a["base"] = number(d, [10000.0, 500000.0])
    return a, [[d.integers(1, 3), d.integers(1, 6), d.choice([2, 4, 6, 8, 12, 3])]]


def g_moe(d):
    """A mixture of experts over linear experts: E and top_k now and then out of range, an
    expert that does not map d back to d now and then."""
    f = d.integers(1, 5)
    e = size(d, 1, 4)
    k = d.integers(1, max(e, 1)) if not rare(d, 6) else d.choice([0, e + 1, -1])
    expert = {"op": "linear", "out": f if not rare(d, 8) else f + 1}
    if d.integers(0, 2) == 0:
        expert["bias"] = False
    a = {"experts": e, "top_k": k, "expert": expert}
    if d.integers(0, 2) == 0:
        a["renormalize"] = False
    return a, [shape(d, 2, 3) + [f]]


def g_attention_gru(d):
    a = {"out": size(d, 1, 5)}
    if d.integers(0, 2) == 0:
        a["dim"] = size(d, 1, 5)
    for k in ("bias", "score_bias"):
        if d.integers(0, 2) == 0:
            a[k] = d.choice([True, False])
    x = [d.integers(1, 4), d.integers(1, 5)]
    mem = [d.integers(1, 5), d.integers(1, 5)] if not rare(d, 10) else [d.integers(1, 5)]
    ins = [x, mem]
    if d.integers(0, 1):
        ins.append([max(a["out"], 1) if d.integers(0, 4) else d.integers(1, 6)])
    return a, ins


def g_permute(d):
    x = shape(d, 2, 5, 1, 4)
    r = len(x) + 1
    rest = list(range(1, r))
    for i in range(len(rest) - 1, 0, -1):            # a shuffle drawn through d
        j = d.integers(0, i)
        rest[i], rest[j] = rest[j], rest[i]
    dims = [0] + rest
    if rare(d, 5):                                   # invalid or batch-moving now and then
        dims = [d.integers(-r - 1, r) for _ in range(d.integers(r - 1, r + 1))]
    return {"dims": dims}, [x]


def g_transpose(d):
    x = shape(d, 2, 5, 1, 4)
    r = len(x) + 1
    return {"dim0": d.integers(-r, r - 1) if rare(d, 4) else d.integers(1, r - 1),
            "dim1": d.integers(-r - 1, r) if rare(d, 6) else d.integers(1, r - 1)}, [x]


def g_reshape(d):
    x = shape(d, 2, 5, 1, 4)
    n = 1
    for v in x:
        n *= v
    if rare(d, 5):
        new = [d.integers(-1, 6) for _ in range(d.integers(1, 3))]
    else:
        divs = [k for k in range(1, n + 1) if n % k == 0]
        k = d.choice(divs)
        new = [k, n // k] if d.integers(0, 1) else [k, -1]
    return {"shape": new}, [x]


def g_reduce(d):
    x = shape(d, 2, 5, 1, 4)
    r = len(x) + 1
    dims = [d.integers(1, r - 1) for _ in range(d.integers(1, 2))]
    if rare(d, 5):
        dims = [d.integers(-r - 1, r) for _ in range(d.integers(1, 2))]
    a = {"dims": dims if len(dims) > 1 or d.integers(0, 1) else dims[0]}
    if d.integers(0, 1):
        a["keepdim"] = d.choice([True, False])
    return a, [x]


def g_matmul(d):
    batch = shape(d, 1, 3, 1, 3)
    n, k, m = d.integers(1, 4), d.integers(1, 4), d.integers(1, 4)
    a = batch + [n, k]
    b = [d.choice([v, 1]) for v in batch] + [k if not rare(d, 6) else k + 1, m]
    if rare(d, 8):
        a = a[-2:] if d.integers(0, 1) else a[-1:]
    return {}, [a, b]


def g_own(inits):
    def g(d):
        a = {"shape": [size(d, 1, 6) for _ in range(d.integers(1, 3))]}
        if d.integers(0, 1):
            a["init"] = d.choice(inits)
        return a, [shape(d, 1, 4, 1, 5)]
    return g



def _cut_dim(d, r):
    return d.integers(1, r - 1) if not rare(d, 6) else d.integers(-r - 1, r)


def g_split(d):
    x = shape(d, 2, 5, 1, 7)
    r = len(x) + 1
    dim = _cut_dim(d, r)
    n = x[dim % r - 1] if -r <= dim < r and dim % r else x[0]
    cuts = sorted(d.integers(1, max(n - 1, 1)) for _ in range(d.integers(0, 2)))
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    if rare(d, 5):                                   # not adding up, or an empty part
        sizes[-1] += d.choice([-1, 1])
    return {"sizes": sizes, "dim": dim}, [x]


def g_chunk(d):
    x = shape(d, 2, 5, 1, 7)
    r = len(x) + 1
    return {"chunks": size(d, 1, 4), "dim": _cut_dim(d, r)}, [x]


def g_slice(d):
    x = shape(d, 2, 5, 1, 7)
    r = len(x) + 1
    a = {"dim": _cut_dim(d, r)}
    if d.integers(0, 2):
        a["start"] = d.integers(-8, 7)
    if d.integers(0, 2):
        a["end"] = d.integers(-8, 8)
    if d.integers(0, 2):
        a["step"] = size(d, 1, 3)
    return a, [x]


def g_channel_shuffle(d):
    g = size(d, 1, 4)
    c = max(g, 1) * d.integers(1, 3) if not rare(d, 5) else d.integers(1, 7)
    return {"groups": g}, [[c] + shape(d, 2, 4, 1, 5)]


def g_pixel(unshuffle: bool):
    def g(d):
        r = size(d, 1, 3)
        k = max(r, 1)
        rank = 4 if not rare(d, 6) else d.choice([3, 5])
        if unshuffle:
            dims = [d.integers(1, 3)] + [k * d.integers(1, 3) if not rare(d, 6) else d.integers(1, 5) for _ in range(2)]
        else:
            dims = [k * k * d.integers(1, 2) if not rare(d, 6) else d.integers(1, 9), d.integers(1, 4), d.integers(1, 4)]
        return {"factor": r}, [[d.integers(1, 2)] * (rank - 4) + dims if rank >= 4 else dims]
    return g


GENERATORS = {
    "parameter": g_own(["zeros", "ones", "normal"]), "constant": g_own(["sinusoid", "zeros", "ones"]),
    "permute": g_permute, "transpose": g_transpose, "reshape": g_reshape,
    "mean": g_reduce, "sum": g_reduce, "max": g_reduce, "matmul": g_matmul,
    "split": g_split, "chunk": g_chunk, "slice": g_slice, "channel_shuffle": g_channel_shuffle,
    "pixel_shuffle": g_pixel(False), "pixel_unshuffle": g_pixel(True),
    "scale": g_act({"by": lambda d: number(d, [0.5, 0.125, 2.0])}),
    "relu6": g_act(), "hardsigmoid": g_act(), "mish": g_act(),
    "softplus": g_act({"beta": lambda d: number(d, [1.0, 2.0, 0.5]), "threshold": lambda d: number(d, [20.0, 1.0])}),
    "hardtanh": g_act({"min_val": lambda d: number(d, [-1.0, 0.0, -2.0]), "max_val": lambda d: number(d, [1.0, 6.0, -3.0])}),
    "stochastic_depth": lambda d: ({"p": number(d, [0.1, 0.0, 0.5, 1.0, 1.5]),
                                    **({"mode": d.choice(["row", "batch"])} if d.integers(0, 1) else {})},
                                   [shape(d, 1, 5, 1, 5)]),
    "conv2d": g_conv2d, "conv1d": g_conv1d, "conv_transpose2d": g_conv_t,
    "maxpool2d": g_pool(True), "avgpool2d": g_pool(False), "adaptive_avgpool2d": g_adaptive,
    "global_avgpool": g_gap, "upsample": g_upsample,
    "batchnorm2d": g_bn(4, 4), "batchnorm1d": g_bn(2, 3), "layernorm": g_layernorm, "rmsnorm": g_rmsnorm, "lrn": g_lrn,
    "relu": g_act(), "sigmoid": g_act(), "tanh": g_act(), "silu": g_act(), "hardswish": g_act(),
    "identity": g_act(),
    "leaky_relu": g_act({"negative_slope": lambda d: number(d, [0.01, 0.2, -1.0])}),
    "elu": g_act({"alpha": lambda d: number(d, [1.0, 0.5])}),
    "gelu": g_act({"approximate": lambda d: d.choice(["none", "tanh"])}),
    "softmax": g_softmax, "dropout": g_dropout,
    "flatten": g_flatten, "linear": g_linear, "pad": g_pad, "center_crop": g_center_crop,
    "add": g_broadcast, "mul": g_broadcast, "concat": g_concat,
    "embedding": g_embedding, "select_step": g_select_step, "reverse": g_reverse, "last_step": g_last_step,
    "rnn": g_recurrent("rnn"), "gru": g_recurrent("gru"), "lstm": g_recurrent("lstm"),
    "rnn_cell": g_cell("rnn"), "gru_cell": g_cell("gru"), "lstm_cell": g_cell("lstm"),
    "attention": g_attention, "multihead_attention": g_mha, "attention_gru": g_attention_gru,
    "sdpa": g_sdpa, "rope": g_rope, "moe": g_moe,
}

# what may follow in a chain, by the kind of tensor an op usually makes
KIND_OF = {**{op: IMAGE for op in ("conv2d", "conv_transpose2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d",
                                    "upsample", "batchnorm2d", "lrn", "pad", "center_crop")},
           **{op: SEQ for op in ("conv1d", "rnn", "gru", "lstm", "embedding", "reverse", "attention_gru",
                                 "multihead_attention", "attention")},
           **{op: VEC for op in ("linear", "flatten", "global_avgpool", "rnn_cell", "gru_cell", "lstm_cell",
                                 "last_step", "select_step", "batchnorm1d")}}
FOLLOW = {
    IMAGE: ["conv2d", "maxpool2d", "avgpool2d", "batchnorm2d", "relu", "upsample", "conv_transpose2d",
            "adaptive_avgpool2d", "global_avgpool", "flatten", "pad", "lrn", "layernorm", "softmax", "dropout"],
    SEQ: ["rnn", "gru", "lstm", "linear", "layernorm", "tanh", "last_step", "select_step", "reverse",
          "multihead_attention", "conv1d", "softmax", "batchnorm1d"],
    VEC: ["linear", "relu", "batchnorm1d", "layernorm", "dropout", "rnn_cell", "gru_cell", "lstm_cell", "softmax",
          "sigmoid"],
}
OPS = sorted(GENERATORS)


def generate(d, op: str | None = None) -> Case:
    """One case: an op (uniform over the registry's ops), its inputs, and now and then one or
    two single-input ops after it."""
    op = op or d.choice(OPS)
    made, dims = GENERATORS[op](d)
    batch = d.integers(1, 3)
    inputs = {f"x{i}": s for i, s in enumerate(dims)}
    if isinstance(made, list):           # a generator that made several nodes
        nodes = [Node(f"n{i}", o, ins, a) for i, (o, ins, a) in enumerate(made)]
    else:
        nodes = [Node("n0", op, list(inputs), made)]
    from archviz.ops import registry
    for n in nodes:                      # named ports (the first ones, in order) now and then
        ports = registry[n.op].input_ports
        if ports and len(n.ins) <= len(ports) and d.integers(0, 2) == 0:
            n.by_port = True
    kind = KIND_OF.get(op, None)
    parts = "out" not in registry[op].output_ports(None)      # a split's parts: no chain after it
    for _ in range(d.integers(0, 2) if d.integers(0, 2) == 0 and not parts else 0):
        nxt = d.choice(FOLLOW.get(kind) or FOLLOW[VEC if len(dims[0]) < 2 else IMAGE])
        a, _ = GENERATORS[nxt](d)
        if isinstance(a, list):
            a = a[0][2]
        nodes.append(Node(f"n{len(nodes)}", nxt, [nodes[-1].id], a))
        kind = KIND_OF.get(nxt, kind)
    case = Case(batch, inputs, nodes)
    for n in nodes:
        if n.op == "embedding" and n.ins[0] in inputs:
            case.tokens[n.ins[0]] = n.attrs["num"]
    return case


def _parts_of(n) -> list:
    """The output ports of a node whose op has no 'out' port (a split's parts); [] otherwise."""
    from archviz.ops import registry
    op = registry[n.op]
    if "out" in op.output_ports(None):
        return []
    try:
        return list(op.output_ports(op.attrs_of(n.attrs)))
    except Exception:
        return ["0"]


# -- the judge -----------------------------------------------------------------------------------
@dataclass
class Verdict:
    agree: bool
    klass: str                 # "both run", "both refuse", "deliberate: …", or the disagreement
    detail: str = ""
    uncaught: str | None = None     # an exception archviz let escape (never acceptable)
    seconds: float = 0.0


# Deliberate refusals: (name, predicate(op, attrs, input shapes torch saw), marker the error must say)
def _dims_reach_batch(op, a, ins):
    return op in ("layernorm", "rmsnorm") and a.get("dims", 1) >= len(ins[0])


def _unbatched(op, a, ins):
    """torch reads an input with one axis fewer than the batched layout as one example."""
    r = len(ins[0])
    return (op in ("rnn", "gru", "lstm", "conv1d", "multihead_attention") and r == 2) or \
        (op == "sdpa" and r == 3) or \
        (op in ("rnn_cell", "gru_cell", "lstm_cell", "linear") and r == 1) or \
        (op in ("conv2d", "conv_transpose2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "pixel_shuffle",
                "pixel_unshuffle") and r == 3)


def _unused_attention_attr(op, a, ins):
    """archviz's own `attention` op (no torch layer): an attribute its score has no use for."""
    score = a.get("score", "dot")
    return op == "attention" and ((a.get("dim") is not None and score not in ("additive", "concat"))
                                  or (a.get("bias") and score not in ("general", "additive", "concat")))


def _zero_d(op, a, ins):
    return op == "select_step" and len(ins[0]) == 1


def _upsample_not_2d(op, a, ins):
    return op == "upsample" and len(ins[0]) in (3, 5)


def _adaptive_shortcut(op, a, ins):
    size = a.get("size")
    return op == "adaptive_avgpool2d" and len(ins[0]) not in (3, 4) and size in (1, [1, 1])


def _norm_axes(v, r):
    vs = v if isinstance(v, list) else [v]
    return [x % r for x in vs if -r <= x < r]


def _moves_batch(op, a, ins):
    """permute / transpose that moves axis 0, the batch (torch runs it)."""
    r = len(ins[0])
    if op == "permute":
        dims = _norm_axes(a["dims"], r)
        return len(dims) == len(a["dims"]) == r and sorted(dims) == list(range(r)) and dims[0] != 0
    if op == "transpose":
        d0, d1 = _norm_axes(a["dim0"], r), _norm_axes(a["dim1"], r)
        return bool(d0 and d1) and 0 in (d0[0], d1[0]) and d0 != d1
    return False


def _reduces_batch(op, a, ins):
    return op in ("mean", "sum", "max") and 0 in _norm_axes(a["dims"], len(ins[0]))


def _matmul_not_batched(op, a, ins):
    return op == "matmul" and any(len(s) < 3 for s in ins)


def _cuts_batch(op, a, ins):
    return op in ("split", "chunk", "slice") and _norm_axes(a.get("dim", 1), len(ins[0])) == [0]


def _chunk_fewer(op, a, ins):
    """torch.chunk returns fewer parts than asked where ⌈n / chunks⌉ parts cover the axis."""
    if op != "chunk" or not isinstance(a.get("chunks"), int) or a["chunks"] < 1:
        return False
    ax = _norm_axes(a.get("dim", 1), len(ins[0]))
    if not ax:
        return False
    n = ins[0][ax[0]]
    step = -(-n // a["chunks"])
    return -(-n // step) != a["chunks"]


DELIBERATE = [
    ("permute or transpose that moves the batch axis", _moves_batch, "moves the batch axis"),
    ("a reduction over the batch axis", _reduces_batch, "batch axis"),
    ("matmul of an input without a batch of matrices", _matmul_not_batched, "batch axis and a matrix"),
    ("a split, chunk or slice along the batch axis", _cuts_batch, "batch axis"),
    ("a chunk count torch would silently lower (fewer parts than asked)", _chunk_fewer, "refused on purpose"),
    ("a 0-D result (no batch axis left)", _zero_d, "0-D"),
    ("layernorm or rmsnorm over the batch axis", _dims_reach_batch, "batch axis"),
    ("an unbatched input (axis 0 is always the batch)", _unbatched, "unbatched"),
    ("an attention attribute its score does not use", _unused_attention_attr, ("score '", "must be >= 1")),
    ("upsample of a 3-D or 5-D input (not supported)", _upsample_not_2d, "does not support"),
    ("adaptive pooling of another rank to size 1 (torch's shortcut)", _adaptive_shortcut, "shortcut"),
]
EMPTY = "an empty tensor (torch returns one; archviz refuses a zero-size axis)"


def _plain(v):
    if isinstance(v, Fraction):
        return float(v)
    if isinstance(v, Raw):
        return float(str(v).replace(".inf", "inf").replace(".nan", "nan"))
    if isinstance(v, list):
        return tuple(_plain(x) for x in v)
    return v


def lenient_attrs(op, raw: dict):
    """The attributes as a torch user passes them: defaults filled in, ints widened to the
    op's per-axis tuples, fractions as floats — no range checks (torch's answer decides)."""
    from archviz.ops.base import REQUIRED, Attrs
    a = Attrs()
    for k, attr in op.attrs.items():
        v = _plain(raw.get(k, attr.default))
        if v is REQUIRED:
            v = None
        n = {"int2": 2, "pos_int2": 2, "int2_opt": 2, "padding2": 2, "scale2": 2, "int1": 1, "padding1": 1}.get(attr.type)
        if n and v is not None and not isinstance(v, (tuple, str)):
            v = (v,) * n
        a[k] = v
    return a


# Inputs on which torch itself crashes the process (a segmentation fault, torch 2.x): the
# reference is not run on them (archviz's answer is still checked: it must not crash either).
def _lstm_cell_unbatched_with_batched_state(op, ins):
    return op == "lstm_cell" and len(ins[0]) == 1 and any(len(s) != 1 for s in ins[1:])


TORCH_CRASHES = [
    ("nn.LSTMCell on a 1-D input with 2-D states segfaults", _lstm_cell_unbatched_with_batched_state),
]


class _TorchCrash(Exception):
    pass


class _TorchRefused(Exception):
    def __init__(self, node_index, why, empty=False):
        super().__init__(why)
        self.node_index, self.why, self.empty = node_index, why, empty


def run_torch(case: Case, train: bool = False) -> dict:
    """Every node through its independent torch reference, on real tensors (in eval mode, or
    in training mode): {node id: (input shapes, {port: shape}, params, buffers, flops)};
    raises _TorchRefused."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from archviz.ops import registry

    from tests.ops.torch_ref import REFS
    torch.manual_seed(0)
    env = {}
    for name, dims in case.inputs.items():
        full = (case.batch, *dims)
        if name in case.tokens:
            if case.tokens[name] <= 0:
                raise _TorchRefused(0, f"an embedding of {case.tokens[name]} entries cannot look up any token")
            env[name] = torch.randint(0, case.tokens[name], full)
        else:
            env[name] = torch.randn(full)
    out = {}
    for i, n in enumerate(case.nodes):
        op = registry[n.op]
        xs = [env[r] for r in n.ins]
        in_shapes = [tuple(x.shape) for x in xs]
        for why, pred in TORCH_CRASHES:
            if pred(n.op, in_shapes):
                raise _TorchCrash(why)
        try:
            a = lenient_attrs(op, n.attrs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn, _ = REFS[n.op](a, in_shapes)
                if isinstance(fn, nn.Module):
                    fn.train(train)
                with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as fc:
                    y = fn(*xs)
        except Exception as e:      # torch's refusals come as many exception types
            raise _TorchRefused(i, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        ports = y if isinstance(y, dict) else {"out": y}
        shapes = {p: tuple(t.shape) for p, t in ports.items()}
        if any(s < 1 for sh in shapes.values() for s in sh):
            raise _TorchRefused(i, f"an empty output {shapes}", empty=True)
        if isinstance(fn, nn.Module) and any(0 in t.shape for t in fn.parameters()):
            raise _TorchRefused(i, "an empty weight", empty=True)
        params = sum(p.numel() for p in fn.parameters()) if isinstance(fn, nn.Module) else 0
        bufs = sum(b.numel() for b in fn.buffers()) if isinstance(fn, nn.Module) else 0
        out[n.id] = (in_shapes, shapes, params, bufs, fc.get_total_flops())
        for p, t in ports.items():
            env[f"{n.id}.{p}"] = t.detach()
        if f"{n.id}.out" in env:
            env[n.id] = env[f"{n.id}.out"]
    return out


_NODE = re.compile(r"'(n\d+)'")


def _error_nodes(e) -> list[int]:
    from archviz.errors import MultipleErrors
    errs = e.errors if isinstance(e, MultipleErrors) else [e]
    found = set()
    for x in errs:
        m = _NODE.search(x.message)
        if m:
            found.add(int(m.group(1)[1:]))
    return sorted(found)


def _is_schema(e) -> bool:
    from archviz.errors import MultipleErrors, SpecError
    errs = e.errors if isinstance(e, MultipleErrors) else [e]
    return all(isinstance(x, SpecError) for x in errs)


def _text(e) -> str:
    from archviz.errors import MultipleErrors
    errs = e.errors if isinstance(e, MultipleErrors) else [e]
    return " | ".join(f"{x.message}" + (f" (help: {x.hint})" if x.hint else "") for x in errs)


def load_case(case: Case, directory: str):
    import os

    import archviz
    path = os.path.join(directory, "case.yaml")
    with open(path, "w") as f:
        f.write(case.spec())
    return archviz.load(path, batch=case.batch)


def judge(case: Case, directory: str, lowering: bool = True) -> Verdict:
    """Compare archviz with torch on one case (see the module docstring)."""
    t0 = time.perf_counter()
    v = _judge(case, directory, lowering)
    v.seconds = time.perf_counter() - t0
    return v


def _judge(case, directory, lowering):
    from archviz.errors import ArchvizError
    from archviz.ir import meta as M

    # archviz
    model = err = None
    try:
        model = load_case(case, directory)
    except ArchvizError as e:
        err = e
    except Exception as e:          # noqa: BLE001 — the point: nothing else may escape
        return Verdict(False, "uncaught exception", case.short(), uncaught=f"load: {type(e).__name__}: {e}")

    # torch
    try:
        ref = run_torch(case)
        refused = None
    except _TorchRefused as r:
        ref, refused = None, r
    except _TorchCrash as c:
        return Verdict(True, f"not compared: {c}", "archviz " + ("refuses: " + _text(err) if err else "accepts"))

    if refused is not None:
        j = refused.node_index
        if err is None:
            return Verdict(False, "archviz accepts, torch raises", f"{case.nodes[j].op} at n{j}: {refused.why}")
        nodes = _error_nodes(err)
        if not nodes or j in nodes or (_is_schema(err) and min(nodes) > j):
            return Verdict(True, "both refuse" if not refused.empty else f"deliberate: {EMPTY}")
        k = min(nodes)
        if k > j:
            return Verdict(False, "archviz accepts, torch raises",
                           f"{case.nodes[j].op} at n{j}: {refused.why} (archviz refused n{k} later: {_text(err)})")
        # archviz refused n{k} (k < j), which torch ran: judged below as a refusal
        return _refusal(case, err, k, _torch_inputs(case, k))

    if err is not None:
        nodes = _error_nodes(err)
        k = min(nodes) if nodes else 0
        return _refusal(case, err, k, ref[case.nodes[k].id][0])

    # both run: compare every number
    problems = []
    for n in case.nodes:
        node = model.graph.nodes[n.id]
        in_shapes, shapes, params, bufs, flops = ref[n.id]
        if node.meta[M.SHAPES] != shapes:
            problems.append(("shape differs", f"{n.id} {n.op}: archviz {node.meta[M.SHAPES]} vs torch {shapes}"))
        p = node.meta[M.PARAMS]
        if p.total != params or p.buffers != bufs:
            problems.append(("params differ", f"{n.id} {n.op}: archviz {p.total}+{p.buffers} buffers vs torch "
                                              f"{params}+{bufs}"))
        if 2 * node.meta[M.MACS] != flops:
            problems.append(("MACs differ from torch's FLOP count",
                             f"{n.id} {n.op}: 2·MACs {2 * node.meta[M.MACS]} vs FlopCounterMode {flops}"))
    if problems:
        return Verdict(False, problems[0][0], "; ".join(p for _, p in problems))
    bad = _training(case, model)
    if bad:
        return bad
    if lowering:
        bad = _lowering_and_views(model)
        if bad:
            return bad
    return Verdict(True, "both run")


def _training(case, model) -> Verdict | None:
    """Where torch runs a case at inference, archviz's training check (train-smoke, bench
    --train) must refuse exactly where torch's training mode raises."""
    from archviz.backends.torch.bench import check_trainable
    from archviz.errors import LoweringError
    try:
        run_torch(case, train=True)
        torch_trains, why = True, ""
    except _TorchRefused as r:
        torch_trains, why = False, r.why
    except _TorchCrash:
        return None
    try:
        check_trainable(model)
        ours, text = True, ""
    except LoweringError as e:
        ours, text = False, e.message
    if torch_trains == ours:
        return None
    if ours:
        return Verdict(False, "training: archviz says trainable, torch raises", why)
    return Verdict(False, "training: archviz refuses, torch trains", text)


def _torch_inputs(case, k):
    """The input shapes node k would get in torch (nodes before k ran in torch)."""
    import copy
    prefix = copy.copy(case)
    prefix.nodes = case.nodes[:k + 1]
    try:
        return run_torch(prefix)[case.nodes[k].id][0]
    except (_TorchRefused, _TorchCrash):
        return None


def _refusal(case, err, k, in_shapes) -> Verdict:
    """archviz refused node k, which torch ran: deliberate (and says why), or a disagreement."""
    n = case.nodes[k]
    text = _text(err)
    if in_shapes is not None:
        for name, pred, marker in DELIBERATE:
            if pred(n.op, n.attrs, in_shapes):
                if any(m in text for m in ((marker,) if isinstance(marker, str) else marker)):
                    return Verdict(True, f"deliberate: {name}")
                return Verdict(False, "deliberate refusal that does not say why", f"{n.op} at n{k}: {text}")
    return Verdict(False, "archviz refuses, torch runs", f"{n.op} at n{k} on {in_shapes}: {text}")


def _lowering_and_views(model) -> Verdict | None:
    """archviz's own lowering must agree with its static numbers; explain and the
    receptive-field summaries must run."""
    from archviz.backends.explain import explain_text
    from archviz.backends.torch.verify import verify
    from archviz.passes import rf as RF, run
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = verify(model, device="cpu")
    except Exception as e:      # noqa: BLE001
        return Verdict(False, "lowering fails", f"{type(e).__name__}: {e}")
    if not v.ok:
        return Verdict(False, "lowering differs", "; ".join(v.problems))
    try:
        explain_text(model)
        run(model.graph, "rf")          # the pass's own failure, recorded by the analysis
        for n in model.graph.nodes.values():
            RF.layer_rf(n)
    except Exception as e:      # noqa: BLE001
        return Verdict(False, "uncaught exception", f"explain/rf: {type(e).__name__}: {e}",
                       uncaught=f"explain/rf: {type(e).__name__}: {e}")
    return None
