"""`archviz eval`, the second half: segmentation losses (Dice in both forms, cross-entropy),
convolution and pooling, every step printed, exact (Fractions) except for the logarithms.
The shared number formatting and the Evaluation record are in archviz.backends.evaluate."""
from __future__ import annotations

import math
from fractions import Fraction

from archviz.errors import OpError
from archviz.ops.base import conv_out_len
from archviz.backends.evaluate import Evaluation, _bad, _int, _mat, _vec, dot, dot_text, fmt, paren, short


# -- segmentation losses -------------------------------------------------------------------
def _flat(v, name):
    if not isinstance(v, list):
        raise _bad(f"'{name}' must be a list (or a nested list) of numbers")
    out = []
    stack = [v]
    while stack:
        t = stack.pop()
        if isinstance(t, list):
            stack.extend(reversed(t))
        else:
            out.append(t)
    if not out:
        raise _bad(f"'{name}' is empty")
    return out


DICE_FORMS = ("vnet", "plain")


def dice(v: dict) -> Evaluation:
    """Soft Dice loss in its two published forms, exact:
    vnet  (Milletari, Navab & Ahmadi 2016, V-Net, eq. 1; the exam's): 1 − 2Σ p·g / (Σ p² + Σ g²)
    plain (the Sørensen–Dice coefficient on soft masks):              1 − 2Σ p·g / (Σ p + Σ g)
    They agree when p is a hard 0/1 mask (p² = p); ε is added to numerator and denominator."""
    p, g = _flat(v["p"], "p"), _flat(v["g"], "g")
    if len(p) != len(g):
        raise _bad(f"'p' has {len(p)} values and 'g' {len(g)}: one per pixel each")
    eps = v.get("eps", Fraction(0))
    ev = Evaluation("Soft Dice loss, both forms (p: predicted foreground probabilities, g: the 0/1 mask)",
                    ["vnet  (Milletari et al. 2016, V-Net; the exam's):  L = 1 − (2·Σ p·g + ε) / (Σ p² + Σ g² + ε)",
                     "plain (Sørensen–Dice on soft masks):               L = 1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε)"],
                    [f"p = {fmt(p)}", f"g = {fmt(g)}", f"ε = {fmt(eps)}"])
    inter = dot(p, g)
    ev.step(f"Σ p·g = {dot_text(p, g)} = {fmt(inter)}")
    sp2, sg2 = sum((x * x for x in p), Fraction(0)), sum((x * x for x in g), Fraction(0))
    sp, sg = sum(p, Fraction(0)), sum(g, Fraction(0))
    ev.step(f"Σ p² = {' + '.join(f'{paren(x)}²' for x in p)} = {fmt(sp2)};  Σ g² = {fmt(sg2)}")
    ev.step(f"Σ p = {fmt(sp)};  Σ g = {fmt(sg)}")
    res = {}
    for form, den in (("vnet", sp2 + sg2), ("plain", sp + sg)):
        if den + eps == 0:
            raise _bad("both masks are empty: the Dice coefficient is 0/0", hint="give ε > 0, e.g. eps=1")
        d = (2 * inter + eps) / (den + eps)
        ev.step(f"{form}: Dice = (2 × {fmt(inter)} + {fmt(eps)}) / ({fmt(den)} + {fmt(eps)}) = {fmt(d)};"
                f"  loss = 1 − Dice = {fmt(1 - d)}   (exact)")
        res[form] = 1 - d
        res[form + "_dice"] = d
    ev.result = [f"vnet  loss = {fmt(res['vnet'])}", f"plain loss = {fmt(res['plain'])}"]
    ev.values = res
    return ev


