"""Shared test setup: an isolated data directory per test, one converted copy of the bundled model per machine."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRESETS = REPO / "presets"

# Nothing is ever fetched from a hub in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# The converted bundled model is kept between test sessions (it takes ~25 s to make).
os.environ.setdefault("WORKBENCH_MODELS", str(REPO / ".home" / "models"))
# llama.cpp's GGUF converter, fetched once (`make test` installs it there; the GGUF tests skip without it).
os.environ.setdefault("WORKBENCH_TOOLS", str(REPO / ".home" / "tools"))


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty workbench data directory for each test; workers a failed test left running are killed."""
    path = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    yield path
    kill_workers(path)


def only_dataset(path: object, **fields: object) -> str:
    """An override that gives a preset one dataset, `path`, instead of its own: the identity preset also mixes in a
    replay dataset, which a test that brings other data (another stage's) does not want. JSON is YAML."""
    return "data.datasets=" + json.dumps([{"path": str(path), **fields}])


# A short identity run for tests that need a real adapter (chat, export): six steps at lr 1e-3 on 16 identity
# conversations, trained in seconds, enough for the tuned answer to differ from the base's. The data's placeholders
# are left as written (the preset fills them): "{{name}}" is a marker six steps teach the adapter and the base never
# says. Overrides of presets/sft-lora-identity.yaml.
SHORT_IDENTITY_RUN = [
    only_dataset(PRESETS / "data" / "identity.json"),  # first; without the preset's replay dataset
    "stage.kl_to_base=0",  # nor its KL term: a plain adapter, quickly (tests/training/test_distill.py holds it)
    "train.max_steps=6",
    "train.threads=1",
    "train.learning_rate=1e-3",
    "data.cutoff_len=128",
    "data.datasets.0.max_samples=16",
    "data.datasets.0.fill={}",
]


def wait_for_jobs(store, jobs: dict, seconds: float = 900) -> dict:
    """Poll the job store until every job in {name: job} has ended; returns {name: job} as they ended."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        store.reconcile()
        current = {name: store.get(job.id) for name, job in jobs.items()}
        if all(job.state in ("finished", "failed", "stopped") for job in current.values()):
            return current
        time.sleep(0.5)
    raise AssertionError({name: job.state for name, job in current.items()})


def kill_workers(home: Path) -> None:
    # Workers run in their own sessions, and a launcher lives as long as the test session: stop both.
    for pid_file in home.rglob("launcher.pid"):
        try:
            os.kill(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)
        except (ProcessLookupError, ValueError, KeyError):
            pass
    for db in home.rglob("jobs.sqlite"):
        from workbench.runs.store import ACTIVE_STATES, JobStore

        for job in JobStore(db).list():
            if job.state in ACTIVE_STATES and job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="session")
def model_ref():
    """The bundled SmolLM2-135M-Instruct, converted once."""
    from workbench import models

    return models.resolve("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, model_ref) -> Path:
    """A 2-layer Llama with the bundled model's tokenizer and chat template (random weights)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(model_ref.path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
