# One command sets up and runs the main job; one sets up and runs the tests.
#   make demo   # MNIST, 100 labels, 10 epochs (minutes on a laptop CPU); EPOCHS=300 for the paper's protocol
#   make test   # the test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EPOCHS ?= 10
LABELS ?= 100
SEED   ?= 1

.PHONY: setup demo test lint clean

$(BIN)/improved-gan: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch 2.13.0: the CPU wheel where one lies on disk; elsewhere PyPI's build (README "Quick start").
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/improved-gan

demo: setup
	$(BIN)/improved-gan train mnist-fm --labels $(LABELS) --seed $(SEED) --epochs $(EPOCHS)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports  # the layers contract in pyproject.toml: each layer imports only the ones below

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
