"""The job store: one SQLite row per run, the only record of where a run stands.

A row holds the run's identity (id, name, config, folder, parent), its place in the queue, its state and why it
failed, and the worker that holds it (pid and creation time). The worker's progress (step, ETA, ...) lives in its
run folder (files.py), written by the worker alone.

Every change of state is one conditional UPDATE (`... WHERE state = ?`) whose row count says whether it
happened, so the UI, the CLI and the workers can act on the same run at once without a lost update. A worker
holds its run by a claim, a random token given when the queue hands the run out: only the holder of the current
claim can report on the run, so a worker whose claim was withdrawn cannot overwrite anything.

    queued ──claim──▶ starting ──worker trains──▶ running ──▶ finished | failed | stopped
       ▲                  │ (claim never taken up: back to queued)            │
       └────────────────── resume ◀───────────────────────── failed | stopped ┘
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from workbench import home
from workbench.config import RunConfig, dump_config
from workbench.errors import WorkbenchError
from workbench.runs.files import RunFiles

RunState = Literal["queued", "starting", "running", "finished", "failed", "stopped"]
ACTIVE_STATES: tuple[RunState, ...] = ("starting", "running")
FINAL_STATES: tuple[RunState, ...] = ("finished", "failed", "stopped")

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
    stop_requested_at REAL
);
"""
# Columns added since the first schema, with their types: an older database gets them on open.
_ADDED_COLUMNS = {
    "proc_start": "INTEGER",  # unused: the worker's start in clock ticks, before process_created
    "process_created": "REAL",  # the worker's creation time (psutil): tells it from a later process with its pid
    "claim": "TEXT",  # the token of the worker that holds the run (see the module docstring)
    "claimed_at": "REAL",
    "queued_at": "REAL",  # queue order: submission, or the latest resume
    "env": "TEXT",  # the submitter's environment as JSON, for the worker; cleared once the run ends
}


@dataclass(frozen=True)
class Job:
    id: str
    name: str | None
    method: str
    model: str
    config: str
    state: RunState
    run_dir: str
    parent: str | None
    pid: int | None
    error: str | None
    error_category: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    stop_requested_at: float | None
    process_created: float | None
    claim: str | None
    claimed_at: float | None
    queued_at: float | None

    @property
    def files(self) -> RunFiles:
        return RunFiles(Path(self.run_dir))

    @property
    def stage(self) -> str:
        """The run's training stage, read from its stored config (runs from before stages were SFT)."""
        raw = yaml.safe_load(self.config) or {}
        return (raw.get("stage") or {}).get("name") or (raw.get("train") or {}).get("stage") or "sft"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def resumable(self) -> bool:
        return self.state in ("failed", "stopped") and self.files.last_checkpoint() is not None


_JOB_COLUMNS = ", ".join(Job.__dataclass_fields__)
_ACTIVE = "('starting', 'running')"


class JobError(WorkbenchError):
    """An action that does not fit the job's state (e.g. deleting a running job)."""

    category = "job"


