"""`archviz eval`: worked numeric examples. One op evaluated on numbers a person gives,
every step of the arithmetic printed, the way an exam answer derives it.

Arithmetic is exact (:class:`fractions.Fraction`) wherever it can be: sums, products,
ratios, Dice, convolution and pooling.  A step that needs exp, log, tanh, σ or a
non-integer power is done in float64 and says so ("float64" after the value).  The tests
check every result against torch in float64 to 1e-12.

The evaluators take a mapping name → value (numbers are Fractions, tensors nested lists)
and return an :class:`Evaluation`: the printed lines and the values (for tests and JSON).
Their defaults are the exam's own numbers (../shared/seed), so ``archviz eval lrn`` prints
the exam's LRN example, corrected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from archviz.codes import E
from archviz.errors import SpecError

Num = "Fraction | float"


@dataclass
class Evaluation:
    title: str
    formula: list[str]
    given: list[str]
    steps: list[str] = field(default_factory=list)
    result: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)

    def step(self, text: str) -> None:
        self.steps.append(text)

    def text(self) -> str:
        out = [self.title, *[f"  {f}" for f in self.formula], "given:"]
        out += [f"  {g}" for g in self.given]
        out += [f"{i}. {s}" for i, s in enumerate(self.steps, 1)]
        out += ["result:", *[f"  {r}" for r in self.result]]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out) + "\n"


# -- numbers ---------------------------------------------------------------------------
def fmt(v) -> str:
    """A number as printed: a Fraction exactly (a decimal where it terminates, else p/q with
    its decimal value), a float to 12 significant digits."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        d = v.denominator
        for p in (2, 5):
            while d % p == 0:
                d //= p
        if d == 1:                      # a terminating decimal: print it exactly
            digits = 0
            x = v
            while x.denominator != 1:
                x *= 10
                digits += 1
            s = f"{abs(x.numerator) // 10 ** digits}.{abs(x.numerator) % 10 ** digits:0{digits}d}"
            return ("-" if v < 0 else "") + s
        return f"{v.numerator}/{v.denominator} (≈ {_approx(v)})"
    if isinstance(v, float):
        return f"{v:.12g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def _approx(v: Fraction) -> str:
    """v to 12 significant digits, also past float64's range (10**400 / 3)."""
    try:
        return f"{float(v):.12g}"
    except OverflowError:
        from decimal import Decimal, localcontext
        with localcontext() as ctx:
            ctx.prec = 12
            return f"{Decimal(v.numerator) / Decimal(v.denominator):.12g}"


def short(v) -> str:
    """A number inside a longer formula: a Fraction's decimal value without its p/q."""
    if isinstance(v, Fraction) and "(≈" in fmt(v):
        return _approx(v)
    if isinstance(v, list):
        return "[" + ", ".join(short(x) for x in v) + "]"
    return fmt(v)


def paren(v) -> str:
    s = short(v)
    return f"({s})" if s.startswith("-") else s


def sigmoid(x) -> float:
    x = float(x)
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _bad(msg: str, hint: str | None = None) -> SpecError:
    return SpecError(msg, code=E.EVAL_VALUE, hint=hint)


def _vec(v, name: str, n: int | None = None) -> list:
    if not isinstance(v, list) or any(isinstance(x, list) for x in v):
        raise _bad(f"'{name}' must be a list of numbers, e.g. {name}=[1, 2, 3]")
    if n is not None and len(v) != n:
        raise _bad(f"'{name}' has {len(v)} numbers where {n} are needed")
    if not v:
        raise _bad(f"'{name}' is empty")
    return v


def _mat(v, name: str, rows: int | None = None, cols: int | None = None) -> list:
    if not isinstance(v, list) or not v or not all(isinstance(r, list) for r in v):
        raise _bad(f"'{name}' must be a matrix (a list of rows), e.g. {name}=[[1, 2], [3, 4]]")
    for r in v:
        _vec(r, name)
    if len({len(r) for r in v}) != 1:
        raise _bad(f"the rows of '{name}' differ in length")
    if rows is not None and len(v) != rows:
        raise _bad(f"'{name}' has {len(v)} rows where {rows} are needed")
    if cols is not None and len(v[0]) != cols:
        raise _bad(f"'{name}' has {len(v[0])} columns where {cols} are needed")
    return v


def _int(v, name: str, lo: int = 1) -> int:
    if not isinstance(v, Fraction) or v.denominator != 1 or v < lo:
        raise _bad(f"'{name}' must be an integer ≥ {lo}, got {fmt(v)}")
    return int(v)


