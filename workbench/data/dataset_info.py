"""LLaMA-Factory's dataset_info.json: finding the local data file, format, columns and tags of a named entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.data.formats import FORMATS, Format
from workbench.errors import DataError

INFO_FILE = "dataset_info.json"
_HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")


@dataclass(frozen=True)
class InfoEntry:
    """One usable entry of a dataset_info.json: the data file it names (or the hub dataset) and how to read it."""

    name: str
    path: Path | None  # None for a hub dataset (`hub`), fetched into the store when it is read
    format: Format
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    ranking: bool = False  # preference pairs (chosen / rejected)
    hub: str | None = None  # hf://org/name of an entry with hf_hub_url
    subset: str | None = None
    split: str | None = None


def is_dataset_info(path: Path) -> bool:
    """Whether a dataset path means a dataset_info.json (the file itself, or a folder that should hold one)."""
    return path.is_dir() or path.name == INFO_FILE


def resolve_entry(path: Path, name: str | None) -> InfoEntry:
    """Look `name` up in the dataset_info.json at `path` (the file, or the folder holding it)."""
    info_file = path / INFO_FILE if path.is_dir() else path
    if not info_file.is_file():
        raise DataError(
            f"{path} has no {INFO_FILE}; give a data file, or a LLaMA-Factory dataset folder", file=info_file.name
        )
    info = _read_info(info_file)
    local = _local_names(info, info_file.parent)
    available = f"local datasets here: {', '.join(local)}" if local else "it lists no local dataset files"
    if not name:
        raise DataError(f"choose a dataset name from {INFO_FILE}; {available}", file=INFO_FILE, field="name")
    if name not in info:
        raise DataError(f"no dataset named {name!r}; {available}", file=INFO_FILE, field="name")
    entry = info[name]
    if not isinstance(entry, dict):
        raise DataError(f"the entry {name!r} is {type(entry).__name__}, expected an object", file=INFO_FILE)

    hub = next((key for key in _HUB_KEYS if entry.get(key)), None)
    if hub and not entry.get("file_name"):
        if hub != "hf_hub_url":
            raise DataError(
                f"{name!r} is a dataset of another hub ({hub}: {entry[hub]}), which Workbench does not download: "
                f"download the file yourself and point path at it ({available})",
                file=INFO_FILE,
                field="name",
            )
        return _hub_entry(name, entry)
    file_name = entry.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        raise DataError(f"the entry {name!r} has no file_name", file=INFO_FILE, field="name")
    data_path = info_file.parent / file_name
    if not data_path.resolve().is_relative_to(info_file.parent.resolve()):
        # The file must come with the folder: a data folder brought as a zip may not read the server's own files.
        raise DataError(
            f"{name!r} names {file_name!r}, outside the folder of {INFO_FILE}; copy the file into that folder",
            file=INFO_FILE,
            field="name",
        )
    if data_path.is_dir():
        raise DataError(
            f"{name!r} points to the folder {file_name!r}; Workbench reads one data file per dataset",
            file=INFO_FILE,
            field="name",
        )
    if not data_path.is_file():
        raise DataError(f"{name!r} names {file_name!r}, which is not in {info_file.parent}", file=INFO_FILE)

    return _entry(name, entry, path=data_path)


def _hub_entry(name: str, entry: dict[str, Any]) -> InfoEntry:
    subset, split = entry.get("subset"), entry.get("split")
    return _entry(
        name,
        entry,
        path=None,
        hub=f"hf://{entry['hf_hub_url']}",
        subset=subset if isinstance(subset, str) else None,
        split=split if isinstance(split, str) else None,
    )


def _entry(name: str, entry: dict[str, Any], **where: Any) -> InfoEntry:
    """The entry's layout (formatting, columns, tags, ranking), read the same for a local file and a hub dataset;
    `where` says where its data is."""
    format = entry.get("formatting", "alpaca")
    if format not in FORMATS:
        raise DataError(
            f"{name!r} has formatting {format!r}; supported: {', '.join(FORMATS)}", file=INFO_FILE, field="name"
        )
    return InfoEntry(
        name=name,
        format=format,
        columns=_string_map(entry, "columns", name),
        tags=_string_map(entry, "tags", name) if format == "sharegpt" else {},
        ranking=bool(entry.get("ranking")),
        **where,
    )


def local_entries(folder: Path) -> list[str]:
    """The entries of the dataset_info.json in `folder` whose data file is there (preference data included)."""
    info = _read_info(folder / INFO_FILE)
    return [
        name
        for name, entry in info.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("file_name"), str)
        and (folder / entry["file_name"]).resolve().is_relative_to(folder.resolve())
        and (folder / entry["file_name"]).is_file()
    ]


def _read_info(info_file: Path) -> dict[str, Any]:
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(
            f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}", file=info_file.name
        ) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", file=info_file.name) from None
    if not isinstance(info, dict):
        raise DataError("expected an object mapping dataset names to entries", file=info_file.name)
    return info


def _local_names(info: dict[str, Any], folder: Path) -> list[str]:
    return [
        name
        for name, entry in info.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("file_name"), str)
        and not entry.get("ranking")
        and (folder / entry["file_name"]).is_file()
    ]


def _string_map(entry: dict[str, Any], key: str, name: str) -> dict[str, str]:
    value = entry.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
        raise DataError(f"{key} of {name!r} must map names to strings", file=INFO_FILE, field=key)
    # A null entry switches a LLaMA-Factory default off; here it simply keeps the default.
    return {k: v for k, v in value.items() if v is not None}
