"""Tables sent to a file or a pipe are written without rich where the text is plain (issue 17,
item 5: archviz.plain_console); what is written must be exactly what rich writes. Each table
command is run both ways (the plain console, and rich's console alone) and the text compared."""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import archviz.plain_console as PC
from archviz.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml"))) + \
    sorted(glob.glob(os.path.join(ROOT, "tests", "render", "specs", "*.yaml")))
COMMANDS = (["summary"], ["rf"], ["summary", "--depth", "1"])


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A DAG of 600 layers: its tables are aligned text (report.LARGE_TABLE), the plain case."""
    from tests.benchmarks.gen_specs import KINDS
    p = tmp_path_factory.mktemp("big") / "dag600.yaml"
    p.write_text(KINDS["dag"](600))
    return str(p)


def _both(monkeypatch, args, columns=160, charset="utf-8") -> tuple[str, str, int]:
    """(text through the plain console, text through rich alone, lines the plain console wrote)."""
    written = []
    real = PC.PlainConsole._plain

    def counting(self, objects, options):
        text = real(self, objects, options)
        written.append(text is not None)
        return text
    monkeypatch.setattr(PC.PlainConsole, "_plain", counting)
    monkeypatch.setattr(PC, "rich_decides", lambda: False)      # (a notebook test may have run an IPython shell)
    env = {"COLUMNS": str(columns)}
    runner = CliRunner(charset=charset)
    plain = runner.invoke(main, args, env=env)
    assert plain.exit_code == 0, plain.output
    with monkeypatch.context() as m:
        m.setattr(PC, "table_console", lambda make_rich, stderr=False: make_rich())
        rich = runner.invoke(main, args, env=env)
    assert rich.exit_code == 0, rich.output
    return plain.stdout_bytes.decode(charset), rich.stdout_bytes.decode(charset), sum(written)


@pytest.mark.parametrize("columns", [160, 90])
@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_bundled_spec(monkeypatch, cmd, columns):
    written = 0
    for spec in SPECS:
        plain, rich, n = _both(monkeypatch, [cmd[0], spec, *cmd[1:]], columns)
        assert plain == rich, spec
        written += n > 0
    # most tables were drawn without rich (archviz.backends.boxed); at 90 columns many are too wide
    assert written > (len(SPECS) // 2 if columns == 160 else 5)


def test_boxed_tables_against_rich():
    # tables, titles and captions made at random (spaces, runs of spaces, long words, the
    # characters archviz prints), drawn by boxed_text and by rich.Table at random widths
    import io
    import random

    from rich.console import Console
    from rich.table import Table

    from archviz.backends.boxed import boxed_text
    rnd = random.Random(17)
    alphabet = "ab c  dé—×↔σ─1,.()"

    def text(n, strip=True):     # cells and titles as archviz makes them: no space at either end
        t = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, n)))
        return t.strip() if strip else t
    drawn = 0
    for _ in range(400):
        ncol = rnd.randint(1, 4)
        columns = [(text(6) or "h", rnd.choice(["left", "right", "center"])) for _ in range(ncol)]
        rows = [tuple(text(8) for _ in range(ncol)) for _ in range(rnd.randint(1, 4))]
        footer = tuple(text(5) for _ in range(ncol)) if rnd.random() < 0.5 else None
        title = text(40) if rnd.random() < 0.7 else None
        caption = text(120, strip=rnd.random() < 0.5) if rnd.random() < 0.6 else None
        style = {"caption_justify": rnd.choice(["left", "center"])}
        width = rnd.randint(20, 120)
        con = Console(file=io.StringIO(), width=width, highlight=False)
        table = Table(title=title, show_footer=footer is not None, caption=caption, **style)
        for i, (name, justify) in enumerate(columns):
            table.add_column(name, justify=justify, footer=footer[i] if footer else "")
        for r in rows:
            table.add_row(*r)
        con.print(table)
        got = boxed_text(con, title, columns, rows, footer, caption, **style)
        if got is not None:
            drawn += 1
            assert got + "\n" == con.file.getvalue(), (columns, rows, footer, title, caption, width)
    assert drawn > 100


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("columns,charset", [(160, "utf-8"), (72, "utf-8"), (30, "utf-8"), (160, "ascii")])
def test_aligned_tables(monkeypatch, big, cmd, columns, charset):
    plain, rich, n = _both(monkeypatch, [cmd[0], big, *cmd[1:]], columns, charset)
    assert plain == rich
    if cmd[0] == "summary" and columns >= 72:
        assert n > 0            # the totals were written plain (at 30 columns rich wraps them)
    if charset == "ascii":
        assert plain.isascii() and "x" in plain


def test_a_resnet_at_narrow_widths(monkeypatch):
    for columns in (100, 60, 40):
        for cmd in COMMANDS:
            plain, rich, _ = _both(monkeypatch, [cmd[0], os.path.join(ROOT, "specs", "resnet18.yaml"), *cmd[1:]],
                                   columns)
            assert plain == rich, (cmd, columns)


def test_what_the_plain_console_leaves_to_rich():
    import io
    made = []
    con = PC.PlainConsole(lambda: made.append(1) or _RichStub(), io.StringIO(), 20)
    con.print("plain text", markup=False, highlight=False)
    assert con.file.getvalue() == "plain text\n" and not made
    for objects, options in [(("[b]x[/b]",), {}),                      # markup
                             (("a :smile: b",), {"markup": False}),     # an emoji name
                             (("a\tb",), {"markup": False}),            # a tab (rich expands it)
                             (("x" * 21,), {"markup": False}),          # wider than the console: wrapped
                             (("漢字",), {"markup": False}),             # wide characters
                             ((1,), {}), (("a", "b"), {}),              # not one string
                             (("a",), {"markup": False, "style": "bold"})]:
        assert con._plain(objects, options) is None, objects
    assert con._plain(("x" * 21,), {"markup": False, "soft_wrap": True}) == "x" * 21 + "\n"


class _RichStub:
    def print(self, *a, **k):
        pass


def test_where_rich_decides(monkeypatch):
    import builtins
    monkeypatch.delattr(builtins, "get_ipython", raising=False)
    for k in PC._RICH_ENV:
        monkeypatch.delenv(k, raising=False)
    assert not PC.rich_decides()
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert PC.rich_decides()
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setattr(builtins, "get_ipython", lambda: None, raising=False)
    assert PC.rich_decides()


def test_narrow_characters_are_one_cell_for_rich():
    from rich.cells import cell_len
    assert all(cell_len(c) == 1 for c in PC.NARROW)
    latin = [chr(i) for i in range(0x300) if chr(i).isprintable()]
    assert all(cell_len(c) == 1 for c in latin)


def test_a_long_table_to_a_pipe_does_not_import_rich(big):
    code = ("import sys\nfrom archviz.cli import main\n"
            "try:\n    main([sys.argv[1], sys.argv[2]])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('RICH' if any(m.startswith('rich') for m in sys.modules) else 'NO RICH')\n")
    for cmd in ("summary", "rf"):
        r = subprocess.run([sys.executable, "-c", code, cmd, big], capture_output=True, text=True,
                           env={**{k: v for k, v in os.environ.items() if k not in PC._RICH_ENV},
                                "PYTHONPATH": ROOT}, timeout=120)
        assert r.stderr.endswith("NO RICH"), (cmd, r.stderr[-500:])
        assert "total" in r.stdout or cmd == "rf"
