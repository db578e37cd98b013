"""archviz as a pip user gets it: build the wheel, install it without extras into a fresh
virtual environment (no torch, no PYTHONPATH, no clone in sight), and run every command
that needs no torch on bundled specs, by name, from a folder outside the repository.

Expected numbers are torchvision's published figures (resnet18: 11,689,512 parameters,
the torchvision.models docs) and the U-Net paper's output (388x388x2, Ronneberger et al.
2015, Fig. 1), not archviz's own output.

It runs on every CI run (marked `wheel`; about 20-40 s: the dependencies come from pip's
cache or the package index, as on a user's machine).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.wheel

SHIPPED = ("archviz", "specs", "setup.py", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """(python of a fresh venv with the wheel installed, a working folder outside the clone)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    # a copy of the sources, so a stale build/ of the clone can never end up in the wheel
    for name in SHIPPED:
        p = os.path.join(ROOT, name)
        if os.path.isdir(p):
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(p, src / name)
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(src)], check=True, cwd=base)
    wheels = list(dist.glob("archviz-*.whl"))
    assert len(wheels) == 1, wheels
    venv.create(base / "venv", with_pip=True)
    py = str(base / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheels[0])],
                   check=True, cwd=base, env=_clean_env())
    work = base / "work"
    work.mkdir()
    return py, str(work)


def _clean_env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    e["COLUMNS"] = "120"
    return e


