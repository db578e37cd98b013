"""Which graph inputs hold integer token ids: those an embedding reads (the op says so,
``Op.token_vocab``). One answer for the sizing, the backward pass and the lowering."""
from __future__ import annotations

from archviz.ops import registry


def token_vocab(g, nid: str) -> int | None:
    """The vocabulary size of graph input `nid` (the smallest of the embeddings reading it),
    or None when no consumer reads it as token ids."""
    nums = [v for v in (registry[c.op].token_vocab(c.attrs) for c in g.consumers(nid)) if v is not None]
    return min(nums) if nums else None


def token_inputs(g) -> dict:
    """Input name -> vocabulary size, for the inputs that hold token ids."""
    return {name: v for name, nid in g.inputs.items() if (v := token_vocab(g, nid)) is not None}
