# TiMemory — `make run` starts the dashboard, `make test` runs every test. Both set up .venv when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# llama-cpp-python compiles from source; the portable flags avoid CPU features (AMX) that crash on some machines.
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DLLAVA_BUILD=OFF
# Numerical libraries run many times slower with 2 threads on 2-core boxes: tests and benchmarks pin one.
ONE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install install-dev install-bench run seed serve test test-fast lint bench bench-quick screenshots clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev requirements-bench.txt
	$(PY) -m pip install -r requirements-bench.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-bench: $(VENV)/.installed-bench

seed: install
	$(PY) -m timemory -q seed-demo --if-empty

run: seed
	$(VENV)/bin/streamlit run streamlit_app.py

serve: install
	$(PY) -m timemory serve

test: install-bench
	$(ONE_THREAD) $(PY) -m pytest

test-fast: install-dev
	$(ONE_THREAD) $(PY) -m pytest -m "not local_llm and not browser and not package"

# Benchmarks side by side with mem0 and FAISS; writes docs/benchmarks.md (the first run embeds a 100k corpus once).
bench: install-bench
	$(ONE_THREAD) MEM0_TELEMETRY=False $(PY) -m bench

bench-quick: install-bench
	$(ONE_THREAD) MEM0_TELEMETRY=False $(PY) -m bench --quick

# The README's pictures of the dashboard (docs/screenshots/*.png), from the demo data on an app of their own.
screenshots: install-dev
	$(ONE_THREAD) $(PY) -m bench.screenshots

lint: install-dev
	$(VENV)/bin/ruff check timemory tests bench dashboard pages streamlit_app.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
