"""HTML views of an analysed model: the summary with collapsible blocks (for notebooks and
the report pages), and the self-contained report page (table, diagram, node details).

Blocks collapse with <details> elements, so the table works without JavaScript (a notebook
that does not run scripts still folds and unfolds it). The report page adds a small script,
inline: sortable columns and the details of a node when the pointer is over it or it is
clicked, in the diagram or in the table. Nothing is loaded from the network.

Only reads the analysed model (rows, totals, receptive fields, explain text); never
recomputes a number.
"""
from __future__ import annotations

import json
from html import escape

from archviz.ops.base import fmt_shape

COLS = ("id", "op", "output shape", "params", "MACs", "RF")

CSS = """
.av{font:13px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1b1f24}
.av h1{font-size:20px;margin:4px 0}.av h2{font-size:15px;margin:18px 0 6px}
.av .doc{color:#444;max-width:70em;margin:4px 0 10px}
.av-table{border:1px solid #d0d7de;border-radius:6px;max-width:72em}
.av-table details,.av-table summary,.av-items,.av-sub{display:block}
.av-table .av-row{display:grid;grid-template-columns:minmax(10em,2.2fr) minmax(7em,1.3fr) minmax(9em,1.4fr) minmax(6em,1fr) minmax(8em,1.2fr) minmax(8em,1fr)}
.av-row>span{padding:2px 8px;border-top:1px solid #eaeef2;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.av-row>span.n{text-align:right;font-variant-numeric:tabular-nums}
.av-row>span.rf{white-space:normal;text-align:right}
.av-head>span{font-weight:600;background:#f6f8fa;border-top:none;user-select:none}
.av-total>span{font-weight:600;background:#f6f8fa}
.av summary{cursor:pointer;list-style:none}.av summary::-webkit-details-marker{display:none}
.av summary>span:first-child::before{content:'\\25B8  ';color:#57606a}
.av details[open]>summary>span:first-child::before{content:'\\25BE  '}
.av-row.sel>span{background:#fff8c5}
.av .op{color:#8250df}
.av-totals{border-collapse:collapse;margin-top:8px;font-size:inherit}.av-totals td,.av-totals th{padding:1px 10px 1px 0}
.av-totals td.n{text-align:right;font-variant-numeric:tabular-nums}
"""

PAGE_CSS = """
body{margin:16px;background:#fff}
.av-head>span[data-key]{cursor:pointer}.av-head>span[data-key]:hover{background:#eaeef2}
.av-head>span.asc::after{content:' \\25B4'}.av-head>span.desc::after{content:' \\25BE'}
.av-layout{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
.av-diagram{flex:1 1 420px;max-width:100%;overflow:auto;border:1px solid #d0d7de;border-radius:6px;max-height:88vh}
.av-diagram svg{max-width:100%;height:auto}
.av-diagram g.node{cursor:pointer}.av-diagram g.node.sel>*:not(text){stroke:#bf8700;stroke-width:3px}
#av-details{position:sticky;top:8px;flex:1 1 380px;max-width:46em;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;background:#fbfbfc;min-height:6em}
#av-details pre{white-space:pre-wrap;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:6px 0 0}
#av-details dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:4px 0}
#av-details dt{color:#57606a}#av-details dd{margin:0;font-variant-numeric:tabular-nums}
.av-warn{color:#9a6700}
.av-index td,.av-index th{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:left}
.av-index td.n,.av-index th.n{text-align:right;font-variant-numeric:tabular-nums}
.av-index th{background:#f6f8fa;cursor:pointer;user-select:none}
"""

