"""The restricted YAML loader (archviz.spec.yamlload): what a value means, where it was
written, and what is refused. Every test runs twice: with libyaml (the C parser, used when
PyYAML has it) and with the pure-Python composer, which must agree value for value and
column for column."""
from __future__ import annotations

import math

import pytest
import yaml

from archviz.errors import SpecError, Span
from archviz.spec.yamlload import LocDict, LocList, load_yaml, load_yaml_file, span_of


@pytest.fixture(params=["libyaml", "pure"], autouse=True)
def loader(request, monkeypatch):
    if request.param == "libyaml":
        if not getattr(yaml, "__with_libyaml__", False):
            pytest.skip("PyYAML without libyaml")
    else:
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
    return request.param


def err(text: str) -> SpecError:
    with pytest.raises(SpecError) as ei:
        load_yaml(text, "f.yaml")
    return ei.value


def at(e: SpecError) -> tuple:
    return (e.span.file, e.span.line, e.span.col)


# -- values --------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("Yes", "Yes"), ("ON", "ON"), ("y", "y"),
    ("true", True), ("false", False), ("True", True), ("FALSE", False),
    ("1e-4", 1e-4), ("1.5e3", 1500.0), ("1E2", 100.0), ("-2.5", -2.5), (".5", 0.5),
    ("42", 42), ("-3", -3), ("+4", 4), ("1_000", 1000), ("0x10", 16), ("08", 8), ("007", 7), ("0", 0),
    ("~", None), ("null", None), ("", None),
    ('"123"', "123"), ("'true'", "true"), ('"1e-4"', "1e-4"),
    ("2020-01-01", "2020-01-01"),       # no timestamps: a date stays the text written
    ("0o17", "0o17"), ("1:30", "1:30"),  # no YAML 1.1 octal / sexagesimal
    ("conv2d", "conv2d"), ("${a * 2}", "${a * 2}"),
])
def test_scalar_meaning(text, value):
    got = load_yaml(f"k: {text}\n", "f.yaml")["k"]
    assert got == value and type(got) is type(value)


def test_integers_are_exact_and_floats_are_floats():
    d = load_yaml("a: 123456789012345678901234567890\nb: 1e-4\nc: 3\n", "f.yaml")
    assert d["a"] == 123456789012345678901234567890 and isinstance(d["a"], int)
    assert isinstance(d["b"], float) and isinstance(d["c"], int) and not isinstance(d["c"], bool)


def test_special_floats():
    d = load_yaml("a: .inf\nb: -.inf\nc: .nan\n", "f.yaml")
    assert d["a"] == math.inf and d["b"] == -math.inf and math.isnan(d["c"])


def test_containers_are_plain_dicts_and_lists_with_spans():
    d = load_yaml("nodes:\n  - {id: a, op: relu}\n  - [1, 2]\n", "f.yaml")
    assert isinstance(d, LocDict) and isinstance(d, dict)
    assert isinstance(d["nodes"], LocList) and isinstance(d["nodes"], list)
    assert d == {"nodes": [{"id": "a", "op": "relu"}, [1, 2]]}
    assert (d.span.line, d.span.col) == (1, 1)
    nodes = d["nodes"]
    assert [(s.line, s.col) for s in nodes.spans] == [(2, 5), (3, 5)]
    line2 = "  - {id: a, op: relu}"
    assert (nodes[0].spans["op"].line, nodes[0].spans["op"].col) == (2, line2.index("relu") + 1)
    assert (nodes[0].key_spans["op"].line, nodes[0].key_spans["op"].col) == (2, line2.index("op") + 1)
    assert (nodes[1].spans[1].line, nodes[1].spans[1].col) == (3, 9)


def test_value_spans_point_inside_quotes_and_carry_the_width():
    d = load_yaml('a: "${x}"\nb: plain\nc: \'q\'\n', "f.yaml")
    a, b, c = d.spans["a"], d.spans["b"], d.spans["c"]
    assert (a.line, a.col, a.end_col) == (1, 5, 9)          # ${x}: columns 5..8
    assert (b.line, b.col, b.end_col) == (2, 4, 9)          # plain: columns 4..8
    assert (c.line, c.col, c.end_col) == (3, 5, 6)
    assert (d.key_spans["b"].line, d.key_spans["b"].col) == (2, 1)


def test_span_helpers():
    d = load_yaml("a: {b: 1}\n", "f.yaml")
    assert d.span_of("a") == d.spans["a"]
    assert d["a"].span_of("missing") == d["a"].span           # the container, as a fallback
    assert d.key_span("missing") == d.span
    assert span_of(d, "a") == d.spans["a"]
    fallback = Span("g.yaml", 9, 9)
    assert span_of({"a": 1}, "a", fallback) is fallback       # a plain dict has no spans


def test_columns_count_characters_not_bytes():
    # the same column with and without libyaml, after multi-byte characters
    d = load_yaml('a: {doc: "éé€", x: "${q}"}\n', "f.yaml")
    assert (d["a"].spans["x"].line, d["a"].spans["x"].col) == (1, 21)
    e = err('a: {doc: "éé€", x: [}\n')
    assert e.code == "E0101" and at(e) == ("f.yaml", 1, 21)


