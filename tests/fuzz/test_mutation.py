"""Mutated specs never crash archviz (issue 10, item 6).

The hypothesis test drives the campaign's mutator (tests/fuzz/mutate.py) with a fixed,
derandomized budget of examples and runs `validate`, `summary -f json`, `explain`, `rf`
and `draw -o X.dot` on each mutated spec, each in a forked child (tests/fuzz/runner.py).
Every run must exit 0, 1 with a message, or 2 -- never an uncaught exception, a crash, a
run over 5 s or 1 GB, a printed traceback, or an echo of a file that is not a spec.
`scripts/fuzz_specs.py` runs the same mutator for as long as asked, with a seed.

The corpus test replays the minimized reproducers of earlier campaigns
(tests/fuzz/corpus/, listed in its index.json as `scripts/fuzz_specs.py` writes them):
each is a failure class that was found once and must stay fixed.

The other tests check the tool itself: a mutation is deterministic, the YAML layer of the
mutator keeps an unmutated spec's meaning, every operator applies, and the runner tells
each kind of failure apart.
"""
from __future__ import annotations

import copy
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

if sys.platform != "linux":  # pragma: no cover
    pytest.skip("the fuzz runner forks and reads /proc (Linux)", allow_module_level=True)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402

from tests.fuzz import mutate as M  # noqa: E402
from tests.fuzz import runner as R  # noqa: E402

EXAMPLES = int(os.environ.get("ARCHVIZ_FUZZ_EXAMPLES", "50"))
# CI bound: a hang is reported at 5 s and its child killed at 6 s
LIMITS = R.Limits(hang_s=R.HANG_S, timeout_s=6.0)
CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="module", autouse=True)
def _warm():
    R.warm()


def _describe(case, res) -> str:
    text = case.text.decode("utf-8", "replace")
    return (f"case {case.index} of seed {case.seed}: {res.key()} on `archviz {' '.join(os.path.basename(a) for a in res.argv)}`\n"
            f"exception: {res.exc_type}: {res.exc_msg}\n{res.tb or ''}\n"
            f"stderr: {res.stderr_head}\nmutations of {case.target} ({case.mutated}): {case.log}\n"
            f"--- mutated file (first 3000 chars) ---\n{text[:3000]}")


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],   # no shrinking: each step forks five runs
          suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 2 ** 31 - 1))
def test_mutated_specs_never_crash(index):
    """Case `index` of the campaign with seed 0 (hypothesis picks the indices, the same ones
    every run); replay one with `python scripts/fuzz_specs.py --seed 0 --start INDEX --cases 1`."""
    case = M.make_case(0, index)
    work = tempfile.mkdtemp(prefix="archviz-fuzz-test-")
    try:
        results = R.run_case(case, work, limits=LIMITS)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for res in results:
        assert not res.failed, _describe(case, res)
        assert res.status in ("ok", "error", "usage")


def _corpus():
    index = CORPUS / "index.json"
    return json.loads(index.read_text()) if index.is_file() else []


@pytest.mark.parametrize("entry", _corpus(), ids=lambda e: e["spec"].rsplit(".", 1)[0])
def test_corpus_reproducer_stays_fixed(entry, tmp_path):
    """A minimized reproducer of an earlier campaign (tests/fuzz/corpus/index.json: the
    command, its options and the failure class it was found with)."""
    spec = str(CORPUS / entry["spec"])
    res = R.run_one(entry["cmd"], R.argv_for(entry["cmd"], spec, str(tmp_path), entry["options"]), str(tmp_path),
                    LIMITS)
    assert not res.failed, (f"{entry['class']} (found: {entry['found']}) is back as {res.key()}: "
                            f"{res.exc_type}: {res.exc_msg}\n{res.tb or ''}\n{res.stderr_head}")


# -- the tool itself -----------------------------------------------------------------------
def test_cases_are_deterministic_and_independent():
    """Case i is the same whatever was generated before it (no state leaks between cases:
    a mutation edits its tree in place, so a shared list would carry its edits on)."""
    def sig(c):
        return c.target, c.mutated, c.text, c.options, c.log
    forward = [sig(M.make_case(3, i)) for i in range(150)]
    backward = [sig(M.make_case(3, i)) for i in reversed(range(150))][::-1]
    assert forward == backward
    assert len({s[2] for s in forward}) > 140


