"""A dataset folder brought through the page as a .zip: a `datasets` save_to_disk folder, or a LLaMA-Factory
folder holding dataset_info.json and its data files. The server reads only what the workbench owns, so a folder
is never named by path from the page: its zip is uploaded and unpacked into the dataset store.

Unpacking is safe for any zip: member names must be plain relative paths (no absolute paths, no `..`, no
drive letters), links and special files are refused, at most `MAX_MEMBERS` members, and the bytes actually
written (not what the zip's headers claim) may not pass the dataset size limit. The folder is unpacked under a
temporary name in the store and renamed into place whole, under the zip's content hash, so it is there
complete or not at all, and the same zip uploaded twice is unpacked once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from workbench import home
from workbench.data import saved
from workbench.data.dataset_info import INFO_FILE
from workbench.data.reading import max_dataset_bytes, megabytes
from workbench.errors import DataError

MAX_MEMBERS = 10_000
_CHUNK = 1024 * 1024


def is_dataset_folder(path: Path) -> bool:
    """A folder the workbench reads as a dataset: save_to_disk's, or one holding dataset_info.json."""
    return saved.is_saved(path) or (path.is_dir() and (path / INFO_FILE).is_file())


def unpack(path: Path) -> Path:
    """Unpack an uploaded zip into the dataset store; returns the dataset folder in it. DataError names the zip
    and what is wrong with it."""
    path = Path(path)
    name = path.name
    digest = _sha256(path)
    root = home.datasets_dir()
    final = root / digest / (re.sub(r"[^\w.-]", "_", Path(name).stem).lstrip(".") or "dataset")
    if not final.is_dir():
        temp = Path(tempfile.mkdtemp(prefix=".incoming-zip-", dir=root))
        try:
            _extract(path, temp / "unpacked")
            _dataset_root(temp / "unpacked", name)  # refuse a zip that holds no dataset before placing it
            final.parent.mkdir(exist_ok=True)
            try:
                os.rename(temp / "unpacked", final)
            except OSError:
                if not final.is_dir():  # another upload of the same zip placed it first: that one is kept
                    raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return _dataset_root(final, name)


def _extract(path: Path, target: Path) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"not a readable zip file: {err}", file=path.name) from None
    limit, written = max_dataset_bytes(), 0
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise DataError(f"it holds {len(members):,} files, more than the {MAX_MEMBERS:,} allowed", file=path.name)
        target.mkdir(mode=0o700)
        for member in members:
            parts = _member_parts(member, path.name)
            if not parts:
                continue
            destination = target.joinpath(*parts)
            if member.is_dir():
                destination.mkdir(mode=0o700, parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, open(destination, "xb") as out:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > limit:
                            raise DataError(
                                f"it unpacks to more than the {megabytes(limit)} limit for a dataset", file=path.name
                            )
                        out.write(chunk)
            except FileExistsError:
                raise DataError(f"it holds {member.filename!r} twice", file=path.name) from None
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError) as err:
                raise DataError(f"cannot unpack {member.filename!r}: {err}", file=path.name) from None
            destination.chmod(0o600)


def _member_parts(member: zipfile.ZipInfo, zip_name: str) -> tuple[str, ...]:
    """The path parts of a member inside the target, or a DataError for a name or kind that may not be unpacked."""
    raw = member.filename.replace("\\", "/")
    pure = PurePosixPath(raw)
    parts = tuple(part for part in pure.parts if part not in ("", "."))
    kind = stat.S_IFMT(member.external_attr >> 16)  # 0 where the zip says nothing (Windows, Python's writestr)
    unsafe = (
        raw.startswith("/")
        or ".." in parts
        or (parts and ":" in parts[0])
        or "\0" in raw
        or kind not in (0, stat.S_IFREG, stat.S_IFDIR)
    )
    if unsafe:
        raise DataError(f"it holds {member.filename!r}, which may not be unpacked (a link, or outside the folder)",
                        file=zip_name)  # fmt: skip
    if parts and parts[0] == "__MACOSX":  # the resource forks macOS adds to zips it makes
        return ()
    return parts


def _dataset_root(folder: Path, zip_name: str) -> Path:
    """The dataset folder within what a zip unpacked to: that folder itself, or the one folder it holds."""
    candidates = [folder]
    entries = [entry for entry in folder.iterdir() if entry.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        candidates.append(entries[0])
    for candidate in candidates:
        if is_dataset_folder(candidate):
            return candidate
    raise DataError(
        f"it holds no dataset folder: zip a folder written by datasets' save_to_disk (with {saved.STATE} or "
        f"{saved.DICT}) or a LLaMA-Factory data folder (with {INFO_FILE})",
        file=zip_name,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
