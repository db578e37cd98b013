"""`train-smoke --nproc N` (archviz.backends.torch.distributed): N processes under
torch.distributed (gloo, CPU), DDP and FSDP.

The truth for the losses is one process computing what data parallelism means: every rank r
has its own batch B_r, and each step applies Adam to the gradient of the mean of the ranks'
losses, (1/N) Σ_r L_r(θ) (DDP averages the ranks' gradients; FSDP reduce-scatters the same
average).  So rank r's loss at step i is L_r(θ_i) of that one-process run.  The memory truths
are hand derivations for a conv → maxpool network (below).
"""
from __future__ import annotations

import os
import time

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import archviz  # noqa: E402
from archviz.backends.torch.bench import synthetic_targets, target_generator  # noqa: E402
from archviz.backends.torch.distributed import train_smoke_distributed  # noqa: E402
from archviz.backends.torch.lower import example_inputs, to_torch  # noqa: E402
from archviz.cli import main  # noqa: E402
from archviz.errors import LoweringError, UnsupportedError  # noqa: E402
from tests import dist_hooks  # noqa: E402

STEPS, LR = 6, 0.01


def tiny():
    # conv 3→4, 3×3, padding 1, then 2×2 max pooling, on 8×8 images, batch 2 per rank
    return archviz.load("exam_conv_pool", batch=2, size=8, c=4)


def one_process_reference(m, nproc, steps=STEPS, lr=LR):
    """losses[r][i] = L_r(θ_i), θ trained by Adam on the mean of the ranks' losses."""
    gm = to_torch(m, seed=0, train=True)
    batches = []
    for r in range(nproc):
        xs = example_inputs(m, seed=r)
        with torch.no_grad():
            out0 = gm(*xs)
        batches.append((xs, synthetic_targets(out0, xs, target_generator(r))))
    opt = torch.optim.Adam(gm.parameters(), lr=lr)
    losses = [[] for _ in range(nproc)]
    for _ in range(steps):
        per_rank = [F.cross_entropy(gm(*xs), t) for xs, t in batches]
        for r, l in enumerate(per_rank):
            losses[r].append(float(l.detach()))
        opt.zero_grad()
        (sum(per_rank) / nproc).backward()
        opt.step()
    return losses


# Hand derivation for tiny() per rank (float32 = 4 B, int64 = 8 B):
#   parameters: conv weight 4·3·3·3 = 108 + bias 4 = 112 → 448 B;
#   Adam: exp_avg and exp_avg_sq per parameter (2 × 448) + one float32 step per tensor (2 × 4);
#   saved for backward (torch's derivatives.yaml): conv2d saves its input x (2·3·8·8 = 384
#   floats, 1,536 B) [and its weight: a parameter]; max_pool2d_with_indices saves its input,
#   the conv output (2·4·8·8 = 512 floats, 2,048 B) and its indices (2·4·4·4 = 128 int64,
#   1,024 B); log_softmax saves its output (128 floats, 512 B); nll_loss2d saves that same
#   output (one storage), the target (2·4·4 = 32 int64, 256 B) and total_weight (a float32
#   scalar, 4 B): 1,536 + 2,048 + 1,024 + 512 + 256 + 4 = 5,380 B.
#   FSDP over 2 ranks shards each parameter on dim 0: weight 2·3·3·3 = 54 + bias 2 → 224 B.
MEMORY = {"ddp": dict(weights_bytes=448, grads_bytes=448, optimizer_bytes=2 * 448 + 2 * 4, activations_bytes=5380),
          "fsdp": dict(weights_bytes=224, grads_bytes=224, optimizer_bytes=2 * 224 + 2 * 4, activations_bytes=5380)}


@pytest.fixture(scope="module")
def reference():
    return one_process_reference(tiny(), 2)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_train_as_one_process_on_the_mean_loss(strategy, reference):
    r = train_smoke_distributed(tiny(), nproc=2, strategy=strategy, steps=STEPS, lr=LR)
    assert [k.rank for k in r.ranks] == [0, 1]
    for k in r.ranks:
        assert k.losses == pytest.approx(reference[k.rank], rel=1e-5, abs=1e-6)
        assert k.down, k.losses                                       # on every rank
        assert k.params_equal_rank0 and k.max_param_diff == 0.0       # DDP: bit for bit
        got = {f: getattr(k, f) for f in MEMORY[strategy]}
        assert got == MEMORY[strategy]
        assert k.buffers_bytes == 0 and k.total_bytes == sum(MEMORY[strategy].values())
        assert k.peak_rss_delta_bytes is None or k.peak_rss_delta_bytes >= 0
    assert r.params_equal and r.all_down
    assert reference[0] != reference[1]                               # the ranks' batches differ
    d = r.to_dict()
    assert d["global_batch"] == 4 and d["ranks"][1]["total_bytes"] == r.ranks[1].total_bytes