def dot(a, b) -> Fraction:
    return sum((x * y for x, y in zip(a, b)), Fraction(0))


def dot_text(a, b) -> str:
    return " + ".join(f"{paren(x)}·{paren(y)}" for x, y in zip(a, b))


def matvec(W, x) -> list:
    return [dot(r, x) for r in W]


# -- LRN ---------------------------------------------------------------------------------
def lrn(v: dict) -> Evaluation:
    """Local response normalisation (Krizhevsky, Sutskever & Hinton 2012, §3.3), at one
    position across channels.  Channels are numbered 1..N as in the exam; the window is
    channels i − ⌊n/2⌋ .. i + ⌊(n−1)/2⌋ clipped to 1..N (the paper's for odd n, torch's for any n)."""
    a = _vec(v["a"], "a")
    N = len(a)
    i = _int(v["i"], "i")
    if i > N:
        raise _bad(f"channel i={i} is past the last channel {N}", hint="channels are numbered 1..N")
    n = _int(v["n"], "n")
    k, alpha, beta = v["k"], v["alpha"], v["beta"]
    ev = Evaluation("LRN (Krizhevsky et al. 2012, §3.3): lateral inhibition across channels",
                    ["b_i = a_i / (k + α · Σ_{j = max(1, i − ⌊n/2⌋)}^{min(N, i + ⌊(n−1)/2⌋)} a_j²)^β",
                     "α as in the paper (torch.nn.LocalResponseNorm divides α by n: archviz lowers with α·n)"],
                    [f"a = {fmt(a)} (channels 1..{N} at one position (x, y))",
                     f"i = {i}, n = {n}, k = {fmt(k)}, α = {fmt(alpha)}, β = {fmt(beta)}"])
    outs = []
    for c in range(1, N + 1):
        lo, hi = max(1, c - n // 2), min(N, c + (n - 1) // 2)
        ss = sum((a[j - 1] ** 2 for j in range(lo, hi + 1)), Fraction(0))
        den = k + alpha * ss
        p = float(den) ** float(beta)
        outs.append((lo, hi, ss, den, p, float(a[c - 1]) / p))
    lo, hi, ss, den, p, b = outs[i - 1]
    ev.step(f"neighbour channels: j from max(1, {i} − {n // 2}) = {lo} to min({N}, {i} + {(n - 1) // 2}) = {hi}")
    js = range(lo, hi + 1)
    ev.step("Σ a_j² = " + " + ".join(f"{paren(a[j - 1])}²" for j in js) + " = "
            + " + ".join(short(a[j - 1] ** 2) for j in js) + f" = {fmt(ss)}   (exact)")
    ev.step(f"k + α·Σ = {fmt(k)} + {fmt(alpha)} × {fmt(ss)} = {fmt(den)}   (exact)")
    ev.step(f"({short(den)})^{fmt(beta)} = {fmt(p)}   (float64)")
    ev.step(f"b_{i} = {short(a[i - 1])} / {fmt(p)} = {fmt(b)}   (float64)")
    ev.result = [f"b_{i} = {fmt(b)}", "every channel: b = " + fmt([o[5] for o in outs])]
    ev.values = {"sum_sq": ss, "denom": den, "denom_pow": p, "b": b, "b_all": [o[5] for o in outs]}
    return ev


# -- attention ---------------------------------------------------------------------------
def attention(v: dict) -> Evaluation:
    """Dot-product attention (Luong et al. 2015, 'dot'): scores s_j = q·k_j (÷ √d when
    scaled, Vaswani et al. 2017), weights α = softmax(s), context c = Σ_j α_j v_j."""
    scaled = bool(v.get("scaled", False))
    ev = Evaluation("Attention: scores → softmax weights → context vector",
                    ["s_j = q · k_j" + (" / √d" if scaled else "") + ",  α_j = e^{s_j} / Σ_l e^{s_l},"
                     "  context = Σ_j α_j · v_j"], [])
    if v.get("scores") is not None:
        s = _vec(v["scores"], "scores")
        ev.given.append(f"scores s = {fmt(s)}")
        vals = v.get("values")
        if vals is None:
            raise _bad("give the values to weight: values=[[...], ...] (one row per score)")
    else:
        q = _vec(v["query"], "query")
        keys = _mat(v["keys"], "keys", cols=len(q))
        vals = keys if v.get("values") is None else v["values"]
        ev.given += [f"query q = {fmt(q)}", *[f"key k_{j} = {fmt(r)}" for j, r in enumerate(keys, 1)]]
        s = []
        for j, r in enumerate(keys, 1):
            sj = dot(q, r)
            ev.step(f"s_{j} = q·k_{j} = {dot_text(q, r)} = {fmt(sj)}   (exact)")
            s.append(sj)
        if scaled:
            d = len(q)
            s = [float(x) / math.sqrt(d) for x in s]
            ev.step(f"÷ √d = √{d}: s = {fmt(s)}   (float64)")
    vals = _mat(vals, "values", rows=len(s))
    if v.get("values") is not None:
        ev.given += [f"value v_{j} = {fmt(r)}" for j, r in enumerate(vals, 1)]
    else:
        ev.given.append("values v_j = the keys k_j (the encoder states)")
    e = [math.exp(float(x)) for x in s]
    ev.step("e^{s_j}: " + ", ".join(f"e^{short(x)} = {fmt(y)}" for x, y in zip(s, e)) + "   (float64)")
    m = max(float(x) for x in s)       # the same weights, computed stably as torch does
    z = math.fsum(math.exp(float(x) - m) for x in s)
    alpha = [math.exp(float(x) - m) / z for x in s]
    ev.step(f"Z = Σ e^{{s_j}} = {' + '.join(fmt(y) for y in e)} = {fmt(math.fsum(e))}")
    ev.step("α_j = e^{s_j} / Z: " + ", ".join(f"α_{j} = {fmt(a)}" for j, a in enumerate(alpha, 1)))
    ctx = []
    for d in range(len(vals[0])):
        cd = math.fsum(a * float(r[d]) for a, r in zip(alpha, vals))
        ev.step(f"context[{d}] = " + " + ".join(f"{fmt(a)}·{paren(r[d])}" for a, r in zip(alpha, vals))
                + f" = {fmt(cd)}")
        ctx.append(cd)
    ev.result = [f"weights α = {fmt(alpha)}", f"context = {fmt(ctx)}"]
    ev.values = {"scores": s, "weights": alpha, "context": ctx}
    return ev


# -- recurrent steps -----------------------------------------------------------------------
def _gate_rows(W, h: int, k: int) -> list:
    return W[k * h:(k + 1) * h]


def _affine(name, W, x, U, hv, b_ih, b_hh, ev, act, act_name, inner=None):
    """act(W x + b_ih + U h + b_hh), each product written out; `inner` applies a function to
    (U h + b_hh) first (torch's GRU candidate: r ⊙ (W_hn h + b_hn))."""
    out = []
    for r in range(len(W)):
        wx, uh = dot(W[r], x), dot(U[r], hv)
        pre_h = uh + b_hh[r]
        if inner is not None:
            pre_h, text_h = inner(r, pre_h)
        else:
            text_h = f"{fmt(uh)} + {short(b_hh[r])}"
        pre = float(wx + b_ih[r]) + float(pre_h) if inner is not None else wx + b_ih[r] + pre_h
        val = act(pre)
        ev.step(f"{name}[{r}] = {act_name}(W·x + b_ih + {'…' if inner else 'U·h + b_hh'}) = "
                f"{act_name}({fmt(wx)} + {short(b_ih[r])} + {text_h}) = {act_name}({short(pre)}) = {fmt(val)}")
        out.append(val)
    return out


def _rnn_inputs(v, gates: int):
    x = _vec(v["x"], "x")
    hv = _vec(v["h"], "h")
    H = len(hv)
    W = _mat(v["W"], "W", rows=gates * H, cols=len(x))
    U = _mat(v["U"], "U", rows=gates * H, cols=H)
    zero = [Fraction(0)] * (gates * H)
    b_ih = _vec(v["b_ih"], "b_ih", gates * H) if v.get("b_ih") is not None else zero
    b_hh = _vec(v["b_hh"], "b_hh", gates * H) if v.get("b_hh") is not None else zero
    return x, hv, H, W, U, b_ih, b_hh


def lstm(v: dict) -> Evaluation:
    """One LSTM step (Hochreiter & Schmidhuber 1997 with the forget gate of Gers et al. 2000;
    torch.nn.LSTMCell's gate order i, f, g, o).  From weights (x, h, c, W, U, b_ih, b_hh) or,
    as the exam does, from given gate values (f, i, g, o and c)."""
    ev = Evaluation("One LSTM step (torch.nn.LSTMCell; gates in torch's order i, f, g, o)",
                    ["i = σ(W_i x + b_ii + U_i h + b_hi),  f = σ(…_f),  g = tanh(…_g),  o = σ(…_o)",
                     "c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')"], [])
    c = _vec(v["c"], "c")
    H = len(c)
    if v.get("W") is not None:
        x, hv, H2, W, U, b_ih, b_hh = _rnn_inputs(v, 4)
        if H2 != H:
            raise _bad(f"'h' has {H2} numbers and 'c' {H}: both are the hidden size")
        ev.given += [f"x = {fmt(x)}, h = {fmt(hv)}, c = {fmt(c)}",
                     f"W (4h × x) = {fmt(W)}", f"U (4h × h) = {fmt(U)}",
                     f"b_ih = {fmt(b_ih)}, b_hh = {fmt(b_hh)}"]
        g4 = {}
        for k, (nm, act, an) in enumerate((("i", sigmoid, "σ"), ("f", sigmoid, "σ"),
                                           ("g", lambda t: math.tanh(float(t)), "tanh"), ("o", sigmoid, "σ"))):
            g4[nm] = _affine(f"{nm} ({ {'i': 'input', 'f': 'forget', 'g': 'candidate', 'o': 'output'}[nm]} gate)",
                             _gate_rows(W, H, k), x, _gate_rows(U, H, k), hv,
                             b_ih[k * H:(k + 1) * H], b_hh[k * H:(k + 1) * H], ev, act, an)
        i_, f_, g_, o_ = g4["i"], g4["f"], g4["g"], g4["o"]
    else:
        f_, i_, g_, o_ = (_vec(v[nm], nm, H) for nm in ("f", "i", "g", "o"))
        ev.given += [f"c = {fmt(c)}", f"forget gate f = {fmt(f_)}", f"input gate i = {fmt(i_)}",
                     f"candidate g (the exam's C̃) = {fmt(g_)}", f"output gate o = {fmt(o_)}"]
    exact = all(isinstance(t, Fraction) for t in [*f_, *i_, *g_])
    cn = [fi * ci + ii * gi for fi, ci, ii, gi in zip(f_, c, i_, g_)]
    if not exact:
        cn = [float(t) for t in cn]
    ev.step("f ⊙ c = [" + ", ".join(f"{short(a)}×{paren(b)}" for a, b in zip(f_, c)) + "] = "
            + fmt([a * b for a, b in zip(f_, c)]))
    ev.step("i ⊙ g = [" + ", ".join(f"{short(a)}×{paren(b)}" for a, b in zip(i_, g_)) + "] = "
            + fmt([a * b for a, b in zip(i_, g_)]))
    ev.step(f"c' = f ⊙ c + i ⊙ g = {fmt(cn)}" + ("   (exact)" if exact else ""))
    tc = [math.tanh(float(t)) for t in cn]
    ev.step(f"tanh(c') = {fmt(tc)}   (float64)")
    hn = [float(o) * t for o, t in zip(o_, tc)]
    ev.step("h' = o ⊙ tanh(c') = [" + ", ".join(f"{short(o)}×{paren(t)}" for o, t in zip(o_, tc)) + f"] = {fmt(hn)}")
    ev.result = [f"c' = {fmt(cn)}", f"h' = {fmt(hn)}"]
    ev.values = {"c": cn, "h": hn, "i": i_, "f": f_, "g": g_, "o": o_}
    return ev


GRU_CONVENTIONS = ("torch", "seed")


def gru(v: dict) -> Evaluation:
    """One GRU step, in one of two conventions that differ in what z means:

    torch (torch.nn.GRUCell; Cho et al. 2014, eq. 7): h' = (1 − z) ⊙ n + z ⊙ h, so z near 1
      KEEPS the old state; reset after the product: n = tanh(W_n x + b_in + r ⊙ (U_n h + b_hn)).
    seed (the exam; Chung et al. 2014, Olah 2015): h' = (1 − z) ⊙ h + z ⊙ h̃, so z near 1
      TAKES the candidate; reset before the product: h̃ = tanh(W_n x + b_in + U_n (r ⊙ h) + b_hn).
    One convention's z is the other's 1 − z."""
    conv = str(v.get("convention", "torch"))
    if conv not in GRU_CONVENTIONS:
        raise _bad(f"convention must be one of {', '.join(GRU_CONVENTIONS)}, got {conv!r}")
    upd = ("h' = (1 − z) ⊙ n + z ⊙ h   (torch, Cho et al. 2014: z keeps the old state)" if conv == "torch"
           else "h' = (1 − z) ⊙ h + z ⊙ h̃   (the seed, Chung et al. 2014: z takes the candidate)")
    cand = ("n = tanh(W_n x + b_in + r ⊙ (U_n h + b_hn))" if conv == "torch"
            else "h̃ = tanh(W_n x + b_in + U_n (r ⊙ h) + b_hn)")
    ev = Evaluation(f"One GRU step, {conv} convention (gates in torch's order r, z, n)",
                    ["r = σ(W_r x + b_ir + U_r h + b_hr),  z = σ(W_z x + b_iz + U_z h + b_hz)", cand, upd], [])
    cn = "n" if conv == "torch" else "h̃"
    if v.get("W") is not None:
        x, hv, H, W, U, b_ih, b_hh = _rnn_inputs(v, 3)
        ev.given += [f"x = {fmt(x)}, h = {fmt(hv)}", f"W (3h × x) = {fmt(W)}", f"U (3h × h) = {fmt(U)}",
                     f"b_ih = {fmt(b_ih)}, b_hh = {fmt(b_hh)}"]
        r = _affine("r (reset gate)", _gate_rows(W, H, 0), x, _gate_rows(U, H, 0), hv, b_ih[:H], b_hh[:H],
                    ev, sigmoid, "σ")
        z = _affine("z (update gate)", _gate_rows(W, H, 1), x, _gate_rows(U, H, 1), hv, b_ih[H:2 * H],
                    b_hh[H:2 * H], ev, sigmoid, "σ")
        Wn, Un, bin_, bhn = _gate_rows(W, H, 2), _gate_rows(U, H, 2), b_ih[2 * H:], b_hh[2 * H:]
        if conv == "torch":
            def inner(row, pre_h):
                val = r[row] * float(pre_h)
                return val, f"r·(U·h + b_hn) = {fmt(r[row])}·{paren(pre_h)}"
            n = _affine(f"{cn} (candidate)", Wn, x, Un, hv, bin_, bhn, ev, lambda t: math.tanh(float(t)), "tanh",
                        inner)
        else:
            rh = [ri * float(hi) for ri, hi in zip(r, hv)]
            ev.step(f"r ⊙ h = {fmt(rh)}")
            n = []
            for row in range(H):
                pre = float(dot(Wn[row], x) + bin_[row]) + math.fsum(float(u) * t for u, t in zip(Un[row], rh)) \
                    + float(bhn[row])
                n.append(math.tanh(pre))
                ev.step(f"h̃[{row}] = tanh(W·x + b_in + U·(r⊙h) + b_hn) = tanh({fmt(pre)}) = {fmt(n[-1])}")
        hv_ = hv
    else:
        hv_ = _vec(v["h"], "h")
        H = len(hv_)
        z = _vec(v["z"], "z", H)
        n = _vec(v["candidate"], "candidate", H)
        ev.given += [f"h = {fmt(hv_)}", f"candidate {cn} = {fmt(n)}", f"update gate z = {fmt(z)}"]
    if conv == "torch":
        terms = [(1 - zi, ni, zi, hi) for zi, ni, hi in zip(z, n, hv_)]
        what = "(1 − z)·n + z·h"
    else:
        terms = [(1 - zi, hi, zi, ni) for zi, ni, hi in zip(z, n, hv_)]
        what = "(1 − z)·h + z·h̃"
    out = []
    for j, (a, b, c, d) in enumerate(terms):
        val = a * b + c * d
        out.append(val)
        ev.step(f"h'[{j}] = {what} = {short(a)}×{paren(b)} + {short(c)}×{paren(d)} = {short(a * b)} + "
                f"{paren(c * d)} = {fmt(val)}")
    other = ([(1 - zi) * hi + zi * ni for zi, ni, hi in zip(z, n, hv_)] if conv == "torch"
             else [(1 - zi) * ni + zi * hi for zi, ni, hi in zip(z, n, hv_)])
    ev.result = [f"h' = {fmt(out)}"]
    ev.notes = [f"z follows the {conv} convention. In the {'seed' if conv == 'torch' else 'torch'} convention "
                f"the same z gives h' = {fmt(other)}: one convention's z is the other's 1 − z "
                "(archviz's gru op and its cell drawing follow torch)."]
    ev.values = {"h": out, "z": z, "candidate": n, "other_convention": other}
    return ev
