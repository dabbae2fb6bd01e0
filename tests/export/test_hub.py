"""Pushing to the Hugging Face Hub: refused at once, naming what is missing, when offline or without a token; the
exact files that would go up. No test reaches the network (the hub's client is replaced where a push is made)."""

from __future__ import annotations

import pytest

from tests.test_export import make_run
from workbench.export import hub
from workbench.export.hub import HubError, push, run_folder, upload_plan


@pytest.fixture
def no_saved_token(tmp_path, monkeypatch):
    """No token anywhere: not in the environment, not in a login file."""
    import huggingface_hub.constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))


@pytest.mark.parametrize(
    "offline, token, missing",
    [
        ("1", None, ["HF_HUB_OFFLINE is set", "no Hugging Face token (set HF_TOKEN or run `hf auth login`)"]),
        (None, None, ["no Hugging Face token"]),
        ("1", "hf_abc", ["HF_HUB_OFFLINE is set"]),
    ],
)
def test_pushing_without_the_hub_or_a_token_is_refused_naming_what_is_missing(
    no_saved_token, monkeypatch, offline, token, missing
):
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(HubError) as refused:
        hub.hub_token()
    message = str(refused.value)
    assert message.startswith("cannot push to the Hugging Face Hub: ")
    assert all(part in message for part in missing), message
    assert ("HF_HUB_OFFLINE" in message) == bool(offline) and ("token" in message) == (token is None)


def test_the_upload_plan_is_the_folders_files_without_temporary_ones(tmp_path):
    files = make_run(tmp_path / "run-1")
    (files.adapter / "sub").mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "sub/extra.txt"):
        (files.adapter / name).write_text("x")
    for name in (".adapter_model.safetensors.123.tmp", "run-1-adapter.zip", ".lock", "x.lock"):
        (files.adapter / name).write_text("x")
    plan = upload_plan(run_folder(files, "adapter"))
    assert plan.folder == files.adapter
    assert plan.files == ("README.md", "adapter_config.json", "adapter_model.safetensors", "sub/extra.txt")
    assert run_folder(files, "gguf") == files.root / "gguf" and run_folder(files, "merged") == files.root / "merged"
    with pytest.raises(HubError, match="nothing to push: .*gguf is empty or missing; export it first"):
        upload_plan(run_folder(files, "gguf"))
    with pytest.raises(HubError, match="'weights' is not something to push"):
        run_folder(files, "weights")


def test_a_push_sends_exactly_the_planned_files_in_one_commit(tmp_path, monkeypatch, no_saved_token):
    import huggingface_hub

    files = make_run(tmp_path / "run-1")
    folder = files.root / "gguf"
    folder.mkdir()
    for name in ("run-1-f16.gguf", "run-1-f16.json", "Modelfile"):
        (folder / name).write_text(name)
    (folder / ".run-1-q8_0.gguf.99.tmp").write_text("half")
    calls = {}

    class FakeApi:
        def __init__(self, token):
            calls["token"] = token

        def create_repo(self, repo_id, private, exist_ok):
            calls["repo"] = (repo_id, private, exist_ok)

        def create_commit(self, repo_id, operations, commit_message):
            calls["files"] = {op.path_in_repo: op.path_or_fileobj for op in operations}

            class Info:
                commit_url = f"https://hub.invalid/{repo_id}/commit/1"

            return Info()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    url = push(upload_plan(folder), "me/tuned", "Workbench: gguf of run run-1")
    assert url == "https://hub.invalid/me/tuned/commit/1"
    assert calls["token"] == "hf_secret" and calls["repo"] == ("me/tuned", True, True)
    assert calls["files"] == {name: str(folder / name) for name in ("Modelfile", "run-1-f16.gguf", "run-1-f16.json")}


@pytest.mark.slow
def test_the_command_line_refuses_a_push_before_exporting(tuned_run, tmp_path):
    target = tmp_path / "adapter.zip"
    no_token = {"HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf")}
    result = tuned_run.workbench("export", tuned_run.id, "-o", str(target), "--push", "me/tuned", **no_token)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot push to the Hugging Face Hub: HF_HUB_OFFLINE is set")
    assert "no Hugging Face token" in result.stderr
    assert not target.exists()  # refused before anything was exported