# Sorting (top-level rows only; blocks keep their members in spec order), and the details
# of a node (diagram or table) on hover and click. No library, no network.
SCRIPT = r"""
(function(){
const data = JSON.parse(document.getElementById('av-data').textContent);
const panel = document.getElementById('av-details');
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function fmt(n){return Number(n).toLocaleString('en-US');}
function lookup(id){
  if(!id) return null;
  if(data.nodes[id]) return [id, data.nodes[id]];
  id = id.split('#')[0].split(':')[0];
  if(data.nodes[id]) return [id, data.nodes[id]];
  let best = null;
  for(const k in data.nodes){ if(id.startsWith(k + '.') && (!best || k.length > best.length)) best = k; }
  return best ? [best, data.nodes[best]] : null;
}
window.archvizLookup = lookup;
let pinned = null;
function show(id, pin){
  const hit = lookup(id);
  if(!hit){
    if(pin) pinned = null;
    panel.innerHTML = '<b>' + esc(id) + '</b><p>This box is a part of the picture (a time step, a ' +
      'legend), not one layer: the table lists the layers.</p>';
    return false;
  }
  const [key, d] = hit;
  if(pin) pinned = key;
  panel.innerHTML = '<b>' + esc(key) + '</b> <span class="op">' + esc(d.op) + '</span>' +
    '<dl><dt>output shape</dt><dd data-field="shape">' + esc(d.shape) + '</dd>' +
    '<dt>params</dt><dd data-field="params">' + fmt(d.params) + '</dd>' +
    '<dt>MACs</dt><dd data-field="macs">' + fmt(d.macs) + '</dd>' +
    '<dt>receptive field</dt><dd data-field="rf">' + esc(d.rf) + '</dd>' +
    (d.layers > 1 ? '<dt>layers</dt><dd>' + d.layers + '</dd>' : '') + '</dl>' +
    (d.explain ? '<pre data-field="explain">' + esc(d.explain) + '</pre>' : '') +
    (pin ? '<p><small>pinned: click another node to change</small></p>' : '');
  document.querySelectorAll('.sel').forEach(e => e.classList.remove('sel'));
  document.querySelectorAll('[data-id="' + CSS.escape(key) + '"]').forEach(e => {
    const row = e.matches('.av-row') ? e : e.querySelector(':scope > .av-row');
    (row || e).classList.add('sel');
  });
  document.querySelectorAll('.av-diagram g.node').forEach(g => {
    const t = g.querySelector('title');
    const h = t && lookup(t.textContent);
    if(h && h[0] === key) g.classList.add('sel');
  });
  return true;
}
document.querySelectorAll('.av-diagram g.node').forEach(g => {
  const t = g.querySelector('title');
  if(!t) return;
  g.addEventListener('mouseenter', () => { if(!pinned) show(t.textContent, false); });
  g.addEventListener('click', ev => { ev.preventDefault(); show(t.textContent, true); });
});
document.querySelectorAll('.av-row[data-id]').forEach(r => {
  r.addEventListener('mouseenter', () => { if(!pinned) show(r.dataset.id, false); });
  r.addEventListener('click', () => show(r.dataset.id, true));
});
document.querySelectorAll('.av-table').forEach(table => {
  const items = table.querySelector('.av-items');
  table.querySelectorAll('.av-head > span[data-key]').forEach(h => {
    h.addEventListener('click', () => {
      const key = h.dataset.key, asc = !h.classList.contains('asc');
      table.querySelectorAll('.av-head > span').forEach(x => x.classList.remove('asc', 'desc'));
      h.classList.add(asc ? 'asc' : 'desc');
      const num = key !== 'id' && key !== 'op';
      const rows = Array.from(items.children);
      rows.sort((a, b) => {
        let x = a.dataset[key], y = b.dataset[key];
        if(num){ x = Number(x); y = Number(y); return asc ? x - y : y - x; }
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(r => items.appendChild(r));
    });
  });
});
document.querySelectorAll('table.av-index').forEach(t => {
  t.querySelectorAll('th').forEach((h, i) => h.addEventListener('click', () => {
    const asc = !h.classList.contains('asc');
    t.querySelectorAll('th').forEach(x => x.classList.remove('asc', 'desc'));
    h.classList.add(asc ? 'asc' : 'desc');
    const body = t.tBodies[0], rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = a.cells[i].dataset.v ?? a.cells[i].textContent, y = b.cells[i].dataset.v ?? b.cells[i].textContent;
      const nx = Number(x), ny = Number(y);
      const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(r => body.appendChild(r));
  }));
});
})();
"""


# --------------------------------------------------------------------------- the data

def _rows_by_depth(model):
    """{depth: {row id: Row}} for every depth that groups something, and the deepest depth."""
    from archviz.backends.report import rows
    deepest = max((l.id.count(".") + 1 for l in model.layers), default=1)
    return {d: {r.id: r for r in rows(model, d)} for d in range(1, deepest + 1)}, deepest


def _rf_by_depth(model, deepest):
    from archviz.backends.report import _rf_texts
    out = {}
    for d in range(1, deepest + 1):
        texts, _ = _rf_texts(model, d)
        out[d] = texts
    return out


class _Tree:
    """The layers as a tree of dotted ids: layer1 > layer1.0 > layer1.0.conv1. A row at depth
    d is one of report.rows(model, d); its children are the rows at depth d + 1 whose ids
    have one part more and start with its id."""

    def __init__(self, model):
        self.by_depth, self.deepest = _rows_by_depth(model)
        self.rf = _rf_by_depth(model, self.deepest)
        self.top = list(self.by_depth[1])
        self.children: dict = {}
        for d in range(2, self.deepest + 1):
            for rid in self.by_depth[d]:
                if rid.count(".") + 1 == d:
                    self.children.setdefault(rid.rsplit(".", 1)[0], []).append(rid)

    def row(self, rid):
        d = rid.count(".") + 1
        return self.by_depth[d][rid], self.rf[d].get(rid, "")