def test_mutations_leave_the_tables_and_the_registry_alone():
    from archviz.ops import registry

    def snapshot():
        return copy.deepcopy((M.PLAUSIBLE, M.IMPORT_PATHS, M.INTS, M.FLOATS, M.STRINGS, M.VOCAB,
                              [(n, o.samples) for n, o in sorted(registry.items())]))
    before = snapshot()
    for i in range(400):
        M.make_case(4, i)
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(M.bundled_files()))
def test_unmutated_round_trip_keeps_the_spec(name, tmp_path):
    """The mutator's YAML layer (load, dump) changes nothing an unmutated spec means."""
    import archviz
    files = M.bundled_files()
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    (tmp_path / name).write_text(M.dump_tree(M.load_tree(files[name].decode())))
    if "/" in name:   # a block file: run the specs that import it
        users = [k for k in files if name in M.imports_of(files[k])]
    else:
        users = [name]
    for u in users:
        before, after = archviz.load(str(M.SPECS / u)), archviz.load(str(tmp_path / u))
        assert after.totals == before.totals
        assert after.output_shapes == before.output_shapes


def test_every_mutation_operator_applies():
    rng = random.Random(0)
    files = M.bundled_files()
    ctx_trees = [(n, M.load_tree(files[n].decode())) for n in ("resnet18.yaml", "seq2seq_luong.yaml", "unet.yaml",
                                                                "transformer_encoder.yaml", "blocks/resnet.yaml")]
    for table in (M.STRUCT_OPS, M.GENTLE_OPS):
        for name, (fn, _) in table.items():
            rng = random.Random(name)   # its own stream: another operator's draws (or a new op) cannot starve it
            applied = 0
            for _ in range(20):
                spec, tree = rng.choice(ctx_trees)
                t = copy.deepcopy(tree)
                if fn(t, rng, M.Ctx(spec, files)):
                    applied += 1
                    M.dump_tree(t)          # still dumps
            assert applied, f"structural operator {name} never applied"
    for name, (fn, _) in M.TEXT_OPS.items():
        out = [fn(files["resnet18.yaml"], rng) for _ in range(10)]
        assert any(desc and data != files["resnet18.yaml"] for data, desc in out), f"text operator {name}"


# -- the runner tells failures apart (the CLI is patched in the parent; children inherit it)
def _run_validate(tmp_path, monkeypatch, fake, limits=LIMITS):
    import archviz.cli
    monkeypatch.setattr(archviz.cli, "load_model", fake)
    spec = str(M.SPECS / "exam_two_3x3.yaml")
    return R.run_one("validate", R.argv_for("validate", spec, str(tmp_path)), str(tmp_path), limits)


def test_runner_uncaught_exception(tmp_path, monkeypatch):
    def fake(*a, **k):
        return {}["missing"]
    res = _run_validate(tmp_path, monkeypatch, fake)
    assert (res.status, res.exc_type, res.frame) == ("uncaught", "KeyError", "archviz/cli.py:validate")
    assert res.key() == "uncaught KeyError at archviz/cli.py:validate"


def test_runner_spec_error_and_silent_exit(tmp_path, monkeypatch):
    from archviz.errors import SpecError

    def fake(*a, **k):
        raise SpecError("bad spec", code="E0100")
    res = _run_validate(tmp_path, monkeypatch, fake)
    assert (res.status, res.exit, res.error_code, res.located) == ("error", 1, "E0100", False)

    def silent(*a, **k):
        sys.exit(1)
    assert _run_validate(tmp_path, monkeypatch, silent).status == "silent"


def test_runner_usage_error(tmp_path):
    res = R.run_one("validate", ["validate", "--nope"], str(tmp_path), LIMITS)
    assert (res.status, res.exit) == ("usage", 2)


def test_runner_hang_is_killed_and_located(tmp_path, monkeypatch):
    import time

    def fake(*a, **k):
        time.sleep(30)
    res = _run_validate(tmp_path, monkeypatch, fake, R.Limits(hang_s=0.5, timeout_s=1.5))
    assert res.status == "hang" and res.seconds < 5
    assert res.frame == "archviz/cli.py:validate"       # from the watchdog's stack dump


def test_runner_crash(tmp_path, monkeypatch):
    import signal

    def fake(*a, **k):
        os.kill(os.getpid(), signal.SIGSEGV)
    res = _run_validate(tmp_path, monkeypatch, fake)
    assert res.status == "crash" and res.signal == signal.SIGSEGV
    assert res.key() == "crash SIGSEGV in archviz/cli.py"


def test_runner_memory(tmp_path, monkeypatch):
    def fake(*a, **k):
        blob = bytearray(300 << 20)
        blob[::4096] = b"x" * len(blob[::4096])   # touch every page
        raise SystemExit(0)
    res = _run_validate(tmp_path, monkeypatch, fake, R.Limits(mem_report=200 << 20))
    assert res.status == "memory" and res.peak_rss > 300 << 20
