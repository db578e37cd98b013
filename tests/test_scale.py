"""Analysis at scale (issue 17): the bounds that let a 100,000-layer graph in, the JSON
writer, and the collector pause. The speed itself is measured by
tests/benchmarks/bench_versions.py, not by a timed test."""
from __future__ import annotations

import gc
import os
import sys

import pytest

import archviz
from archviz.errors import SpecError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "benchmarks"))
import gen_specs  # noqa: E402


def test_the_layer_budget_counts_layers_not_inputs(tmp_path, monkeypatch):
    # MAX_LAYERS layers compile (the graph's input is a node, not a layer); one more is refused
    # (the budget is lowered: the bound, not the constant, is under test)
    monkeypatch.setattr("archviz.spec.budget.MAX_LAYERS", 60)
    p = tmp_path / "ok.yaml"
    p.write_text(gen_specs.chain_spec(60))
    m = archviz.load(str(p))
    assert len(m.layers) == 60
    p.write_text(gen_specs.chain_spec(61))
    with pytest.raises(SpecError) as e:
        archviz.load(str(p))
    assert e.value.code == "E0135" and "more than 60 layers" in e.value.message
    assert (e.value.span.line, e.value.span.col) == (4 + 61, 10)    # the 61st layer's id


def test_a_100000_layer_spec_fits_the_file_bound():
    from archviz.spec.yamlload import MAX_FILE_BYTES
    assert len(gen_specs.dag_spec(100_000).encode()) <= MAX_FILE_BYTES


def test_load_leaves_the_collector_as_it_found_it(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(gen_specs.dag_spec(30))
    assert gc.isenabled()
    archviz.load(str(p))
    assert gc.isenabled()
    gc.disable()
    try:
        archviz.load(str(p))
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(SpecError):      # an error on the way restores it too
        archviz.load(str(tmp_path / "missing.yaml"))
    assert gc.isenabled()
