"""The core (spec, ir, ops, passes) imports no torch, rich or graphviz, and `archviz
summary` works where torch cannot be imported at all."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_core_imports_no_torch_rich_graphviz():
    code = (
        "import sys, archviz, archviz.spec, archviz.ir, archviz.ops, archviz.passes\n"
        f"m = archviz.load({os.path.join(ROOT, 'specs', 'resnet50.yaml')!r})\n"
        "m.to_json(); m.totals\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'rich', 'graphviz'))\n"
        "print(bad)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_summary_works_without_torch(tmp_path):
    blocker = tmp_path / "torch"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('torch is not installed (test)')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    spec = os.path.join(ROOT, "specs", "resnet152.yaml")
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", spec, "--format", "json"],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["totals"]["params"] == 60_192_808   # torchvision resnet152
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", spec], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    assert r.returncode == 0 and "60,192,808" in r.stdout
    # a torch command says what is missing instead of a traceback
    r = subprocess.run([sys.executable, "-m", "archviz", "verify", spec], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    assert r.returncode == 1 and "needs PyTorch" in r.stderr and "Traceback" not in r.stderr