class JobStore:
    """The SQLite table of runs. Each method is one short transaction; none starts or signals a process."""

    def __init__(self, db: Path | None = None):
        self.db = Path(db or home.jobs_db())
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in columns:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        self.db.chmod(0o600)  # it holds submitters' environments

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

    def _update(self, sql: str, *params: object) -> bool:
        """Run one conditional UPDATE or DELETE; whether it changed a row."""
        with self._transaction() as conn:
            return conn.execute(sql, params).rowcount == 1

    # -- reading ---------------------------------------------------------------------------------------

    def list(self) -> list[Job]:
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_JOB_COLUMNS} FROM runs ORDER BY created_at DESC").fetchall()
        return [Job(**dict(r)) for r in rows]

    def get(self, job_id: str) -> Job:
        job = self.find(job_id)
        if job is None:
            raise JobError(f"no run with id {job_id!r}")
        return job

    def find(self, job_id: str) -> Job | None:
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM runs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job(**dict(row))

    def environment(self, job_id: str) -> dict[str, str]:
        """The environment the run's worker gets: its submitter's (or resumer's)."""
        with self._connect() as conn:
            row = conn.execute("SELECT env FROM runs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row["env"]) if row is not None and row["env"] else {}

    # -- the queue's transitions -----------------------------------------------------------------------

    def insert(self, job_id: str, config: RunConfig, run_dir: Path, env: Mapping[str, str]) -> None:
        with self._transaction() as conn:
            now = time.time()  # under the write lock: queue order is the order the submissions are written in
            conn.execute(
                "INSERT INTO runs (id, name, method, model, config, state, run_dir, parent, created_at, queued_at,"
                " env) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (
                    job_id,
                    config.name,
                    config.method.name,
                    config.model.name_or_path,
                    dump_config(config),
                    str(run_dir),
                    config.model.parent_run,
                    now,
                    now,
                    json.dumps(dict(env)),
                ),
            )

    def claim_next(self, max_running: int) -> Job | None:
        """Hand the oldest queued run out (queued → starting, with a fresh claim) if fewer than `max_running`
        runs are active; the claimed job, or None."""
        with self._transaction() as conn:
            active = conn.execute(f"SELECT COUNT(*) FROM runs WHERE state IN {_ACTIVE}").fetchone()[0]
            if active >= max_running:
                return None
            row = conn.execute("SELECT id FROM runs WHERE state = 'queued' ORDER BY queued_at, id LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET state = 'starting', claim = ?, claimed_at = ?, started_at = ?, pid = NULL,"
                " process_created = NULL, error = NULL, error_category = NULL, finished_at = NULL,"
                " stop_requested_at = NULL WHERE id = ? AND state = 'queued'",
                (secrets.token_hex(8), time.time(), time.time(), row["id"]),
            )
            # Read back inside the transaction: the claim as given, whatever happens to the row next.
            claimed = conn.execute(f"SELECT {_JOB_COLUMNS} FROM runs WHERE id = ?", (row["id"],)).fetchone()
        return Job(**dict(claimed))

    def record_worker(self, job_id: str, claim: str, pid: int, created: float) -> bool:
        """Note the process that holds the claim; False when the claim is no longer current (withdrawn)."""
        return self._update(
            "UPDATE runs SET pid = ?, process_created = ? WHERE id = ? AND claim = ? AND state = 'starting'"
            " AND (pid IS NULL OR (pid = ? AND process_created = ?))",
            pid,
            created,
            job_id,
            claim,
            pid,
            created,
        )

    def mark_running(self, job_id: str, claim: str) -> bool:
        return self._update(
            "UPDATE runs SET state = 'running' WHERE id = ? AND claim = ? AND state = 'starting'", job_id, claim
        )

    def finish(
        self, job_id: str, claim: str, state: RunState, error: str | None = None, category: str | None = None
    ) -> bool:
        """The claim holder's report of how the run ended; False when its claim is no longer current."""
        assert state in FINAL_STATES, state
        return self._update(
            f"UPDATE runs SET state = ?, error = ?, error_category = ?, finished_at = ?, env = NULL"
            f" WHERE id = ? AND claim = ? AND state IN {_ACTIVE}",
            state,
            error,
            category,
            time.time(),
            job_id,
            claim,
        )

    def release_claim(self, job_id: str, claim: str) -> bool:
        """Put a run whose worker never started back in the queue (its claim withdrawn)."""
        return self._update(
            "UPDATE runs SET state = 'queued', claim = NULL, claimed_at = NULL, started_at = NULL"
            " WHERE id = ? AND claim = ? AND state = 'starting' AND pid IS NULL",
            job_id,
            claim,
        )

    # -- people's actions ------------------------------------------------------------------------------

    def stop_queued(self, job_id: str) -> bool:
        """Stop a run that has no worker yet (queued, or claimed but not started); whether it was one."""
        return self._update(
            "UPDATE runs SET state = 'stopped', finished_at = ?, env = NULL, claim = NULL WHERE id = ?"
            " AND (state = 'queued' OR (state = 'starting' AND pid IS NULL))",
            time.time(),
            job_id,
        )

    def request_stop(self, job_id: str) -> bool:
        """Note that a running run's worker was asked to stop; whether it is running."""
        return self._update(
            f"UPDATE runs SET stop_requested_at = COALESCE(stop_requested_at, ?) WHERE id = ? AND state IN {_ACTIVE}",
            time.time(),
            job_id,
        )

    def requeue(self, job_id: str, env: Mapping[str, str]) -> bool:
        """Queue a stopped or failed run again (resume), with the resumer's environment."""
        return self._update(
            "UPDATE runs SET state = 'queued', queued_at = ?, env = ?, claim = NULL, error = NULL,"
            " error_category = NULL, finished_at = NULL WHERE id = ? AND state IN ('failed', 'stopped')",
            time.time(),
            json.dumps(dict(env)),
            job_id,
        )

    def remove(self, job_id: str) -> bool:
        """Delete the row of a run that no worker holds; whether it was removed."""
        return self._update(f"DELETE FROM runs WHERE id = ? AND state NOT IN {_ACTIVE}", job_id)

    def fail(self, job_id: str, claim: str | None, message: str, category: str = "internal") -> bool:
        """Mark an active run failed on behalf of a worker that cannot say so (it died, or never started)."""
        return self._update(
            f"UPDATE runs SET state = 'failed', error = ?, error_category = ?, finished_at = ?, env = NULL"
            f" WHERE id = ? AND claim IS ? AND state IN {_ACTIVE}",
            message,
            category,
            time.time(),
            job_id,
            claim,
        )


def finished_run(run_id: str, store: JobStore | None = None) -> tuple[RunFiles | None, str | None]:
    """The files of a finished run named by id (a parent run, a reward-model run), or why it cannot be used."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        return None, f"no run {run_id!r}"
    job = (store or JobStore()).find(run_id)
    if job is None or not job.files.config.is_file():
        return None, f"no run {run_id!r}"
    if job.state != "finished" or job.files.artifact_kind() is None:
        return None, f"run {run_id} has not finished, so there is nothing to use from it yet"
    return job.files, None
