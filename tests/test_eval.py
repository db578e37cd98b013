"""`archviz eval`: every worked example against torch in float64, to 1e-12.

The independent truth is torch itself (torch.nn.functional.local_response_norm, softmax,
LSTMCell, GRUCell, conv2d, max/avg_pool2d, binary_cross_entropy); for the seed's GRU
convention, which torch does not implement, the formula written with torch operations
(Chung et al. 2014, eq. 5-8; the seed's U4 Q3)."""
from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
from click.testing import CliRunner

from archviz.backends.eval_commands import KINDS, evaluate, parse_values
from archviz.cli import main

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-12


def _floats(x):
    return [_floats(v) for v in x] if isinstance(x, list) else float(x)


def close(a, b):
    a = torch.tensor(_floats(a), dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(a.shape)
    assert torch.allclose(a, b, rtol=0, atol=TOL), (a, b)


def run(kind, *pairs):
    return evaluate(kind, parse_values(kind, pairs, None))


def rnd(rng, *shape):
    if not shape:
        return Fraction(rng.randint(-20, 20), 10)
    return [rnd(rng, *shape[1:]) for _ in range(shape[0])]


def yaml_of(x):
    return json.dumps(_floats(x)) if isinstance(x, list) else str(float(x))


# -- LRN ---------------------------------------------------------------------------------
def test_lrn_exam_example_is_5_893_not_5_72():
    # the exam (U3 Q1): Σ a² = 241, k + α·241 = 2.0241, then it says 2.0241^0.75 = 1.748 and
    # b = 5.72; 2.0241^0.75 = 1.69697 (exp(0.75·ln 2.0241)), so b = 10 / 1.69697 = 5.89286
    ev = run("lrn")
    assert ev.values["sum_sq"] == 241 and ev.values["denom"] == Fraction(20241, 10000)
    a = torch.tensor([5., 8., 10., 6., 4.], dtype=torch.float64).view(1, 5, 1, 1)
    ref = F.local_response_norm(a, 5, alpha=1e-4 * 5, beta=0.75, k=2.0).flatten()
    close(ev.values["b_all"], ref)
    assert abs(ev.values["b"] - 5.892858682538) < 1e-9
    assert "5.89285868254" in ev.text() and "2.0241" in ev.text()


@pytest.mark.parametrize("seed", range(5))
def test_lrn_random_against_torch(seed):
    rng = random.Random(seed)
    C, n = rng.randint(1, 9), rng.choice([1, 3, 5, 7])
    a = [Fraction(rng.randint(0, 50), 4) for _ in range(C)]
    ev = run("lrn", f"a={yaml_of(a)}", f"n={n}", f"i={rng.randint(1, C)}", "alpha=0.01", "k=1.5", "beta=0.6")
    ref = F.local_response_norm(torch.tensor(_floats(a), dtype=torch.float64).view(1, C, 1, 1), n,
                                alpha=0.01 * n, beta=0.6, k=1.5).flatten()
    close(ev.values["b_all"], ref)


# -- attention ---------------------------------------------------------------------------
def test_attention_exam_example():
    ev = run("attention")
    assert ev.values["scores"] == [Fraction(13, 100), Fraction(1, 10), Fraction(83, 100)]
    q = torch.tensor([0.5, 0.2, -0.1, 0.7], dtype=torch.float64)
    K = torch.tensor([[0.3, -0.2, 0.5, 0.1], [0.5, 0.4, 0.2, -0.3], [0.7, 0.1, -0.4, 0.6]], dtype=torch.float64)
    w = torch.softmax(K @ q, 0)
    close(ev.values["weights"], w)
    close(ev.values["context"], w @ K)


@pytest.mark.parametrize("scaled", [False, True])
def test_attention_random_against_torch(scaled):
    rng = random.Random(7)
    d, T, dv = 3, 4, 2
    q, K, V = rnd(rng, d), rnd(rng, T, d), rnd(rng, T, dv)
    ev = run("attention", f"query={yaml_of(q)}", f"keys={yaml_of(K)}", f"values={yaml_of(V)}",
             f"scaled={'true' if scaled else 'false'}")
    qt, Kt, Vt = (torch.tensor(_floats(x), dtype=torch.float64) for x in (q, K, V))
    ref = F.scaled_dot_product_attention(qt.view(1, 1, d), Kt.view(1, T, d), Vt.view(1, T, dv),
                                         scale=None if scaled else 1.0).flatten()
    close(ev.values["context"], ref)


def test_attention_from_scores():
    ev = run("attention", "scores=[0.13, 0.1, 0.83]", "values=[[1], [2], [3]]")
    w = torch.softmax(torch.tensor([0.13, 0.1, 0.83], dtype=torch.float64), 0)
    close(ev.values["context"], w @ torch.tensor([1., 2., 3.], dtype=torch.float64))


# -- LSTM ----------------------------------------------------------------------------------
def test_lstm_exam_example():
    # the exam (U4 Q2): C_t = [0.80, -0.31, 0.27, 0.87], h_t ≈ [0.66, -0.15, 0.03, 0.63]
    ev = run("lstm")
    assert ev.values["c"] == [Fraction(8, 10), Fraction(-31, 100), Fraction(27, 100), Fraction(87, 100)]
    c = torch.tensor([0.8, -0.31, 0.27, 0.87], dtype=torch.float64)
    close(ev.values["h"], torch.tensor([1.0, 0.5, 0.1, 0.9], dtype=torch.float64) * torch.tanh(c))


@pytest.mark.parametrize("seed", range(4))
def test_lstm_step_against_lstmcell(seed):
    rng = random.Random(seed)
    X, H = rng.randint(1, 3), rng.randint(1, 3)
    x, h, c = rnd(rng, X), rnd(rng, H), rnd(rng, H)
    W, U, bi, bh = rnd(rng, 4 * H, X), rnd(rng, 4 * H, H), rnd(rng, 4 * H), rnd(rng, 4 * H)
    ev = run("lstm", *(f"{k}={yaml_of(v)}" for k, v in
                       dict(x=x, h=h, c=c, W=W, U=U, b_ih=bi, b_hh=bh).items()))
    cell = torch.nn.LSTMCell(X, H).double()
    with torch.no_grad():
        for p, v in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (W, U, bi, bh)):
            p.copy_(torch.tensor(_floats(v), dtype=torch.float64))
        h1, c1 = cell(torch.tensor([_floats(x)], dtype=torch.float64),
                      (torch.tensor([_floats(h)], dtype=torch.float64), torch.tensor([_floats(c)], dtype=torch.float64)))
    close(ev.values["h"], h1)
    close(ev.values["c"], c1)


