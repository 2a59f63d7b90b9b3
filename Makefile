# thinkfamily — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.py constraints.txt | md5sum | cut -c1-8)
SCALE ?= small
SEED ?= 42
ENV ?= local
TF := $(BIN)/thinkfamily

.PHONY: setup demo test test-fast lint mlflow-ui clean jars doctor serve e2e-deps bench bench-bristol cluster-test

setup: $(STAMP) .jars/.ok

$(STAMP): setup.py constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24" "setuptools>=70" wheel
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-*; touch $@

.jars/.ok: $(STAMP)
	$(BIN)/python -m thinkfamily.jars .jars
	touch $@

jars: .jars/.ok

doctor: setup
	$(TF) doctor

demo: setup
	$(TF) --env $(ENV) demo --scale $(SCALE) --seed $(SEED)

test: setup e2e-deps
	$(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

BENCH_SCALES ?= tiny small

bench: setup  ## whole-pipeline benchmark per scale -> bench/results/*.json (see docs/benchmarks.md)
	for s in $(BENCH_SCALES); do $(BIN)/python bench/pipeline.py --scale $$s --gx-off || exit 1; done
	$(BIN)/python bench/report.py $(BENCH_SCALES)

# The scaling curve: 0.1x, 0.3x and 1x Bristol (54,000 families), each with the bare-Splink peer;
# the incremental day on the 1x lake. About 1.5 hours on 2 cores; needs ~16 GiB free memory.
bench-bristol: setup
	$(BIN)/python bench/pipeline.py --families 5400 --label x0.1 --no-incremental --gx-off --keep
	$(BIN)/python bench/pipeline.py --families 16200 --label x0.3 --no-incremental
	$(BIN)/python bench/pipeline.py --scale bristol --label x1 --keep --no-incremental
	$(BIN)/python bench/pipeline.py --scale bristol --label x1 --incremental-only
	$(BIN)/python bench/report.py x0.1 x0.3 x1

# A Spark standalone master + 2 workers on 127.0.0.1 (from the pyspark install), the pipeline
# spark-submitted to it with --py-files, gold tables compared with a local[2] run (docs/deploy.md).
cluster-test: setup
	$(BIN)/python bench/cluster_test.py

lint: setup
	$(BIN)/ruff check thinkfamily jobs ml tests bench

serve: setup
	$(TF) --env $(ENV) serve

# Browser tests use Debian's chromium (never `playwright install`). Idempotent; never fails the
# build: without root/sudo or apt the e2e tests skip and say why.
e2e-deps:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ) && \
	  { $$SUDO apt-get install -y -q chromium || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }; }; } \
	  || echo "chromium not installed: browser (e2e) tests will be skipped"

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --default-artifact-root ./mlruns --host 127.0.0.1 --port 5000

clean:
	rm -rf lake data mlruns mlflow.db spark-warehouse build dist *.egg-info .pytest_cache
