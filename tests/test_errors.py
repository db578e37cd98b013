"""Every kind of spec mistake gets a compiler-style error: file:line:col, a stable code,
the source line with a caret under the culprit, a hint and notes; exit code 1 and no
traceback. Usage errors exit 2. Validation reports every independent problem in one run,
and one mistake is reported once (no cascade of follow-up errors)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import (ExpectError, ExpressionError, ImportSpecError, MultipleErrors, RefError,
                            ShapeError, Span, SpecError, format_error, mark_spec_source)
from tests.spec_errors import errors_of, one_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEAD = """archviz: 1
name: t
inputs:
  image: {shape: [3, 32, 32]}
nodes:
"""
# HEAD is 5 lines: the first node of a body written after it is on line 6.


def write(tmp_path, body, name="t.yaml", head=True):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text((HEAD if head else "") + textwrap.dedent(body))
    return str(p)


def cli(path, *args, cmd="summary"):
    """Run the CLI; a spec error exits 1 and prints no traceback. Returns the output."""
    r = CliRunner().invoke(main, [cmd, path, *args])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert isinstance(r.exception, SystemExit)       # a clean exit, not an exception escaping
    return r.output


def col(path: str, lineno: int, needle: str, after: str = "") -> int:
    """1-based column where `needle` starts on line `lineno` of the file (after `after`)."""
    with open(path) as f:
        line = f.read().splitlines()[lineno - 1]
    return line.index(needle, line.index(after) if after else 0) + 1


errors = errors_of


def where(e) -> tuple:
    return (e.span.line, e.span.col)


def caret_under(out: str, path: str, lineno: int, needle: str, after: str = "", width: int | None = None):
    """The rendered source line `N | text` is followed by a caret line under `needle`."""
    with open(path) as f:
        text = f.read().splitlines()[lineno - 1]
    lines = out.splitlines()
    src = f"{lineno} | {text}"
    assert src in lines, out
    caret = lines[lines.index(src) + 1]
    gutter = " " * len(str(lineno)) + " | "
    assert caret.startswith(gutter), caret
    c = col(path, lineno, needle, after)
    marks = caret[len(gutter):]
    assert marks == " " * (c - 1) + "^" * (width or len(needle)), (marks, c)


# -- YAML ----------------------------------------------------------------------------
def test_yaml_syntax_error(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: [conv2d}\n")
    e = one_error(p)
    assert isinstance(e, SpecError) and e.code == "E0101" and e.message.startswith("YAML syntax error: ")
    assert e.span.file == p and where(e) == (6, col(p, 6, "}"))
    out = cli(p)
    assert out.startswith(f"{p}:6:{col(p, 6, '}')}: error[E0101]: YAML syntax error")
    caret_under(out, p, 6, "}")


def test_duplicate_key(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, out: 4}\n")
    e = one_error(p)
    assert e.code == "E0102" and e.message == "duplicate key 'out'"
    assert where(e) == (6, col(p, 6, "out: 4"))
    assert e.notes == [f"first defined at {p}:6:{col(p, 6, 'out: 8')}"]
    out = cli(p, cmd="validate")
    assert f"= note: first defined at {p}:6:" in out


@pytest.mark.parametrize("body,what,needle", [
    ("  - &c {id: conv, op: conv2d, out: 8, kernel: 3}\n", "anchors (&name)", "&c"),
    ("  - {id: conv, op: conv2d, out: 8, kernel: *k}\n", "aliases (*name)", "*k"),
    ("  - {id: conv, op: conv2d, out: 8, kernel: 3, <<: {bias: false}}\n", "merge keys (<<)", "<<"),
])
def test_anchors_aliases_merge_keys(tmp_path, body, what, needle):
    p = write(tmp_path, body)
    e = one_error(p)
    assert e.code == "E0103" and what in e.message and where(e) == (6, col(p, 6, needle))
    assert "error[E0103]" in cli(p)


def test_yaml_tag(tmp_path):
    p = write(tmp_path, "  - {id: r, op: !!python/name:os.system relu}\n")
    e = one_error(p)
    assert e.code == "E0104" and where(e) == (6, col(p, 6, "!!python"))


@pytest.mark.parametrize("text,got", [("- a\n- b\n", "got a list"), ("42\n", "got a int"),
                                      ("just text\n", "got a str"), ("", "got an empty file"),
                                      ("# only a comment\n", "got an empty file")])
def test_non_mapping_document(tmp_path, text, got):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    e = one_error(str(p))
    assert e.code == "E0107" and "a spec must be a mapping" in e.message and got in e.message
    assert e.span.file == str(p) and e.span.line == 1
    assert "error[E0107]" in cli(str(p))


def test_spec_file_not_found(tmp_path):
    missing = str(tmp_path / "no" / "such.yaml")
    e = one_error(missing)
    assert e.code == "E0106" and "not found" in e.message
    out = cli(missing)
    assert "error[E0106]" in out and "not found" in out
    # a folder is the same kind of mistake, with the same exit code (1)
    e = one_error(str(tmp_path))
    assert e.code == "E0106" and "is a directory" in e.message and "report" in e.hint
    assert "error[E0106]" in cli(str(tmp_path))


# -- ops and attributes --------------------------------------------------------------
def test_unknown_op_with_did_you_mean(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2, out: 8, kernel: 3}\n")
    e = one_error(p)
    assert isinstance(e, SpecError) and e.code == "E0111" and e.message == "unknown op 'conv2'"
    assert where(e) == (6, col(p, 6, "conv2,")) and e.hint.startswith("did you mean 'conv2d'")
    out = cli(p)
    assert out.startswith(f"{p}:6:{col(p, 6, 'conv2,')}: error[E0111]: unknown op 'conv2'\n")
    caret_under(out, p, 6, "conv2", after="op:")
    assert "  = help: did you mean 'conv2d'" in out


def test_unknown_op_without_a_close_name(tmp_path):
    p = write(tmp_path, "  - {id: x, op: qqqqqq}\n")
    assert "archviz ops" in one_error(p).hint


def test_unknown_attribute_points_at_the_key(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, bais: false}\n")
    e = one_error(p)
    assert e.code == "E0112" and e.message == "unknown attribute 'bais' for op 'conv2d'"
    assert where(e) == (6, col(p, 6, "bais")) and e.hint == "did you mean 'bias'?"
    caret_under(cli(p), p, 6, "bais")


@pytest.mark.parametrize("node,key,hint", [
    ("{id: c, op: conv2d, in_channels: 3, out: 8, kernel: 3}", "in_channels", "inferred from the input's shape"),
    ("{id: c, op: conv2d, out_channels: 8, kernel: 3}", "out_channels", "archviz calls it 'out' (torch: out_channels)"),
    ("{id: f, op: linear, in_features: 10, out: 4}", "in_features", "inferred from the input's shape"),
])
def test_torch_argument_names_get_a_hint(tmp_path, node, key, hint):
    p = write(tmp_path, f"  - {node}\n")
    e = errors(p)[0]
    assert e.code == "E0112" and e.message.startswith(f"unknown attribute '{key}'") and hint in e.hint
    assert where(e) == (6, col(p, 6, key))


def test_unknown_attribute_and_missing_required(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernal: 3}\n")
    errs = errors(p)
    assert [e.code for e in errs] == ["E0112", "E0114"]
    unknown, missing = errs
    assert "unknown attribute 'kernal'" in unknown.message and "'kernel'" in unknown.hint
    assert where(unknown) == (6, col(p, 6, "kernal"))
    assert missing.message == "'conv' (conv2d) is missing required attribute 'kernel'"
    assert where(missing) == (6, col(p, 6, "{"))
    out = cli(p, cmd="validate")
    assert out.count("error[") == 2 and "2 error(s) found" in out


def test_unknown_attribute_without_a_close_name_lists_the_attributes(tmp_path):
    p = write(tmp_path, "  - {id: r, op: linear, out: 2, zzz: 1}\n")
    assert one_error(p).hint == "attributes of linear: out, bias"


@pytest.mark.parametrize("attr,needle,what", [
    ("out: eight", "eight", "expected an integer, got a string 'eight'"),
    ("out: 8.0", "8.0", "expected an integer"),
    ("out: 0", "0}", "must be >= 1, got 0"),
    ("out: 8, bias: yes", "yes", "expected true or false, got a string 'yes'"),   # yes is a string
    ("out: 8, stride: [1, 2, 3]", "[1, 2, 3]", "a list of 2 integers"),
    ("out: 8, padding: same_", "same_", "'same' or 'valid'"),
])
def test_mistyped_attribute(tmp_path, attr, needle, what):
    p = write(tmp_path, f"  - {{id: conv, op: conv2d, kernel: 3, {attr}}}\n")
    e = one_error(p)
    assert e.code == "E0113" and e.message.startswith("attribute '") and "of 'conv' (conv2d)" in e.message
    assert what in e.message and where(e) == (6, col(p, 6, needle, after="kernel"))


# -- expressions ---------------------------------------------------------------------
def test_malformed_expression(tmp_path):
    p = write(tmp_path, '  - {id: conv, op: conv2d, out: "${8 *}", kernel: 3}\n')
    e = one_error(p)
    assert isinstance(e, ExpressionError) and e.code == "E0201"
    assert e.message.startswith("malformed expression '8 *'")
    # inside the expression, at or just after `*`
    assert e.span.line == 6 and col(p, 6, "8 *") <= e.span.col <= col(p, 6, '}"')
    assert "error[E0201]" in cli(p)


def test_unknown_name_in_expression(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(HEAD.replace("nodes:", "params: {width: 8}\nnodes:")
                 + '  - {id: conv, op: conv2d, out: "${widht * 2}", kernel: 3}\n')
    p = str(p)
    e = one_error(p)
    assert e.code == "E0203" and e.message == "unknown name 'widht' in expression"
    assert where(e) == (7, col(p, 7, "widht")) and e.hint == "did you mean 'width'?"
    caret_under(cli(p), p, 7, "widht")


def test_forbidden_construct_in_expression(tmp_path):
    p = write(tmp_path, '  - {id: conv, op: conv2d, out: "${__import__(\'os\').getpid()}", kernel: 3}\n')
    e = one_error(p)
    assert e.code == "E0202" and "not allowed" in e.message and e.span.line == 6


def test_expression_error_inside_a_block_names_the_call(tmp_path):
    p = write(tmp_path, """\
    archviz: 1
    inputs: {x: [3, 8, 8]}
    blocks:
      b:
        nodes:
          - {id: c, op: conv2d, out: "${nope}", kernel: 1}
    nodes:
      - {id: first, op: b}
      - {id: second, op: b}
    """, head=False)
    e = one_error(p)      # the same mistake, expanded twice, is reported once
    assert e.code == "E0203" and where(e) == (6, col(p, 6, "nope"))
    assert e.notes == [f"'first' calls block 'b' defined at {p}:4:3"]


# -- references ----------------------------------------------------------------------
def test_reference_to_unknown_node(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3}\n  - {id: r, op: relu, in: cnov}\n")
    e = one_error(p)
    assert isinstance(e, RefError) and e.code == "E0301" and e.message == "unknown node 'cnov'"
    assert where(e) == (7, col(p, 7, "cnov")) and e.hint == "did you mean 'conv'?"


def test_reference_to_unknown_node_lists_the_names(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3}\n  - {id: r, op: relu, in: zzz}\n")
    assert one_error(p).hint == "names in scope: image, conv, r"


UNET = """\
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
  - {id: enc, op: down, repeat: 4}
  - {id: dec3, op: add, in: [enc, "enc[3].skp"]}
