"""Hostile and careless input to the spec front end (issue 10, items 3 and 5): the YAML
loader, spec files, imports, `-p` overrides and `${...}` expressions.

The truth each test holds is the issue's acceptance rule for its reproducer (shared
fuzz-repros/, copied in here): the run exits 1 with one compiler-style error located at
file:line:col, within 5 s and under 500 MB, with no traceback; a bound that is hit is named
in the message; an error about a file that is not a spec shows none of its content; one
mistake gives one error."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

import archviz
from archviz.cli import main
from archviz.errors import ArchvizError, Span, SpecError, format_error
from tests.spec_errors import errors_of, one_error
from archviz.spec.expr import MAX_LEN, MAX_TOTAL, evaluate
from archviz.spec.yamlload import MAX_DEPTH, MAX_FILE_BYTES, load_yaml, load_yaml_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD = "archviz: 1\nname: t\ninputs:\n  x: {shape: [3, 16, 16]}\nnodes:\n  - {id: r, op: relu}\n"
LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d{4})\]: ", re.M)


def write(tmp_path, text, name="t.yaml", mode="w"):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w":
        p.write_text(textwrap.dedent(text) if isinstance(text, str) else text)
    else:
        p.write_bytes(text)
    return str(p)


errors = errors_of


def where(e) -> tuple:
    return (e.span.file, e.span.line, e.span.col)


def cli(*args) -> str:
    """Run the CLI in process: exit 1, no traceback, no exception escaping. Returns stderr+stdout."""
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r.output


# -- the reproducers that exhaust a stack, the memory or the time: in a subprocess -----------
# The child's own peak: VmHWM belongs to its address space (ru_maxrss would carry the peak of
# the forked pytest process across exec).
_PEAK = ("import atexit, re, resource, sys\n"
         "def peak():\n"
         "    try:\n"
         "        return int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
         "    except (OSError, AttributeError):\n"
         "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
         "atexit.register(lambda: sys.stderr.write('\\nPEAK_KB %d\\n' % peak()))\n"
         "sys.argv = ['archviz'] + sys.argv[1:]\n"
         "from archviz.cli import main\n"
         "main()\n")


def _limit():    # a regression fails fast instead of swapping the machine
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def run_isolated(*args, cwd) -> tuple:
    """(exit code, output, seconds, peak KB) of `archviz ARGS` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _PEAK, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=60, preexec_fn=_limit)
    secs = time.monotonic() - t
    m = re.search(r"PEAK_KB (\d+)", r.stderr)
    return r.returncode, r.stdout + r.stderr, secs, int(m.group(1)) if m else None