def cross_entropy(v: dict) -> Evaluation:
    """Pixel-wise binary cross-entropy (the exam's formula):
    L = −(1/N) Σ_i [g_i·log p_i + (1 − g_i)·log(1 − p_i)]   (natural log, as torch)."""
    p, g = _flat(v["p"], "p"), _flat(v["g"], "g")
    if len(p) != len(g):
        raise _bad(f"'p' has {len(p)} values and 'g' {len(g)}: one per pixel each")
    for x in p:
        if not 0 < x < 1:
            raise _bad(f"probabilities must lie strictly between 0 and 1 (log 0 is −∞), got {fmt(x)}")
    for x in g:
        if x not in (0, 1):
            raise _bad(f"targets are 0 or 1, got {fmt(x)}")
    N = len(p)
    ev = Evaluation("Pixel-wise binary cross-entropy (torch.nn.functional.binary_cross_entropy)",
                    ["L = −(1/N) · Σ_i [g_i·ln p_i + (1 − g_i)·ln(1 − p_i)]"],
                    [f"p = {fmt(p)}", f"g = {fmt(g)}", f"N = {N}"])
    terms = []
    for j, (x, t) in enumerate(zip(p, g), 1):
        term = -math.log(float(x)) if t == 1 else -math.log(float(1 - x))
        ev.step(f"pixel {j}: g = {fmt(t)} → " + (f"−ln {short(x)}" if t == 1 else f"−ln(1 − {short(x)})")
                + f" = {fmt(term)}")
        terms.append(term)
    loss = math.fsum(terms) / N
    ev.step(f"L = ({' + '.join(fmt(t) for t in terms)}) / {N} = {fmt(loss)}   (float64)")
    ev.result = [f"cross-entropy = {fmt(loss)}"]
    ev.values = {"loss": loss, "terms": terms}
    return ev


# -- convolution and pooling ---------------------------------------------------------------
def _chw(v, name):
    """A (C, H, W) nested list; a matrix is one channel."""
    if isinstance(v, list) and v and all(isinstance(r, list) for r in v) and not isinstance(v[0][0], list):
        v = [v]
    if not isinstance(v, list) or not v:
        raise _bad(f"'{name}' must be a matrix [[...], ...] or channels of matrices [[[...]], ...]")
    for ch in v:
        _mat(ch, name)
    if len({(len(ch), len(ch[0])) for ch in v}) != 1:
        raise _bad(f"the channels of '{name}' differ in size")
    return v


def _out_len(n, k, s, p, what, ev=None, axis="H"):
    try:
        o = conv_out_len(n, k, s, 2 * p)        # the ops' own output-size rule
    except OpError:
        raise _bad(f"the {k}-wide {what} does not fit a padded input of {n + 2 * p}") from None
    if ev is not None:
        ev.step(f"{axis}_out = ⌊({axis}_in + 2p − k) / s⌋ + 1 = ⌊({n} + 2·{p} − {k}) / {s}⌋ + 1 = {o}")
    return o


MAX_SHOWN = 16      # output elements whose sums are written out in full
MAX_TERMS = 100_000  # products (convolution) or window elements (pooling) of one worked example


def _small(terms: int, what: str):
    """Refuse an example too large to work by hand before any of it is computed (a padding
    of 100,000 made a 200,001² grid; a window of 10⁶ × 10⁶, 10¹² terms)."""
    if terms > MAX_TERMS:
        raise _bad(f"this {what} takes {terms:,} terms, at most {MAX_TERMS:,}: eval works small examples "
                   "step by step", hint="`archviz summary` counts the MACs of a whole layer")


def _grid_result(ev, y, shown: int, more: str = ""):
    """Say how many output values were not written out, and give the output (channels ×
    rows × columns) as the result."""
    if shown > MAX_SHOWN:
        ev.step(f"… {shown - MAX_SHOWN} more output values{more}")
    ev.result = [f"output {len(y)}×{len(y[0])}×{len(y[0][0])}: {fmt(y)}   (exact)"]
    ev.values = {"output": y}
    return ev


