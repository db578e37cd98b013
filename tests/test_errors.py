"""Every kind of spec mistake gets a compiler-style error: file:line:col, a stable code,
the source line with a caret, a hint; exit code 1 and no traceback. Usage errors exit 2."""
from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import (ArchvizError, ExpectError, ExpressionError, MultipleErrors, RefError, ShapeError,
                            SpecError)

HEAD = """archviz: 1
name: t
inputs:
  image: {shape: [3, 32, 32]}
nodes:
"""


def write(tmp_path, body, name="t.yaml", head=True):
    p = tmp_path / name
    p.write_text((HEAD if head else "") + textwrap.dedent(body))
    return str(p)


def cli_error(path, *args, cmd="summary"):
    r = CliRunner().invoke(main, [cmd, path, *args])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    return r.output


def col(path: str, lineno: int, needle: str) -> int:
    """1-based column where `needle` starts on line `lineno` of the file (read back)."""
    with open(path) as f:
        line = f.read().splitlines()[lineno - 1]
    return line.index(needle) + 1


def first_error(path):
    with pytest.raises(ArchvizError) as ei:
        archviz.load(path)
    e = ei.value
    return e.errors[0] if isinstance(e, MultipleErrors) else e


def test_yaml_syntax_error(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3\n")
    e = first_error(p)
    assert isinstance(e, SpecError) and e.code == "E0101" and "YAML syntax error" in e.message
    assert e.span.file == p and e.span.line >= 6
    out = cli_error(p)
    assert f"{p}:" in out and "error[E0101]" in out


def test_duplicate_key(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, out: 4}\n")
    e = first_error(p)
    assert e.code == "E0102" and "duplicate key 'out'" in e.message
    assert (e.span.line, e.span.col) == (6, col(p, 6, "out: 4"))
    assert any("first defined at" in n for n in e.notes)


@pytest.mark.parametrize("body,what", [
    ("  - &c {id: conv, op: conv2d, out: 8, kernel: 3}\n", "anchors"),
    ("  - {id: conv, op: conv2d, out: 8, kernel: 3}\n  - {id: c2, op: conv2d, out: 8, kernel: 3}\n"
     "outputs: {a: &x conv, b: *x}\n", "anchors"),
    ("  - {id: conv, op: conv2d, out: 8, kernel: 3, <<: {bias: false}}\n", "merge keys"),
])
def test_anchors_aliases_merge_keys(tmp_path, body, what):
    e = first_error(write(tmp_path, body))
    assert e.code == "E0103" and what in e.message and e.span is not None


def test_unknown_op_with_did_you_mean(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2, out: 8, kernel: 3}\n")
    e = first_error(p)
    assert e.code == "E0111" and "unknown op 'conv2'" in e.message
    assert (e.span.line, e.span.col) == (6, col(p, 6, "conv2,"))
    assert "conv2d" in e.hint
    out = cli_error(p)
    assert "6 | - {id: conv, op: conv2, out: 8, kernel: 3}" in out
    assert "\n  |                  ^^^^^\n" in out        # the caret under `conv2`
    assert "= help: did you mean 'conv2d'" in out


def test_unknown_attribute_and_missing_required(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernal: 3}\n")
    with pytest.raises(ArchvizError) as ei:
        archviz.load(p)
    errs = ei.value.errors if isinstance(ei.value, MultipleErrors) else [ei.value]
    codes = {x.code: x for x in errs}
    assert "unknown attribute 'kernal'" in codes["E0112"].message and "kernel" in codes["E0112"].hint
    assert (codes["E0112"].span.line, codes["E0112"].span.col) == (6, col(p, 6, "3}"))
    assert "missing required attribute 'kernel'" in codes["E0114"].message


def test_mistyped_attribute(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: eight, kernel: 3}\n")
    e = first_error(p)
    assert e.code == "E0113" and "'out'" in e.message and "expected an integer" in e.message
    assert (e.span.line, e.span.col) == (6, col(p, 6, "eight"))


def test_malformed_expression(tmp_path):
    p = write(tmp_path, '  - {id: conv, op: conv2d, out: "${8 *}", kernel: 3}\n')
    e = first_error(p)
    assert isinstance(e, ExpressionError) and e.code == "E0201" and "malformed expression" in e.message
    assert e.span.line == 6 and e.span.col > 33


def test_unknown_name_in_expression(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(HEAD.replace("nodes:", "params: {width: 8}\nnodes:")
                 + '  - {id: conv, op: conv2d, out: "${widht * 2}", kernel: 3}\n')
    e = first_error(str(p))
    assert e.code == "E0203" and "unknown name 'widht'" in e.message and "width" in e.hint
    assert (e.span.line, e.span.col) == (7, 36)


def test_reference_to_unknown_node(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3}\n  - {id: r, op: relu, in: cnov}\n")
    e = first_error(p)
    assert isinstance(e, RefError) and e.code == "E0301" and "unknown node 'cnov'" in e.message
    assert (e.span.line, e.span.col) == (7, col(p, 7, "cnov")) and "conv" in e.hint


def test_reference_to_unknown_port_of_a_block(tmp_path):
    body = """\
    archviz: 1
    name: t
    inputs: {image: {shape: [3, 32, 32]}}
    blocks:
      down:
        nodes:
          - {id: conv, op: conv2d, out: 8, kernel: 3, padding: 1}
          - {id: pool, op: maxpool2d, kernel: 2}
        outputs: {out: pool, skip: conv}
    nodes:
      - {id: enc, op: down, repeat: 2}
      - {id: r, op: relu, in: "enc[1].skp"}
    """
    p = write(tmp_path, body, head=False)
    e = first_error(p)
    assert e.code == "E0302" and e.message == "'enc[1]' has no output 'skp'"
    assert (e.span.line, e.span.col) == (12, 28)
    assert "out, skip" in e.hint
    assert any("calls block 'down' defined at" in n for n in e.notes)
    # an index past the copies
    p2 = write(tmp_path, body.replace('"enc[1].skp"', '"enc[2].skip"'), name="u.yaml", head=False)
    e2 = first_error(p2)
    assert e2.code == "E0303" and "2 copies" in e2.message


def test_cycle(tmp_path):
    p = write(tmp_path, """\
      - {id: a, op: add, in: [image, c]}
      - {id: b, op: relu, in: a}
      - {id: c, op: relu, in: b}
    """)
    e = first_error(p)
    assert e.code == "E0306" and "cycle" in e.message
    assert all(n in e.message for n in ("a", "b", "c"))
    cli_error(p, cmd="validate")


def test_add_shape_mismatch_names_both_shapes_and_producers(tmp_path):
    p = write(tmp_path, """\
      - {id: wide, op: conv2d, in: image, out: 16, kernel: 3, padding: 1}
      - {id: narrow, op: conv2d, in: image, out: 8, kernel: 3, padding: 1}
      - {id: sum, op: add, in: [wide, narrow]}
    """)
    e = first_error(p)
    assert isinstance(e, ShapeError) and "'sum' (add)" in e.message
    text = e.message + " ".join(e.notes)
    assert "(1, 16, 32, 32)" in text and "(1, 8, 32, 32)" in text
    assert "from 'wide'" in text and "from 'narrow'" in text
    assert e.span.line == 8


def test_concat_mismatch(tmp_path):
    p = write(tmp_path, """\
      - {id: full, op: conv2d, in: image, out: 4, kernel: 3, padding: 1}
      - {id: half, op: maxpool2d, in: image, kernel: 2}
      - {id: cat, op: concat, in: [full, half]}
    """)
    e = first_error(p)
    text = e.message + " ".join(e.notes)
    assert "(1, 4, 32, 32)" in text and "(1, 3, 16, 16)" in text and "'full'" in text and "'half'" in text


def test_window_larger_than_input(tmp_path):
    p = write(tmp_path, "  - {id: pool, op: maxpool2d, kernel: 40}\n")
    e = first_error(p)
    assert isinstance(e, ShapeError) and "larger than the padded input of 32" in e.message
    out = cli_error(p)
    assert "'pool' (maxpool2d)" in out


def test_channels_not_divisible_by_groups(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, groups: 2}\n")
    e = first_error(p)
    assert "input channels 3 are not divisible by groups=2" in e.message
    assert (e.span.line, e.span.col) == (6, col(p, 6, "2}"))  # `groups`


def test_expect_that_fails(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, expect: [8, 32, 32]}\n")
    e = first_error(p)
    assert isinstance(e, ExpectError) and "expected 'conv' to have shape [8, 32, 32], got [8, 30, 30]" in e.message
    assert (e.span.line, e.span.col) == (6, col(p, 6, "["))


def test_missing_import(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("archviz: 1\nimports:\n  - {path: nowhere.yaml, as: nb}\n" + HEAD.split("\n", 1)[1]
                 + "  - {id: c, op: relu}\n")
    e = first_error(str(p))
    assert e.code == "E0151" and "not found" in e.message and e.span.line == 3


def test_cyclic_import(tmp_path):
    (tmp_path / "a.yaml").write_text("archviz: 1\nimports: [{path: b.yaml, as: b}]\nblocks: {}\n")
    (tmp_path / "b.yaml").write_text("archviz: 1\nimports: [{path: a.yaml, as: a}]\nblocks: {}\n")
    main_spec = tmp_path / "m.yaml"
    main_spec.write_text("archviz: 1\nimports: [{path: a.yaml, as: a}]\n" + HEAD.split("\n", 1)[1]
                         + "  - {id: c, op: relu}\n")
    e = first_error(str(main_spec))
    assert e.code == "E0152" and "cyclic import" in e.message and "a.yaml -> b.yaml -> a.yaml" in e.message


@pytest.mark.parametrize("text,got", [("- a\n- b\n", "a list"), ("42\n", "a int"), ("", "an empty file")])
def test_non_mapping_document(tmp_path, text, got):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    e = first_error(str(p))
    assert e.code == "E0107" and "must be a mapping" in e.message and got in e.message
    cli_error(str(p))


def test_validate_reports_every_problem_in_one_run(tmp_path):
    p = write(tmp_path, """\
      - {id: a, op: conv2d, out: 8, kernal: 3}
      - {id: b, op: rleu}
      - {id: c, op: conv2d, out: "${nope}", kernel: 3}
    """)
    with pytest.raises(MultipleErrors) as ei:
        archviz.load(p)
    lines = sorted((e.span.line, e.code) for e in ei.value.errors if e.span)
    assert (6, "E0112") in lines and (7, "E0111") in lines and (8, "E0203") in lines
    out = cli_error(p, cmd="validate")
    assert out.count("error[") >= 3 and "error(s) found" in out


def test_unknown_param_override(tmp_path):
    p = write(tmp_path, "  - {id: r, op: relu}\n")
    out = cli_error(p, "-p", "widht=3")
    assert "error[E0115]" in out and "no param 'widht'" in out


def test_usage_errors_exit_2(tmp_path):
    p = write(tmp_path, "  - {id: r, op: relu}\n")
    r = CliRunner().invoke(main, ["summary", p, "--batch", "0"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["summary", p, "-p", "novalue"])
    assert r.exit_code == 2 and "NAME=VALUE" in r.output
    r = CliRunner().invoke(main, ["summary"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["export", p, "-o", "x.txt"])
    assert r.exit_code == 2


def test_traceback_flag_shows_the_traceback(tmp_path):
    p = write(tmp_path, "  - {id: r, op: rleu}\n")
    r = CliRunner().invoke(main, ["--traceback", "summary", p])
    assert r.exit_code != 0 and isinstance(r.exception, ArchvizError)


def test_spec_file_not_found():
    r = CliRunner().invoke(main, ["summary", "no/such/spec.yaml"])
    assert r.exit_code == 1 and "not found" in r.output and "Traceback" not in r.output


def test_bad_yaml_tag_and_yes_no_strings(tmp_path):
    e = first_error(write(tmp_path, "  - {id: r, op: !!python/name:os.system relu}\n"))
    assert e.code == "E0104"
    e = first_error(write(tmp_path, "  - {id: c, op: conv2d, out: 8, kernel: 3, bias: yes}\n"))
    assert e.code == "E0113" and "'yes'" in e.message   # yes is a string, not a boolean


def test_block_param_type_is_checked(tmp_path):
    p = write(tmp_path, """\
    archviz: 1
    name: t
    inputs: {x: {shape: [3, 8, 8]}}
    blocks:
      b:
        params: {out: {type: int}}
        nodes: [{id: c, op: conv2d, out: "${out}", kernel: 1}]
    nodes:
      - {id: blk, op: b, out: "64"}
      - {id: blk2, op: b}
    """, head=False)
    with pytest.raises(MultipleErrors) as ei:
        archviz.load(p)
    msgs = " | ".join(e.message for e in ei.value.errors)
    assert "param 'out' of block 'b' must be int" in msgs
    assert "without its required param 'out'" in msgs