def node_payload(model, explain: bool = True) -> dict:
    """{id: {op, shape, params, macs, rf, layers, explain}} for every layer and every block
    (a block's numbers are its layers' sums, its shape its last layer's): what the report
    page shows for a node of the diagram or a row of the table."""
    from archviz.backends.explain import explain_node
    tree = _Tree(model)
    out = {}
    counts: dict = {}
    for l in model.layers:
        parts = l.id.split(".")
        for k in range(1, len(parts)):
            counts[".".join(parts[:k])] = counts.get(".".join(parts[:k]), 0) + 1
    for d, rows in tree.by_depth.items():
        for rid, r in rows.items():
            if rid in out:
                continue
            rf = tree.rf[d].get(rid, "")
            out[rid] = {"op": r.label, "shape": fmt_shape(r.output_shape), "params": r.params, "macs": r.macs,
                        "rf": rf, "layers": counts.get(rid, 1)}
    if explain:
        for l in model.layers:
            out[l.id]["explain"] = "\n".join(explain_node(model, l.id))
    for oname, ref in model.graph.outputs.items():      # the diagrams' output:NAME boxes
        src = out.get(ref.node)
        if src is not None:
            shape = fmt_shape(model.output_shapes[oname])
            out.setdefault(f"output:{oname}", {**src, "op": f"output (from {ref})", "shape": shape, "params": 0,
                                                "macs": 0, "layers": 0, "explain": f"graph output '{oname}' "
                                                f"{shape}: the output of {ref}"})
    for nid, v in model.input_shapes.items():
        out.setdefault(nid, {"op": "input", "shape": fmt_shape(v), "params": 0, "macs": 0, "rf": "1",
                             "layers": 0, "explain": f"graph input '{nid}' {fmt_shape(v)}"})
    return out


# --------------------------------------------------------------------------- the table

def _cells(rid, r, rf, depth) -> str:
    pad = f' style="padding-left:{8 + 14 * (depth - 1)}px"' if depth > 1 else ""
    short = rid.split(".")[-1] if depth > 1 else rid
    return (f'<span{pad} title="{escape(rid)}">{escape(short)}</span><span class="op">{escape(r.label)}</span>'
            f'<span>{escape(fmt_shape(r.output_shape))}</span><span class="n">{escape(r.params_cell)}</span>'
            f'<span class="n">{r.macs:,}</span><span class="rf">{escape(rf).replace("×", "×<wbr>")}</span>')


def _data_attrs(rid, r, index) -> str:
    return (f'data-id="{escape(rid)}" data-index="{index}" data-op="{escape(r.label)}" '
            f'data-params="{r.params}" data-macs="{r.macs}" data-shape="{escape(fmt_shape(r.output_shape))}"')


def _item(tree, rid, depth, index, open_=False) -> str:
    r, rf = tree.row(rid)
    kids = tree.children.get(rid)
    if not kids:
        return f'<div class="av-row av-item" {_data_attrs(rid, r, index)}>{_cells(rid, r, rf, depth)}</div>'
    inner = "".join(_item(tree, k, depth + 1, i) for i, k in enumerate(kids))
    return (f'<details class="av-item" {_data_attrs(rid, r, index)}{" open" if open_ else ""}>'
            f'<summary class="av-row" data-id="{escape(rid)}">{_cells(rid, r, rf, depth)}</summary>'
            f'<div class="av-sub">{inner}</div></details>')


def table_html(model) -> str:
    """The layer table: one row per top-level layer or block; a block unfolds to its members."""
    tree = _Tree(model)
    t = model.totals
    # sortable: id and op (text), params and MACs (numbers)
    head = "".join(f'<span{f" data-key={k}" if k in ("id", "op", "params", "macs") else ""}'
                   f'{" class=n" if k in ("params", "macs", "rf") else ""}>{escape(c)}</span>'
                   for c, k in zip(COLS, ("id", "op", "shape", "params", "macs", "rf")))
    items = "".join(_item(tree, rid, 1, i) for i, rid in enumerate(tree.top))
    total = (f'<div class="av-row av-total"><span>total</span><span></span><span></span>'
             f'<span class="n" data-total="params">{t["params"]:,}</span>'
             f'<span class="n" data-total="macs">{t["macs"]:,}</span><span></span></div>')
    return (f'<div class="av-table"><div class="av-row av-head">{head}</div>'
            f'<div class="av-items">{items}</div>{total}</div>')