def test_fsdp_shards_a_gpt_with_tied_embeddings_and_a_position_table():
    """gpt2 tied (lm_head.weight is wte.weight), a learned position table returned as it is
    (its storage must survive its layer's forward), nn.MultiheadAttention (which reads its
    out_proj's weight itself): FSDP trains it as DDP does, each rank holding about half."""
    m = archviz.load("gpt2", vocab=64, positions=16, seq=16, d=32, layers=1, heads=2, dropout=0)
    ddp = train_smoke_distributed(m, nproc=2, strategy="ddp", steps=4, lr=LR)
    fsdp = train_smoke_distributed(m, nproc=2, strategy="fsdp", steps=4, lr=LR)
    params = m.totals["params"]
    assert all(k.weights_bytes == 4 * params for k in ddp.ranks)
    assert sum(k.weights_bytes for k in fsdp.ranks) == 4 * params      # the shards partition the parameters
    assert max(k.weights_bytes for k in fsdp.ranks) < 4 * params
    assert fsdp.all_down and fsdp.params_equal and ddp.all_down and ddp.params_equal
    for a, b in zip(ddp.ranks, fsdp.ranks):
        assert a.losses == pytest.approx(b.losses, rel=1e-4)
        assert a.losses[0] > 1.0          # random targets, not the input tokens (ln 64 ≈ 4.2 at best)


def test_ddp_trains_the_first_output_of_a_two_output_spec():
    """bert_base returns its sequence output and the pooler's: the loss is on the first, so the
    pooler's parameters get no gradient (DDP must be told to look for unused parameters, or it
    waits for their gradients), and Adam keeps no state for them."""
    m = archviz.load("bert_base", vocab=64, positions=16, types=2, seq=16, d=32, layers=1, heads=2)
    gm = to_torch(m, seed=0, train=True)
    out = gm(*example_inputs(m))
    next(iter(out.values())).sum().backward()                           # torch says which get a gradient
    used = [p for p in gm.parameters() if p.grad is not None]
    assert len(used) < len(list(gm.parameters()))
    r = train_smoke_distributed(m, nproc=2, steps=4, lr=LR)
    assert r.all_down and r.params_equal
    for k in r.ranks:
        assert k.weights_bytes == 4 * m.totals["params"]
        assert k.grads_bytes == 4 * sum(p.numel() for p in used)
        assert k.optimizer_bytes == 2 * k.grads_bytes + 4 * len(used)


def _gone(pid_dir) -> set:
    """The ranks that noted their pid (a rank may be stopped before it gets there), each
    process neither running nor a zombie (reaped)."""
    ranks = set()
    for f in os.listdir(pid_dir):
        with open(os.path.join(pid_dir, f)) as fh:
            pid = int(fh.read())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        ranks.add(int(f[4:]))
    return ranks


@pytest.mark.parametrize("hook, cls, code, words", [
    (dist_hooks.Raise, LoweringError, "E0620", "rank 1 failed: ValueError: boom on purpose"),
    (dist_hooks.Die, LoweringError, "E0620", "rank 1 failed: the process exited with code 3 without a word"),
    (dist_hooks.RefuseFSDP, UnsupportedError, "E0520",
     "torch refuses FSDP here (torch.distributed.fsdp.fully_shard): NotImplementedError: FSDP does not support CPU"),
])
def test_a_failing_rank_is_reported_once_and_every_process_ends(tmp_path, hook, cls, code, words):
    t0 = time.monotonic()
    with pytest.raises(cls) as e:
        train_smoke_distributed(tiny(), nproc=2, strategy="fsdp", steps=STEPS, timeout=60,
                                on_start=hook(str(tmp_path), 1))
    assert e.value.code == code and words in e.value.message, e.value.message
    assert time.monotonic() - t0 < 30                # not the 60 s timeout: the others were stopped
    assert 1 in _gone(tmp_path)


