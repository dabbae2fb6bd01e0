"""The job store: an SQLite table of runs and a queue that starts one worker process at a time.

Every state change is a short transaction, so the UI, the CLI and the workers can share the database. A
worker records its own outcome when it exits and starts the next queued job; `reconcile()` (run at start-up
and on every refresh) catches workers that died without a word, e.g. killed with SIGKILL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from workbench import home
from workbench.config import RunConfig, dump_config, save_config
from workbench.errors import WorkbenchError
from workbench.runs import launcher
from workbench.runs.files import ACTIVE_STATES, FINAL_STATES, RunFiles

# Seconds a worker gets to save a checkpoint after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    method TEXT NOT NULL,
    model TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    parent TEXT,
    pid INTEGER,
    error TEXT,
    error_category TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    stop_requested_at REAL,
    proc_start INTEGER
);
"""


@dataclass(frozen=True)
class Job:
    id: str
    name: str | None
    method: str
    model: str
    config: str
    state: str
    run_dir: str
    parent: str | None
    pid: int | None
    error: str | None
    error_category: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    stop_requested_at: float | None
    proc_start: int | None  # the worker's start time in clock ticks: tells it from a later process with its pid

    @property
    def files(self) -> RunFiles:
        return RunFiles(Path(self.run_dir))

    @property
    def stage(self) -> str:
        """The run's training stage, read from its stored config (runs from before stages were SFT)."""
        raw = yaml.safe_load(self.config) or {}
        return (raw.get("stage") or {}).get("name") or (raw.get("train") or {}).get("stage") or "sft"

    @property
    def resumable(self) -> bool:
        return self.state in ("failed", "stopped") and self.files.last_checkpoint() is not None


class JobError(WorkbenchError):
    """An action that does not fit the job's state (e.g. deleting a running job)."""

    category = "job"


