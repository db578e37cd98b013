"""docs/example.ipynb runs in a real Jupyter kernel (nbclient + ipykernel) and every output is
what the model says: the summary as HTML with foldable blocks, the diagram as SVG, receptive
fields, a comparison and a derivation. Expected numbers: torchvision's resnet18 figure
(11,689,512 params) and hand derivations written here."""
from __future__ import annotations

import os
import shutil

import pytest

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "docs", "example.ipynb")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    work = tmp_path_factory.mktemp("nb")            # outside the clone: names are bundled specs
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = ROOT + (os.pathsep + env_path if env_path else "")
    try:
        NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        if env_path:
            os.environ["PYTHONPATH"] = env_path
        else:
            os.environ.pop("PYTHONPATH", None)
    return [c for c in nb.cells if c.cell_type == "code"]


def _data(cell, mime):
    outs = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
    assert outs, cell.source
    return outs[-1]["data"].get(mime, "")


def test_no_errors(executed):
    for c in executed:
        assert not [o for o in c.outputs if o.output_type == "error"], c.source


def test_model_shows_its_summary(executed):
    html = _data(executed[0], "text/html")
    assert "<h1>resnet18</h1>" in html and "11,689,512" in html and "1,814,073,344" in html
    assert html.count("<details") == 4 + 8          # layer1..4, each with its two copies
    assert 'data-id="layer1"' in html


def test_draw_is_svg(executed):
    if not shutil.which("dot"):
        pytest.skip("needs Graphviz's dot")
    svg = _data(executed[1], "image/svg+xml")
    assert svg.lstrip().startswith("<svg") and "conv1" in svg


def test_rf_compare_explain(executed):
    rf = _data(executed[2], "text/html")
    assert "conv.2.conv" in rf and "<td style='text-align:right'>7</td>" in rf     # 1 + 3·(3 − 1) = 7
    cmp_ = _data(executed[3], "text/html")
    assert "27/49" in cmp_                  # three 3×3: 27·C², one 7×7: 49·C²
    ex = _data(executed[4], "text/html")
    assert "conv1  (conv2d)" in ex and "64 × 3 × 7 × 7 = 9,408" in ex
    assert _data(executed[5], "text/plain") == "(11689512, 1814073344)"
