"""A TrainerCallback that turns the trainer's events into the run folder's metrics.jsonl and status.json, checks
the disk before each checkpoint and marks each checkpoint complete once it is saved."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from workbench.runs import disk
from workbench.runs.files import RunFiles, mark_checkpoint_complete
from workbench.runs.processes import StopRequest

# Log keys renamed for people and charts; every other numeric log value is kept under its own name.
_RENAMES = {"loss": "loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm", "eval_loss": "eval_loss"}
_SKIP = {"epoch", "total_flos", "step"}


class RunCallback(TrainerCallback):
    """`on_begin` is called once training begins (the worker reports the run as running)."""

    def __init__(self, files: RunFiles, stop: StopRequest, on_begin: Callable[[], None] | None = None):
        self.files, self.stop, self.on_begin = files, stop, on_begin
        self._began = self._last_log_time = time.time()
        self._first_step = 0
        self._last_tokens: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._began = self._last_log_time = time.time()
        self._first_step = state.global_step
        self.files.write_status(step=state.global_step, max_steps=state.max_steps, train_began_at=self._began)
        if self.on_begin is not None:
            self.on_begin()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        done = state.global_step - self._first_step
        seconds_per_step = (now - self._began) / max(done, 1)
        fields: dict[str, Any] = {
            "step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": state.epoch,
            "progress": state.global_step / max(state.max_steps, 1),
            "eta_seconds": round(seconds_per_step * (state.max_steps - state.global_step), 1),
            "seconds_per_step": round(seconds_per_step, 3),
        }
        if done == 1:
            fields["first_step_at"] = now
        self.files.write_status(**fields)
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True
        if control.should_save:
            disk.require(self.files.root, self._checkpoint_bytes(), f"checkpoint {state.global_step}")
        return control

    def on_save(self, args, state, control, **kwargs):
        # The trainer calls this once the checkpoint's files are all written: only now does it count.
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            mark_checkpoint_complete(folder)

    def _checkpoint_bytes(self) -> int:
        """What the next checkpoint will take: as much as the last one, or the trained weights' estimate."""
        last = self.files.last_checkpoint()
        if last is not None:
            return sum(p.stat().st_size for p in last.rglob("*") if p.is_file())
        return disk.checkpoint_bytes(self.files.read_status().get("trainable_params") or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "train_runtime" in logs:  # the summary line at the end repeats what was logged
            return
        now = time.time()
        record: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch, "time": now}
        for key, value in logs.items():
            if key in _SKIP or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            record[_RENAMES.get(key, key)] = value
        tokens = logs.get("num_tokens")
        if tokens is not None:
            if self._last_tokens is not None and now > self._last_log_time:
                record["tokens_per_second"] = round((tokens - self._last_tokens) / (now - self._last_log_time), 1)
            self._last_tokens, self._last_log_time = tokens, now
        if "loss" in logs and not math.isfinite(logs["loss"]):
            record["loss"] = None  # JSON has no NaN; the chart shows a gap and the status says why
        self.files.append_metrics(record)
        if "tokens_per_second" in record:
            self.files.write_status(tokens_per_second=record["tokens_per_second"])
