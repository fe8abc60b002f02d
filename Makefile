# defectscope: `make demo` and `make test` work on a fresh clone (they install into .venv first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-out

.PHONY: install demo test bench bench-accuracy bench-speed lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,line,dev]'
	touch $(STAMP)

# Generates a few synthetic end faces (no external data needed), inspects them and prints where the reports are.
demo: install
	$(PY) -m defectscope.demo --out $(DEMO_DIR)

test: install
	$(PY) -m pytest -q

# Benchmarks write JSON under bench/results (see bench/README.md).
# Accuracy: the fixed synthetic set (needs nothing). Speed: over ../shared/data/fiber-real, when present.
bench: bench-accuracy bench-speed

bench-accuracy: install
	$(PY) -m bench.accuracy

bench-speed: install
	@if [ -d ../shared/data/fiber-real ]; then $(PY) -m bench.speed; \
	else echo "bench-speed skipped: ../shared/data/fiber-real is not here (real images are not shipped)"; fi

lint: install
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info src/*.egg-info .pytest_cache
