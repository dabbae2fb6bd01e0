"""One tuned run for the GGUF, Ollama and hub tests, trained through the command line as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO, SHORT_IDENTITY_RUN
from workbench.export.llama_cpp import INSTALL_COMMAND, converter_dir
from workbench.runs.files import RunFiles


@dataclass(frozen=True)
class TunedRun:
    home: Path
    id: str
    files: RunFiles

    def workbench(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`python -m workbench ARGS` against this run's data directory."""
        return subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            cwd=REPO,
            env={**os.environ, "WORKBENCH_HOME": str(self.home), "OMP_NUM_THREADS": "1", **env},
            capture_output=True,
            text=True,
            timeout=600,
        )


def needs_converter() -> None:
    if not (converter_dir() / ".complete").is_file():
        pytest.skip(f"llama.cpp's converter is not installed in {converter_dir()}: run `{INSTALL_COMMAND}`")


@pytest.fixture(scope="session")
def tuned_run(tmp_path_factory) -> TunedRun:
    home = tmp_path_factory.mktemp("export-home")
    overrides = [arg for item in SHORT_IDENTITY_RUN for arg in ("--set", item)]
    run = TunedRun(home, "", RunFiles(home))
    result = run.workbench("train", str(PRESETS / "sft-lora-identity.yaml"), *overrides)
    assert result.returncode == 0, result.stdout + result.stderr
    from workbench.runs.store import JobStore

    (job,) = JobStore(home / "jobs.sqlite").list()
    assert job.state == "finished", job.error
    return TunedRun(home, job.id, job.files)
