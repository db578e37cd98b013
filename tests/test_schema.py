"""The JSON Schema of spec files (issue 15, item 4): generated from the op registry, shipped
in the package unchanged, valid draft-07, accepting every bundled spec and file of blocks,
and rejecting what archviz rejects in the ways a schema can see (an unknown attribute, a
wrong type, a missing required attribute, a value outside its choices). It is looser than
archviz (expressions, block calls, references, shapes): the last tests pin that down."""
from __future__ import annotations

import glob
import json
import os

import jsonschema
import pytest
from click.testing import CliRunner

import archviz
from archviz.backends.jsonschema import attr_schema, schema_text, spec_schema
from archviz.cli import main
from archviz.errors import ArchvizError
from archviz.ops import registry
from archviz.spec.yamlload import load_yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "archviz", "schema", "spec.schema.json")
VALIDATOR = jsonschema.Draft7Validator(spec_schema())


def _data(text, name="t.yaml"):
    return json.loads(json.dumps(load_yaml(text, name)))     # plain dicts, as an editor sees them


def test_schema_is_valid_draft7_and_shipped_unchanged():
    jsonschema.Draft7Validator.check_schema(spec_schema())
    with open(SHIPPED, encoding="utf-8") as f:
        assert f.read() == schema_text(), "archviz/schema/spec.schema.json is stale: run " \
                                          "`make docs` (or python -m archviz schema -o archviz/schema/spec.schema.json)"


def test_the_command_prints_it(tmp_path):
    r = CliRunner().invoke(main, ["schema"])
    assert r.exit_code == 0 and json.loads(r.stdout) == spec_schema()
    r = CliRunner().invoke(main, ["schema", "-o", str(tmp_path / "s.json")])
    assert r.exit_code == 0 and json.loads((tmp_path / "s.json").read_text()) == spec_schema()


SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "specs", "blocks", "*.yaml"))
               + glob.glob(os.path.join(ROOT, "tests", "render", "specs", "*.yaml")))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_bundled_spec_validates(path):
    errors = list(VALIDATOR.iter_errors(_data(open(path, encoding="utf-8").read(), path)))
    assert errors == [], [(list(e.path), e.message[:200]) for e in errors[:5]]


def test_every_op_and_attribute_is_described():
    node = spec_schema()["definitions"]["node"]
    described = {r["if"]["properties"]["op"]["const"]: r["then"] for r in node["allOf"]}
    assert set(described) == set(registry) - {"input"}      # a graph input is declared under inputs:
    for name, then in described.items():
        assert set(registry[name].attrs) <= set(then["properties"])
        assert sorted(then.get("required", [])) == sorted(k for k, a in registry[name].attrs.items() if a.required)


BASE = "archviz: 1\nname: t\ninputs: {x: {shape: [3, 8, 8]}}\nnodes:\n"


@pytest.mark.parametrize("node, why", [
    ("{id: c, op: conv2d, out: 4, kernal: 3}", "kernal"),               # unknown attribute
    ("{id: c, op: conv2d, out: 4, kernel: '3'}", "kernel"),              # a string for an integer
    ("{id: c, op: conv2d, kernel: 3}", "'out' is a required property"),   # a required attribute missing
    ("{id: c, op: conv2d, out: 0, kernel: 3}", "out"),                   # out >= 1
    ("{id: c, op: conv2d, out: 4, kernel: [3, 3, 3]}", "kernel"),         # two values at most
    ("{id: c, op: conv2d, out: 4, kernel: 3, padding: full}", "padding"),  # 'same' or 'valid'
    ("{id: c, op: upsample, scale: 2, mode: cubic}", "mode"),            # a choice
    ("{id: c, op: relu, when: maybe}", "when"),
    ("{id: 1c, op: relu}", "id"),
    ("{op: relu}", "'id' is a required property"),
])
def test_schema_and_archviz_reject_the_same_mistakes(tmp_path, node, why):
    text = BASE + f"  - {{id: first, op: relu}}\n  - {node}\n"
    errors = list(VALIDATOR.iter_errors(_data(text)))
    assert errors, node
    assert any(why in e.message or why in [str(p) for p in e.absolute_path] or why in json.dumps(list(e.absolute_path))
               or any(why in (c.message + str(list(c.absolute_path))) for c in (e.context or []))
               for e in errors), [e.message for e in errors]
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(ArchvizError):
        archviz.load(str(p))


def test_unknown_top_level_key():
    errors = list(VALIDATOR.iter_errors(_data(BASE.replace("nodes:", "nodez:") + "  - {id: r, op: relu}\n")))
    assert any("nodez" in e.message for e in errors)


@pytest.mark.parametrize("repeat", ["{rows: [{c: 4, s: 1}, {c: 8, s: 2}], var: i}", "{rows: '${[]}', var: i}",
                                    "{rows: []}"])
def test_a_table_repeat_validates(tmp_path, repeat):
    """`repeat: {rows: ...}` (a table, literal or an expression) passes both (MobileNetV2's spec)."""
    text = BASE + f"  - {{id: c, op: conv2d, repeat: {repeat}, out: 4, kernel: 1}}\n"
    assert list(VALIDATOR.iter_errors(_data(text))) == []
    p = tmp_path / "t.yaml"
    p.write_text(text)
    archviz.load(str(p))


@pytest.mark.parametrize("repeat", ["{rows: [1, 2]}", "{rows: [], n: 2}", "{rowz: []}"])
def test_a_bad_table_repeat_is_refused_by_both(tmp_path, repeat):
    text = BASE + f"  - {{id: c, op: conv2d, repeat: {repeat}, out: 4, kernel: 1}}\n"
    assert list(VALIDATOR.iter_errors(_data(text))), repeat
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(ArchvizError):
        archviz.load(str(p))


# Where the schema is looser than archviz, on purpose (documented in `archviz schema --help`
# and archviz/backends/jsonschema.py): these pass the schema and fail archviz.
@pytest.mark.parametrize("node", [
    "{id: c, op: conv2d, out: '${4 / 3}', kernel: 3}",     # an expression's value (a fraction) is not computed
    "{id: c, op: conv2d, out: 4, kernel: 9}",              # a shape problem: 9 > 8
    "{id: c, op: relu, in: nowhere}",                      # a reference is not resolved
    "{id: c, op: myblock, anything: 1}",                   # a block call: its params are not known here
])
def test_schema_is_looser_than_archviz(tmp_path, node):
    text = BASE + f"  - {node}\n"
    assert list(VALIDATOR.iter_errors(_data(text))) == []
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(ArchvizError):
        archviz.load(str(p))


def test_an_attribute_type_without_a_rule_is_an_error():
    from archviz.ops.base import Attr
    with pytest.raises(ValueError, match="no JSON Schema rule"):
        attr_schema(Attr("complex"))
