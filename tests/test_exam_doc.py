"""docs/exam.md is true: every `archviz ...` command it shows runs (exit 0), and every number
in bold appears in what the commands of its table row or paragraph print."""
from __future__ import annotations

import os
import re
import shlex

import pytest
from click.testing import CliRunner

from archviz.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "exam.md")
COMMAND = re.compile(r"`(archviz [^`]+)`")
BOLD = re.compile(r"\*\*(.+?)\*\*")
WRITES = ("-o", "--plot")


def units() -> list[tuple[str, list[str], list[str]]]:
    """(first words, commands, bold values) of every table row and paragraph / list item."""
    text = open(DOC, encoding="utf-8").read()
    blocks, cur = [], []
    for line in text.splitlines():
        starts = line.startswith(("|", "- ", "#")) or not line.strip()
        if starts and cur:
            blocks.append(" ".join(cur))
            cur = []
        if line.strip() and not line.startswith("#"):
            cur.append(line.strip())
    if cur:
        blocks.append(" ".join(cur))
    out = []
    for b in blocks:
        cmds, bold = COMMAND.findall(b), BOLD.findall(b)
        if cmds or bold:
            out.append((b[:60], cmds, bold))
    return out


UNITS = units()
_outputs: dict[str, str] = {}


def run(cmd: str, tmp: str) -> str:
    if cmd in _outputs:
        return _outputs[cmd]
    args = shlex.split(cmd)[1:]
    for i, a in enumerate(args[:-1]):
        if a in WRITES:
            args[i + 1] = os.path.join(tmp, args[i + 1])
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        r = CliRunner().invoke(main, args, env={"COLUMNS": "250"})
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, f"{cmd}\n{r.output}"
    for i, a in enumerate(args[:-1]):
        if a in WRITES:
            assert os.path.getsize(args[i + 1]) > 0, f"{cmd} wrote nothing"
    _outputs[cmd] = r.output
    return r.output


def test_the_page_has_commands_and_numbers():
    assert sum(len(c) for _, c, _ in UNITS) >= 40 and sum(len(b) for _, _, b in UNITS) >= 50


@pytest.mark.parametrize("head,cmds,bold", UNITS, ids=[u[0][:40] for u in UNITS])
def test_every_command_prints_the_numbers_quoted(head, cmds, bold, tmp_path):
    assert cmds, f"bold values {bold} with no command to check them against"
    printed = " ".join(" ".join(run(c, str(tmp_path)).split()) for c in cmds)
    for b in bold:
        assert " ".join(b.split()) in printed, f"{b!r} is not in the output of {cmds}"
