"""The core (spec, ir, ops, passes) imports no torch, rich or graphviz, and `archviz
summary` works where torch cannot be imported at all. Both run in a fresh interpreter, so
nothing imported by other tests hides an import."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESNET152 = os.path.join(ROOT, "specs", "resnet152.yaml")

SPEC = """\
archviz: 1
name: layering
params: {c: 8}
inputs: {image: {shape: [3, 16, 16]}}
blocks:
  cbr:
    params: {out: {type: int}}
    nodes:
      - {id: conv, op: conv2d, out: "${out}", kernel: 3, padding: 1, bias: false}
      - {id: bn, op: batchnorm2d}
      - {id: relu, op: relu}
nodes:
  - {id: stage, op: cbr, repeat: 2, out: "${c}"}
  - {id: pool, op: global_avgpool}
  - {id: flat, op: flatten}
  - {id: fc, op: linear, out: 10}
"""
# params: conv 3->8 and 8->8 (3x3, no bias), two batchnorms (weight + bias), linear 8->10
PARAMS = 8 * 3 * 9 + 8 * 8 * 9 + 2 * (2 * 8) + (8 * 10 + 10)

HEAVY = ("torch", "rich", "graphviz")


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "layering.yaml"
    p.write_text(SPEC)
    return str(p)


def python(code: str, env=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def no_torch_env(tmp_path) -> dict:
    """PYTHONPATH with a `torch` package first whose import fails, as if torch were absent."""
    blocker = tmp_path / "blocked" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is not installed (test)')\n")
    path = os.pathsep.join([str(tmp_path / "blocked"), ROOT, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}


def test_core_imports_no_torch_rich_graphviz(spec):
    r = python(f"""
        import sys
        import archviz, archviz.spec, archviz.ir, archviz.ops, archviz.passes, archviz.errors
        m = archviz.load({spec!r}, batch=2)
        t = m.totals
        m.to_json()
        from archviz.errors import format_error, SpecError
        format_error(SpecError("x"))
        bad = sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY!r})
        print(t["params"], bad)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(" ", 1) == [str(PARAMS), "[]\n"]


def test_spec_errors_import_no_torch_rich_graphviz(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("op: relu", "op: rleu"))
    r = python(f"""
        import sys, archviz
        from archviz.errors import ArchvizError
        try:
            archviz.load({str(bad)!r})
        except ArchvizError as e:
            print(e.code)
        print(sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY!r}))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["E0111", "[]"]


def test_torch_is_really_blocked(tmp_path):
    r = python("import torch", env=no_torch_env(tmp_path))
    assert r.returncode == 1 and "torch is not installed (test)" in r.stderr


def test_summary_works_without_torch(tmp_path, spec):
    env = no_torch_env(tmp_path)
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", spec, "--format", "json"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["totals"]["params"] == PARAMS and d["outputs"] == {"out": [1, 10]}
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", spec], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert f"{PARAMS:,}" in r.stdout and "stage.1.conv" in r.stdout
    r = subprocess.run([sys.executable, "-m", "archviz", "validate", spec], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_spec_errors_without_torch(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("kernel: 3", "kernal: 3"))
    r = subprocess.run([sys.executable, "-m", "archviz", "validate", str(bad)], capture_output=True, text=True,
                       env=no_torch_env(tmp_path), cwd=ROOT)
    assert r.returncode == 1 and "error[E0112]" in r.stderr and "Traceback" not in r.stderr


def test_torch_command_without_torch_says_what_is_missing(tmp_path, spec):
    r = subprocess.run([sys.executable, "-m", "archviz", "verify", spec], capture_output=True, text=True,
                       env=no_torch_env(tmp_path), cwd=ROOT)
    assert r.returncode == 1 and "needs PyTorch" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not os.path.exists(RESNET152), reason="specs/resnet152.yaml is not written yet")
def test_resnet152_summary_without_torch(tmp_path):
    """The library's biggest spec: same numbers without torch as with it in this process."""
    import archviz
    want = archviz.load(RESNET152).totals
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", RESNET152, "--format", "json"],
                       capture_output=True, text=True, env=no_torch_env(tmp_path), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["totals"] == want
    r = python(f"""
        import sys, archviz
        archviz.load({RESNET152!r}).to_json()
        print(sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY!r}))
    """)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