class JobStore:
    def __init__(self, db: Path | None = None, max_running: int = 1):
        self.db = Path(db or home.jobs_db())
        self.max_running = max_running
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            if "proc_start" not in columns:  # a database made before the column existed
                conn.execute("ALTER TABLE runs ADD COLUMN proc_start INTEGER")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: read-then-write stays consistent
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------------------------------

    def list(self) -> list[Job]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [Job(**dict(r)) for r in rows]

    def get(self, job_id: str) -> Job:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"no run with id {job_id!r}")
        return Job(**dict(row))

    # -- actions ---------------------------------------------------------------------------------------

    def submit(self, config: RunConfig, *, start: bool = True, env: dict[str, str] | None = None) -> Job:
        """Create a queued run from a validated, frozen config (dataset paths already stored copies)."""
        job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        run_dir = home.runs_dir() / job_id
        staging = home.runs_dir() / f".{job_id}.tmp"
        staging.mkdir()
        try:
            save_config(config, staging / "config.yaml")
            RunFiles(staging).write_status(state="queued")
            staging.rename(run_dir)
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO runs (id, name, method, model, config, state, run_dir, parent, created_at)"
                    " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (
                        job_id,
                        config.name,
                        config.method.name,
                        config.model.name_or_path,
                        dump_config(config),
                        str(run_dir),
                        config.model.parent_run,
                        time.time(),
                    ),
                )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        if start:
            self.start_next()
        return self.get(job_id)

    def start_next(self) -> Job | None:
        """Start the oldest queued job if fewer than `max_running` are active; returns it."""
        with self._transaction() as conn:
            marks = ", ".join("?" for _ in ACTIVE_STATES)
            active = conn.execute(f"SELECT COUNT(*) FROM runs WHERE state IN ({marks})", ACTIVE_STATES).fetchone()[0]
            if active >= self.max_running:
                return None
            row = conn.execute("SELECT * FROM runs WHERE state = 'queued' ORDER BY created_at LIMIT 1").fetchone()
            if row is None:
                return None
            job = Job(**dict(row))
            pid = self._spawn(job)
            conn.execute(
                "UPDATE runs SET state = 'starting', pid = ?, proc_start = ?, started_at = ?, error = NULL,"
                " error_category = NULL, finished_at = NULL, stop_requested_at = NULL WHERE id = ?",
                (pid, _start_time(pid), time.time(), job.id),
            )
        return self.get(job.id)

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one at once; a running one gets SIGTERM, saves a checkpoint and exits."""
        job = self.get(job_id)
        if job.state == "queued":
            self._set(job_id, state="stopped", finished_at=time.time())
            job.files.write_status(state="stopped")
        elif job.state in ACTIVE_STATES:
            _signal_group(job.pid, signal.SIGTERM)
            self._set(job_id, stop_requested_at=time.time())
        else:
            raise JobError(f"run {job_id} is {job.state}: only queued or running runs can be stopped")
        return self.get(job_id)

    def resume(self, job_id: str) -> Job:
        """Queue a stopped or failed run again; its worker continues from the newest checkpoint."""
        job = self.get(job_id)
        if job.state not in ("failed", "stopped"):
            raise JobError(f"run {job_id} is {job.state}: only stopped or failed runs can be resumed")
        self._set(job_id, state="queued", error=None, error_category=None, finished_at=None)
        job.files.write_status(state="queued", error=None, error_category=None)
        self.start_next()
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.state in ACTIVE_STATES:
            raise JobError(f"run {job_id} is {job.state}: stop it before deleting it")
        with self._transaction() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (job_id,))
        shutil.rmtree(job.run_dir, ignore_errors=True)

    # -- keeping the table true ------------------------------------------------------------------------

    def worker_exited(self, run_dir: Path) -> None:
        """Called by a worker as it exits: copy its outcome from status.json, then start the next job."""
        with self._connect() as conn:
            row = conn.execute("SELECT id FROM runs WHERE run_dir = ?", (str(Path(run_dir)),)).fetchone()
        if row is not None:
            self._record_outcome(self.get(row["id"]), exited=True)
        self.start_next()

    def reconcile(self) -> list[Job]:
        """Fix rows whose worker is gone, escalate overdue stops, and start queued jobs; returns all jobs."""
        for job in self.list():
            if job.state not in ACTIVE_STATES:
                continue
            if not _alive(job.pid, job.proc_start):
                self._record_outcome(job, exited=False)
            elif job.state == "starting" and job.files.read_status().get("state") == "running":
                self._set(job.id, state="running")
            elif job.stop_requested_at and time.time() - job.stop_requested_at > STOP_GRACE_SECONDS:
                _signal_group(job.pid, signal.SIGKILL)
        self.start_next()
        return self.list()

    def _record_outcome(self, job: Job, *, exited: bool) -> None:
        status = job.files.read_status()
        state = status.get("state")
        if state in FINAL_STATES:
            self._set(
                job.id,
                state=state,
                error=status.get("error"),
                error_category=status.get("error_category"),
                finished_at=status.get("finished_at") or time.time(),
            )
            return
        if exited:  # still running by its own account: the worker calls us only once it is done
            return
        message = "The worker process ended without reporting why (killed, or the machine ran out of memory)."
        if job.files.last_checkpoint() is not None:
            message += " Resume continues from the last checkpoint."
        job.files.write_status(state="failed", error=message, error_category="internal", finished_at=time.time())
        self._set(job.id, state="failed", error=message, error_category="internal", finished_at=time.time())

    def _set(self, job_id: str, **fields: object) -> None:
        assignments = ", ".join(f"{key} = ?" for key in fields)
        with self._transaction() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def _spawn(self, job: Job) -> int:
        files = job.files
        run_env = {"WORKBENCH_JOB_DB": str(self.db), "WORKBENCH_HOME": str(home.home())}
        # A warm launcher (started by the UI) forks a worker that has the training stack imported already.
        pid = launcher.start_worker(files.root, files.log, run_env)
        if pid is not None:
            return pid
        env = {**os.environ, **run_env, "PYTHONUNBUFFERED": "1"}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        with files.log.open("ab") as log:
            # The worker's output goes to a file, never a pipe: nobody has to drain it for training to go on.
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.runs.worker", str(files.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: a stop reaches the worker and its children
            )
        # Reap it when it exits so a long-lived parent (the UI server) collects no zombies.
        threading.Thread(target=proc.wait, daemon=True).start()
        return proc.pid


def _start_time(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), or None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat(5); the first two fields sit before the split


def _alive(pid: int | None, started: int | None) -> bool:
    """Whether `pid` is still this run's worker: not gone, not a zombie, not a new process reusing the pid."""
    if not pid:
        return False
    if not Path("/proc/self").exists():  # no /proc (macOS): all we can ask is whether the pid exists
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and (started is None or _start_time(pid) == started)


def _signal_group(pid: int | None, sig: signal.Signals) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