NEST = HEAD     # a valid spec; the nesting is in its `doc:`
REPROS = {
    # 01: 50,000 nested flow lists: libyaml's recursive C composer crashed the process (SIGSEGV)
    "01": (NEST + "doc: " + "[" * 50000 + "]" * 50000 + "\n", "E0160", f"deeper than {MAX_DEPTH} levels"),
    # 02: 1,200 nested flow lists: RecursionError in the loader
    "02": (NEST + "doc: " + "[" * 1200 + "]" * 1200 + "\n", "E0160", f"deeper than {MAX_DEPTH} levels"),
    # 02b: nested block sequences, as many as take more than the file size bound in
    # indentation (3,000 took 4.5 MB when the bound was 4 MiB; 6,000 take 18 MB)
    "02b": (NEST + "doc:\n" + "".join(" " * i + "- \n" for i in range(int((2 * MAX_FILE_BYTES) ** 0.5) + 200)), "E0106",
            f"at most {MAX_FILE_BYTES:,} bytes"),
    # 02b, smaller: 1,500 nested block sequences (1.1 MB): the nesting bound
    "02b-1500": (NEST + "doc:\n" + "".join(" " * i + "- \n" for i in range(1500)), "E0160",
                 f"deeper than {MAX_DEPTH}"),
    # 04: a 2 GB string from printf formatting
    "04": ('archviz: 1\nname: t\nparams:\n  s: "${\'%2000000000d\' % 1}"\ninputs:\n  x: {shape: [3, 16, 16]}\n'
           "nodes:\n  - {id: r, op: relu}\n", "E0204", f"at most {MAX_LEN:,} items"),
    # 04b: 10**10 list items put into text
    "04b": ('archviz: 1\nname: t\nparams:\n  s: "x${[[0]*100000]*100000}"\ninputs:\n  x: {shape: [3, 16, 16]}\n'
            "nodes:\n  - {id: r, op: relu}\n", "E0204", f"at most {MAX_LEN:,} items"),
    # 04c: 10**8 list items that an error message would print
    "04c": ('archviz: 1\nname: t\ninputs:\n  x: {shape: [3, 16, 16]}\n'
            'nodes:\n  - {id: c, op: conv2d, out: 4, kernel: "${[[0]*10000]*10000}"}\n', "E0204",
            f"at most {MAX_LEN:,} items"),
    # review: 8,000 bounded expressions joined into one text (1.6 GB before)
    "joined": ('archviz: 1\nname: t\nparams:\n  s: "' + "${'x'*99999}" * 8000 + '"\ninputs:\n'
               "  x: {shape: [3, 16, 16]}\nnodes:\n  - {id: r, op: relu}\n", "E0204", f"at most {MAX_LEN:,} items"),
    # review: 20,000 params of 99,999 characters each: each is bounded, all of them are not (2 GB)
    "many": ("archviz: 1\nname: t\nparams:\n" + "".join(f"  p{i}: \"${{'x'*99999}}\"\n" for i in range(20000))
             + "inputs:\n  x: {shape: [3, 16, 16]}\nnodes:\n  - {id: r, op: relu}\n", "E0204",
             f"more than {MAX_TOTAL:,} items in all"),
    # 03: an import of /dev/zero (read forever): refused, outside the spec's folder
    "03": ("archviz: 1\nname: t\nimports:\n  - {path: /dev/zero, as: z}\ninputs:\n  x: {shape: [3, 16, 16]}\n"
           "nodes:\n  - {id: r, op: relu}\n", "E0154", "--allow-import"),
}


@pytest.mark.parametrize("case", sorted(REPROS))
def test_repro_exits_1_located_fast_and_small(tmp_path, case):
    text, code, named = REPROS[case]
    p = write(tmp_path, text, f"{case}.yaml")
    rc, out, secs, peak_kb = run_isolated("validate", p, cwd=tmp_path)
    assert rc == 1, out
    assert "Traceback" not in out
    m = LOCATED.search(out)
    assert m and m.group("file") == p and m.group("code") == code, out
    assert named in out
    assert secs < 5, secs
    assert peak_kb is not None and peak_kb < 500 * 1024, peak_kb


