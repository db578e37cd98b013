"""Long tables are laid out as aligned text (rich took about 1 ms a row: a 6,000-row `rf`
table ran past the fuzz campaign's 5 s). Same rows, same columns, same totals."""
from __future__ import annotations

import textwrap

from click.testing import CliRunner

from archviz.backends.report import LARGE_TABLE
from archviz.cli import main

CHAIN = """\
    archviz: 1
    name: chain
    inputs:
      x: {shape: [2, 16, 16]}
    nodes:
      - {id: c, op: conv2d, out: 2, kernel: 3, padding: 1, repeat: N}
    """


def run(tmp_path, n, *args):
    p = tmp_path / f"c{n}.yaml"
    p.write_text(textwrap.dedent(CHAIN).replace("N", str(n)))
    r = CliRunner().invoke(main, [*args[:1], str(p), *args[1:]])
    assert r.exit_code == 0, r.output
    return r.stdout.splitlines()


def test_a_long_summary_is_aligned_text_with_every_row_and_the_totals(tmp_path):
    n = LARGE_TABLE + 1
    lines = run(tmp_path, n, "summary")
    assert lines[0] == "chain  —  batch 1, input x (1, 2, 16, 16)"
    assert lines[1].split() == ["id", "op", "output", "shape", "params", "MACs", "RF"]
    rows = [l for l in lines if l.startswith("c.")]
    assert [r.split()[0] for r in rows] == [f"c.{k}" for k in range(n)]
    # conv 2→2, 3×3: 2·2·9 + 2 = 38 params and 2·2·9·16·16 = 9,216 MACs each; RF 1 + 2(k+1)
    last = rows[-1].split()
    assert last[-3:] == ["38", "9,216", f"{1 + 2 * n}×{1 + 2 * n}"]
    total = next(l for l in lines if l.startswith("total")).split()
    assert total == ["total", f"{38 * n:,}", f"{9216 * n:,}"]
    # aligned: every row's params column ends where the header's does
    end = lines[1].index("params") + len("params")
    assert all(r[:end].endswith("38") for r in rows)


def test_a_short_summary_keeps_the_rich_table(tmp_path):
    lines = run(tmp_path, 3, "summary")
    assert any(l.startswith("┏") for l in lines)


def test_a_long_rf_table_has_every_row(tmp_path):
    n = LARGE_TABLE + 1
    lines = run(tmp_path, n, "rf")
    rows = [l.split() for l in lines if l.startswith("c.")]
    assert len(rows) == n and rows[-1][6] == str(1 + 2 * n)      # id, op, shape (4 words), size


def test_a_long_table_reads_the_same_whether_rich_prints_it_or_it_is_written_straight(tmp_path):
    # a pipe gets the text written as it is (issue 17: rich's pass over a 10,000-line text cost
    # more than the analysis); a recording console still goes through rich: same characters
    import io

    from rich.console import Console

    from archviz.backends.report import print_table
    cols = [("id", "left"), ("size", "right")]
    rows = [(f"n{k}", f"{k}×{k}") for k in range(LARGE_TABLE + 1)]
    piped = io.StringIO()
    print_table(Console(file=piped, width=160), "t — title", cols, rows, footer=("total", "9"), caption="c")
    rec = Console(file=io.StringIO(), width=160, record=True)
    print_table(rec, "t — title", cols, rows, footer=("total", "9"), caption="c")
    assert piped.getvalue() == rec.export_text()
    assert piped.getvalue().splitlines()[-3:] == ["─────  ───────", "total        9", "c"]   # 400×400: 7 wide