def conv(v: dict) -> Evaluation:
    """2-D convolution as torch computes it (cross-correlation, no kernel flip):
    y[o, r, c] = b_o + Σ_{ch, u, w} x[ch, r·s + u − p, c·s + w − p] · K[o, ch, u, w]."""
    x = _chw(v["input"], "input")
    K = v["kernel"]
    if isinstance(K, list) and K and isinstance(K[0], list) and not isinstance(K[0][0], list):
        K = [[K]]                                   # one k×k matrix: one filter, one channel
    elif isinstance(K, list) and K and isinstance(K[0], list) and isinstance(K[0][0], list) \
            and not isinstance(K[0][0][0], list):
        K = [K]                                     # (C, k, k): one filter
    if not isinstance(K, list) or not K:
        raise _bad("'kernel' must be a matrix, (C, k, k) or (O, C, k, k)")
    K = [_chw(f, "kernel") for f in K]
    C, H, W = len(x), len(x[0]), len(x[0][0])
    if any(len(f) != C for f in K):
        raise _bad(f"each filter must have {C} channel(s), as the input")
    kh, kw = len(K[0][0]), len(K[0][0][0])
    s, p = _int(v.get("stride", Fraction(1)), "stride"), _int(v.get("padding", Fraction(0)), "padding", 0)
    bias = _vec(v["bias"], "bias", len(K)) if v.get("bias") is not None else [Fraction(0)] * len(K)
    ev = Evaluation("Convolution (torch.nn.functional.conv2d: cross-correlation, no kernel flip)",
                    ["y[o, r, c] = b_o + Σ_{ch, u, w} x[ch, r·s + u − p, c·s + w − p] · K[o, ch, u, w]"],
                    [f"input x: {C} channel(s) of {H}×{W} = {fmt(x)}",
                     f"kernel K: {len(K)} filter(s) of {C}×{kh}×{kw} = {fmt(K)}",
                     f"bias = {fmt(bias)}, stride s = {s}, padding p = {p}"])
    Ho = _out_len(H, kh, s, p, "kernel", ev, "H")
    Wo = _out_len(W, kw, s, p, "kernel", ev, "W")
    _small(len(K) * Ho * Wo * C * kh * kw, "convolution")

    def px(ch, r, c):
        return x[ch][r][c] if 0 <= r < H and 0 <= c < W else Fraction(0)

    y = []
    shown = 0
    for o, f in enumerate(K):
        rows = []
        for r in range(Ho):
            row = []
            for c in range(Wo):
                pairs = [(px(ch, r * s + u - p, c * s + w - p), f[ch][u][w])
                         for ch in range(C) for u in range(kh) for w in range(kw)]
                val = dot([a for a, _ in pairs], [b for _, b in pairs]) + bias[o]
                if shown < MAX_SHOWN:
                    ev.step(f"y[{o}, {r}, {c}] = {dot_text([b for _, b in pairs], [a for a, _ in pairs])}"
                            + (f" + {short(bias[o])}" if bias[o] else "") + f" = {fmt(val)}")
                shown += 1
                row.append(val)
            rows.append(row)
        y.append(rows)
    return _grid_result(ev, y, shown, ", each the same sum")


POOL_KINDS = ("max", "avg")


def pool(v: dict) -> Evaluation:
    """2-D max or average pooling as torch computes it (average counts zero padding, torch's
    count_include_pad=True; max pads with −∞); output size ⌊(n + 2p − k)/s⌋ + 1."""
    x = _chw(v["input"], "input")
    kind = str(v.get("kind", "max"))
    if kind not in POOL_KINDS:
        raise _bad(f"kind must be one of {', '.join(POOL_KINDS)}, got {kind!r}")
    k = _int(v.get("kernel", Fraction(2)), "kernel")
    s = _int(v.get("stride", Fraction(k)), "stride")
    p = _int(v.get("padding", Fraction(0)), "padding", 0)
    if 2 * p > k:
        raise _bad(f"padding {p} is more than half the kernel {k} (torch refuses it)")
    C, H, W = len(x), len(x[0]), len(x[0][0])
    is_max = kind == POOL_KINDS[0]
    ev = Evaluation(f"{'Max' if is_max else 'Average'} pooling {k}×{k}, stride {s}, padding {p}"
                    + (" (overlapping: s < k)" if s < k else ""),
                    ["y[ch, r, c] = " + ("max" if is_max else "mean")
                     + "_{u, w < k} x[ch, r·s + u − p, c·s + w − p]"],
                    [f"input x: {C} channel(s) of {H}×{W} = {fmt(x)}"])
    Ho = _out_len(H, k, s, p, "window", ev, "H")
    Wo = _out_len(W, k, s, p, "window", ev, "W")
    _small(C * Ho * Wo * k * k, "pooling")
    y = []
    shown = 0
    for ch in range(C):
        rows = []
        for r in range(Ho):
            row = []
            for c in range(Wo):
                win = [x[ch][r * s + u - p][c * s + w - p] if 0 <= r * s + u - p < H and 0 <= c * s + w - p < W
                       else None for u in range(k) for w in range(k)]
                if is_max:
                    val = max(t for t in win if t is not None)
                    text = "max(" + ", ".join("−∞" if t is None else short(t) for t in win) + ")"
                else:
                    val = sum((Fraction(0) if t is None else t for t in win), Fraction(0)) / (k * k)
                    text = "(" + " + ".join("0" if t is None else paren(t) for t in win) + f") / {k * k}"
                if shown < MAX_SHOWN:
                    ev.step(f"y[{ch}, {r}, {c}] = {text} = {fmt(val)}")
                shown += 1
                row.append(val)
            rows.append(row)
        y.append(rows)
    return _grid_result(ev, y, shown)
