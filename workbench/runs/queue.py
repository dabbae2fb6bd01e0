"""The run queue: what the UI, the CLI and the API do to runs. One run trains at a time (`max_running`).

Each action is a conditional transition in the job store followed, only once it has happened, by what it means
for processes: a claimed run's worker is started after the claim is committed; a stop signals a worker only
while it is provably the same process. `reconcile()` (run at start-up and on every refresh) catches what no
worker could report: a worker that died without a word (SIGKILL, out of memory), a claim whose worker never
started (whoever claimed it crashed first), a stop that was ignored too long.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from workbench import home
from workbench.config import RunConfig, save_config
from workbench.runs import disk, processes, spawn
from workbench.runs.store import Job, JobError, JobStore

# Seconds a worker gets to save a checkpoint after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 60
# A claim whose worker has not shown up after this long is handed out again (the claimer died before spawning).
CLAIM_TIMEOUT_SECONDS = 60

Spawner = Callable[[Path, Path, str, Mapping[str, str]], int]


class RunQueue:
    """Submit, start, stop, resume and delete runs kept in a JobStore."""

    def __init__(self, store: JobStore | None = None, max_running: int = 1, spawner: Spawner | None = None):
        self.store = store or JobStore()
        self.max_running = max_running
        self.spawner = spawner or spawn.start_worker

    def list(self) -> list[Job]:
        return self.store.list()

    def get(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def submit(self, config: RunConfig, *, env: Mapping[str, str] | None = None, start: bool = True) -> Job:
        """Create a queued run from a validated, frozen config (dataset paths already stored copies)."""
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        runs = home.runs_dir()
        disk.require(runs, disk.checkpoint_bytes(_trainable_estimate(config)), "a run's first checkpoint")
        run_dir, staging = runs / job_id, runs / f".{job_id}.tmp"
        staging.mkdir(mode=0o700)
        try:
            save_config(config, staging / "config.yaml")
            staging.rename(run_dir)  # a run folder appears whole, config included
            self.store.insert(job_id, config, run_dir, os.environ if env is None else env)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        if start:
            self.start_next()
        return self.get(job_id)

    def start_next(self) -> Job | None:
        """Start the oldest queued run if the queue has room; the run started, or None."""
        job = self.store.claim_next(self.max_running)
        if job is None or job.claim is None:
            return None
        # The claim is committed before any process exists: a crash from here on leaves a claim with no pid,
        # which reconcile hands out again, never a worker the table does not know of.
        try:
            env = self.store.environment(job.id) or dict(os.environ)  # rows from before environments were kept
            pid = self.spawner(Path(job.run_dir), self.store.db, job.claim, env)
        except OSError as err:
            self.store.fail(job.id, job.claim, f"Could not start the worker process: {err}")
            return self.get(job.id)
        created = processes.created(pid)
        if created is None:
            self.store.fail(job.id, job.claim, f"The worker process exited at once; its log: {job.files.log}")
        else:
            # False when the claim was withdrawn meanwhile (stopped while starting): that worker finds its claim
            # gone and leaves by itself.
            self.store.record_worker(job.id, job.claim, pid, created)
        return self.get(job.id)

    def cancel(self, job_id: str) -> Job:
        """Stop a run: a queued one at once; a running one gets SIGTERM, saves a checkpoint and exits."""
        if self.store.stop_queued(job_id):
            return self.get(job_id)
        if self.store.request_stop(job_id):
            job = self.get(job_id)
            processes.signal_group(job.pid, job.process_created, signal.SIGTERM)
            return job
        job = self.get(job_id)
        raise JobError(f"run {job_id} is {job.state}: only queued or running runs can be stopped")

    def resume(self, job_id: str, env: Mapping[str, str] | None = None) -> Job:
        """Queue a stopped or failed run again; its worker continues from the newest complete checkpoint."""
        if not self.store.requeue(job_id, os.environ if env is None else env):
            job = self.get(job_id)
            raise JobError(f"run {job_id} is {job.state}: only stopped or failed runs can be resumed")
        self.start_next()
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Remove a run that is not training, its folder included."""
        job = self.get(job_id)
        if not self.store.remove(job_id):
            job = self.get(job_id)
            raise JobError(f"run {job_id} is {job.state}: stop it before deleting it")
        # Out of the way first: the run's id names no folder any more even if removing its files takes a while.
        trash = Path(job.run_dir).with_name(f".deleted-{job_id}")
        try:
            Path(job.run_dir).rename(trash)
        except OSError:
            trash = Path(job.run_dir)
        shutil.rmtree(trash, ignore_errors=True)

    def reconcile(self) -> list[Job]:
        """Record workers that died, hand out claims nobody took up, escalate overdue stops, start queued runs."""
        now = time.time()
        for job in self.store.list():
            if not job.active:
                continue
            if job.pid is None:
                if job.claimed_at is not None and now - job.claimed_at > CLAIM_TIMEOUT_SECONDS and job.claim:
                    self.store.release_claim(job.id, job.claim)
            elif not processes.alive(job.pid, job.process_created):
                self.store.fail(job.id, job.claim, _died_message(job))
            elif job.stop_requested_at and now - job.stop_requested_at > STOP_GRACE_SECONDS:
                processes.signal_group(job.pid, job.process_created, signal.SIGKILL)
        self.start_next()
        return self.store.list()


def _died_message(job: Job) -> str:
    files = job.files
    if disk.is_disk_full(RuntimeError(), files.root):
        message = disk.disk_full_message(files.root)
    else:
        message = "The worker process ended without reporting why (killed, or the machine ran out of memory)."
    if files.last_checkpoint() is not None:
        message += " Resume continues from the last checkpoint."
    return message


def _trainable_estimate(config: RunConfig) -> int:
    """Parameters the run will save in each checkpoint, from the model's config.json (no torch); 0 if unknown."""
    from workbench import models
    from workbench.estimation.architecture import read_architecture, trainable_parameters

    folder = models.local_folder(config.model.name_or_path)
    if folder is None:
        return 0
    try:
        arch = read_architecture(folder)
    except Exception:  # noqa: BLE001  an architecture the estimate does not know: nothing to check against
        return 0
    try:
        return trainable_parameters(config.method, arch)
    except ValueError:  # full and freeze tuning, prompts: at most the whole model
        return arch.total_params