def totals_html(model) -> str:
    from archviz.backends.report import totals_lines
    rows = "".join(f"<tr><td>{escape(k)}</td><td class=n>{escape(v)}</td></tr>" for k, v in totals_lines(model))
    return f'<table class="av-totals">{rows}</table>'


def _head(model) -> str:
    ins = ", ".join(f"{k} {fmt_shape(v)}" for k, v in model.input_shapes.items())
    doc = f'<div class="doc">{escape(" ".join((model.graph.doc or "").split()))}</div>' if model.graph.doc else ""
    return f"<h1>{escape(model.name)}</h1>{doc}<div>batch {model.batch}, input {escape(ins)}</div>"


def _warnings_html(model) -> str:
    if not model.warnings:
        return ""
    items = "".join(f"<li>{escape(w.code)}: {escape(w.message)}</li>" for w in model.warnings)
    return f'<ul class="av-warn">{items}</ul>'


def summary_html(model) -> str:
    """The notebook view (Model._repr_html_): heading, table with collapsible blocks, totals.
    Works without scripts."""
    return (f'<div class="av"><style>{CSS}</style>{_head(model)}{_warnings_html(model)}'
            f'{table_html(model)}{totals_html(model)}</div>')


# --------------------------------------------------------------------------- pages

def _json_script(data) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def strip_svg(svg: str) -> str:
    """Graphviz's SVG without the XML prolog and doctype, to sit inline in a page."""
    i = svg.find("<svg")
    return svg[i:] if i >= 0 else svg


def page_html(model, svg: str | None, explain: bool = True, diagram_note: str | None = None) -> str:
    """A self-contained report page: everything inline (style, data, script, diagram)."""
    data = {"name": model.name, "totals": model.totals, "nodes": node_payload(model, explain)}
    if svg:
        diagram = f'<div class="av-diagram">{strip_svg(svg)}</div>'
    else:
        diagram = f'<div class="av-diagram"><p>{escape(diagram_note or "no diagram")}</p></div>'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(model.name)} — archviz</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{CSS}{PAGE_CSS}</style></head><body><div class=\"av\">"
        f'<p><a href="index.html">all specs</a></p>{_head(model)}{_warnings_html(model)}'
        "<h2>Layers</h2><p><small>Click a heading to sort; click ▸ to unfold a block; point at or click a "
        "row or a box of the diagram for its details.</small></p>"
        f"{table_html(model)}{totals_html(model)}"
        f'<h2>Diagram</h2><div class="av-layout">{diagram}<div id="av-details"><small>Point at a box of the '
        "diagram or a row of the table.</small></div></div>"
        f'<script type="application/json" id="av-data">{_json_script(data)}</script>'
        f"<script>{SCRIPT}</script></div></body></html>\n")


def index_html(entries, failures=()) -> str:
    """outputs/index.html: every spec of the run with its totals, linking to its page."""
    from archviz.backends.families import family_name
    rows = []
    for stem, m, layout in entries:
        t = m.totals
        outs = ", ".join(fmt_shape(v) for v in m.output_shapes.values())
        rows.append(f'<tr><td data-v="{escape(stem)}"><a href="{escape(stem)}.html">{escape(stem)}</a></td>'
                    f"<td>{escape(family_name(layout))}</td>"
                    f'<td class=n data-v="{len(m.layers)}">{len(m.layers):,}</td>'
                    f'<td class=n data-v="{t["params"]}">{t["params"]:,}</td>'
                    f'<td class=n data-v="{t["macs"]}">{t["macs"]:,}</td><td>{escape(outs)}</td></tr>')
    fail = ""
    if failures:
        fail = "<h2>Failed</h2><ul class=\"av-warn\">" + "".join(
            f"<li>{escape(str(p))}: {escape(e.code)} {escape(e.message)}</li>" for p, e, _ in failures) + "</ul>"
    head = "".join(f"<th{' class=n' if n else ''}>{h}</th>" for h, n in (
        ("spec", 0), ("family", 0), ("layers", 1), ("params", 1), ("MACs", 1), ("output", 0)))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>archviz report</title>"
            f"<style>{CSS}{PAGE_CSS}</style></head><body><div class=\"av\"><h1>archviz report</h1>"
            f"<p>{len(entries)} specs. Click a heading to sort.</p>"
            f'<table class="av-index"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'{fail}<script type="application/json" id="av-data">{{"nodes":{{}}}}</script>'
            f'<div id="av-details" hidden></div><script>{SCRIPT}</script></div></body></html>\n')