# -- GRU ----------------------------------------------------------------------------------
def test_gru_exam_example_both_conventions():
    # the exam (U4 Q3) writes h_t = (1 − z)·h_{t−1} + z·h̃: [0.71, -0.16, -0.47]
    seed = run("gru", "convention=seed")
    assert seed.values["h"] == [Fraction(71, 100), Fraction(-16, 100), Fraction(-47, 100)]
    tor = run("gru")
    # torch: h' = (1 − z)·n + z·h = [0.3·0.8 + 0.7·0.5, 0.8·0.4 + 0.2·(−0.3), 0.1·(−0.6) + 0.9·0.7]
    assert tor.values["h"] == [Fraction(59, 100), Fraction(26, 100), Fraction(57, 100)]
    assert tor.values["other_convention"] == seed.values["h"]
    assert "torch convention" in tor.text() and "seed convention" in tor.text()


def _gru_weights(seed):
    rng = random.Random(seed)
    X, H = rng.randint(1, 3), rng.randint(1, 3)
    return dict(x=rnd(rng, X), h=rnd(rng, H), W=rnd(rng, 3 * H, X), U=rnd(rng, 3 * H, H),
                b_ih=rnd(rng, 3 * H), b_hh=rnd(rng, 3 * H)), X, H


@pytest.mark.parametrize("seed", range(4))
def test_gru_step_against_grucell(seed):
    v, X, H = _gru_weights(seed)
    ev = run("gru", *(f"{k}={yaml_of(x)}" for k, x in v.items()))
    cell = torch.nn.GRUCell(X, H).double()
    with torch.no_grad():
        for p, k in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), ("W", "U", "b_ih", "b_hh")):
            p.copy_(torch.tensor(_floats(v[k]), dtype=torch.float64))
        ref = cell(torch.tensor([_floats(v["x"])], dtype=torch.float64),
                   torch.tensor([_floats(v["h"])], dtype=torch.float64))
    close(ev.values["h"], ref)


