"""Every op's registry samples, evaluated the one way archviz does (Op.attrs_of, Op.evaluate):
the shared source of the registry-driven tests."""
from __future__ import annotations

from archviz.ops import registry


def evaluate_sample(op, sample) -> tuple:
    """(attrs, input shapes, output shapes {port: shape}) of one sample."""
    a = op.attrs_of(sample["attrs"])
    ins = [tuple(s) for s in sample["inputs"]]
    return a, ins, op.evaluate(a, ins)


def cases():
    """(name, index, op, attrs, ins, outs) for every sample of every op, by op name."""
    for name in sorted(registry):
        op = registry[name]
        for i, sample in enumerate(op.samples):
            yield (name, i, op, *evaluate_sample(op, sample))
