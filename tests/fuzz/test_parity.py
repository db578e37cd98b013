"""The parity fuzzer in CI: random single ops and small op chains, archviz against torch
(tests/fuzz/parity.py: the generator, the torch references, the judge).  Derandomised with
a fixed budget of examples, so a run is reproducible and fast; scripts/fuzz_parity.py runs
the same generator for long campaigns (--seed, --cases), each batch in a subprocess.

A failure prints the case's spec (hypothesis shrinks it): archviz must refuse exactly where
torch raises, and otherwise give torch's shapes, params, buffers and FLOP count; where it
refuses on purpose (DELIBERATE) its error must say why."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import random  # noqa: E402

from .parity import GENERATORS, OPS, HypothesisDraw, RandomDraw, case_for, generate, judge  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DEEP = int(os.environ.get("ARCHVIZ_HYPOTHESIS_EXAMPLES", "0"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    torch.set_num_threads(1)
    return str(tmp_path_factory.mktemp("parity"))


def _check(case, workdir):
    v = judge(case, workdir)
    assert v.uncaught is None, f"{v.uncaught}\n{case.spec()}"
    assert v.agree, f"{v.klass}: {v.detail}\n{case.spec()}"


@settings(max_examples=_DEEP or 400, derandomize=not _DEEP, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_ops_and_chains_agree_with_torch(workdir, data):
    _check(generate(HypothesisDraw(data)), workdir)


@pytest.mark.parametrize("op", OPS)
def test_every_op_is_fuzzed(op, workdir):
    """A few cases of every op (uniform choice could miss one in a small budget)."""
    for i in range(4):
        _check(generate(RandomDraw(random.Random(f"{op}:{i}")), op), workdir)


def test_every_registered_op_has_a_generator():
    from archviz.ops import registry
    assert set(GENERATORS) == set(registry) - {"input"}


def test_cases_are_reproducible():
    assert case_for(7, 123).spec() == case_for(7, 123).spec()
    assert case_for(7, 123).spec() != case_for(7, 124).spec()


def test_campaign_script_counts_and_summarises(tmp_path):
    """The long-run script: workers in subprocesses under a memory limit, a markdown summary."""
    out = tmp_path / "summary.md"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz_parity.py"), "--seed", "3",
                        "--cases", "12", "--batch", "6", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_text()
    assert text.strip() == r.stdout.strip()
    assert "| 12 | 12 | 0 | 0 | 0 | 0 |" in text
    assert "## Disagreements by class" in text and "None." in text


def test_campaign_counts_crashes_hangs_and_memory_errors(tmp_path):
    """A worker that dies (abort), hangs or runs out of its address space costs one case each:
    the case is counted, a new worker takes the next one, and the campaign finishes."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz_parity.py"), "--seed", "3",
                        "--cases", "9", "--batch", "9", "--timeout", "4", "--mem-mb", "3000",
                        "--inject", "1:crash,4:hang,6:memory"],
                       capture_output=True, text=True, timeout=400, cwd=ROOT)
    text = r.stdout
    assert r.returncode == 1, text + r.stderr
    assert "| 9 | 6 | 3 | 2 | 2 | 1 |" in text, text       # 2 crashes (abort, MemoryError), 1 hang
    assert "| crash | 2 |" in text and "| hang | 1 |" in text
