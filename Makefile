# Two entry points: `make demo` and `make test`. Both create .venv with the machine's python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-slow bench protocols install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# the mlflow extra too, so that `make test` runs the MLflow test (about 1.5 min more to install)
$(VENV)/.installed: $(BIN)/activate pyproject.toml Makefile
	$(BIN)/pip install --quiet -e '.[test,mlflow]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/mtl train recipes/quickstart.yaml

# one pytest worker per core (at most 4): most tests spend their time tracing in Python
PARALLEL := -n auto --maxprocesses 4

test: install  # MTL_TEST_MLFLOW=required: the MLflow test fails, not skips, without mlflow
	MTL_TEST_MLFLOW=required $(BIN)/python -m pytest $(PARALLEL)

test-slow: install
	$(BIN)/python -m pytest -m slow $(PARALLEL)

bench: install  # about 15 min on 2 cores: writes benchmarks/results.md and results.json
	$(BIN)/python benchmarks/run_all.py

protocols: install  # the paper protocols behind the README's tables (about an hour on 2 cores)
	$(BIN)/python benchmarks/protocols/mmoe_synthetic.py --seeds 10 --out benchmarks/protocols/mmoe_synthetic_paper_constants.md
	$(BIN)/python benchmarks/protocols/mmoe_synthetic.py --seeds 10 --options '{"alpha": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}' --out benchmarks/protocols/mmoe_synthetic_smooth.md
	$(BIN)/python benchmarks/protocols/gradnorm_toy.py --seeds 5 --out benchmarks/protocols/gradnorm_toy.md

clean:
	rm -rf $(VENV) build *.egg-info
