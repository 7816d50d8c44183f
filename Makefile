# Everything a fresh clone needs: `make demo` and `make test` create the virtualenv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MLFLOW_PORT ?= 5000
# The store `mlflow-ui` serves: the one the commands use, $MLFLOW_TRACKING_URI, unless that is a server's address
# (the UI itself, say); else mlflow.db here, the commands' default.
MLFLOW_STORE := $(or $(filter-out http://% https://%,$(MLFLOW_TRACKING_URI)),sqlite:///mlflow.db)
# No offline settings here: every entry point applies features/environment.py's OFFLINE_ENVIRONMENT itself.

.PHONY: help install demo test test-fast lint format bench bench-quality mlflow-ui clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch lies on disk; installing it first keeps pip from pulling a CUDA build.
	# pip byte-compiles what it installs one file at a time, over a minute for torch, MLflow and Ray; compileall
	# does the same on every core. Not compiling at all is no saving: where $$PYTHONDONTWRITEBYTECODE is set (as on
	# the reference machine), every process would compile its imports again. Files it cannot compile are skipped,
	# as pip skips them (torch ships tests in 3.12's syntax that no import reaches); anything else it raises stops
	# the install, so that a compile that did nothing never goes unseen.
	$(BIN)/pip install --quiet --no-compile torch==2.13.0
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	$(BIN)/python -c 'import compileall, sysconfig; compileall.compile_dir(sysconfig.get_path("purelib"), quiet=2, workers=0)'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev extras (once)

demo: install  ## simulate a world, train and register a ranker, match its campaigns, print the slates
	$(BIN)/creator-match demo

test: install  ## run the test suite, one worker per core, each test file whole on one worker; lists the 25 slowest tests
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25

test-fast: install  ## the suite without the `slow` tests (training, the command line, servers, Ray, notebooks)
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not slow"

# Linting needs ruff alone: on a clone not yet installed, `make lint` installs only ruff, not torch and the rest.
$(BIN)/ruff:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'ruff>=0.6'

lint: $(BIN)/ruff  ## ruff lint and format check (needs only ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/ruff  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove the virtualenv, the demo's output and pytest's cache (never mlflow.db or mlruns: the registered rankers)
	rm -rf $(VENV) demo-output .pytest_cache

bench: install  ## speed and memory at scale: ANN vs exact, embedding cache, 10,000 campaigns x 1M creators, Ray vs local (about an hour)
	$(BIN)/python benchmarks/ann.py
	$(BIN)/python benchmarks/embedding.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/service.py

bench-quality: install  ## slate quality vs the oracle, the constrained best and baselines: both generators, 5 seeds each (about 12 minutes)
	$(BIN)/python benchmarks/quality.py --seeds 0 1 2 3 4 --creators 3000 --campaigns 400

mlflow-ui: install  ## the MLflow UI and registry on 127.0.0.1, port MLFLOW_PORT (5000 unless set), of $MLFLOW_TRACKING_URI's store
	$(BIN)/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri $(MLFLOW_STORE) --serve-artifacts --artifacts-destination ./mlartifacts
