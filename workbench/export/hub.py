"""Pushing a run's adapter, merged model or GGUF files to a Hugging Face Hub repo with the user's token.

`upload_plan` says exactly which files would go (tested here, where no hub can be reached); `push` refuses at
once, naming everything missing, when the hub is switched off (HF_HUB_OFFLINE) or no token is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from workbench.errors import WorkbenchError
from workbench.runs.files import RunFiles

PushKind = Literal["adapter", "merged", "gguf"]
PUSH_KINDS: tuple[str, ...] = get_args(PushKind)
# What never leaves the machine: our temporary and lock files, zips of what is uploaded anyway.
_SKIPPED_SUFFIXES = (".tmp", ".lock", ".zip")


class HubError(WorkbenchError):
    """A push that cannot be made: the message says what is missing."""

    category = "config"


@dataclass(frozen=True)
class UploadPlan:
    """The folder a push reads and the files (relative to it) it uploads, in order."""

    folder: Path
    files: tuple[str, ...]


def run_folder(files: RunFiles, kind: str) -> Path:
    """The folder of a run that pushing `kind` ("adapter", "merged" or "gguf") uploads, where exports put it."""
    folders = {"adapter": files.adapter, "merged": files.root / "merged", "gguf": files.root / "gguf"}
    if kind not in folders:
        raise HubError(f"push: {kind!r} is not something to push; choose one of {', '.join(PUSH_KINDS)}")
    return folders[kind]


def upload_plan(folder: Path) -> UploadPlan:
    """The files of `folder` a push uploads: all but hidden, temporary, lock and zip files."""
    chosen = tuple(
        str(path.relative_to(folder))
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.suffix not in _SKIPPED_SUFFIXES
    )
    if not chosen:
        raise HubError(f"nothing to push: {folder} is empty or missing; export it first")
    return UploadPlan(Path(folder), chosen)


def hub_token() -> str:
    """The user's token; HubError naming every missing thing when a push could not work."""
    from huggingface_hub import get_token

    problems = []
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        problems.append("HF_HUB_OFFLINE is set (unset it to reach the hub)")
    token = get_token()
    if not token:
        problems.append("no Hugging Face token (set HF_TOKEN or run `hf auth login`)")
    if problems:
        raise HubError("cannot push to the Hugging Face Hub: " + "; ".join(problems))
    return token


def push(plan: UploadPlan, repo_id: str, message: str, private: bool = True) -> str:
    """Upload the plan's files to `repo_id` (made, private by default, if missing) in one commit; its URL."""
    token = hub_token()
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(plan.folder / name)) for name in plan.files
    ]
    return api.create_commit(repo_id, operations=operations, commit_message=message).commit_url
