"""The YAML loader's fast path (archviz.spec.yamlfast) reads exactly what the slow path
(libyaml's events, archviz.spec.yamlload._build) reads: the same values of the same types,
the same locations of every key, value and container, and the same errors. The truth is
the slow path, which the rest of the suite checks against YAML itself (tests/test_yaml.py).
"""
from __future__ import annotations

import glob
import os
import random

import pytest

from archviz.errors import LazySpan, Span, SpecError
from archviz.spec import yamlfast, yamlload
from archviz.spec.located import LocDict, LocList

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def slow(text: str, file: str = "f.yaml"):
    return yamlload.load_yaml(text, file, fast=False)


def reading(fn, text):
    """(value, None) or (None, (message, span)) of a reading."""
    try:
        return fn(text), None
    except SpecError as e:
        return None, (e.message, str(e.span), e.code)


def fast(text: str, file: str = "f.yaml"):
    return yamlload.load_yaml(text, file)


def _span(s):
    return None if s is None else (s.file, s.line, s.col, s.end_col)


def same(a, b, path="doc"):
    """a (fast) and b (slow) hold the same values, types and locations."""
    assert type(a) is type(b) or (isinstance(a, LocDict) and type(b) is LocDict) \
        or (isinstance(a, LocList) and type(b) is LocList), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(b, LocDict):
        assert list(a) == list(b), path
        assert _span(a.span) == _span(b.span), f"{path}: span {a.span!r} vs {b.span!r}"
        for k in b:
            assert _span(a.span_of(k)) == _span(b.span_of(k)), f"{path}.{k}: value span"
            assert _span(a.key_span(k)) == _span(b.key_span(k)), f"{path}.{k}: key span"
            assert {q: _span(s) for q, s in a.spans.items()} == {q: _span(s) for q, s in b.spans.items()}, path
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, LocList):
        assert len(a) == len(b), path
        assert _span(a.span) == _span(b.span), f"{path}: span {a.span!r} vs {b.span!r}"
        assert [_span(s) for s in a.spans] == [_span(s) for s in b.spans], f"{path}: item spans"
        for i, (x, y) in enumerate(zip(a, b)):
            assert _span(a.span_of(i)) == _span(b.span_of(i)), f"{path}[{i}]"
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{path}: {a!r} vs {b!r}"


def check(text: str):
    got, err = reading(fast, text)
    want, werr = reading(slow, text)
    assert err == werr
    if werr is None:
        same(got, want)
    return got


@pytest.fixture
def every_line(monkeypatch):
    """The fast path for any number of lines (a file needs MIN_LINES of them otherwise)."""
    monkeypatch.setattr(yamlfast, "MIN_LINES", 1)


HEAD = "archviz: 1\nname: t\ninputs: {x: {shape: [8, 32, 32]}}\nnodes:\n"