def archviz(env, *args, rc=0):
    py, work = env
    r = subprocess.run([py, "-m", "archviz", *args], cwd=work, env=_clean_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == rc, (args, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_installed_outside_the_clone(env):
    py, work = env
    r = subprocess.run([py, "-c", "import archviz, archviz.library as L, importlib.util as u; "
                        "print(archviz.__file__); print(L.library_dir()); print(u.find_spec('torch'))"],
                       cwd=work, env=_clean_env(), capture_output=True, text=True, check=True)
    file_, lib, torch = r.stdout.split("\n")[:3]
    assert not file_.startswith(ROOT) and "site-packages" in file_
    assert lib.endswith(os.path.join("archviz", "specs")) and not lib.startswith(ROOT)
    assert torch == "None"          # installed without extras


def test_summary_by_name(env):
    out = json.loads(archviz(env, "summary", "resnet18", "-f", "json").stdout)
    assert out["totals"]["params"] == 11_689_512
    assert "11,689,512" in archviz(env, "summary", "resnet18", "--depth", "1").stdout


def test_validate_explain_compare_rf(env):
    assert "[1, 2, 388, 388]" in archviz(env, "validate", "unet").stdout
    # conv 3x3, 3 -> 64, bias: 64*3*3*3 + 64 = 1,792 params
    assert "1,792" in archviz(env, "explain", "exam_conv_pool", "conv").stdout
    cmp = json.loads(archviz(env, "compare", "exam_three_3x3", "exam_one_7x7", "-f", "json").stdout)
    weights = {r["quantity"]: r for r in cmp["rows"]}["params"]
    assert weights["ratio_exact"] == "27/49"       # 3·9·C² vs 49·C²
    rf = json.loads(archviz(env, "rf", "exam_three_3x3", "-f", "json").stdout)
    last = rf["layers"][-1]["rf"]       # three stacked 3x3, stride 1: 1 + 3*(3-1) = 7
    assert [(a["size_min"], a["size_max"]) for a in last] == [(7, 7), (7, 7)]
    assert "conv2d" in archviz(env, "ops", "conv2d").stdout


def test_zoo_lists_every_bundled_spec(env):
    rows = json.loads(archviz(env, "zoo", "-f", "json").stdout)
    by = {r["name"]: r for r in rows}
    assert by["resnet18"]["params"] == 11_689_512 and by["resnet18"]["family"] == "residual"
    assert "unet" in by and "vgg16" in by and by["vgg16"]["params"] == 138_357_544   # torchvision's figure
    text = archviz(env, "zoo").stdout
    assert all(name in text for name in by)


def test_local_file_wins_over_a_bundled_name(env):
    _, work = env
    with open(os.path.join(work, "resnet18.yaml"), "w") as f:
        f.write("archviz: 1\nname: mine\ninputs: {x: {shape: [4]}}\nnodes:\n  - {id: fc, op: linear, out: 2}\n")
    try:
        out = json.loads(archviz(env, "summary", "resnet18.yaml", "-f", "json").stdout)
        assert out["name"] == "mine" and out["totals"]["params"] == 4 * 2 + 2
    finally:
        os.remove(os.path.join(work, "resnet18.yaml"))


def test_report_draw_gallery(env):
    _, work = env
    archviz(env, "report", "exam_conv_pool", "resnet18", "-o", "out", "--no-diagrams")
    assert json.load(open(os.path.join(work, "out", "resnet18.json")))["totals"]["params"] == 11_689_512
    if shutil.which("dot"):
        archviz(env, "draw", "resnet18", "-o", "r18.svg")
        assert open(os.path.join(work, "r18.svg")).read().lstrip().startswith(("<?xml", "<svg"))
        archviz(env, "gallery", "exam_conv_pool", "-o", "gal")
        assert os.path.exists(os.path.join(work, "gal", "gallery.md"))


def test_report_default_is_the_bundled_library(env):
    _, work = env
    archviz(env, "report", "-o", "all", "--no-diagrams")
    made = {f[:-5] for f in os.listdir(os.path.join(work, "all")) if f.endswith(".json")}
    shipped = {f[:-5] for f in os.listdir(os.path.join(ROOT, "specs")) if f.endswith(".yaml")}
    assert made == shipped
    pages = {f[:-5] for f in os.listdir(os.path.join(work, "all")) if f.endswith(".html")}
    assert pages == shipped | {"index"}


def test_schema_ships_and_validates_a_bundled_spec(env):
    py, work = env
    out = json.loads(archviz(env, "schema").stdout)
    r = subprocess.run([py, "-c", "import archviz, os, json; p = os.path.join(os.path.dirname(archviz.__file__), "
                        "'schema', 'spec.schema.json'); print(json.dumps(json.load(open(p))))"],
                       cwd=work, env=_clean_env(), capture_output=True, text=True, check=True)
    assert json.loads(r.stdout) == out
    assert "conv2d" in json.dumps(out["definitions"]["node"])


README_QUICK_START = [          # the README's quick start, as proposed (outside a clone, no torch)
    ["zoo"],
    ["summary", "resnet18", "--depth", "1"],
    ["explain", "exam_conv_pool", "conv"],
    ["compare", "exam_three_3x3", "exam_one_7x7"],
    ["rf", "exam_two_3x3"],
    ["report", "resnet18", "unet", "-o", "qs_out"],
]


def test_readme_quick_start(env):
    for args in README_QUICK_START:
        if args[0] == "report" and not shutil.which("dot"):
            args = args + ["--no-diagrams"]
        archviz(env, *args)
    _, work = env
    assert os.path.exists(os.path.join(work, "qs_out", "index.html"))


def test_torch_commands_say_what_to_install(env):
    r = archviz(env, "export", "resnet18", "-o", "m.py", rc=1)
    assert "E0502" in r.stderr and "archviz[torch]" in r.stderr


def test_readme_paths_work_outside_a_clone(env):
    """`specs/NAME.yaml`, as the README writes it, is the bundled spec where no such file is."""
    out = json.loads(archviz(env, "summary", "specs/resnet18.yaml", "-f", "json").stdout)
    assert out["totals"]["params"] == 11_689_512


def test_shell_completion(env):
    py, work = env
    exe = os.path.join(os.path.dirname(py), "archviz")
    e = _clean_env()
    r = subprocess.run([exe], cwd=work, env={**e, "_ARCHVIZ_COMPLETE": "bash_source"}, capture_output=True,
                       text=True, check=True)
    assert "complete -o nosort -F _archviz_completion archviz" in r.stdout
    r = subprocess.run([exe], cwd=work, capture_output=True, text=True, check=True,
                       env={**e, "_ARCHVIZ_COMPLETE": "bash_complete", "COMP_WORDS": "archviz summary resn",
                            "COMP_CWORD": "2"})
    assert "plain,resnet18" in r.stdout.splitlines() and "plain,resnet50" in r.stdout.splitlines()
    r = subprocess.run([exe], cwd=work, capture_output=True, text=True, check=True,
                       env={**e, "_ARCHVIZ_COMPLETE": "bash_complete", "COMP_WORDS": "archviz su",
                            "COMP_CWORD": "1"})
    assert "plain,summary" in r.stdout.splitlines()


def test_unknown_name_names_the_close_ones(env):
    r = archviz(env, "summary", "resnet19", rc=1)
    assert "E0106" in r.stderr and "resnet18" in r.stderr and "archviz zoo" in r.stderr
