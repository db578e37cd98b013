"""The HTML report (issue 15, item 3), in a real headless browser (Debian's chromium, driven
over the DevTools pipe by tests/browser.py): `archviz report` over every bundled spec writes
outputs/index.html and one self-contained page per spec. Each page is loaded; the DOM must
hold the spec's numbers (those of archviz.load, which the rest of the suite checks against
torch and the papers), the console must stay free of errors, nothing may be fetched from
the network, and the screenshot must not be blank. Pointing at and clicking a box of the
diagram, sorting and unfolding are done with real mouse events.

Without chromium the test is skipped locally and fails in CI (ARCHVIZ_CI=1), where
scripts/setup.sh installs it."""
from __future__ import annotations

import os
import re
import shutil

import pytest
from click.testing import CliRunner

import archviz
from archviz.backends.png import png_decode
from archviz.backends.report import rows
from archviz.cli import main
from archviz.library import library_dir, names

from tests.browser import Browser, find_chromium

pytestmark = pytest.mark.browser

if find_chromium() is None:
    if os.environ.get("ARCHVIZ_CI"):
        raise RuntimeError("chromium is missing: scripts/setup.sh installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)

SHOTS = os.environ.get("ARCHVIZ_SCREENSHOTS")     # a folder to keep the screenshots in, to look at


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    r = CliRunner().invoke(main, ["report", library_dir(), "-o", str(out), "--diagrams" if shutil.which("dot")
                                  else "--no-diagrams"])
    assert r.exit_code == 0, r.output
    return str(out)


@pytest.fixture(scope="module")
def browser():
    with Browser(1300, 900) as b:
        yield b


def _url(report, name):
    return "file://" + os.path.join(report, name)


def _not_blank(path_or_bytes):
    data = open(path_or_bytes, "rb").read() if isinstance(path_or_bytes, str) else path_or_bytes
    w, h, rgb = png_decode(data)
    px = {rgb[i:i + 3] for i in range(0, len(rgb), 3 * 97)}      # a sample of the pixels
    dark = sum(1 for i in range(0, len(rgb), 3 * 31) if sum(rgb[i:i + 3]) < 300)
    return w > 0 and h > 0 and len(px) > 8 and dark > 50


def _shot(page, report, name, tmp_path):
    path = os.path.join(SHOTS or str(tmp_path), name)
    page.screenshot(path)
    assert _not_blank(path), f"{name}: the screenshot is blank"


def test_self_contained(report):
    for f in os.listdir(report):
        if not f.endswith(".html"):
            continue
        text = open(os.path.join(report, f), encoding="utf-8").read()
        assert not re.search(r"<(link|img|iframe)\b", text), f
        assert not re.search(r"<script[^>]*\bsrc=", text), f
        # the only absolute URLs are XML namespaces of the inline SVG
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, (f, urls)


def test_index(report, browser, tmp_path):
    page = browser.open(_url(report, "index.html"))
    got = page.eval("Array.from(document.querySelectorAll('table.av-index tbody tr')).map(r => "
                    "[r.cells[0].textContent, r.cells[3].textContent, r.cells[4].textContent, "
                    "r.cells[0].querySelector('a').getAttribute('href')])")
    assert [g[0] for g in got] == names()
    for stem, params, macs, href in got:
        t = archviz.load(stem).totals
        assert (params, macs) == (f"{t['params']:,}", f"{t['macs']:,}")
        assert href == f"{stem}.html" and os.path.exists(os.path.join(report, href))
    # sorting by params, descending then ascending, with real clicks on the heading
    x, y = page.center_of("document.querySelectorAll('table.av-index th')[3]")
    page.click(x, y)
    asc = page.eval("Array.from(document.querySelectorAll('table.av-index tbody tr')).map(r => r.cells[0].textContent)")
    assert asc == sorted(names(), key=lambda n: archviz.load(n).totals["params"])
    page.click(x, y)
    desc = page.eval("Array.from(document.querySelectorAll('table.av-index tbody tr')).map(r => r.cells[0].textContent)")
    assert desc == asc[::-1]
    _shot(page, report, "index.png", tmp_path)
    assert page.errors == []


@pytest.mark.parametrize("name", names())
def test_every_page(report, browser, name, tmp_path):
    m = archviz.load(name)
    t = m.totals
    page = browser.open(_url(report, f"{name}.html"))
    dom = page.eval("""(() => ({
        title: document.querySelector('h1').textContent,
        params: document.querySelector('[data-total=params]').textContent,
        macs: document.querySelector('[data-total=macs]').textContent,
        top: Array.from(document.querySelector('.av-items').children).map(e => [e.dataset.id, e.dataset.params, e.dataset.macs]),
        svg: document.querySelectorAll('.av-diagram svg g.node').length,
        data: Object.keys(JSON.parse(document.getElementById('av-data').textContent).nodes),
    }))()""")
    assert dom["title"] == m.name
    assert (dom["params"], dom["macs"]) == (f"{t['params']:,}", f"{t['macs']:,}")
    assert dom["top"] == [[r.id, str(r.params), str(r.macs)] for r in rows(m, 1)]
    assert set(l.id for l in m.layers) <= set(dom["data"])
    if shutil.which("dot"):
        assert dom["svg"] > 0, "the diagram is not inline"
        # every box of a layer diagram leads to its numbers (unrolled recurrent pictures draw
        # time steps, which are not layers: their boxes say so)
        missing = page.eval("Array.from(document.querySelectorAll('.av-diagram g.node')).map(g => "
                            "g.querySelector('title').textContent).filter(t => !archvizLookup(t))")
        from archviz.backends.render import detect_layout
        if detect_layout(m) in ("graph", "residual", "unet"):
            assert set(missing) <= {"legend"}, missing
    _shot(page, report, f"{name}.png", tmp_path)
    assert page.errors == []


def _panel(page):
    return page.eval("(() => { const p = document.getElementById('av-details'); const f = k => "
                     "(p.querySelector('[data-field=' + k + ']') || {}).textContent; return {head: "
                     "(p.querySelector('b') || {}).textContent, shape: f('shape'), params: f('params'), "
                     "macs: f('macs'), rf: f('rf'), explain: f('explain')}; })()")


@pytest.mark.skipif(not shutil.which("dot"), reason="needs Graphviz for the diagram")
@pytest.mark.parametrize("name, node", [("resnet18", "conv1"), ("unet", "enc.0.conv.conv1"),
                                        ("transformer_encoder", "layers.0.self_attn"), ("alexnet_original", "norm1")])
def test_pointing_at_a_box_shows_its_numbers(report, browser, name, node, tmp_path):
    m = archviz.load(name)
    layer = m.layer(node)
    page = browser.open(_url(report, f"{name}.html"))
    box = f"Array.from(document.querySelectorAll('.av-diagram g.node')).find(g => g.querySelector('title').textContent === '{node}')"
    assert page.eval(f"!!({box})"), f"no box titled {node} in the diagram"
    x, y = page.center_of(box)
    page.hover(x, y)
    p = _panel(page)
    assert p["head"] == node and p["params"] == f"{layer.params.total:,}" and p["macs"] == f"{layer.macs:,}"
    assert p["shape"] == str(layer.output_shape)
    assert p["explain"].startswith(f"{node}  ({layer.op})")
    page.click(x, y)                      # pinned: pointing elsewhere keeps it
    page.hover(5, 5)
    assert _panel(page)["head"] == node
    assert page.eval(f"({box}).classList.contains('sel')")
    _shot(page, report, f"{name}-details.png", tmp_path)
    assert page.errors == []


def test_table_sorts_and_blocks_unfold(report, browser, tmp_path):
    m = archviz.load("resnet18")
    page = browser.open(_url(report, "resnet18.html"))
    order = "Array.from(document.querySelector('.av-items').children).map(e => e.dataset.id)"
    x, y = page.center_of("document.querySelector('.av-head [data-key=macs]')")
    page.click(x, y)
    top = rows(m, 1)
    assert page.eval(order) == [r.id for r in sorted(top, key=lambda r: r.macs)]
    page.click(x, y)
    assert page.eval(order) == [r.id for r in sorted(top, key=lambda r: -r.macs)]
    # unfold layer2: its two copies appear, each with its numbers
    members = "Array.from(document.querySelectorAll('details[data-id=layer2] > .av-sub > *')).map(e => " \
              "[e.dataset.id, e.dataset.params, e.checkVisibility()])"
    assert all(not vis for *_, vis in page.eval(members))
    x, y = page.center_of("document.querySelector('details[data-id=layer2] > summary')")
    page.click(x, y)
    got = page.eval(members)
    want = [[r.id, str(r.params), True] for r in rows(m, 2) if r.id.startswith("layer2.")]
    assert got == want
    # a row of the table shows its details too (a click pins them, as the click that unfolded layer2 did)
    x, y = page.center_of("document.querySelector('[data-id=\"layer2.0\"] > summary')")
    page.click(x, y)
    assert _panel(page)["params"] == f"{next(r for r in rows(m, 2) if r.id == 'layer2.0').params:,}"
    _shot(page, report, "resnet18-unfolded.png", tmp_path)
    assert page.errors == []