def test_repro_03b_dev_zero_as_the_spec(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    rc, out, secs, peak_kb = run_isolated("validate", "/dev/zero", cwd=tmp_path)
    assert rc == 1 and "Traceback" not in out
    assert out.startswith("/dev/zero:1:1: error[E0106]: /dev/zero is not a regular file")
    assert secs < 5 and peak_kb < 500 * 1024


def test_repro_03_import_of_dev_zero_allowed_is_still_refused(tmp_path):
    """With --allow-import the import is read: a device is refused before a byte is read."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    p = write(tmp_path, REPROS["03"][0])
    out = cli("--allow-import", "/dev", "validate", p)
    assert out.startswith(f"{p}:4:12: error[E0106]: /dev/zero is not a regular file")


# -- nesting -------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "a: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n",
    "a: " + "{b: " * (MAX_DEPTH + 5) + "1" + "}" * (MAX_DEPTH + 5) + "\n",
    "a:\n" + "".join(" " * i + "b:\n" for i in range(1, MAX_DEPTH + 5)),
])
@pytest.mark.parametrize("parser", ["libyaml", "pure"])
def test_nesting_past_the_limit_is_located_and_names_it(text, parser, monkeypatch):
    import yaml
    if parser == "pure":
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
    elif not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml")
    with pytest.raises(SpecError) as ei:
        load_yaml(text, "f.yaml")
    e = ei.value
    assert e.code == "E0160" and f"{MAX_DEPTH} levels" in e.message and e.span.file == "f.yaml"


def test_nesting_at_the_limit_loads():
    v = load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.yaml")
    for _ in range(MAX_DEPTH - 1):
        v = v[0]
    assert v == []


# -- files: not regular, too large, not UTF-8 ----------------------------------------
def test_a_fifo_is_refused_without_blocking(tmp_path):
    p = str(tmp_path / "fifo.yaml")
    os.mkfifo(p)
    out = cli("validate", p)        # opening a FIFO for reading would wait for a writer
    assert out.startswith(f"{p}:1:1: error[E0106]: {p} is not a regular file")


def test_a_file_over_the_size_limit_is_refused_and_the_limit_named(tmp_path):
    p = write(tmp_path, HEAD + "#" * MAX_FILE_BYTES + "\n")
    e = one_error(p)
    assert e.code == "E0106" and f"at most {MAX_FILE_BYTES:,} bytes" in e.message and where(e) == (p, 1, 1)


@pytest.mark.parametrize("enc,name", [("utf-16", "UTF-16"), ("utf-16-be", None), ("utf-32", "UTF-32")])
def test_utf16_and_utf32_files_are_located_with_a_hint(tmp_path, enc, name):
    data = HEAD.encode(enc)
    if name is None:        # no byte-order mark: it decodes as UTF-8 with NULs
        data = HEAD.encode("utf-16-le")
    p = write(tmp_path, data, mode="b")
    e = one_error(p)
    assert e.span is not None and e.span.file == p and "UTF-8" in e.hint
    if name:
        assert (e.span.line, e.span.col) == (1, 1) and f"is {name} text" in e.message
    assert "\x00" not in format_error(e)        # a NUL of the file is not sent to the terminal


def test_a_byte_that_is_not_utf8_is_located(tmp_path):
    p = write(tmp_path, (HEAD + "doc: caf\u00e9\n").encode("latin-1"), mode="b")
    e = one_error(p)
    assert e.code == "E0106" and where(e) == (p, 7, 9) and "0xe9" in e.message and "UTF-8" in e.hint


def test_binary_garbage_is_located(tmp_path):
    p = write(tmp_path, bytes(range(256)) * 16, mode="b")
    e = one_error(p)
    assert e.code in ("E0101", "E0106") and e.span.file == p


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbf" + HEAD.encode(), mode="b")
    assert archviz.load(p).output_shapes == {"out": (1, 3, 16, 16)}


@pytest.mark.parametrize("text,got", [("", "an empty file"), ("# nothing\n", "an empty file"),
                                      ("- a\n- b\n", "a list"), ("hello\n", "a str"), ("3\n", "a int")])
def test_a_spec_that_is_not_a_mapping(tmp_path, text, got):
    p = write(tmp_path, text)
    e = one_error(p)
    assert e.code == "E0107" and got in e.message and where(e) == (p, 1, 1)


def test_tab_indentation_has_a_hint(tmp_path):
    p = write(tmp_path, HEAD + "\t- {id: s, op: relu}\n")
    e = one_error(p)
    assert e.code == "E0101" and where(e) == (p, 7, 1) and "tabs" in e.hint


# -- scalars: huge integers, inf and nan ---------------------------------------------
@pytest.mark.parametrize("literal", ["1" + "0" * 100_000, "0x" + "f" * 100_000, "-" + "9" * 3000])
def test_a_huge_integer_literal_is_located_and_fast(tmp_path, literal):
    p = write(tmp_path, HEAD + f"  - {{id: c, op: conv2d, kernel: 3, out: {literal}}}\n")
    t = time.monotonic()
    e = one_error(p)
    assert time.monotonic() - t < 2
    assert e.code == "E0101" and "digits is too large (at most 2,000 digits)" in e.message
    assert where(e) == (p, 7, 41)
    assert len(format_error(e)) < 1000        # the source line is cut around the caret


@pytest.mark.parametrize("attr,value", [("out", ".inf"), ("out", "-.inf"), ("kernel", ".nan"), ("out", "4.0")])
def test_floats_where_integers_are_expected(tmp_path, attr, value):
    other = "kernel: 3" if attr == "out" else "out: 4"
    p = write(tmp_path, HEAD + f"  - {{id: c, op: conv2d, {other}, {attr}: {value}}}\n")
    e = one_error(p)
    assert e.span.file == p and e.span.line == 7 and "integer" in e.message


def test_a_very_long_line_is_shown_around_the_caret(tmp_path):
    p = write(tmp_path, HEAD + "  - {id: s, op: relu, doc: \"" + "a" * 2_000_000 + "\", bogus: 1}\n")
    t = time.monotonic()
    out = cli("validate", p)
    assert time.monotonic() - t < 5
    assert "unknown attribute 'bogus'" in out and len(out) < 2000
    src = next(line for line in out.splitlines() if line.startswith("7 | "))
    caret = out.splitlines()[out.splitlines().index(src) + 1]
    assert src[caret.index("^"):].startswith("bogus")


# -- keys that are not names ---------------------------------------------------------
@pytest.mark.parametrize("text,key,kind", [
    ("archviz: 1\nname: t\nparams: {1: 2, a: 3}\ninputs:\n  x: {shape: [3, \"${nope}\", 8]}\n"
     "nodes:\n  - {id: r, op: relu}\n", "1", "an integer"),                               # 08
    ("archviz: 1\nname: t\ninputs:\n  ~: {shape: [3, 8, 8]}\nnodes:\n  - {id: r, op: relu}\n", "~", "null"),   # 09
    ("archviz: 1\nname: t\ninputs:\n  true: {shape: [3, 8, 8]}\nnodes:\n  - {id: r, op: relu}\n",
     "true", "a boolean"),                                                                 # 09b
    (HEAD + "  - {id: s, op: relu, 1.5: 2}\n", "1.5", "a number"),
    (HEAD + "  - {id: s, op: add, in: {0: x, 1: r}}\n", "0", "an integer"),
    (HEAD + "outputs: {null: r}\n", "null", "null"),
    ("defaults: {conv2d: {true: 1}}\n" + HEAD, "true", "a boolean"),
    ("blocks: {1: {nodes: [{id: r, op: relu}]}}\n" + HEAD, "1", "an integer"),
    ("blocks: {b: {params: {2: {type: int}}, nodes: [{id: r, op: relu}]}}\n" + HEAD, "2", "an integer"),
    (HEAD + "  - {id: s, op: relu, repeat: {n: 2, 0: i}}\n", "0", "an integer"),
    ("imports: [{path: x.yaml, as: l, false: 1}]\n" + HEAD, "false", "a boolean"),
])
def test_a_key_that_is_not_a_string_is_a_located_error(tmp_path, text, key, kind):
    p = write(tmp_path, text)
    e = one_error(p)
    assert e.code == "E0105" and e.message == f"mapping key '{key}' is {kind}, not a name"
    line = open(p).read().splitlines()[e.span.line - 1]
    assert line[e.span.col - 1:].startswith(key)


def test_a_quoted_key_is_a_name():
    assert load_yaml('"1": 2\n"true": 3\n', "f.yaml") == {"1": 2, "true": 3}


def test_override_of_a_spec_with_an_integer_param_name(tmp_path):     # 08b
    p = write(tmp_path, "archviz: 1\nname: t\nparams: {1: 2}\ninputs:\n  x: {shape: [3, 8, 8]}\n"
                        "nodes:\n  - {id: r, op: relu}\n")
    out = cli("validate", p, "-p", "size=3")
    assert out.startswith(f"{p}:3:10: error[E0105]: mapping key '1' is an integer, not a name")


# -- block param types (07) ----------------------------------------------------------
@pytest.mark.parametrize("t", ["[int]", "{a: 1}", "3", "true", "~"])
def test_a_block_param_type_that_is_not_a_type_name(tmp_path, t):
    p = write(tmp_path, f"""\
        archviz: 1
        name: t
        blocks:
          b:
            params:
              w: {{type: {t}}}
            nodes:
              - {{id: r, op: relu}}
        inputs:
          x: {{shape: [3, 8, 8]}}
        nodes:
          - {{id: a, op: b, w: 1}}
        """)
    e = one_error(p)
    assert e.code == "E0117" and e.message.startswith("unknown param type") and where(e) == (p, 6, 17)


# -- imports -------------------------------------------------------------------------
LIB = "archviz: 1\nblocks:\n  b:\n    nodes: [{id: r, op: relu}]\n"


def importing(tmp_path, path, name="t.yaml"):
    return write(tmp_path, f"archviz: 1\nimports: [{{path: {path}, as: l}}]\ninputs: {{x: {{shape: [3, 8, 8]}}}}\n"
                           "nodes: [{id: a, op: l.b}]\n", name)


def test_an_import_with_a_nul_is_located(tmp_path):                   # 10
    p = write(tmp_path, 'archviz: 1\nimports:\n  - {path: "a\\0b.yaml", as: z}\ninputs:\n'
                        "  x: {shape: [3, 16, 16]}\nnodes:\n  - {id: r, op: relu}\n")
    e = one_error(p)
    assert e.code == "E0153" and "NUL" in e.message and where(e) == (p, 3, 13)


def test_imports_inside_the_spec_folder_tree_load(tmp_path):
    write(tmp_path, LIB, "lib/blocks.yaml")
    p = importing(tmp_path, "lib/blocks.yaml")
    assert archviz.load(p).output_shapes == {"out": (1, 3, 8, 8)}


def test_the_bundled_library_can_be_imported_from_anywhere(tmp_path):
    lib = os.path.join(ROOT, "specs", "blocks", "resnet.yaml")
    p = write(tmp_path, f"archviz: 1\nimports: [{{path: {lib}, as: rb}}]\ninputs: {{x: {{shape: [64, 8, 8]}}}}\n"
                        "nodes: [{id: a, op: rb.basic, out: 64}]\n")
    assert archviz.load(p).output_shapes == {"out": (1, 64, 8, 8)}


@pytest.mark.parametrize("spec", ["resnet18.yaml", "vgg16.yaml", "transformer_encoder.yaml"])
def test_the_library_specs_that_import_blocks_still_load(spec):
    assert archviz.load(os.path.join(ROOT, "specs", spec)).totals["params"] > 0


def test_an_import_outside_the_tree_is_refused_and_says_how_to_allow_it(tmp_path):
    write(tmp_path, LIB, "other/lib.yaml")
    p = importing(tmp_path / "spec", "../other/lib.yaml")
    e = one_error(p)        # refused, and the op `l.b` of the refused import adds no error
    assert e.code == "E0154" and where(e) == (p, 2, 18)
    assert "--allow-import" in e.hint and "allow_import" in e.hint
    out = cli("validate", p)
    assert "error[E0154]" in out and "1 error" not in out
    # allowed: by the CLI (a folder), by the API (the file itself)
    r = CliRunner().invoke(main, ["--allow-import", str(tmp_path / "other"), "validate", p])
    assert r.exit_code == 0, r.output
    assert archviz.load(p, allow_import=[str(tmp_path / "other" / "lib.yaml")]).output_shapes
    # the CLI's option lasts for one command
    assert "error[E0154]" in cli("validate", p)


def test_a_refusal_does_not_tell_whether_the_file_exists(tmp_path):
    write(tmp_path, LIB, "other/lib.yaml")
    e1 = one_error(importing(tmp_path / "spec", "../other/lib.yaml", "a.yaml"))
    e2 = one_error(importing(tmp_path / "spec", "../other/nope.yaml", "b.yaml"))
    assert e1.code == e2.code == "E0154"


def test_a_symlink_out_of_the_tree_is_refused(tmp_path):
    write(tmp_path, LIB, "other/lib.yaml")
    (tmp_path / "spec").mkdir()
    os.symlink(tmp_path / "other" / "lib.yaml", tmp_path / "spec" / "lib.yaml")
    e = one_error(importing(tmp_path / "spec", "lib.yaml"))
    assert e.code == "E0154"


def test_proc_environ_is_refused_and_never_echoed(tmp_path, monkeypatch):   # 16
    if not os.path.exists("/proc/self/environ"):
        pytest.skip("no /proc")
    monkeypatch.setenv("ARCHVIZ_SECRET_PROBE", "s3cr3t-value")
    p = write(tmp_path, "archviz: 1\nname: t\nimports:\n  - {path: ../../../../../../../../proc/self/environ, as: z}\n"
                        "inputs:\n  x: {shape: [3, 16, 16]}\nnodes:\n  - {id: r, op: relu}\n")
    out = cli("validate", p)
    assert "error[E0154]" in out and "s3cr3t" not in out
    # allowed, it is read; it is not a spec, so nothing of it is shown
    out = cli("--allow-import", "/proc", "validate", p)
    assert "s3cr3t" not in out and "ARCHVIZ_SECRET_PROBE" not in out
    assert LOCATED.search(out)


@pytest.mark.parametrize("content", [
    "SECRET_TOKEN=abc123\nOTHER=1\n",                  # a .env: a plain scalar, not a mapping
    "SECRET_TOKEN: [abc123\n",                         # a YAML syntax error
    "SECRET_TOKEN=abc\x07123\n",                       # a character YAML refuses
    "- SECRET_TOKEN\n",                                # a list
    # mappings that are not specs (no `archviz:`, keys a spec does not have): their lines
    # and keys were echoed under "unknown top-level key" (review of issue 10, D3)
    "SECRET_TOKEN: abc123\n",
    "version: '3'\nservices:\n  db: {SECRET_TOKEN: abc123}\n",
])
def test_an_import_that_is_not_a_spec_shows_none_of_its_content(tmp_path, content):
    write(tmp_path, content, ".env")
    p = importing(tmp_path, ".env")
    out = cli("validate", p)
    assert not any(w in out for w in ("SECRET", "abc", "version", "services")), out
    m = LOCATED.search(out)
    assert m and m.group("file").endswith(".env")       # located in the file, without its text


def test_an_imported_spec_shows_its_lines(tmp_path):
    lib = write(tmp_path, "archviz: 1\nblocks:\n  b:\n    nodes: [{id: r, op: rleu}]\n", "lib.yaml")
    out = cli("validate", importing(tmp_path, "lib.yaml"))
    assert out.startswith(f"{lib}:4:25: error[E0111]: unknown op 'rleu'") and "4 |     nodes:" in out


def test_an_import_that_fails_to_load_adds_no_unknown_op_errors(tmp_path):
    p = importing(tmp_path, "nope.yaml")
    e = one_error(p)
    assert e.code == "E0151"


# -- -p overrides (18, 19) -----------------------------------------------------------
RESNET = os.path.join(ROOT, "specs", "resnet18.yaml")


def _line_of(path, text):
    return next(i for i, line in enumerate(open(path).read().splitlines(), 1) if line.startswith(text))


def test_an_unknown_override_is_located_at_params_and_names_the_p():      # 18
    out = cli("validate", RESNET, "-p", "nope=1")
    assert out.startswith(f"{RESNET}:{_line_of(RESNET, 'params:')}:1: error[E0115]: "
                          "the spec has no param 'nope' (given as an override: -p nope=1)")
    assert "2 error(s)" not in out


def test_a_bad_override_value_is_one_error_that_names_the_p():            # 19
    out = cli("validate", RESNET, "-p", "size=${nope}")
    assert out.startswith(f"{RESNET}:{_line_of(RESNET, '  size:')}:3: error[E0115]: "
                          "-p size=${nope}: unknown name 'nope' in expression")
    assert "error(s) found" not in out       # one mistake, one error


def test_an_override_of_the_wrong_type_names_the_p():
    out = cli("validate", RESNET, "-p", "size=abc")
    assert "error[E0115]: -p size=abc: the param is an integer in the spec (224), got a string 'abc'" in out
    assert "error(s) found" not in out
    out = cli("validate", RESNET, "-p", "widths=64")
    assert "-p widths=64: the param is a list in the spec" in out


def test_a_param_named_like_an_argument_of_load(tmp_path):
    """-p batch=5 overrides the spec's param `batch`; it was a TypeError traceback."""
    p = write(tmp_path, 'archviz: 1\nparams: {batch: 4, dtype: 1}\ninputs: {x: {shape: [3, "${batch}", 8]}}\n'
                        "nodes:\n  - {id: r, op: relu}\n")
    r = CliRunner().invoke(main, ["validate", p, "-p", "batch=5", "-p", "dtype=2", "--batch", "2"])
    assert r.exit_code == 0 and "outputs out [2, 3, 5, 8]" in r.output, r.output
    assert "the spec has no param 'batch' (given as an override: -p batch=3)" in cli("validate", RESNET, "-p", "batch=3")


def test_good_overrides_still_work():
    m = archviz.load(RESNET, size="${2 * 64}", widths=[32, 64, 128, 256], num_classes=10)
    assert m.output_shapes["logits"] == (1, 10)


# -- one mistake, one error ----------------------------------------------------------
def test_a_refused_function_in_a_param_is_one_error(tmp_path):
    p = write(tmp_path, 'archviz: 1\nparams: {n: "${hypot(2.5)}"}\ninputs: {x: {shape: [3, 8, 8]}}\n'
                        'nodes:\n  - {id: c, op: conv2d, out: "${n}", kernel: 3}\n  - {id: d, op: conv2d, out: "${n * 2}", kernel: 1}\n')
    e = one_error(p)
    assert e.code == "E0202" and "'hypot' is not allowed" in e.message and where(e) == (p, 2, 16)


def test_a_failed_block_param_default_is_one_error(tmp_path):
    p = write(tmp_path, """\
        archviz: 1
        blocks:
          b:
            params: {w: {type: int, default: "${hypot(2)}"}}
            nodes:
              - {id: c, op: conv2d, out: "${w}", kernel: 3}
        inputs: {x: {shape: [3, 8, 8]}}
        nodes:
          - {id: a, op: b}
        """)
    e = one_error(p)
    assert e.code == "E0202" and where(e) == (p, 4, 41)


def test_a_param_reading_a_failed_param_adds_no_error(tmp_path):
    p = write(tmp_path, 'archviz: 1\nparams: {a: "${nope}", b: "${a * 2}"}\ninputs: {x: {shape: [3, "${b}", 8]}}\n'
                        "nodes:\n  - {id: r, op: relu}\n")
    e = one_error(p)
    assert e.code == "E0203" and where(e) == (p, 2, 16)


def test_unknown_name_in_an_expression_is_located(tmp_path):
    p = write(tmp_path, HEAD + '  - {id: c, op: conv2d, out: "${2 * widht}", kernel: 3}\n')
    e = one_error(p)
    assert e.code == "E0203" and where(e) == (p, 7, 37)        # under `widht`


def test_a_node_reading_itself_through_a_broken_block_call(tmp_path):    # 21
    p = write(tmp_path, """\
        archviz: 1
        name: t
        blocks:
          b:
            params: {w: {type: int}}
            nodes:
              - {id: r, op: relu}
        inputs:
          img: {shape: [3, 8, 8]}
        nodes:
          - {id: f, op: b, in: f}
          - {id: g, op: b, w: 1}
        """)
    errs = errors(p)
    assert all(e.span is not None and e.span.file == p for e in errs), [str(e) for e in errs]
    assert sorted((e.code, e.span.line, e.span.col) for e in errs) == [("E0114", 11, 5), ("E0306", 11, 24)]


# -- expressions: bounded before allocating ------------------------------------------
@pytest.mark.parametrize("expr", [
    "'%2000000000d' % 1", "'%.2000000000f' % 1.5", "'%*d' % [2000000000, 1]", "'%100000d%100000d' % [1, 2]",
    "[[0] * 100000] * 100000", "[[[0] * 1000] * 1000] * 1000", "'ab' * 60000", "[[0] * 1000, [1] * 1000] * 100",
    "[[0] * 60000, [0] * 60000]",
])
def test_expressions_cannot_build_huge_values(expr):
    t = time.monotonic()
    with pytest.raises(ArchvizError) as ei:
        evaluate(expr, {}, Span("f.yaml", 3, 10))
    assert time.monotonic() - t < 1
    e = ei.value
    assert e.code == "E0204" and e.span is not None and len(e.message) < 300


def test_expressions_within_the_bounds_still_work():
    assert evaluate("'%5d|' % 42 + '%-3s|' % 'a' + '%.2f' % 2.5", {}) == "   42|a  |2.50"
    assert len(evaluate("[[0] * 100] * 100", {})) == 100
    assert evaluate("len('ab' * 50000)", {}) == MAX_LEN


def test_parsing_an_expression_prints_no_python_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a SyntaxWarning would reach the user's stderr
        assert evaluate("1if True else 2", {}) == 1
        assert evaluate("'\\d'", {}) == "\\d"


def test_an_error_never_prints_a_huge_value(tmp_path):
    p = write(tmp_path, 'archviz: 1\nparams: {w: "${[0] * 100000}"}\ninputs: {x: {shape: [3, 8, 8]}}\n'
                        'nodes:\n  - {id: c, op: conv2d, out: 4, kernel: "${w}"}\n  - {id: d, op: relu, when: "${w}"}\n')
    errs = errors(p)
    assert errs and all(len(format_error(e)) < 3000 for e in errs)
    e = SpecError("x" * 10**6, hint="y" * 10**6, notes=["z" * 10**6])
    assert len(format_error(e)) < 10_000


# -- the IR refuses ids that are not names --------------------------------------------
@pytest.mark.parametrize("bad", [None, True, 3, ""])
def test_add_node_refuses_an_id_that_is_not_a_name(bad):
    from archviz.ir.graph import LayerGraph, Node
    with pytest.raises(SpecError) as ei:
        LayerGraph().add_node(Node(id=bad, op="relu", span=Span("f.yaml", 2, 3)))
    assert ei.value.code == "E0127" and ei.value.span == Span("f.yaml", 2, 3)


def test_load_yaml_file_refuses_special_files(tmp_path):
    if os.path.exists("/dev/null"):
        with pytest.raises(SpecError) as ei:
            load_yaml_file("/dev/null")
        assert "not a regular file" in ei.value.message
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(SpecError):
        load_yaml_file(str(d))
    assert stat.S_ISDIR(os.stat(d).st_mode)


def test_many_params_times_many_copies_is_not_quadratic(tmp_path):
    """Review: every copy of a repeat (and every param) used to copy all the params, so
    30,000 params and 20,000 copies made 6·10⁸ dict entries (minutes). Now an overlay."""
    text = ("archviz: 1\nname: t\nparams:\n" + "".join(f"  p{i}: {i}\n" for i in range(30000))
            + "inputs:\n  x: {shape: [3, 4, 4]}\nnodes:\n"
            + '  - {id: r, op: relu, repeat: {n: 20000, var: i}, when: "${i < p29999}"}\n')
    p = write(tmp_path, text)
    rc, out, secs, peak_kb = run_isolated("validate", p, cwd=tmp_path)
    assert rc == 0 and "20000 layers" in out, out[-500:]
    assert secs < 10 and peak_kb < 500 * 1024, (secs, peak_kb)


def test_a_node_reading_its_own_shape_is_one_located_error(tmp_path):
    """`out: ${shape(c)[0]}` on node c: the read's error was marked as following another one
    that never came, so nothing was reported and the shape pass met a conv without `out`
    (AttributeError traceback)."""
    p = write(tmp_path, "archviz: 1\nname: t\ninputs:\n  x: {shape: [3, 8, 8]}\nnodes:\n"
                        "  - {id: c, op: conv2d, out: \"${shape(c)[0]}\", kernel: 3}\n")
    out = cli("validate", p)
    assert "Traceback" not in out and out.startswith(f"{p}:6:") and "shape(c)" in out, out
    [e] = errors_of(p)
    assert e.span.line == 6


def test_reading_the_shape_of_a_node_whose_attribute_failed_is_no_traceback(tmp_path):
    """Fuzz seed 32, case 417: `out: ${shape(x)[99]}` fails (reported), the node is kept
    without `out`, and a later shape(c) ran conv's rule on it: AttributeError traceback."""
    p = write(tmp_path, "archviz: 1\nname: t\ninputs:\n  x: {shape: [3, 8, 8]}\nnodes:\n"
                        "  - {id: c, op: conv2d, out: \"${shape(x)[99]}\", kernel: 1}\n"
                        "  - {id: d, op: conv2d, out: \"${shape(c)[0]}\", kernel: 1}\n")
    out = cli("validate", p)
    assert "Traceback" not in out and out.startswith(f"{p}:6:") and "index 99" in out, out
    [e] = errors_of(p)      # one mistake, one error: d's read only follows from it
    assert e.span.line == 6