def test_a_large_spec_is_read_fast_and_lazily():
    """The 100,000-layer benchmark's lines are all fast ones; their locations are made only
    when read (LazySpan), and are then the slow path's."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tests", "benchmarks"))
    import gen_specs
    text = gen_specs.dag_spec(300)
    runs = yamlfast.Runs(text, "f.yaml")
    assert len(runs.items) == 1 and len(next(iter(runs.items.values()))[0]) == 300
    doc = fast(text)
    node = doc["nodes"][2]
    assert type(node) is yamlfast.LineDict and type(node["in"]) is yamlfast.LineList
    assert isinstance(node.span_of("op"), LazySpan) and type(node._at) is int     # nothing read yet
    same(doc, slow(text))
    assert type(node._at) is LocDict                                                  # read once asked


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "specs", "**", "*.yaml"), recursive=True)))
def test_every_bundled_spec_reads_the_same(path, every_line):
    with open(path, encoding="utf-8") as f:
        check(f.read())


GOOD_VALUES = ["c0", "conv2d", "x", "a.b", "_z", "8", "0", "-3", "1.5", "0.25", "-0", "-0.0", "true", "false",
               "null", "yes", "no", "on", "off", "inf", "nan", "12345678901234567", "[1, 2]", "[r1, x]", "[]",
               "[ ]", "[3,3]", "[true, null]", "[-1, 0.5, a]"]
ODD_VALUES = ["True", "TRUE", "False", "Null", "NULL", ".inf", "~", "08", "1e5", "0x1F", "1_000", "'q'", '"q"',
              "a-b", "${n}", "&a b", "*a", "!!str s", "a#b", "[1, [2]]", "{a: 1}", "a: b", "12345678901234567890"]
GOOD_KEYS = ["id", "op", "in", "out", "kernel", "k_2", "a.b", "stride", "bias", "_p"]
ODD_KEYS = ["true", "null", "True", "1", "<<", "'id'", "x y"]


def _line(rng, odd: float) -> str:
    keys = rng.sample(GOOD_KEYS, rng.randint(1, 5))
    if rng.random() < odd:
        keys.append(rng.choice(ODD_KEYS + keys))                # an odd key, or a duplicate one
    sep = rng.choice([", ", ",", " , ", ",  "])
    colon = rng.choice([": ", ":  ", ": "] + ([":"] if rng.random() < odd else []))
    body = sep.join(f"{k}{colon}{rng.choice(ODD_VALUES if rng.random() < odd else GOOD_VALUES)}" for k in keys)
    pad = rng.choice(["", " ", "  "])
    tail = rng.choice(["", "", "  "] + ([" # note", "\r"] if rng.random() < odd else []))
    return f"{{{pad}{body}{pad}}}{tail}"


def _document(rng) -> str:
    """Runs of one-line mappings; one document in two also holds a line of an odd kind, or
    such a line in a context where YAML reads it as something else."""
    odd = rng.choice([0.0, 0.0, 0.01, 0.05])
    lines = [HEAD.rstrip("\n")]
    ind = rng.choice(["  ", "", "    "])
    for _ in range(rng.randint(1, 8)):
        lines += [f"{ind}- {_line(rng, odd)}" for _ in range(rng.randint(1, 6))]
        kind = rng.random() if rng.random() < 2 * odd + 0.05 else 1.0
        if kind < 0.15:
            lines += [f"  - {{id: b{rng.randint(0, 9)}, op: blockcall, doc: |", f"      - {_line(rng, odd)}"]
        elif kind < 0.3:
            lines += ["doc: |", f"  - {_line(rng, odd)}", f"  - {_line(rng, odd)}"]
        elif kind < 0.45:
            lines += ["more: text", f"  - {_line(rng, odd)}"]
        elif kind < 0.6:
            lines += ["list: [", f"  - {_line(rng, odd)}", "]"]
        elif kind < 0.75:
            lines += [f"{ind}# - {_line(rng, odd)}", f"{ind}- - {_line(rng, odd)}"]
        elif kind < 0.9:
            lines += [f"{ind}-", f"{ind}  - {_line(rng, odd)}", ""]
        elif kind < 1.0:
            lines += [f"k{rng.randint(0, 3)}:", f"{ind}- {_line(rng, odd)}"]
    return "\n".join(lines) + rng.choice(["\n", "", "\n\n"])


def _read_fast(text: str) -> bool:
    """Whether the fast path reads `text` itself (rather than handing it to the slow one)."""
    try:
        runs = yamlfast.Runs(text, "f.yaml")
        yamlload._build(yamlload._events(runs.parser_text), "f.yaml", runs.items)
        return bool(runs.items) and not any(runs.items.values())
    except Exception:
        return False


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_read_the_same(seed, every_line):
    """Random documents mixing fast lines with every way YAML reads a line differently
    (block scalars, flow context, continuations, comments, nested items, odd scalars,
    duplicate keys, CRLF): the fast reading equals the slow one, or both fail alike."""
    rng = random.Random(seed)
    docs = [_document(rng) for _ in range(60)]
    for text in docs:
        check(text)
    read_fast = sum(map(_read_fast, docs))
    assert 20 <= read_fast <= 50, read_fast     # both ways are exercised


def test_the_words_yaml_reads_as_booleans_and_null(every_line):
    doc = check(HEAD + "  - {id: a, op: relu, bias: false, x: true, y: null, z: [true, false, null]}\n")
    n = doc["nodes"][0]
    assert n["bias"] is False and n["x"] is True and n["y"] is None and n["z"] == [True, False, None]
    for word, value in (("True", True), ("NULL", None), ("FALSE", False)):
        n = check(HEAD + f"  - {{id: a, op: relu, v: {word}}}\n")["nodes"][0]
        assert n["v"] is value


def test_numbers_keep_their_types(every_line):
    n = check(HEAD + "  - {id: a, i: 8, f: 1.5, neg: -3, z: -0, big: 123456789012345678, l: [1, 2.5]}\n")["nodes"][0]
    assert [type(n[k]) for k in ("i", "f", "neg", "z", "big")] == [int, float, int, int, int]
    assert n["l"] == [1, 2.5] and type(n["l"][1]) is float


def test_errors_in_fast_lines_are_the_slow_paths(every_line):
    """A duplicate key or a key YAML reads as a boolean: the file is read the slow way,
    which reports it where it is."""
    text = HEAD + "  - {id: a, op: relu}\n  - {id: b, op: relu, op: sigmoid}\n"
    with pytest.raises(SpecError) as e:
        fast(text)
    assert "duplicate key 'op'" in e.value.message and (e.value.span.line, e.value.span.col) == (6, 23)
    with pytest.raises(SpecError) as e:
        fast(HEAD + "  - {id: a, true: 1}\n")
    assert "is a boolean" in e.value.message and e.value.span.line == 5


def test_an_empty_mapping_where_a_run_starts_is_not_taken_for_its_placeholder(every_line):
    text = HEAD + "  - {}\n  - {id: a, op: relu}\n  - {}\n  - {id: b, op: relu}\n"
    doc = check(text)
    assert [dict(n) for n in doc["nodes"]] == [{}, {"id": "a", "op": "relu"}, {}, {"id": "b", "op": "relu"}]


@pytest.mark.parametrize("after", ["    \t", "    \t# end", "\t", "      more", "  extra: 1", "  # a comment", ""])
def test_what_follows_a_run_is_read_as_after_its_last_brace(after, every_line):
    """A placeholder that were a plain scalar would take a tab-only line after the run as
    its own spacing (loaded; YAML refuses it after a `}`): the placeholder is `{}`."""
    check(HEAD + "".join(f"  - {{id: r{i}, op: relu}}\n" for i in range(3)) + after + "\noutputs: {o: r2}\n")


def test_nesting_near_the_limit_is_read_the_slow_way(every_line):
    deep = "".join("  " * i + "-\n" for i in range(yamlload.MAX_DEPTH - 2))
    text = deep + "  " * (yamlload.MAX_DEPTH - 2) + "- {id: a, in: [x]}\n"
    assert reading(fast, text)[1] == reading(slow, text)[1] is not None
    text = deep[:-len("  " * (yamlload.MAX_DEPTH - 3) + "-\n")] + "  " * (yamlload.MAX_DEPTH - 3) + "- {id: a}\n"
    check(text)


def test_a_spans_equality_and_hash_are_its_values():
    class Owner:
        def lazy_span(self, k):
            return Span("f", 3, 4, k)
    lazy = LazySpan(Owner(), 9)
    assert lazy == Span("f", 3, 4, 9) and hash(lazy) == hash(Span("f", 3, 4, 9)) and str(lazy) == "f:3:4"


ADVERSARIAL = {      # lines that nearly fit the fast grammar, each 1-2 MB: no backtracking blow-up
    "spaces before a comma": "- {a: b" + " " * 1_000_000 + ", c: d\n",
    "pairs never closed": "- {" + ", ".join(f"a{i}: b" for i in range(100_000)) + "\n",
    "list items never closed": "- {a: [" + ", ".join("b" for _ in range(300_000)) + "}\n",
    "lists then one open": "- {" + ", ".join(f"a{i}: [b, c]" for i in range(80_000)) + ", z: [\n",
    "minus signs": "- {a: " + "-" * 1_000_000 + "}\n",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_near_misses_of_the_grammar_are_scanned_in_linear_time(name):
    """A hang guard (not a performance claim): the fast path's regular expression meets
    each of these once and gives up in milliseconds; before, a nested quantifier could
    have taken hours."""
    import time
    t = time.monotonic()
    assert list(yamlfast.LINE.finditer(ADVERSARIAL[name] * 2)) == []
    assert time.monotonic() - t < 5


@pytest.mark.parametrize("brk", ["\r", "\x85", "\u2028", "\u2029"], ids=["CR", "NEL", "LS", "PS"])
def test_a_file_with_a_line_break_yaml_counts_and_python_does_not(brk, every_line):
    """YAML also breaks lines at CR, NEL, LS and PS (a comment or a quoted name can hold
    one): the lines after it are numbered by YAML's count, so the file is read the slow way."""
    for text in (HEAD + f"# a comment{brk}# with a break\n  - {{id: a, op: relu}}\n  - {{id: b, op: relu, in: a}}\n",
                 HEAD.replace("name: t", f"name: 't{brk} x'") + "  - {id: a, op: relu}\n  - {id: b, op: relu, in: a}\n"):
        doc = check(text)
        # the last line, counting the extra break (read fast, it was a line short: 7 for 8)
        assert doc["nodes"][1].span.line == text.count("\n") + 1
        assert not yamlfast.Runs(text, "f.yaml").items


