"""Normalisation: batchnorm1d/2d, layernorm, lrn.

Sources: torch.nn.BatchNorm2d / LayerNorm / LocalResponseNorm documentation;
Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks" (NIPS 2012), section 3.3, for LRN.
"""
from __future__ import annotations

from archviz.errors import OpError
from math import prod

from archviz.ops.base import (BATCH_AXIS_WHY, Attr, Line, NoMacs, NoParams, Op, SameShape, fmt_shape, keep_extra,
                              keep_in, numel, register_op)
from archviz.ops.terms import C, Numel, V, tight
from archviz.ops.describe import Keeps, Role, lowered


class _BatchNorm(SameShape, NoMacs, Op):
    family = "norm"
    role = Role.NORM
    label = "BN"
    keeps = Keeps.INPUTS
    ranks: tuple = ()
    attrs = {
        "eps": Attr("float", 1e-5, "added to the variance"),
        "momentum": Attr("float", 0.1, "running-statistics momentum"),
        "affine": Attr("bool", True, "learn a per-channel scale (weight) and shift (bias)"),
        "track_running_stats": Attr("bool", True, "keep running mean/var buffers"),
    }
    elementwise_note = " (inference: one multiply and one add per element, statistics folded)"

    def saved(self, a, ins, outs, need):
        """Its input and the batch's mean and 1/std per channel, in opmath (native_batch_norm's
        save_mean / save_invstd), whichever gradient is asked; the running statistics are
        buffers."""
        c = ins[0][1]
        return [keep_in(ins), keep_extra("mean", c, "opmath"), keep_extra("1/std", c, "opmath")]

    def check(self, a, ins):
        if len(ins[0]) not in self.ranks:
            raise OpError(f"expects a {' or '.join(f'{r}-D' for r in self.ranks)} input, got {fmt_shape(ins[0])}")
        # torch (aten batch_norm): eps >= 0 with running statistics, eps > 0 with the batch's
        # (training, or no running statistics); a NaN passes both checks
        if a.eps < 0 or (not a.track_running_stats and a.eps <= 0):
            raise OpError(f"eps={a.eps} must be {'positive' if not a.track_running_stats else 'non-negative'} "
                          f"(torch: \"batch_norm eps must be ...\")", attr="eps")
        if not a.track_running_stats:
            # no running statistics: torch normalises with the batch's statistics in eval mode too
            self._two_values(ins[0], "without running statistics (track_running_stats: false) torch uses "
                                     "the batch's statistics at inference too, and", attr="track_running_stats")

    def static_batch(self, a):
        """Without running statistics torch's exporter reshapes by the traced batch size (it
        asserts under a symbolic one)."""
        return not a.track_running_stats

    def train_check(self, a, ins):
        if a.eps <= 0:
            raise OpError(f"eps={a.eps}: torch refuses an eps that is not positive in training "
                          f"(\"batch_norm eps must be positive during training\")", attr="eps")
        self._two_values(ins[0], "in training torch normalises with the batch's statistics, and")

    @staticmethod
    def _two_values(x, why, attr=None):
        """torch (F.batch_norm, _verify_batch_size): 'Expected more than 1 value per channel
        when training' when N · Π spatial = 1 — a variance over one value."""
        n = numel(x) // x[1]
        if n == 1:
            axes = {2: "N", 3: "N · L", 4: "N · H · W"}.get(len(x), "N · Π spatial")
            raise OpError(f"one value per channel ({axes} = {' · '.join(str(d) for i, d in enumerate(x) if i != 1)} "
                          f"= 1 for input {fmt_shape(x)}): {why} refuses a variance over one value (torch: \"Expected "
                          f"more than 1 value per channel when training\")", attr=attr,
                          hint="use --batch 2 or more, or normalise before the spatial size drops to 1")

    def infer_shape(self, a, ins):
        self.check(a, ins)
        return {"out": tuple(ins[0])}

    def param_tensors(self, a, ins):
        c = ins[0][1]
        t = []
        if a.affine:
            t += [("weight", (c,), "param"), ("bias", (c,), "param")]
        if a.track_running_stats:
            t += [("running_mean", (c,), "buffer"), ("running_var", (c,), "buffer"),
                  ("num_batches_tracked", (), "buffer")]
        return t

    def tensor_bytes(self, a, name):
        """num_batches_tracked is an int64 counter whatever the model's dtype."""
        return 8 if name == "num_batches_tracked" else None

    def elementwise_terms(self, a, ins, outs):
        return C(2) * Numel(ins[0])

    def torch_spec(self, a, ins, outs):
        cls = "nn.BatchNorm2d" if len(ins[0]) == 4 else "nn.BatchNorm1d"
        return lowered(cls, ins[0][1], eps=a.eps, momentum=a.momentum, affine=a.affine,
                    track_running_stats=a.track_running_stats)

    def receptive_field(self, a, ins, outs):
        """Pointwise at inference (in training its batch statistics couple every element)."""
        from archviz.ops import rfmaps as R
        return {"out": [R.pointwise(ins[0])]}



