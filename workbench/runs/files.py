"""The files of one run folder: the only channel between the worker and everything that watches it.

config.yaml (frozen before launch), status.json (the worker's progress: step, ETA, tokens/s, counts, the best step;
written only by the worker, atomically), metrics.jsonl (append-only), log.txt (the worker's output), checkpoints/,
adapter/, manifest.json, test.jsonl (the held-out test set), eval/ (what `eval` measured), and the experiment
trackers' files that belong to the run (tensorboard/; wandb/ with W&B). Whether the run is queued, running or done,
and why it failed, is the job store's (store.py), not this folder's. Light: no torch here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config import RunConfig

# Written into a checkpoint folder after everything else: the checkpoint's files and their sizes. A checkpoint
# counts only with it, and only while its files still have those sizes (a truncated file is caught).
CHECKPOINT_MARKER = "workbench-complete.json"

# Threads of one process take this lock, processes the folder's lock file: a read-modify-write of status.json
# sees every earlier write.
_THREAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def rehearsal(self) -> Path:
        """The base model's replies to the prompts replayed with answers: base (workbench/data/rehearsal.py)."""
        return self.root / "rehearsal.jsonl"

    @property
    def test_set(self) -> Path:
        """The conversations held out of training (data.test_size or use: test), as JSONL, for `eval`."""
        return self.root / "test.jsonl"

    @property
    def evaluation(self) -> Path:
        """What `eval` wrote: report.json, examples.csv, the charts (workbench/evaluation)."""
        return self.root / "eval"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's event files (train.report_to), written by the trainer."""
        return self.root / "tensorboard"

    def artifact_kind(self) -> str | None:
        """What the finished run left in adapter/ (see workbench.methods.registry.Artifact); None if nothing yet."""
        return artifact_kind(self.adapter)

    # -- status.json: the worker's progress ---------------------------------------------------------------

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json, atomically and under the folder's lock, stamping the time."""
        with self.locked():
            status = {**self.read_status(), **fields, "updated_at": time.time()}
            write_json_atomic(self.status, status)
        return status

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this run folder's lock (threads and processes alike) for a read-modify-write."""
        with _THREAD_LOCK, (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- metrics.jsonl -------------------------------------------------------------------------------------

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete metric records; a line the worker is still writing is skipped."""
        try:
            lines = self.metrics.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics_after(self, step: int) -> None:
        """On resume, drop records logged after the checkpoint so the curve has no duplicate steps."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        write_text_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    # -- checkpoints ---------------------------------------------------------------------------------------

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (its marker written last, its files whole), or None."""
        found = sorted(self.checkpoints.glob("checkpoint-*"), key=_checkpoint_step, reverse=True)
        marked = any((p / CHECKPOINT_MARKER).is_file() for p in found)
        for path in found:
            if checkpoint_complete(path) or (not marked and _legacy_complete(path)):
                return path
        return None

    def discard_incomplete_checkpoints(self) -> None:
        """Remove checkpoint folders a worker began but never finished (killed, or the disk filled up) or whose
        files were damaged since, so that neither a resume nor the trainer's rotation counts them."""
        last = self.last_checkpoint()
        folders = list(self.checkpoints.glob("checkpoint-*"))
        legacy = not any((p / CHECKPOINT_MARKER).is_file() for p in folders)
        for path in folders:
            newer = last is None or _checkpoint_step(path) > _checkpoint_step(last)
            if path != last and not checkpoint_complete(path) and (newer or not legacy):
                shutil.rmtree(path, ignore_errors=True)

    # -- the rest ------------------------------------------------------------------------------------------

    def read_config(self) -> RunConfig:
        """The run's frozen config.yaml, validated."""
        from workbench.config import load_config

        if not self.config.is_file():
            raise WorkbenchError(f"{self.root} has no config.yaml: not a run folder")
        return load_config(self.config)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with self.log.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200 * lines))
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def mark_checkpoint_complete(path: Path) -> None:
    """Record a saved checkpoint's files and sizes, last of all, so that it counts for resuming."""
    files = {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}
    files.pop(CHECKPOINT_MARKER, None)
    write_json_atomic(path / CHECKPOINT_MARKER, {"files": files})


def checkpoint_complete(path: Path) -> bool:
    try:
        expected = json.loads((path / CHECKPOINT_MARKER).read_text(encoding="utf-8"))["files"]
        return bool(expected) and all((path / name).stat().st_size == size for name, size in expected.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _legacy_complete(path: Path) -> bool:
    # Checkpoints from before the marker existed: complete once the trainer state, written late, parses.
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except ValueError:
        return -1


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that no reader, thread or process ever sees a partial file.

    The temporary file is unique to this call (two writers never share one) and flushed to disk before the
    rename, so a crash leaves either the old file or the new one.
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# The file that marks each kind of finished artifact (workbench.methods.registry.Artifact).
_ARTIFACT_MARKERS = {"peft": "adapter_config.json", "bottleneck": "bottleneck_config.json", "model": "config.json"}


def artifact_kind(folder: Path) -> str | None:
    for kind, marker in _ARTIFACT_MARKERS.items():
        if (folder / marker).is_file():
            return kind
    return None