"""


def test_reference_to_unknown_port_of_a_block_call(tmp_path):
    p = write(tmp_path, UNET, head=False)
    e = one_error(p)
    assert isinstance(e, RefError) and e.code == "E0302" and e.message == "'enc[3]' has no output 'skp'"
    assert where(e) == (12, col(p, 12, "enc[3].skp"))
    assert e.hint == "available outputs: out, skip"
    assert e.notes == [f"'enc.3' calls block 'down' defined at {p}:5:3"]
    out = cli(p)
    lines = out.splitlines()
    assert lines[0] == f"{p}:12:{col(p, 12, 'enc[3]')}: error[E0302]: 'enc[3]' has no output 'skp'"
    assert lines[1] == "   |"
    caret_under(out, p, 12, "enc[3].skp")
    assert lines[4] == "   = help: available outputs: out, skip"
    assert lines[5] == f"   = note: 'enc.3' calls block 'down' defined at {p}:5:3"


def test_reference_to_unknown_port_of_an_op(tmp_path):
    p = write(tmp_path, "  - {id: a, op: relu}\n  - {id: b, op: relu, in: a.skip}\n")
    e = one_error(p)
    assert e.code == "E0302" and e.message == "'a' (relu) has no output 'skip'"
    assert e.hint == "available outputs: out" and where(e) == (7, col(p, 7, "a.skip"))


@pytest.mark.parametrize("ref,msg", [("enc[4].skip", "'enc' has 4 copies; index 4 is out of range"),
                                     ("enc[-5]", "index -5 is out of range"),
                                     ("dec3[0]", "'dec3' is not repeated; it cannot be indexed")])
def test_bad_repeat_index(tmp_path, ref, msg):
    p = write(tmp_path, UNET.replace('"enc[3].skp"', '"enc[3].skip"') + f'  - {{id: r, op: relu, in: "{ref}"}}\n',
              head=False)
    e = one_error(p)
    assert e.code == "E0303" and msg in e.message and where(e) == (13, col(p, 13, ref))


def test_malformed_reference(tmp_path):
    p = write(tmp_path, "  - {id: a, op: relu}\n  - {id: b, op: relu, in: 'a..b'}\n")
    e = one_error(p)
    assert e.code == "E0125" and e.message == "malformed reference 'a..b'" and where(e) == (7, col(p, 7, "a..b"))


def test_cycle(tmp_path):
    p = write(tmp_path, """\
      - {id: a, op: add, in: [image, c]}
      - {id: b, op: relu, in: a}
      - {id: c, op: relu, in: b}
    """)
    e = one_error(p)
    assert isinstance(e, RefError) and e.code == "E0306"
    assert e.message == "cycle in the layer graph: a -> b -> c -> a"
    assert e.span.file == p and e.span.line in (6, 7, 8)
    assert "own output" in e.hint
    assert "error[E0306]: cycle in the layer graph" in cli(p, cmd="validate")


def test_self_reference_is_a_cycle(tmp_path):
    p = write(tmp_path, "  - {id: a, op: relu, in: a}\n")
    e = one_error(p)
    assert e.code == "E0306" and "a -> a" in e.message


def test_bypassed_node_reading_itself(tmp_path):
    p = write(tmp_path, "  - {id: a, op: relu, in: a, when: false}\n  - {id: b, op: relu}\n")
    e = one_error(p)
    assert e.code == "E0306" and "does not resolve" in e.message


def test_a_long_chain_of_bypassed_nodes_is_not_a_loop(tmp_path):
    # 300 bypassed copies: each stands for its input, the linear reads the image itself
    p = write(tmp_path, "  - {id: r, op: relu, repeat: 300, when: false}\n  - {id: f, op: flatten}\n")
    m = archviz.load(p)
    assert m.layer("f").inputs == ["image"] and m.output_shapes == {"out": (1, 3 * 32 * 32)}


def test_repeat_count_is_bounded(tmp_path):
    from archviz.spec.budget import MAX_LAYERS
    p = write(tmp_path, "  - {id: r, op: relu, repeat: 100000000}\n")
    e = one_error(p)
    assert e.code == "E0133" and e.message == f"repeat count 100,000,000 is out of bounds (at most {MAX_LAYERS:,})"
    assert where(e) == (6, col(p, 6, "100000000"))


def test_nested_repeats_are_bounded_by_the_layer_budget(tmp_path, monkeypatch):
    # 1,000 copies of a block of 1,000 layers: each repeat is small, the product is not.
    # (the budget is lowered for the test: the mechanism, not the constant, is under test)
    monkeypatch.setattr("archviz.spec.budget.MAX_LAYERS", MAX_LAYERS := 5_000)
    p = write(tmp_path, """\
        archviz: 1
        name: t
        inputs: {x: [4]}
        blocks:
          many:
            nodes:
              - {id: r, op: relu, repeat: 1000}
        nodes:
          - {id: m, op: many, repeat: 1000}
    """, head=False)
    e = one_error(p)
    # refused at the outer repeat once two copies show it cannot fit (not after 5,000 layers)
    assert e.code == "E0135" and e.message == ("'m' repeats 1,000 copies: the spec would expand to at least "
                                               f"1,000,000 layers, more than {MAX_LAYERS:,}")
    assert where(e) == (9, col(p, 9, "1000"))


def test_a_node_named_like_the_implicit_block_input(tmp_path):
    # a block with no `inputs:` reads one input named x; a node of its own named x is an error
    # that says so, not a "duplicate" pointing nowhere
    p = write(tmp_path, """\
        archviz: 1
        name: t
        inputs: {image: [3, 8, 8]}
        blocks:
          r:
            nodes:
              - {id: x, op: relu}
        nodes:
          - {id: a, op: r}
    """, head=False)
    e = one_error(p)
    assert e.code == "E0128" and e.message.startswith("node id 'x' is the name of an input of block 'r'")
    assert "inputs: [" in e.hint and where(e) == (7, col(p, 7, "x"))
    out = cli(p, cmd="validate")
    assert "None" not in out


def test_a_broken_node_adds_no_errors_through_its_ports(tmp_path):
    # c2's input port is wrong; reading c2.c afterwards must not add an error that blames
    # the node before it ("'c2' (select_step) has no output 'c'")
    p = write(tmp_path, """\
        archviz: 1
        name: t
        inputs: {x: [4, 6]}
        nodes:
          - {id: x1, op: select_step, in: x, index: 1}
          - {id: c2, op: lstm_cell, in: {x: x1, h0: x1}, out: 8}
        outputs:
          a: {from: c2.c}
    """, head=False)
    e = one_error(p)
    assert e.code == "E0132" and e.message == "'lstm_cell' has no input port 'h0'"


def test_a_failed_block_param_expression_is_one_error(tmp_path):
    # `out` is given, but its expression fails: that is the error, not also "without its
    # required param 'out'"
    p = write(tmp_path, """\
        archviz: 1
        name: t
        params: {widths: [4, 8]}
        inputs: {image: [3, 8, 8]}
        blocks:
          b:
            params: {out: {type: int}}
            nodes:
              - {id: c, op: conv2d, out: "${out}", kernel: 1}
        nodes:
          - {id: s, op: b, out: "${widths[2]}"}
    """, head=False)
    e = one_error(p)
    assert e.code == "E0202" and e.message == "index 2 out of range for a list of 2"


def test_wrong_number_of_inputs(tmp_path):
    p = write(tmp_path, "  - {id: a, op: relu, in: [image, image]}\n")
    e = one_error(p)
    assert e.code == "E0305" and e.message == "'a' (relu) takes 1 input(s), got 2"
    assert where(e) == (6, col(p, 6, "relu"))


# -- shapes --------------------------------------------------------------------------
def test_add_shape_mismatch_names_both_shapes_and_producers(tmp_path):
    p = write(tmp_path, """\
      - {id: wide, op: conv2d, in: image, out: 16, kernel: 3, padding: 1}
      - {id: narrow, op: conv2d, in: image, out: 8, kernel: 3, padding: 1}
      - {id: sum, op: add, in: [wide, narrow]}
    """)
    e = one_error(p)
    assert isinstance(e, ShapeError) and e.code == "E0401" and e.message.startswith("'sum' (add): ")
    assert "(1, 16, 32, 32)" in e.message and "(1, 8, 32, 32)" in e.message
    assert e.notes == ["input 0: (1, 16, 32, 32) from 'wide'", "input 1: (1, 8, 32, 32) from 'narrow'"]
    assert where(e) == (8, col(p, 8, "add"))
    out = cli(p)
    assert "= note: input 0: (1, 16, 32, 32) from 'wide'" in out
    assert "= note: input 1: (1, 8, 32, 32) from 'narrow'" in out


def test_concat_mismatch_names_both_shapes_and_producers(tmp_path):
    p = write(tmp_path, """\
      - {id: full, op: conv2d, in: image, out: 4, kernel: 3, padding: 1}
      - {id: half, op: maxpool2d, in: image, kernel: 2}
      - {id: cat, op: concat, in: [full, half]}
    """)
    e = one_error(p)
    assert isinstance(e, ShapeError) and e.message.startswith("'cat' (concat): ")
    assert "(1, 4, 32, 32)" in e.message and "(1, 3, 16, 16)" in e.message
    assert e.notes == ["input 0: (1, 4, 32, 32) from 'full'", "input 1: (1, 3, 16, 16) from 'half'"]
    assert where(e) == (8, col(p, 8, "concat"))


def test_window_larger_than_input(tmp_path):
    p = write(tmp_path, "  - {id: pool, op: maxpool2d, kernel: 40}\n")
    e = one_error(p)
    assert isinstance(e, ShapeError) and e.message.startswith("'pool' (maxpool2d): ")
    assert "window of 40" in e.message and "larger than the padded input of 32" in e.message
    assert e.notes == ["input 0: (1, 3, 32, 32) from 'image'"]
    assert e.span.line == 6
    out = cli(p)
    assert f"{p}:6:" in out and "error[E0401]: 'pool' (maxpool2d)" in out


def test_channels_not_divisible_by_groups(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, groups: 2}\n")
    e = one_error(p)
    assert isinstance(e, ShapeError) and "input channels 3 are not divisible by groups=2" in e.message
    assert where(e) == (6, col(p, 6, "2}"))          # the `groups` value
    caret_under(cli(p), p, 6, "2", after="groups")


def test_shape_error_inside_a_block_names_the_call(tmp_path):
    p = write(tmp_path, """\
    archviz: 1
    inputs: {image: [3, 32, 32]}
    blocks:
      b:
        params: {g: {type: int}}
        nodes:
          - {id: conv, op: conv2d, out: 8, kernel: 3, groups: "${g}"}
    nodes:
      - {id: stem, op: relu}
      - {id: blk, op: b, g: 2}
    """, head=False)
    e = one_error(p)
    assert e.message.startswith("'blk.conv' (conv2d): input channels 3 are not divisible by groups=2")
    assert where(e) == (7, col(p, 7, "${g}"))
    assert e.notes == ["input 0: (1, 3, 32, 32) from 'stem'", f"'blk' calls block 'b' defined at {p}:4:3"]


def test_expect_that_fails(tmp_path):
    p = write(tmp_path, "  - {id: conv, op: conv2d, out: 8, kernel: 3, expect: [8, 32, 32]}\n")
    e = one_error(p)
    assert isinstance(e, ExpectError) and e.code == "E0451"
    assert e.message == "expected 'conv' to have shape [8, 32, 32], got [8, 30, 30]"
    assert where(e) == (6, col(p, 6, "[8, 32"))
    assert "batch" in e.hint and e.notes == ["full shape with batch: (1, 8, 30, 30)"]
    caret_under(cli(p, cmd="validate"), p, 6, "[8, 32, 32]")


def test_failing_expects_are_all_reported(tmp_path):
    p = write(tmp_path, """\
      - {id: a, op: conv2d, out: 8, kernel: 3, expect: [8, 32, 32]}
      - {id: b, op: relu, expect: [9, 30, 30]}
    outputs: {y: {from: b, expect: [8, 1, 1]}}
    """)
    errs = errors(p)
    assert [(e.code, e.span.line) for e in errs] == [("E0451", 6), ("E0451", 7), ("E0451", 8)]


def test_expect_is_a_list(tmp_path):
    p = write(tmp_path, "  - {id: a, op: relu, expect: 3}\n")
    e = one_error(p)
    assert e.code == "E0124" and where(e) == (6, col(p, 6, "3}"))


# -- imports -------------------------------------------------------------------------
def test_missing_import(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("archviz: 1\nimports:\n  - {path: nowhere.yaml, as: nb}\n" + HEAD.split("\n", 1)[1]
                 + "  - {id: c, op: relu}\n")
    p = str(p)
    e = one_error(p)
    assert isinstance(e, ImportSpecError) and e.code == "E0151"
    assert e.message == f"spec file not found: {os.path.join(str(tmp_path), 'nowhere.yaml')}"
    assert where(e) == (3, col(p, 3, "nowhere"))
    caret_under(cli(p), p, 3, "nowhere.yaml")


def test_cyclic_import(tmp_path):
    (tmp_path / "a.yaml").write_text("archviz: 1\nimports: [{path: b.yaml, as: b}]\nblocks: {}\n")
    (tmp_path / "b.yaml").write_text("archviz: 1\nimports: [{path: a.yaml, as: a}]\nblocks: {}\n")
    m = tmp_path / "m.yaml"
    m.write_text("archviz: 1\nimports: [{path: a.yaml, as: a}]\n" + HEAD.split("\n", 1)[1] + "  - {id: c, op: relu}\n")
    e = one_error(str(m))
    assert e.code == "E0152" and e.message == "cyclic import: m.yaml -> a.yaml -> b.yaml -> a.yaml"
    b = str(tmp_path / "b.yaml")
    assert e.span.file == b and where(e) == (2, col(b, 2, "a.yaml"))
    assert "error[E0152]" in cli(str(m))


def test_two_files_importing_each_other(tmp_path):
    u = tmp_path / "u.yaml"
    u.write_text("archviz: 1\nimports: [{path: t.yaml, as: t}]\nblocks: {}\n")
    p = write(tmp_path, "archviz: 1\nimports: [{path: u.yaml, as: u}]\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\n",
              head=False)
    e = one_error(p)
    assert e.code == "E0152" and e.message == "cyclic import: t.yaml -> u.yaml -> t.yaml"
    assert e.span.file == str(u) and where(e) == (2, col(str(u), 2, "t.yaml"))
    out = cli(p, cmd="validate")
    assert out.startswith(f"{u}:2:{col(str(u), 2, 't.yaml')}: error[E0152]: cyclic import")


def test_file_importing_itself(tmp_path):
    p = write(tmp_path, "archviz: 1\nimports: [{path: t.yaml, as: me}]\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\n",
              head=False)
    e = one_error(p)
    assert e.code == "E0152" and e.message == "cyclic import: t.yaml -> t.yaml"


@pytest.mark.parametrize("imp,msg,needle", [
    ("{path: lib.yaml}", "an import is a mapping {path: FILE, as: NAME}", "{path"),
    ("{path: lib.yaml, as: 3}", "import name (as:) must be an identifier, got 3", "3}"),
    ("{path: lib.yaml, as: l, bogus: 1}", "unknown key 'bogus' in an import", "bogus"),
    ("{path: 7, as: l}", "import path must be a file name, got 7", "7"),
    ("{path: ., as: l}", "is a directory, not a spec file", "."),
])
def test_bad_import_entry(tmp_path, imp, msg, needle):
    (tmp_path / "lib.yaml").write_text("archviz: 1\nblocks: {}\n")
    p = write(tmp_path, f"archviz: 1\nimports: [{imp}]\ninputs: {{x: [4]}}\nnodes: [{{id: r, op: relu}}]\n",
              head=False)
    e = one_error(p)
    assert e.code in ("E0153", "E0106") and msg in e.message
    assert where(e) == (2, col(p, 2, needle, after="path" if needle != "{path" else ""))


def test_error_in_an_imported_file_points_into_it(tmp_path):
    (tmp_path / "lib.yaml").write_text("archviz: 1\nblocks:\n  b:\n    nodes: [{id: c, op: conv2, out: 1}]\n")
    p = write(tmp_path, "archviz: 1\nimports: [{path: lib.yaml, as: l}]\ninputs: {x: [3, 4, 4]}\n"
                        "nodes: [{id: r, op: l.b}]\n", head=False)
    e = one_error(p)
    lib = str(tmp_path / "lib.yaml")
    assert e.code == "E0111" and e.span.file == lib and where(e) == (4, col(lib, 4, "conv2"))
    assert e.notes == [f"'r' calls block 'b' defined at {lib}:3:3"]


# -- params --------------------------------------------------------------------------
def test_unknown_param_override(tmp_path):
    p = write(tmp_path, HEAD.replace("name: t\n", "name: t\nparams: {width: 8}\n") + "  - {id: r, op: relu}\n",
              head=False)
    out = cli(p, "-p", "widht=3")
    # located at the spec's `params:` (issue 10: -p errors are located and name the -p)
    assert out.startswith(f"{p}:3:1: error[E0115]: the spec has no param 'widht' (given as an override: -p widht=3)")
    assert "3 | params: {width: 8}" in out
    assert "= help: did you mean 'width'?" in out
    e = one_error(p, widht=3)
    assert isinstance(e, SpecError) and e.code == "E0115" and where(e) == (3, 1)


def test_override_in_a_spec_without_params(tmp_path):
    p = write(tmp_path, "  - {id: r, op: relu}\n")
    e = one_error(p, n=3)
    assert e.code == "E0115" and e.hint == "this spec has no params"


# -- blocks --------------------------------------------------------------------------
BLOCK = """\
archviz: 1
inputs: {x: {shape: [3, 8, 8]}}
blocks:
  b:
    params: {out: {type: int}, k: {type: int, default: 1}}
    nodes: [{id: c, op: conv2d, out: "${out}", kernel: "${k}"}]