def test_a_fast_reading_pickles_and_copies_as_the_slow_one(every_line):
    """Pickled or copied, a fast mapping is the LocDict the slow path reads, with its spans,
    and without the file behind it (a compiled node pickled whole took 979 KB of a
    20,000-layer file)."""
    import copy
    import pickle
    text = HEAD + "".join(f"  - {{id: n{i}, op: relu, in: [a, b]}}\n" for i in range(300))
    want = slow(text)
    for clone in (lambda x: pickle.loads(pickle.dumps(x)), copy.deepcopy, copy.copy):
        same(clone(fast(text)), want)
    node = fast(text)["nodes"][7]
    assert len(pickle.dumps(node)) < 2_000 and type(pickle.loads(pickle.dumps(node))) is LocDict


def test_a_compiled_node_pickles_without_its_spec(tmp_path):
    import pickle
    sys_path = os.path.join(ROOT, "tests", "benchmarks")
    import sys
    sys.path.insert(0, sys_path)
    import gen_specs
    from archviz.spec import compile_spec
    g = compile_spec(gen_specs.write("dag", 3000, str(tmp_path / "dag.yaml")))
    node = g.nodes["a2000"]
    back = pickle.loads(pickle.dumps(node))
    assert len(pickle.dumps(node)) < 2_000
    assert (back.span, dict(back.attr_spans), list(back.input_spans)) == (node.span, dict(node.attr_spans),
                                                                           list(node.input_spans))
