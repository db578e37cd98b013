"""Every subcommand's --help shows examples, and the examples work: each one parses, and
those that need neither torch nor a file of the user's run (in a scratch folder)."""
from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from archviz.cli import main

# examples that need torch or run long: parsed, not run here (the torch suite runs these commands)
NOT_RUN = {"export", "verify", "bench", "train-smoke", "report", "gallery", "import"}   # import: a torch model (tests/importer)


def examples(name: str) -> list[list[str]]:
    cmd = main.commands[name]
    with click.Context(cmd, info_name=name) as ctx:
        text = cmd.get_help(ctx)
    assert "Examples:" in text, f"`archviz {name} --help` shows no example"
    out = []
    for line in text.split("Examples:", 1)[1].splitlines():
        line = line.strip()
        if not line.startswith("archviz "):
            continue
        line = line.split("#")[0].split("&&")[0].split(">")[0].split("|")[0]
        out.append(shlex.split(line)[1:])
    assert out, name
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A scratch folder with the user's own spec the examples name (my_net.yaml)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_net.yaml").write_text(
        "archviz: 1\nname: my_net\nparams: {num_classes: 3}\ninputs: {x: {shape: [4]}}\n"
        "nodes:\n  - {id: fc, op: linear, out: '${num_classes}'}\n")
    return tmp_path


@pytest.mark.parametrize("name", sorted(main.commands))
def test_help_has_examples_that_parse(name, scratch):
    for argv in examples(name):
        cmd = main.commands[argv[0]]           # an example may show a neighbouring command
        cmd.make_context(argv[0], argv[1:])    # raises a UsageError for a bad option


@pytest.mark.parametrize("name", sorted(set(main.commands) - NOT_RUN))
def test_examples_run(name, scratch):
    for argv in examples(name):
        if argv[0] in NOT_RUN:
            continue
        r = CliRunner().invoke(main, argv)
        assert r.exit_code == 0, (argv, r.output)


def test_main_help_has_examples():
    r = CliRunner().invoke(main, ["--help"])
    assert "Examples:" in r.output