@pytest.mark.parametrize("seed", range(4))
def test_gru_step_seed_convention(seed):
    v, X, H = _gru_weights(seed)
    ev = run("gru", "convention=seed", *(f"{k}={yaml_of(x)}" for k, x in v.items()))
    x, h, W, U, bi, bh = (torch.tensor(_floats(v[k]), dtype=torch.float64) for k in ("x", "h", "W", "U", "b_ih", "b_hh"))
    r = torch.sigmoid(W[:H] @ x + bi[:H] + U[:H] @ h + bh[:H])
    z = torch.sigmoid(W[H:2 * H] @ x + bi[H:2 * H] + U[H:2 * H] @ h + bh[H:2 * H])
    cand = torch.tanh(W[2 * H:] @ x + bi[2 * H:] + U[2 * H:] @ (r * h) + bh[2 * H:])
    close(ev.values["h"], (1 - z) * h + z * cand)


# -- losses ---------------------------------------------------------------------------------
def _dice_ref(p, g, squared, eps=0.0):
    p = torch.tensor(_floats(p), dtype=torch.float64).flatten()
    g = torch.tensor(_floats(g), dtype=torch.float64).flatten()
    den = (p * p).sum() + (g * g).sum() if squared else p.sum() + g.sum()
    return 1 - (2 * (p * g).sum() + eps) / (den + eps)


@pytest.mark.parametrize("seed", range(4))
def test_dice_both_forms_against_torch(seed):
    rng = random.Random(seed)
    p = [[Fraction(rng.randint(1, 99), 100) for _ in range(3)] for _ in range(3)]
    g = [[Fraction(rng.randint(0, 1)) for _ in range(3)] for _ in range(3)]
    ev = run("dice", f"p={yaml_of(p)}", f"g={yaml_of(g)}", "eps=1")
    close([ev.values["vnet"]], _dice_ref(p, g, True, 1.0))
    close([ev.values["plain"]], _dice_ref(p, g, False, 1.0))
    assert isinstance(ev.values["vnet"], Fraction)     # exact


def test_dice_forms_agree_on_hard_masks():
    ev = run("dice", "p=[1, 1, 0, 1]", "g=[1, 0, 0, 1]")
    assert ev.values["vnet"] == ev.values["plain"] == Fraction(1, 5)   # 1 − 2·2/(3 + 2)


def test_cross_entropy_against_torch():
    rng = random.Random(3)
    p = [Fraction(rng.randint(1, 99), 100) for _ in range(6)]
    g = [Fraction(rng.randint(0, 1)) for _ in range(6)]
    ev = run("cross_entropy", f"p={yaml_of(p)}", f"g={yaml_of(g)}")
    ref = F.binary_cross_entropy(torch.tensor(_floats(p), dtype=torch.float64),
                                 torch.tensor(_floats(g), dtype=torch.float64))
    close([ev.values["loss"]], ref)


# -- conv and pool ---------------------------------------------------------------------------
def test_conv_exam_1x1_example():
    # the exam (U3 Q4): [100, 150, 200] · [0.5, −0.3, 0.2] = 45, · [0.1, 0.6, −0.2] = 60
    assert run("conv").values["output"] == [[[45]], [[60]]]


@pytest.mark.parametrize("seed", range(5))
def test_conv_against_torch(seed):
    rng = random.Random(seed)
    C, O, H, W, k = rng.randint(1, 2), rng.randint(1, 2), rng.randint(3, 5), rng.randint(3, 5), rng.randint(1, 3)
    s, p = rng.randint(1, 2), rng.randint(0, 1)
    x, K, b = rnd(rng, C, H, W), rnd(rng, O, C, k, k), rnd(rng, O)
    ev = run("conv", f"input={yaml_of(x)}", f"kernel={yaml_of(K)}", f"bias={yaml_of(b)}", f"stride={s}", f"padding={p}")
    ref = F.conv2d(torch.tensor([_floats(x)], dtype=torch.float64), torch.tensor(_floats(K), dtype=torch.float64),
                   torch.tensor(_floats(b), dtype=torch.float64), stride=s, padding=p)[0]
    close(ev.values["output"], ref)
    assert all(isinstance(v, Fraction) for ch in ev.values["output"] for r in ch for v in r)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("seed", range(4))
