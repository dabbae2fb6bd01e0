"""Hugging Face hub datasets (`hf://org/name`, with a subset and a split): fetched into the dataset store as one
Parquet file, which a run then freezes like any other file.

Where the hub cannot be reached, nothing is tried: HF_HUB_OFFLINE (or HF_DATASETS_OFFLINE) set refuses at once,
and an unreachable hub is found by one short look-up of the dataset before anything is downloaded. Either way the
refusal names the dataset and nothing is written. The download itself goes to a temporary folder inside the store,
removed afterwards, so a failed or cut download leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from workbench import home
from workbench.data.reading import max_dataset_bytes, megabytes
from workbench.errors import DataError

PREFIX = "hf://"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = ("1", "ON", "YES", "TRUE")  # as huggingface_hub reads these variables
_REPO = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
LOOKUP_SECONDS = 10.0
DEFAULT_SPLIT = "train"


def is_hub(path: str) -> bool:
    """Whether a dataset path names a hub dataset (`hf://org/name`)."""
    return str(path).startswith(PREFIX)


def repo_id(path: str) -> str:
    """`org/name` from `hf://org/name` (or `hf://datasets/org/name`); a DataError for anything else."""
    repo = str(path).removeprefix(PREFIX).removeprefix("datasets/").strip("/")
    if not _REPO.fullmatch(repo) or ".." in repo:
        raise DataError(f"{path!r} is not a hub dataset id; write it as hf://org/name", field="path")
    return repo


def offline_reason() -> str | None:
    """The variable that keeps this process off the hub, if one is set."""
    return next((name for name in OFFLINE_VARIABLES if os.environ.get(name, "").upper() in _TRUE), None)


def fetch(path: str, subset: str | None = None, split: str | None = None) -> Path:
    """Download a hub dataset's split into the dataset store; returns the stored Parquet file."""
    shown = str(path) + (f" (subset {subset})" if subset else "")
    variable = offline_reason()
    if variable:  # first: offline, whatever is asked for is refused the same way, at once
        raise DataError(
            f"cannot fetch {shown}: this machine is offline for the Hugging Face hub ({variable} is set), so "
            "nothing was downloaded. Fetch it where there is a network (datasets' save_to_disk) and bring the folder "
            "as a .zip, or unset the variable"
        )
    repo = repo_id(path)
    shown = PREFIX + repo + (f" (subset {subset})" if subset else "")
    _look_up(repo, shown)
    from workbench.data.store import store_dataset

    scratch = Path(tempfile.mkdtemp(prefix=".incoming-hub-", dir=home.datasets_dir()))
    try:
        dataset = _download(repo, subset, split, scratch / "cache")
        name = "-".join(part for part in (repo.replace("/", "__"), subset, split or DEFAULT_SPLIT) if part)
        parquet = scratch / f"{name}.parquet"
        dataset.to_parquet(str(parquet))
        size, limit = parquet.stat().st_size, max_dataset_bytes()
        if size > limit:
            raise DataError(f"{shown} is {megabytes(size)} as Parquet, over the {megabytes(limit)} limit")
        return store_dataset(parquet).path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _look_up(repo: str, shown: str) -> None:
    """One short request for the dataset's card: an unreachable hub or an unknown id is said at once."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().dataset_info(repo, timeout=LOOKUP_SECONDS)
    except GatedRepoError:
        raise DataError(f"{shown} is gated: accept its terms on the hub and log in (HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise DataError(f"{shown}: no such dataset on the hub (or it is private)") from None
    except Exception as err:  # noqa: BLE001  connection refused, DNS, timeouts, proxies: all mean "not reachable"
        raise DataError(
            f"cannot fetch {shown}: the Hugging Face hub cannot be reached ({type(err).__name__}), so nothing was "
            "downloaded"
        ) from None


def _download(repo: str, subset: str | None, split: str | None, cache: Path):
    """The split as a `datasets.Dataset` (a DatasetDict's train split, or its only one, when none is named)."""
    from datasets import DatasetDict, load_dataset

    try:
        loaded = load_dataset(repo, subset, split=split, cache_dir=str(cache))
    except ValueError as err:  # an unknown subset or split: the message lists the ones there are
        raise DataError(f"{PREFIX}{repo}: {err}", field="split" if split else "subset") from None
    if isinstance(loaded, DatasetDict):
        names = list(loaded)
        chosen = DEFAULT_SPLIT if DEFAULT_SPLIT in names else names[0] if len(names) == 1 else None
        if chosen is None:
            raise DataError(f"{PREFIX}{repo}: choose a split; its splits: {', '.join(names)}", field="split")
        loaded = loaded[chosen]
    return loaded
