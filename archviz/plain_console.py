"""A console for tables sent to a file or a pipe (issue 17, item 5): the lines it can print
exactly as rich would (plain text that fits the width), it writes itself; anything else (a
rich table, markup, a line rich would wrap) goes to a rich console made when first needed.
So `archviz summary` and `archviz rf` piped into a file do not import rich (40-60 ms) when
their table is laid out as aligned text (past report.LARGE_TABLE rows): the cost of a table
is then the cost of its data.

On a terminal, or where the environment asks rich for a terminal's output (FORCE_COLOR,
TTY_COMPATIBLE) or a notebook may be running, :func:`table_console` gives rich's console
itself.  tests/test_plain_console.py prints every bundled spec's tables both ways and
compares the text."""
from __future__ import annotations

import os
import re
import sys

# rich replaces :name: by an emoji (Console.print's emoji=True): such text goes to rich
_EMOJI = re.compile(r":\S*?:")
# characters other than Latin ones (below U+0300, where no character is wide or combining)
# that archviz prints and rich counts one cell wide (tests hold them against rich.cells)
NARROW = frozenset("—–×↔…σ−→←≤≥·°" "┏━┳┓┃┡╇┩│├─┼┤└┴┘")      # and rich's default table box
_RICH_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def fits(line: str) -> bool:
    """Every character of `line` printable and one cell wide as rich counts cells."""
    return line.isprintable() and all(c < "\u0300" or c in NARROW for c in line)


class PlainConsole:
    """What the table commands ask of a console, for a stream that is not a terminal."""
    is_terminal = False
    record = False

    def __init__(self, make_rich, file, width: int):
        self._make_rich, self._rich = make_rich, None
        self.file, self.width = file, width

    @property
    def rich(self):
        if self._rich is None:
            self._rich = self._make_rich()
        return self._rich

    def print(self, *objects, **options) -> None:
        text = self._plain(objects, options)
        if text is None:
            self.rich.print(*objects, **options)
        else:
            self.file.write(text)

    def _plain(self, objects, options) -> str | None:
        """The text rich would write for `objects`, or None where it is not plain to say."""
        if len(objects) != 1 or type(objects[0]) is not str or set(options) - {"markup", "highlight", "soft_wrap"}:
            return None
        from archviz.terminal import ascii_text
        text = ascii_text(objects[0], self.file)        # as ArchvizConsole.render_str spells it
        if options.get("markup", True) is not False and "[" in text:
            return None
        if options.get("highlight") or (":" in text and _EMOJI.search(text)):
            return None
        wrap = not options.get("soft_wrap")
        for line in text.split("\n"):
            if not fits(line) or (wrap and len(line) > self.width):
                return None
        return text + "\n"

    def __getattr__(self, name):        # anything else: rich's console
        return getattr(self.rich, name)


def table_console(make_rich, stderr: bool = False):
    """A PlainConsole for a stream that is no terminal, else the console `make_rich` makes."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = True
    if tty or rich_decides():
        return make_rich()
    return PlainConsole(make_rich, stream, int(os.environ.get("COLUMNS", 0) or 160))


def rich_decides() -> bool:
    """Where rich may write something else than plain text to a stream that is no terminal:
    the environment asks for a terminal's output, or an IPython shell (a notebook) or IDLE
    runs this process (rich.console's is_terminal and _is_jupyter)."""
    import builtins
    return any(k in os.environ for k in _RICH_ENV) or hasattr(builtins, "get_ipython") or \
        getattr(sys.stdin, "__module__", "").startswith("idlelib")
