# The two commands of the README. Each does its own set-up first (idempotent).
PY ?= python3

.PHONY: all report test setup bench docs

all: report

setup:
	PYTHON=$(PY) ./scripts/setup.sh

# Main job: reports and diagrams for every spec in specs/ into outputs/, one summary table.
report: setup
	$(PY) -m archviz report specs -o outputs

# The test suite (what CI runs).
test: setup
	$(PY) -m pytest

bench: setup
	$(PY) tests/benchmarks/bench_summary.py

# The ops and error-code references and the spec JSON Schema, generated from the op registry and archviz/codes.py.
docs:
	$(PY) -m archviz ops --format markdown > docs/ops.md
	$(PY) -m archviz errors --format markdown > docs/errors.md
	$(PY) -m archviz schema -o archviz/schema/spec.schema.json