def test_a_job_that_cannot_be_sent_to_a_rank_is_a_clear_error():
    with pytest.raises(LoweringError) as e:
        train_smoke_distributed(tiny(), nproc=2, steps=1, on_start=lambda rank: None)
    assert e.value.code == "E0620" and e.value.message.startswith("could not start rank 0: "), e.value.message


def test_a_hung_rank_times_out_and_every_process_ends(tmp_path):
    with pytest.raises(LoweringError) as e:
        train_smoke_distributed(tiny(), nproc=2, steps=STEPS, timeout=3, on_start=dist_hooks.Hang(str(tmp_path), 0))
    assert e.value.code == "E0621" and "within 3 s" in e.value.message and "0" in e.value.message
    assert _gone(tmp_path) == {0, 1}                 # both were in the group: the hung one and its peer


def test_a_spec_without_weights_is_refused_before_any_process():
    m = archviz.load("exam_pool", size=8, c=2)
    with pytest.raises(LoweringError) as e:
        train_smoke_distributed(m, nproc=2)
    assert e.value.code == "E0622" and "no trainable parameter" in e.value.message
    r = CliRunner().invoke(main, ["train-smoke", "exam_pool", "-p", "size=8"])     # one process: the same
    assert r.exit_code == 1 and "E0622" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("out, words", [(1, "has one class"), (None, "has no class axis")])
def test_an_output_no_loss_applies_to_is_refused_before_any_process(tmp_path, out, words):
    """(N, 1) scores: cross-entropy is 0 whatever the weights; (N,): no class axis at all."""
    last = "{id: fc, op: linear, out: 1}" if out else "{id: fc, op: linear, out: 2}\n  - {id: s, op: sum, dims: [1]}"
    p = tmp_path / "reg.yaml"
    p.write_text(f"archviz: 1\nname: reg\ninputs: {{x: [8]}}\nnodes:\n  - {last}\n")
    with pytest.raises(LoweringError) as e:
        train_smoke_distributed(archviz.load(str(p)), nproc=2)
    assert e.value.code == "E0623" and words in e.value.message
    for extra in ([], ["--nproc", "2"]):
        r = CliRunner().invoke(main, ["train-smoke", str(p), *extra])
        assert r.exit_code == 1 and "E0623" in r.output and words in r.output, r.output


@pytest.mark.parametrize("args, words", [
    (["--nproc", "0"], "--nproc"), (["--nproc", "999"], "CPU cores"),
    (["--strategy", "fsdp"], "--nproc N"), (["--nproc", "2", "--device", "cuda"], "CPU (gloo)"),
    (["--nproc", "2", "--plot", "x.png"], "--plot"), (["--nproc", "2", "--strategy", "zero3"], "zero3"),
    (["--nproc", "2", "--timeout", "0"], "--timeout"),
])
def test_cli_options_checked_before_any_work(monkeypatch, args, words):
    def boom(*a, **k):
        raise AssertionError("the spec was loaded before the options were checked")
    monkeypatch.setattr(archviz, "_load", boom)
    r = CliRunner().invoke(main, ["train-smoke", "exam_conv_pool", *args])
    assert r.exit_code == 2 and words in r.output, r.output


def test_cli_prints_every_rank_and_its_memory():
    r = CliRunner().invoke(main, ["train-smoke", "exam_conv_pool", "-p", "size=8", "-p", "c=4", "-b", "2",
                                  "--nproc", "2", "--steps", "6", "--lr", "0.01"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "ddp on 2 processes (gloo, CPU), batch 2 per rank (4 in all)" in out
    assert "rank 0" in out and "rank 1" in out and out.count("(going down)") == 2
    assert "equal on every rank, bit for bit" in out
    assert "5,380" in out and "904" in out            # activations and Adam's state, as derived above


def test_the_cause_is_reported_before_its_echo():
    """Rank 1 dies without a word; rank 0's collective then fails on the lost connection, and
    its message may arrive first. The report names rank 1 (CI saw the echo win the race)."""
    from archviz.backends.torch import dist_procs as P

    class Proc:
        def __init__(self, code):
            self.exitcode = code

        def join(self, timeout=None):
            pass
    echo = (1.0, 0, "error", "RuntimeError: [gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer")
    errors = [echo]
    P._silent_deaths([Proc(None), Proc(3)], {}, errors)
    with pytest.raises(LoweringError) as e:
        P._raise_first(errors)
    assert "rank 1 failed: the process exited with code 3 without a word" in e.value.message
    assert "rank(s) 0 failed too" in " ".join(e.value.notes)
