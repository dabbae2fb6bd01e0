"""A TrainerCallback that turns the trainer's events into the run folder's metrics.jsonl and status.json."""

from __future__ import annotations

import math
import signal
import time
from typing import Any

from transformers import TrainerCallback

from workbench.runs.files import RunFiles

# Log keys renamed for people and charts; every other numeric log value is kept under its own name.
_RENAMES = {"loss": "loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm", "eval_loss": "eval_loss"}
_SKIP = {"epoch", "total_flos", "step"}


class StopRequest:
    """Set by SIGTERM/SIGINT; the callback then saves a checkpoint and ends training after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name


class RunCallback(TrainerCallback):
    def __init__(self, files: RunFiles, stop: StopRequest):
        self.files, self.stop = files, stop
        self._began = self._last_log_time = time.time()
        self._first_step = 0
        self._last_tokens: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._began = self._last_log_time = time.time()
        self._first_step = state.global_step
        self.files.write_status(
            state="running", step=state.global_step, max_steps=state.max_steps, train_began_at=self._began
        )

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
        return control

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
