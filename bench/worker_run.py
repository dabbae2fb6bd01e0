"""What the benches share: train a config the way a run from the UI or the CLI does, through the queue."""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

from workbench.runs import processes, spawn
from workbench.runs.files import RunFiles
from workbench.runs.queue import RunQueue
from workbench.runs.store import Job, JobError
from workbench.runs.submission import submit

# Settings every bench run shares: a fixed number of steps at a constant rate, no checkpoint in the timing.
STEADY_TRAIN = {"lr_scheduler_type": "constant", "save_steps": 10_000, "seed": 42}


def train_in_worker(config: Any, *, warm: bool = False, timeout: float = 3600) -> tuple[RunFiles, str | None]:
    """Submit `config` (validated and frozen as Start does) and wait for its worker: a fresh process, or with
    `warm` one forked by a running launcher. Returns the run's files and its error (None when it finished)."""
    job = run_to_the_end(config, warm=warm, timeout=timeout)
    return job.files, None if job.state == "finished" else job.error or job.state


def run_to_the_end(config: Any, *, warm: bool = False, timeout: float = 3600) -> Job:
    """Submit `config` and wait until its run ends; past `timeout` it is stopped (killed if it will not stop)."""
    queue = RunQueue(spawner=None if warm else spawn.start_fresh)
    job = submit(config, queue=queue)
    deadline = time.time() + timeout
    while job.state not in ("finished", "failed", "stopped"):
        if time.time() > deadline:
            with contextlib.suppress(JobError):  # it may have ended meanwhile
                queue.cancel(job.id)
            if time.time() > deadline + 30:
                processes.signal_group(job.pid, job.process_created, signal.SIGKILL)
        time.sleep(0.2)
        queue.reconcile()
        job = queue.get(job.id)
    return job
