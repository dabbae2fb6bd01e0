"""Disk space: checked before a run starts and before each checkpoint, and a failed write told for what it is.

A run that fills the disk must fail saying so, with nothing half-written and a message that can still be
recorded. So the space a checkpoint needs is checked first; and if a write fails anyway (the disk filled from
elsewhere), the worker drops the checkpoint it was writing and frees a small reserve it set aside at start, so
that recording the failure cannot fail too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from workbench.errors import WorkbenchError

MIB = 2**20
# A checkpoint holds the trained weights in fp32 and Adam's two moments (12 bytes a parameter), plus the
# tokenizer, trainer state and RNG states (a few MiB).
CHECKPOINT_BYTES_PER_PARAM = 12
CHECKPOINT_OVERHEAD = 16 * MIB
# Room kept on top of what is needed: logs, metrics, the job database's journal.
MARGIN = 16 * MIB
RESERVE_FILE = ".disk-reserve"
RESERVE_BYTES = 1 * MIB
# Errors a full disk (or a file-size limit) raises; libraries that lose the errno (torch.save) keep the text.
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_TEXTS = ("no space left on device", "disk quota exceeded", "file too large", "file write failed", "storagefull")


class DiskFullError(WorkbenchError):
    """Not enough disk space to go on (or to start), naming the folder, the space needed and the space free."""

    category = "disk"


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def checkpoint_bytes(trainable_params: int) -> int:
    return trainable_params * CHECKPOINT_BYTES_PER_PARAM + CHECKPOINT_OVERHEAD


def require(folder: Path, needed: int, what: str) -> None:
    """Raise DiskFullError unless `folder` has `needed` bytes free plus a margin."""
    free = free_bytes(folder)
    if free < needed + MARGIN:
        raise DiskFullError(
            f"Not enough disk space in {folder}: {what} needs about {_size(needed + MARGIN)}, {_size(free)} free. "
            "Free some space (or delete old runs), then resume."
        )


def is_disk_full(err: BaseException, folder: Path) -> bool:
    """Whether `err` (or what caused it) was a write that found no space."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return True
        if any(text in str(seen).lower() for text in _FULL_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return free_bytes(folder) < RESERVE_BYTES * 4
    except OSError:
        return False


def disk_full_message(folder: Path) -> str:
    try:
        free = f"{_size(free_bytes(folder))} free"
    except OSError:
        free = "free space unknown"
    return (
        f"Disk full: a write in {folder} failed ({free}). The checkpoint being written was dropped; free some "
        "space (or delete old runs), then resume from the last complete checkpoint."
    )


def set_aside(folder: Path) -> None:
    """Keep a small file that can be given back when the disk fills, so the failure can still be recorded."""
    with contextlib.suppress(OSError), (folder / RESERVE_FILE).open("wb") as f:
        f.write(b"\0" * RESERVE_BYTES)
        f.flush()
        os.fsync(f.fileno())


def give_back(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / RESERVE_FILE).unlink()


def _size(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / MIB:.0f} MB"
