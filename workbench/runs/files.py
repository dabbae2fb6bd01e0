"""The files of one run folder: the only channel between the worker and everything that watches it.

config.yaml (frozen before launch), status.json (rewritten atomically), metrics.jsonl (append-only),
log.txt (the worker's output), checkpoints/, adapter/ and manifest.json. Light: no torch here.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config import RunConfig

RunState = Literal["queued", "starting", "running", "finished", "failed", "stopped"]
ACTIVE_STATES: tuple[RunState, ...] = ("starting", "running")
FINAL_STATES: tuple[RunState, ...] = ("finished", "failed", "stopped")


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

    def artifact_kind(self) -> str | None:
        """What the finished run left in adapter/ (see workbench.methods.registry.Artifact); None if nothing yet."""
        return artifact_kind(self.adapter)

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json, atomically, stamping the time of the update."""
        status = {**self.read_status(), **fields, "updated_at": time.time()}
        write_json_atomic(self.status, status)
        return status

    def read_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

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
        tmp = self.metrics.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(self.metrics)

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (one whose trainer state was written), or None."""
        done = [p for p in self.checkpoints.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
        return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)

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


def finished_run(run_id: str) -> tuple[RunFiles | None, str | None]:
    """The files of a finished run named by id (a parent run, a reward-model run), or why it cannot be used."""
    from workbench import home

    files = RunFiles(home.runs_dir() / run_id)
    if not run_id or "/" in run_id or run_id.startswith(".") or not files.config.is_file():
        return None, f"no run {run_id!r}"
    if files.read_status().get("state") != "finished" or files.artifact_kind() is None:
        return None, f"run {run_id} has not finished, so there is nothing to use from it yet"
    return files, None


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)


# The file that marks each kind of finished artifact (workbench.methods.registry.Artifact).
_ARTIFACT_MARKERS = {"peft": "adapter_config.json", "bottleneck": "bottleneck_config.json", "model": "config.json"}


def artifact_kind(folder: Path) -> str | None:
    for kind, marker in _ARTIFACT_MARKERS.items():
        if (folder / marker).is_file():
            return kind
    return None
