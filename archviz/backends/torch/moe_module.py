"""The lowering of a mixture of experts (archviz.ops.moe): it routes for real.

    p = softmax(x · W_gᵀ) over E experts; S = top_k of p; g = p_S / Σ p_S (renormalize)
    y = Σ_{i∈S} g_i · expert_i(x)

Each expert is the expert's own graph lowered like a model (submodules named by its layer
ids: ``experts.0.gate_proj.weight``), run on the tokens routed to it, one token per
position, and its outputs scattered back weighted (``index_add_``).  On the meta device
(`archviz verify`) there are no values to route by: each token then goes to top_k experts
in turn (token t to experts (t·k + j) mod E), the same shapes and work.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MoE(nn.Module):
    def __init__(self, d: int, num_experts: int, top_k: int, renormalize: bool = True, expert=None, rank: int = 3):
        """`expert`: a function that makes one expert module (a new one, new weights, per call)."""
        super().__init__()
        self.d, self.num_experts, self.top_k, self.renormalize = d, num_experts, top_k, renormalize
        self.gate = nn.Linear(d, num_experts, bias=False)
        self.experts = nn.ModuleList(expert() for _ in range(num_experts))
        self.lead = (1,) * (rank - 2)       # an expert sees its tokens as one sequence of the input's rank

    def route(self, h):
        """(weights, indices), each (tokens, top_k): softmax in at least float32, as Mixtral."""
        probs = F.softmax(self.gate(h), dim=-1, dtype=torch.promote_types(h.dtype, torch.float32))
        w, idx = torch.topk(probs, self.top_k, dim=-1)
        if self.renormalize:
            w = w / w.sum(dim=-1, keepdim=True)
        if h.device.type == "meta":
            n = h.shape[0]
            idx = (torch.arange(n)[:, None] * self.top_k + torch.arange(self.top_k)) % self.num_experts
        return w.to(h.dtype), idx

    def forward(self, x):
        h = x.reshape(-1, self.d)
        w, idx = self.route(h)
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.where(idx == e)     # an expert no token chose runs on none (no branch: torch.export)
            tok, slot = tok.to(h.device), slot.to(h.device)
            y = expert(h[tok].reshape(*self.lead, -1, self.d)).reshape(-1, self.d)
            out.index_add_(0, tok, y * w[tok, slot, None])
        return out.reshape(x.shape)