@register_op
class BatchNorm2d(_BatchNorm):
    name = "batchnorm2d"
    doc = "Batch normalisation over (N, C, H, W) (torch.nn.BatchNorm2d); per channel."
    ranks = (4,)
    samples = [{"attrs": {}, "inputs": [(2, 64, 8, 8)]}, {"attrs": {"affine": False}, "inputs": [(1, 3, 4, 4)]}]


@register_op
class BatchNorm1d(_BatchNorm):
    name = "batchnorm1d"
    doc = "Batch normalisation over (N, C) or (N, C, L) (torch.nn.BatchNorm1d); per channel."
    ranks = (2, 3)
    samples = [{"attrs": {}, "inputs": [(4, 32)]}, {"attrs": {}, "inputs": [(2, 16, 10)]}]


class _TrailingNorm(SameShape, NoMacs, Op):
    """Normalises the last `dims` axes (layernorm, rmsnorm): never the batch axis, whose size
    would size the weight; every element reads the whole normalised axes."""
    family = "norm"
    role = Role.NORM
    keeps = Keeps.INPUTS
    features_last = True

    def rows(self, a, ins) -> int:
        """How many normalised groups: the elements of the axes not normalised."""
        return prod(ins[0][:-a.dims])

    def infer_shape(self, a, ins):
        if a.dims >= len(ins[0]):
            raise OpError(f"dims={a.dims} reaches the batch axis of the {len(ins[0])}-D input {fmt_shape(ins[0])}: "
                          f"its weight would be sized by the batch; archviz normalises at most the "
                          f"{len(ins[0]) - 1} non-batch axes", attr="dims", hint=BATCH_AXIS_WHY)
        return {"out": tuple(ins[0])}

    def receptive_field(self, a, ins, outs):
        """Every element reads the whole normalised trailing `dims` axes (their statistics)."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.along(x, {len(x) - i: R.All(x[-i]) for i in range(1, a.dims + 1)})]}


@register_op
class LayerNorm(_TrailingNorm):
    name = "layernorm"
    label = "LayerNorm"
    doc = "Layer normalisation over the last `dims` axes (torch.nn.LayerNorm)."
    attrs = {
        "dims": Attr("pos_int", 1, "how many trailing axes to normalise over"),
        "eps": Attr("float", 1e-5, "added to the variance"),
        "elementwise_affine": Attr("bool", True, "learn weight and bias over the normalised shape"),
        "bias": Attr("bool", True, "learn the bias (with elementwise_affine)"),
    }
    elementwise_note = ": mean, centre, square, variance sum, divide (5); scale, shift (2, if affine)"
    samples = [{"attrs": {}, "inputs": [(2, 10, 64)]}, {"attrs": {"dims": 3}, "inputs": [(1, 4, 6, 6)]}]

    def param_tensors(self, a, ins):
        shape = tuple(ins[0][-a.dims:])
        t = []
        if a.elementwise_affine:
            t.append(("weight", shape, "param"))
            if a.bias:
                t.append(("bias", shape, "param"))
        return t

    def elementwise_terms(self, a, ins, outs):
        return Numel(ins[0]) * (C(5) + C(2)) if a.elementwise_affine else Numel(ins[0]) * C(5)

    def saved(self, a, ins, outs, need):
        """Its input and each row's mean and 1/std in opmath (native_layer_norm), whichever
        gradient is asked."""
        r = self.rows(a, ins)
        return [keep_in(ins), keep_extra("mean", r, "opmath"), keep_extra("1/std", r, "opmath")]

    def torch_spec(self, a, ins, outs):
        return lowered("nn.LayerNorm", tuple(ins[0][-a.dims:]), eps=a.eps, elementwise_affine=a.elementwise_affine,
                    bias=a.bias)




@register_op
class RMSNorm(_TrailingNorm):
    name = "rmsnorm"
    label = "RMSNorm"
    doc = ("Root-mean-square normalisation over the last `dims` axes (torch.nn.RMSNorm; Zhang & Sennrich "
           "2019): y = x / sqrt(mean(x²) + eps) · weight, no centring and no bias (Llama, Mistral).")
    attrs = {
        "dims": Attr("pos_int", 1, "how many trailing axes to normalise over"),
        "eps": Attr("float", None, "added to the mean square (default: torch's, the dtype's machine epsilon)"),
        "elementwise_affine": Attr("bool", True, "learn a weight over the normalised shape"),
    }
    elementwise_note = ": square, mean, divide by the root (3); scale (1, if affine)"
    samples = [{"attrs": {}, "inputs": [(2, 10, 64)]}, {"attrs": {"dims": 2, "eps": 1e-6}, "inputs": [(1, 4, 6, 6)]},
               {"attrs": {"elementwise_affine": False}, "inputs": [(3, 8)]}]

    def param_tensors(self, a, ins):
        return [("weight", tuple(ins[0][-a.dims:]), "param")] if a.elementwise_affine else []

    def elementwise_terms(self, a, ins, outs):
        return Numel(ins[0]) * (C(4) if a.elementwise_affine else C(3))

    def saved(self, a, ins, outs, need):
        """torch's rms_norm is composite: x · rsqrt(mean(x²) + eps) keeps x and each row's
        1/rms (in opmath: float32 for 16-bit inputs) where x needs a gradient; the weight's
        gradient keeps the normalised x (before the weight)."""
        out = []
        if need.input(0):
            out += [keep_in(ins), keep_extra("1/rms", self.rows(a, ins), "opmath")]
        if a.elementwise_affine and need.weights:
            out.append(keep_extra("normalised x", prod(ins[0])))
        return out

    def torch_spec(self, a, ins, outs):
        return lowered("nn.RMSNorm", tuple(ins[0][-a.dims:]), eps=None if a.eps is None else float(a.eps),
                       elementwise_affine=a.elementwise_affine)



@register_op
class LRN(SameShape, NoParams, NoMacs, Op):
    name = "lrn"
    family = "norm"
    role = Role.NORM
    label = "LRN"
    keeps = Keeps.INPUTS
    doc = ("Local response normalisation, the AlexNet paper's formula: "
           "b_c = a_c / (k + alpha · Σ_{c' = c − n/2}^{c + n/2} a_c'²)^beta over n neighbouring channels. "
           "torch.nn.LocalResponseNorm divides alpha by n; archviz lowers with alpha·n so the paper's "
           "numbers hold.")
    attrs = {
        "size": Attr("pos_int", 5, "n: number of neighbouring channels summed"),
        "alpha": Attr("float", 1e-4, "alpha (the paper's, not divided by n)"),
        "beta": Attr("float", 0.75, "beta"),
        "k": Attr("float", 2.0, "k"),
    }
    elementwise_note = ": n squares, n − 1 adds, scale, add k, power, divide"
    samples = [{"attrs": {}, "inputs": [(1, 96, 55, 55)]}, {"attrs": {"size": 3}, "inputs": [(2, 7, 4, 4)]}]

    def infer_shape(self, a, ins):
        if len(ins[0]) < 3:
            raise OpError(f"expects (N, C, ...) with at least one spatial axis, got {fmt_shape(ins[0])}")
        return {"out": tuple(ins[0])}

    def explain(self, a, ins, outs):
        """The function first: the paper's formula with this layer's constants (a worked
        example on numbers: `archviz eval lrn`)."""
        g = lambda v: f"{float(v):g}"  # noqa: E731
        return [Line("function", "b_c = a_c / (k + α·Σ a_c'²)^β over channels c' = c − ⌊n/2⌋ .. c + ⌊(n − 1)/2⌋ "
                     "(Krizhevsky et al. 2012, §3.3; α not divided by n)",
                     f"a_c / ({g(a.k)} + {g(a.alpha)}·Σ a_c'²)^{g(a.beta)} with n = {a.size} "
                     "(worked on numbers: archviz eval lrn)", None)] + super().explain(a, ins, outs)

    def elementwise_terms(self, a, ins, outs):
        return Numel(ins[0]) * (tight(C(2), V("n", a.size)) + C(3))

    def saved(self, a, ins, outs, need):
        """torch's local_response_norm is composite: the squares padded by n − 1 channels (read
        by avg_pool3d), the base k + α·mean and its power (pow, then the division), and the input."""
        n, x = a.size, ins[0]
        return [keep_in(ins), keep_extra("padded squares", x[0] * (x[1] + n - 1) * prod(x[2:])),
                keep_extra("k + α·mean", prod(x)), keep_extra("denominator", prod(x))]

    def torch_spec(self, a, ins, outs):
        """torch.nn.LocalResponseNorm computes a / (k + alpha/n · Σ a²)^beta: pass alpha·n so the
        paper's formula (alpha not divided by n) holds."""
        return lowered("nn.LocalResponseNorm", a.size, alpha=a.alpha * a.size, beta=a.beta, k=a.k)

    def receptive_field(self, a, ins, outs):
        """Channel c reads channels [c − ⌊n/2⌋, c + ⌊(n − 1)/2⌋] (torch pads n//2 before); pointwise
        in space."""
        from archviz.ops import rfmaps as R
        x = ins[0]
        return {"out": [R.Deps([(0, R.IDENTITY), (1, R.Window(a.size, 1, a.size // 2))]
                       + [(i, R.IDENTITY) for i in range(2, len(x))])]}

