# One command sets up and runs the main job; one sets up and runs the tests.
#   make demo   # MNIST, 100 labels, 10 epochs (~7 min on 2 CPU cores); EPOCHS=300 for the paper's protocol
#   make test   # the test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EPOCHS ?= 10
LABELS ?= 100
SEED   ?= 1
# Where torch comes from. Empty: PyPI (on Linux x86 that is the CUDA build, several GB, unless a
# CPU wheel lies in pip's find-links); for the CPU-only build (~200 MB) use
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# One run directory per recipe, seed and length: a second `make demo` continues (or just reports)
# its run, and `make demo EPOCHS=300` starts its own.
DEMO_DIR = runs/demo-mnist-fm-2016-l$(LABELS)-s$(SEED)-e$(EPOCHS)

.PHONY: setup demo test lint clean gpu-wheels

$(BIN)/improved-gan: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch 2.13.0: the CPU wheel where one lies on disk; elsewhere PyPI's build (README "Quick start").
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/improved-gan

demo: setup
	$(BIN)/improved-gan train mnist-fm-2016 --labels $(LABELS) --seed $(SEED) --epochs $(EPOCHS) \
	  --run-dir $(DEMO_DIR) $(if $(wildcard $(DEMO_DIR)/config.yaml),--resume)

test: setup
	$(BIN)/python -m pytest -q

# The Python packages our code needs that the lent GPU machine's image lacks (PyTorch is there),
# as this venv's versions, for Python 3.12 on x86-64: benchmarks/gpu_session.sh installs them.
GPU_WHEELS = pydantic pydantic-core annotated-types typing-inspection starlette uvicorn
gpu-wheels: setup
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl $(shell $(BIN)/python -c "import importlib.metadata as m; print(' '.join(f'{n}=={m.version(n)}' for n in '$(GPU_WHEELS)'.split()))")

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports  # the layers contract in pyproject.toml: each layer imports only the ones below

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