# -- refused -------------------------------------------------------------------------
def test_duplicate_key():
    e = err("a: 1\nb: 2\na: 3\n")
    assert e.code == "E0102" and e.message == "duplicate key 'a'" and at(e) == ("f.yaml", 3, 1)
    assert e.notes == ["first defined at f.yaml:1:1"]


def test_duplicate_key_in_a_flow_mapping():
    e = err("n: {id: a, op: relu, id: b}\n")
    assert e.code == "E0102" and "'id'" in e.message and at(e) == ("f.yaml", 1, 22)
    assert e.notes == ["first defined at f.yaml:1:5"]


def test_anchor():
    e = err("a: &x 1\nb: 2\n")
    assert e.code == "E0103" and "anchors (&name)" in e.message and at(e) == ("f.yaml", 1, 4)
    assert e.hint


def test_alias():
    e = err("a: 1\nb: [1, *x]\n")
    assert e.code == "E0103" and "aliases (*name)" in e.message and at(e) == ("f.yaml", 2, 8)


def test_anchor_and_alias_reports_the_anchor_first():
    e = err("a: &x {b: 1}\nc: *x\n")
    assert e.code == "E0103" and "anchors" in e.message and at(e) == ("f.yaml", 1, 4)


def test_merge_key():
    e = err("a: {b: 1}\nc: {<<: {d: 1}, e: 2}\n")
    assert e.code == "E0103" and "merge keys (<<)" in e.message and at(e) == ("f.yaml", 2, 5)
    assert "defaults" in e.hint


def test_a_quoted_double_angle_is_an_ordinary_key():
    assert load_yaml('"<<": 1\n', "f.yaml") == {"<<": 1}


@pytest.mark.parametrize("text,tag,col", [
    ("a: !!python/name:os.system x\n", "tag:yaml.org,2002:python/name:os.system", 4),
    ("a: !!python/object/apply:os.system [ls]\n", "tag:yaml.org,2002:python/object/apply:os.system", 4),
    ("a: !!str 1\n", "tag:yaml.org,2002:str", 4),       # even a standard tag: 1 would silently stay 1
    ("a: [1, !!int 2]\n", "tag:yaml.org,2002:int", 8),
    ("a: !!set {x, y}\n", "tag:yaml.org,2002:set", 4),
    ("a: !foo x\n", "!foo", 4),
    ("a: ! x\n", "!", 4),
])
def test_tags_are_errors(text, tag, col):
    e = err(text)
    assert e.code == "E0104" and e.message == f"YAML tag '{tag}' is not allowed in a spec"
    assert at(e) == ("f.yaml", 1, col) and "quote" in e.hint


def test_syntax_error_unclosed_flow_mapping():
    e = err("a: 1\nb: {c: 1, d: 2\ne: 3\n")
    assert e.code == "E0101" and e.message.startswith("YAML syntax error: ")
    assert e.span.file == "f.yaml" and e.span.line >= 3


def test_syntax_error_bad_indentation():
    e = err("a:\n  b: 1\n c: 2\n")
    assert e.code == "E0101" and at(e) == ("f.yaml", 3, 2)


def test_tab_indentation():
    e = err("a:\n\t- 1\n")
    assert e.code == "E0101" and at(e) == ("f.yaml", 2, 1) and "cannot start any token" in e.message


def test_several_documents_are_an_error():
    e = err("a: 1\n---\nb: 2\n")
    assert e.code == "E0101" and at(e) == ("f.yaml", 2, 1)
    assert any("single document" in n for n in e.notes)


def test_control_character_is_located():
    e = err("a: 1\nb: 'éx\x07'\n")
    assert e.code == "E0101" and "#x0007" in e.message and at(e) == ("f.yaml", 2, 7)


def test_integer_too_long_to_convert():
    e = err("a: 1\nb: " + "9" * 5000 + "\n")
    assert e.code == "E0101" and "5000 digits" in e.message and at(e) == ("f.yaml", 2, 4)


def test_keys_must_be_scalars():
    e = err("? [a, b]\n: 1\n")
    assert e.code == "E0105" and at(e) == ("f.yaml", 1, 3)
    e = err("{[a]: 1}\n")
    assert e.code == "E0105" and at(e) == ("f.yaml", 1, 2)


def test_empty_and_comment_only_documents_are_none():
    assert load_yaml("", "f.yaml") is None
    assert load_yaml("# nothing\n", "f.yaml") is None


# -- files ---------------------------------------------------------------------------
def test_file_not_found(tmp_path):
    with pytest.raises(SpecError) as ei:
        load_yaml_file(str(tmp_path / "nope.yaml"))
    assert ei.value.code == "E0106" and "not found" in ei.value.message


def test_directory_and_bad_encoding(tmp_path):
    with pytest.raises(SpecError) as ei:
        load_yaml_file(str(tmp_path))
    assert ei.value.code == "E0106" and "is a directory, not a spec file" in ei.value.message
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SpecError) as ei:
        load_yaml_file(str(p))
    assert ei.value.code == "E0106" and "utf-8" in ei.value.message


def test_file_spans_name_the_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("a:\n  b: [1, 2]\n")
    d = load_yaml_file(str(p))
    assert d["a"]["b"].spans[1] == Span(str(p), 2, 10, 11)
