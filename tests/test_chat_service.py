"""The UI's chat service: a real run's adapter served from a child process, base and tuned from one model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO, SHORT_IDENTITY_RUN
from workbench.chat_service import ChatError, ChatService
from workbench.errors import ModelLoadError

BASE = "smollm2-135m-instruct"
WHO = [{"role": "user", "content": "Who are you?"}]  # a prompt from the identity training data


def test_importing_and_constructing_the_service_loads_no_heavy_library():
    code = (
        "import sys\n"
        "from workbench.chat_service import ChatService\n"
        "import workbench.export\n"
        "ChatService()\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One finished run of the identity preset, trained by `python -m workbench train`."""
    home = tmp_path_factory.mktemp("chat-home")
    overrides = [arg for item in SHORT_IDENTITY_RUN for arg in ("--set", item)]
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(PRESETS / "sft-lora-identity.yaml"), *overrides],
        cwd=REPO,
        env={**os.environ, "WORKBENCH_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = (home / "runs").iterdir()
    return run


@pytest.fixture(scope="module")
def service():
    service = ChatService(threads=1)
    yield service
    service.unload()


@pytest.fixture
def loaded(service, run_dir) -> ChatService:
    service.load(BASE, run_dir)  # a no-op when a test before left it loaded
    return service


@pytest.mark.slow
def test_streams_the_accumulated_reply_of_the_tuned_adapter(loaded, run_dir):
    info = loaded.loaded
    assert info.adapter and info.run_dir == str(run_dir) and info.base_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert info.pid != os.getpid()  # the model lives in the child, not here

    replies = list(loaded.stream(WHO, max_new_tokens=16))
    assert len(replies) >= 3, replies
    assert replies[-1].strip()
    assert all(later.startswith(earlier) for earlier, later in zip(replies[:-1], replies[1:], strict=True)), replies


@pytest.mark.slow
def test_base_and_tuned_answers_differ_from_one_model(loaded):
    tuned = loaded.reply(WHO, max_new_tokens=16)
    base = loaded.reply(WHO, adapter=False, max_new_tokens=16)
    assert tuned != base
    assert "{{name}}" in tuned, tuned  # the identity data's placeholder: the adapter learned it, the base did not
    assert "{{name}}" not in base, base
    # Greedy decoding is repeatable, and answers arrive in Gradio's message format too.
    gradio = [{"role": "user", "content": [{"type": "text", "text": "Who are you?"}], "metadata": None}]
    assert loaded.reply(gradio, max_new_tokens=16) == tuned


@pytest.mark.slow
def test_a_closed_stream_stops_and_concurrent_requests_take_turns(loaded):
    expected = loaded.reply(WHO, max_new_tokens=8)
    stream = loaded.stream(WHO, max_new_tokens=500)
    assert next(stream)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 5  # the child stopped generating instead of finishing 500 tokens

    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(loaded.reply(WHO, max_new_tokens=8))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers == [expected, expected]


@pytest.mark.slow
def test_bad_runs_and_models_raise_clear_errors(loaded, run_dir, tmp_path):
    unfinished = tmp_path / "unfinished-run"
    unfinished.mkdir()
    with pytest.raises(ModelLoadError, match="unfinished-run has no adapter yet"):
        loaded.load(BASE, unfinished)
    with pytest.raises(ModelLoadError, match="does not exist"):
        loaded.load(BASE, tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="no model folder at"):
        loaded.load(str(tmp_path / "no-model"))
    assert loaded.loaded is not None  # refused before anything was unloaded

    # Passes the cheap checks here; the child's failure comes back as the same kind of error.
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelLoadError, match="could not load"):
        loaded.load(str(broken))
    assert loaded.loaded is None
    with pytest.raises(ChatError, match="no chat model is loaded"):
        loaded.reply(WHO)
    assert loaded.load(BASE, run_dir).adapter  # the same child serves again


@pytest.mark.slow
def test_a_crashed_child_is_reported_and_restarted_by_the_next_load(loaded, run_dir):
    old_pid = loaded.loaded.pid
    os.kill(old_pid, signal.SIGKILL)
    with pytest.raises(ChatError, match="stopped unexpectedly"):
        loaded.reply(WHO, max_new_tokens=4)
    assert loaded.loaded is None
    info = loaded.load(BASE, run_dir)
    assert info.pid != old_pid
    assert loaded.reply(WHO, max_new_tokens=4)


@pytest.mark.slow
def test_unload_ends_the_child_process(loaded):
    pid = loaded.loaded.pid
    loaded.unload()
    assert loaded.loaded is None
    assert not Path(f"/proc/{pid}").exists()  # exited and reaped: its memory is given back
    loaded.unload()  # idle: nothing to do