def test_pool_against_torch(kind, seed):
    rng = random.Random(seed)
    H, W, k = rng.randint(3, 7), rng.randint(3, 7), rng.randint(2, 3)
    s, p = rng.randint(1, k), rng.randint(0, k // 2)
    x = rnd(rng, 2, H, W)
    ev = run("pool", f"input={yaml_of(x)}", f"kernel={k}", f"stride={s}", f"padding={p}", f"kind={kind}")
    xt = torch.tensor([_floats(x)], dtype=torch.float64)
    ref = (F.max_pool2d(xt, k, s, p) if kind == "max" else F.avg_pool2d(xt, k, s, p))[0]
    close(ev.values["output"], ref)


# -- the command ----------------------------------------------------------------------------
def test_cli_every_kind_runs_with_the_exam_numbers():
    r = CliRunner()
    for kind in KINDS:
        res = r.invoke(main, ["eval", kind])
        assert res.exit_code == 0, (kind, res.output)
        assert "result:" in res.output


def test_cli_json_and_errors(tmp_path):
    r = CliRunner()
    res = r.invoke(main, ["eval", "lrn", "-f", "json"])
    d = json.loads(res.output)
    assert d["values"]["denom"] == {"exact": "20241/10000", "value": 2.0241}
    bad = r.invoke(main, ["eval", "lrn", "-v", "alhpa=1"])
    assert bad.exit_code == 2 and "alpha" in bad.output
    bad = r.invoke(main, ["eval", "lrn", "-v", "a=[1,"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    bad = r.invoke(main, ["eval", "lrn", "-v", "i=9"])
    assert bad.exit_code == 1 and "E0170" in bad.output
    f = tmp_path / "v.yaml"
    f.write_text("a: [1, 2, 3]\ni: 2\nn: 3\n")
    ok = r.invoke(main, ["eval", "lrn", "-i", str(f)])
    assert ok.exit_code == 0 and "Σ a_j² = 1² + 2² + 3²" in ok.output
    f.write_text("a: [1, 2, 3]\nbeat: 2\n")
    bad = r.invoke(main, ["eval", "lrn", "-i", str(f)])
    assert bad.exit_code == 1 and "E0172" in bad.output and "v.yaml:2:1" in bad.output
    bad = r.invoke(main, ["eval", "lstm", "-v", "x=[1]"])
    assert bad.exit_code == 2 and "also needs" in bad.output


# -- hostile numbers (issue 10): a located error or a right answer, never a traceback or a hang
@pytest.mark.parametrize("args", [
    ["lrn", "-v", "a=[1e308, 1e308, 1e308, 1e308, 1e308]"],   # Σa² = 5e616: past float64's 1.8e308
    ["lrn", "-v", "beta=1e308"],                               # den ** beta overflows
    ["attention", "-v", "query=[1e300, 1e300, 1e300, 1e300]"],  # scores of 1e600
    ["lstm", "-v", "c=[1e308, 1e308, 1e308, 1e308]", "-v", "f=[10, 10, 10, 10]"],   # c' = 1e309
])
def test_eval_beyond_float64_is_an_error(args):
    res = CliRunner().invoke(main, ["eval", *args])
    assert res.exit_code == 1 and "E0170" in res.output and "float64" in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_eval_exact_values_past_float64_print_their_approximation():
    """fmt's '≈' of an exact value past float64 (10**400 / 3): 12 digits from the integers."""
    from archviz.backends.evaluate import fmt
    want = str(10 ** 400 // 3)[:12]          # 333333333333
    assert fmt(Fraction(10 ** 400, 3)).endswith(f"(≈ {want[0]}.{want[1:]}e+399)")
    assert fmt(Fraction(-10 ** 400, 7)).endswith("(≈ -1.42857142857e+399)")      # 1/7 = 0.142857...


@pytest.mark.parametrize("args", [
    ["conv", "-v", "padding=100000"],                          # a 200,001² padded input: hours
    ["pool", "-v", "kernel=1000000", "-v", "padding=500000", "-v", "stride=1000000"],   # 10¹² window terms
])
def test_eval_grids_are_bounded(args):
    import time
    t = time.perf_counter()
    res = CliRunner().invoke(main, ["eval", *args])
    assert res.exit_code == 1 and "E0170" in res.output and "at most" in res.output, res.output
    assert time.perf_counter() - t < 2
