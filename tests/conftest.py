"""Shared test setup: an isolated data directory per test, one converted copy of the bundled model per machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRESETS = REPO / "presets"
DEMO_DATA = REPO.parent / "shared" / "data" / "llamafactory-demo"

# Nothing is ever fetched from a hub in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# The converted bundled model is kept between test sessions (it takes ~25 s to make).
os.environ.setdefault("WORKBENCH_MODELS", str(REPO / ".home" / "models"))


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty workbench data directory for each test."""
    path = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def model_ref():
    """The bundled SmolLM2-135M-Instruct, converted once."""
    from workbench import models

    return models.resolve("smollm2-135m-instruct")