nodes:
"""


@pytest.mark.parametrize("call,code,msg,needle", [
    ("{id: blk, op: b, out: '64'}", "E0113", "param 'out' of block 'b' must be int, got '64'", "64"),
    ("{id: blk, op: b, out: 8, k: 1.5}", "E0113", "param 'k' of block 'b' must be int, got 1.5", "1.5"),
    ("{id: blk, op: b}", "E0114", "'blk' calls block 'b' without its required param 'out'", "{id: blk"),
    ("{id: blk, op: b, out: 8, kk: 1}", "E0112", "block 'b' has no param 'kk'", "kk"),
    ("{id: blk, op: b, out: 8, in: [x, x]}", "E0305", "block 'b' takes 1 input(s) (x), got 2", "[x, x]"),
    ("{id: blk, op: b, out: 8, in: {y: x}}", "E0132", "'b' has no input port 'y'", "y:"),
])
def test_block_call_errors(tmp_path, call, code, msg, needle):
    p = write(tmp_path, BLOCK + f"  - {call}\n", head=False)
    e = one_error(p)          # one error each: no follow-up errors from expanding the body
    assert e.code == code and e.message == msg and where(e) == (8, col(p, 8, needle))


@pytest.mark.parametrize("block,code,msg,needle", [
    ("relu:\n    nodes: [{id: c, op: relu}]", "E0116", "block 'relu' has the name of a built-in op", "relu:"),
    ("b:\n    params: {out: {type: integer}}\n    nodes: [{id: c, op: relu}]", "E0117",
     "unknown param type 'integer'", "integer"),
    ("b:\n    params: {out: {type: int, defualt: 1}}\n    nodes: [{id: c, op: relu}]", "E0117",
     "unknown key 'defualt' in param 'out' of block 'b'", "defualt"),
    ("b:\n    params: [out]\n    nodes: [{id: c, op: relu}]", "E0110", "'params' of block 'b' must map", "[out]"),
    ("b:\n    inputs: [3]\n    nodes: [{id: c, op: relu}]", "E0120", "input name 3 of block 'b' is not an identifier",
     "3"),
    ("b:\n    inputs: 3\n    nodes: [{id: c, op: relu}]", "E0110", "'inputs' of block 'b' must be a list", "3"),
    ("b:\n    nodes: []", "E0118", "block 'b' needs a non-empty 'nodes' list", "nodes"),
    ("b:\n    nodes: [{id: c, op: relu}]\n    outputz: c", "E0108", "unknown key 'outputz' in block 'b'", "outputz"),
])
def test_block_definition_errors(tmp_path, block, code, msg, needle):
    p = write(tmp_path, "archviz: 1\ninputs: {x: [4]}\nblocks:\n  " + block + "\nnodes: [{id: n, op: relu}]\n",
              head=False)
    errs = [e for e in errors(p) if e.code == code]
    assert errs and msg in errs[0].message
    e = errs[0]
    with open(p) as f:
        lineno = next(i for i, l in enumerate(f.read().splitlines(), 1) if needle in l and i >= 4)
    assert where(e) == (lineno, col(p, lineno, needle))


def test_block_calling_itself(tmp_path):
    p = write(tmp_path, "archviz: 1\ninputs: {x: [4]}\nblocks:\n  b:\n    nodes: [{id: r, op: relu}, {id: again, op: b}]\n"
                        "nodes: [{id: n, op: b}]\n", head=False)
    e = one_error(p)
    assert e.code == "E0134" and e.message == "block 'b' calls itself: b -> b"
    assert where(e) == (5, col(p, 5, "b}"))


# -- structure -----------------------------------------------------------------------
@pytest.mark.parametrize("text,code,msg,lineno,needle", [
    ("archviz: 1\nnmae: t\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\n", "E0108",
     "unknown top-level key 'nmae'", 2, "nmae"),
    ("archviz: 2\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\n", "E0109", "unsupported spec format version 2", 1, "2"),
    ("archviz: 1\nnodes: [{id: r, op: relu}]\n", "E0119", "a spec needs 'inputs'", 1, "archviz"),
    ("archviz: 1\ninputs: [x]\nnodes: [{id: r, op: relu}]\n", "E0119", "a spec needs 'inputs'", 2, "[x]"),
    ("archviz: 1\ninputs: {x: {shape: [3, 0]}}\nnodes: [{id: r, op: relu}]\n", "E0121",
     "input 'x' needs a shape", 2, "[3, 0]"),
    ("archviz: 1\ninputs: {x: {doc: no shape}}\nnodes: [{id: r, op: relu}]\n", "E0121",
     "input 'x' needs a shape", 2, "{doc"),
    ("archviz: 1\ninputs: {x: {shape: [3], shpe: 1}}\nnodes: [{id: r, op: relu}]\n", "E0108",
     "unknown key 'shpe' in input 'x'", 2, "shpe"),
    ("archviz: 1\ninputs: {x.y: [3]}\nnodes: [{id: r, op: relu}]\n", "E0120",
     "input name 'x.y' is not an identifier", 2, "x.y"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: []\n", "E0122", "a spec needs a non-empty 'nodes' list", 3, "[]"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [relu]\n", "E0126", "a node is a mapping", 3, "relu"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{op: relu}]\n", "E0127", "a node needs an 'id'", 3, "{op"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: a.b, op: relu}]\n", "E0127", "node id 'a.b' is not an identifier",
     3, "a.b"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}, {id: r, op: relu}]\n", "E0128",
     "duplicate node id 'r'", 3, "r, op: relu}]"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: x, op: relu}]\n", "E0128", "duplicate node id 'x'", 3, "x, op"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r}]\n", "E0129", "node 'r' needs an 'op'", 3, "{id"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu, when: 1}]\n", "E0130",
     "'when' must be true or false, got 1", 3, "1}"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu, in: 3}]\n", "E0125", "`in` is a node name", 3, "3}"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu, in: {x: x}}]\n", "E0132",
     "'relu' has no input port 'x'", 3, "x: x"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\noutputs: [r]\n", "E0110",
     "'outputs' must map output names", 4, "[r]"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\noutputs: {y: {expect: [4]}}\n", "E0123",
     "output 'y' needs `from: NODE`", 4, "{expect"),
    ("archviz: 1\ninputs: {x: [4]}\nnodes: [{id: r, op: relu}]\noutputs: {y: q}\n", "E0301",
     "unknown node 'q'", 4, "q}"),
    ("archviz: 1\ninputs: {x: [4]}\ndefaults: [1]\nnodes: [{id: r, op: relu}]\n", "E0110",
     "'defaults' must map op names", 3, "[1]"),
    ("archviz: 1\ninputs: {x: [4]}\nparams: [1]\nnodes: [{id: r, op: relu}]\n", "E0110",
     "'params' must be a mapping", 3, "[1]"),
])
def test_structure_errors(tmp_path, text, code, msg, lineno, needle):
    p = write(tmp_path, text, head=False)
    e = one_error(p)
    assert e.code == code and msg in e.message, str(e)
    assert where(e) == (lineno, col(p, lineno, needle))
    assert f"error[{code}]" in cli(p)


def test_first_node_without_an_input(tmp_path):
    p = write(tmp_path, "archviz: 1\ninputs: {}\nnodes: [{id: r, op: relu}]\n", head=False)
    e = one_error(p)
    assert e.code == "E0119"          # and no "node 'r' has no input" on top of it


# -- several problems in one run -----------------------------------------------------
def test_validate_reports_two_unknown_attributes_on_different_lines(tmp_path):
    p = write(tmp_path, """\
      - {id: a, op: conv2d, out: 8, kernel: 3, stirde: 2}
      - {id: b, op: relu}
      - {id: c, op: conv2d, out: 8, kernel: 3, paddin: 1}
    """)
    errs = errors(p)
    assert [(e.code, e.span.line, e.span.col) for e in errs] == [
        ("E0112", 6, col(p, 6, "stirde")), ("E0112", 8, col(p, 8, "paddin"))]
    assert "'stride'" in errs[0].hint and "'padding'" in errs[1].hint
    out = cli(p, cmd="validate")
    assert f"{p}:6:{col(p, 6, 'stirde')}: error[E0112]: unknown attribute 'stirde'" in out
    assert f"{p}:8:{col(p, 8, 'paddin')}: error[E0112]: unknown attribute 'paddin'" in out
    assert out.rstrip().endswith("2 error(s) found")


def test_validate_reports_every_kind_of_problem_once(tmp_path):
    p = write(tmp_path, """\
      - {id: a, op: conv2d, out: 8, kernal: 3}
      - {id: b, op: rleu}
      - {id: c, op: conv2d, out: "${nope}", kernel: 3}
      - {id: d, op: relu, in: b}
      - {id: e, op: add, in: [c, zz]}
    """)
    errs = errors(p)
    got = [(e.code, e.span.line) for e in errs]
    # b's unknown op does not make d's reference unknown; c's failed expression does not
    # add "missing required attribute 'out'"
    assert got == [("E0112", 6), ("E0114", 6), ("E0111", 7), ("E0203", 8), ("E0301", 10)], got
    out = cli(p, cmd="validate")
    assert out.count(": error[") == 5 and "5 error(s) found" in out


def test_shape_errors_come_after_the_spec_is_clean(tmp_path):
    p = write(tmp_path, "  - {id: pool, op: maxpool2d, kernel: 40}\n  - {id: r, op: rleu}\n")
    assert [e.code for e in errors(p)] == ["E0111"]


# -- CLI behaviour -------------------------------------------------------------------
def test_usage_errors_exit_2(tmp_path):
    p = write(tmp_path, "  - {id: r, op: relu}\n")
    run = CliRunner().invoke
    assert run(main, ["summary", p, "--batch", "0"]).exit_code == 2
    r = run(main, ["summary", p, "-p", "novalue"])
    assert r.exit_code == 2 and "NAME=VALUE" in r.output
    r = run(main, ["summary", p, "-p", "x=[1,"])
    assert r.exit_code == 2 and "-p" in r.output
    assert run(main, ["summary"]).exit_code == 2
    assert run(main, ["summary", p, "--no-such-option"]).exit_code == 2
    assert run(main, ["no-such-command"]).exit_code == 2
    assert run(main, ["summary", p, "--format", "xml"]).exit_code == 2


def test_errors_go_to_stderr(tmp_path):
    p = write(tmp_path, "  - {id: r, op: rleu}\n")
    r = subprocess.run([sys.executable, "-m", "archviz", "summary", p], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith(f"{p}:6:") and "error[E0111]" in r.stderr and "Traceback" not in r.stderr


def test_traceback_flag_shows_the_traceback(tmp_path):
    p = write(tmp_path, "  - {id: r, op: rleu}\n")
    r = CliRunner().invoke(main, ["--traceback", "summary", p])
    assert r.exit_code != 0 and isinstance(r.exception, SpecError) and r.exception.code == "E0111"
    r = subprocess.run([sys.executable, "-m", "archviz", "--traceback", "summary", p], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "SpecError" in r.stderr


# -- rendering -----------------------------------------------------------------------
def test_format_error_without_a_span():
    e = SpecError("something is wrong", hint="do this", notes=["because"], code="E0199")
    assert format_error(e) == "error[E0199]: something is wrong\n  = help: do this\n  = note: because"


def test_format_error_shows_the_current_text_of_an_edited_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("a: 1\nb: old line\n")
    mark_spec_source(str(p))            # as the loader does for a spec
    e = SpecError("bad", Span(str(p), 2, 4, 7))
    assert "2 | b: old line" in format_error(e)
    p.write_text("a: 1\nb: the new, longer line\n")
    os.utime(p, ns=(os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns + 10**9))
    assert "2 | b: the new, longer line" in format_error(e)


def test_caret_keeps_tabs_aligned(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("a: {b:\t1, c: 2}\n")
    mark_spec_source(str(p))
    out = format_error(SpecError("bad", Span(str(p), 1, 11, 12)))      # under `c`
    assert out.splitlines()[2] == "1 | a: {b:\t1, c: 2}"
    assert out.splitlines()[3] == "  | " + "      \t   " + "^"


def test_multiple_errors_render_each_then_a_count(tmp_path):
    a = SpecError("first", code="E0111")
    b = RefError("second", code="E0301")
    out = format_error(MultipleErrors([a, b]))
    assert out == "error[E0111]: first\n\nerror[E0301]: second\n\n2 error(s) found"
    assert str(MultipleErrors([a, b])) == "first\nsecond"


def test_review_cases_duplicate_block_inputs_output_typos_fractions(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(textwrap.dedent("""\
        archviz: 1
        inputs: {x: {shape: [4]}, y: {shape: [4]}}
        blocks:
          b:
            inputs: [a, a]
            nodes: [{id: s, op: add, in: [a, a]}]
          e:
            inputs: []
            nodes: [{id: r, op: relu}]
        nodes:
          - {id: c, op: b, in: [x, y]}
          - {id: w, op: linear, out: "${9 / 2}"}
        outputs:
          o: {from: c, expct: [4]}
        """))
    with pytest.raises(MultipleErrors) as ei:
        archviz.load(str(p))
    msgs = [e.message for e in ei.value.errors]
    assert "duplicate input name 'a' in block 'b'" in msgs
    assert any("needs at least one input" in m for m in msgs)
    assert "unknown key 'expct' in output 'o'" in msgs
    assert any("the fraction 9/2 (use // for integer division)" in m for m in msgs)
