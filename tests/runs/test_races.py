"""The queue's races, each forced many times with real processes: a stop while the queue starts the run, a delete
while a resume starts it, a crash between handing a run out and starting its worker, a stop aimed at a pid that
now belongs to someone else. The workers are stand-ins (tests/runs/standin.py) that keep the claim protocol and
idle instead of training; the store, the queue and the signals are the real ones."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.conftest import PRESETS
from tests.runs.standin import standin_spawner, standins_of
from workbench.config import load_config
from workbench.runs import processes, queue
from workbench.runs.queue import RunQueue
from workbench.runs.store import JobError, JobStore
from workbench.runs.submission import freeze

ROUNDS = 25


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """One frozen config for every round (its data stored once, in a home of its own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("frozen-home")))
        return freeze(load_config(PRESETS / "sft-lora-identity.yaml", ["train.max_steps=1"]))


def at_once(*actions):
    """Run the actions in threads released together; their results (or the errors they raised)."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(i, action):
        barrier.wait()
        try:
            results[i] = action()
        except JobError as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def settle(runs: RunQueue, job_id: str, seconds: float = 20):
    """Wait until the run's stand-ins have decided: each either holds the run (recorded under its claim) or has
    found its claim withdrawn and left. Returns the run's row (None once deleted) and its live stand-ins."""
    deadline = time.time() + seconds
    while True:
        runs.reconcile()
        job = runs.store.find(job_id)
        root = runs.store.db.parent / "runs" / job_id
        workers = standins_of(root) + standins_of(root.with_name(f".deleted-{job_id}"))
        decided = [w.pid for w in workers] == ([job.pid] if job is not None and job.active else [])
        if decided or time.time() > deadline:
            return job, workers
        time.sleep(0.1)


def kill_standins(job) -> None:
    for process in standins_of(job.files.root):
        process.kill()


def test_a_stop_racing_the_start_never_leaves_a_worker_the_table_calls_stopped(home, frozen):
    runs = RunQueue(spawner=standin_spawner())
    for _ in range(ROUNDS):
        job = runs.submit(frozen, start=False)
        at_once(functools.partial(runs.cancel, job.id), runs.start_next)
        job, workers = settle(runs, job.id)
        if not job.active:
            assert workers == [], f"a worker runs a run the table calls {job.state}"
        else:  # the start won; the stop reached its worker, or will once it is recorded
            assert [w.pid for w in workers] == [job.pid]
            runs.cancel(job.id)
            deadline = time.time() + 10
            while runs.get(job.id).active and time.time() < deadline:
                runs.reconcile()
                time.sleep(0.1)
        assert sum(j.active for j in runs.list()) == 0
        kill_standins(job)


def test_a_delete_racing_a_resume_never_leaves_a_worker_without_its_run(home, frozen):
    runs = RunQueue(spawner=standin_spawner())
    for _ in range(ROUNDS):
        job = runs.submit(frozen, start=False)
        runs.cancel(job.id)  # stopped: both deletable and resumable
        at_once(functools.partial(runs.delete, job.id), functools.partial(runs.resume, job.id))
        row, workers = settle(runs, job.id)
        if row is None:
            assert workers == [] and not job.files.root.exists(), "a worker runs a run that was deleted"
        else:
            assert row.active and [w.pid for w in workers] == [row.pid]
            runs.cancel(job.id)
            settle(runs, job.id)
        kill_standins(job)


def run_in_a_process_that_dies(spawner_source: str) -> None:
    """Call start_next in another process whose spawner is `spawner_source` (a function named spawner)."""
    script = (
        "import os\n"
        "from tests.runs.standin import standin_spawner\n"
        "from workbench.runs.queue import RunQueue\n"
        f"{spawner_source}\n"
        "RunQueue(spawner=spawner).start_next()\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=PRESETS.parent, check=False, timeout=60)


def test_a_claimer_dying_after_starting_the_worker_never_gets_the_run_started_twice(home, frozen):
    # The worker records itself under its claim, so the run is known to be taken though its claimer never
    # wrote the pid down.
    runs = RunQueue(spawner=standin_spawner())
    job = runs.submit(frozen, start=False)
    run_in_a_process_that_dies("def spawner(*args):\n    standin_spawner()(*args)\n    os._exit(1)")
    job, _ = settle(runs, job.id)
    for _ in range(3):
        runs.start_next()
    job, workers = settle(runs, job.id)
    assert job.active and [w.pid for w in workers] == [job.pid]
    kill_standins(job)


def test_a_claim_whose_worker_never_started_is_handed_out_again_once(home, frozen, monkeypatch):
    runs = RunQueue(spawner=standin_spawner())
    job = runs.submit(frozen, start=False)
    run_in_a_process_that_dies("def spawner(*args):\n    os._exit(1)")
    job = runs.get(job.id)
    assert job.state == "starting" and job.pid is None  # claimed, never started
    runs.reconcile()
    assert runs.get(job.id).pid is None  # not yet overdue: nobody starts it twice meanwhile
    monkeypatch.setattr(queue, "CLAIM_TIMEOUT_SECONDS", 0.5)
    time.sleep(1)
    runs.reconcile()  # hands it out again, and starts it
    job, workers = settle(runs, job.id)
    assert job.active and [w.pid for w in workers] == [job.pid]
    kill_standins(job)


def test_a_stop_never_signals_a_process_that_reused_the_workers_pid(home, frozen):
    runs = RunQueue(spawner=standin_spawner())
    job = runs.submit(frozen, start=False)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # The run's worker died and its pid went to an unrelated process (same pid, later creation time).
        claimed = runs.store.claim_next(1)
        assert claimed is not None and claimed.claim
        true_start = processes.created(bystander.pid)
        runs.store.record_worker(job.id, claimed.claim, bystander.pid, true_start - 100)
        runs.cancel(job.id)
        time.sleep(0.3)
        assert bystander.poll() is None, "the stop killed a process that is not the run's worker"
        assert runs.reconcile()[0].state == "failed"  # the worker it recorded is gone
        assert bystander.poll() is None
    finally:
        bystander.kill()


def test_status_files_never_tear_under_threads_and_processes_writing_at_once(home, tmp_path):
    from workbench.runs.files import RunFiles

    files = RunFiles(tmp_path)
    files.write_status(start=True)
    writer = (
        "import sys\n"
        "from pathlib import Path\n"
        "from workbench.runs.files import RunFiles\n"
        "files = RunFiles(Path(sys.argv[1]))\n"
        "for i in range(250):\n"
        "    files.write_status(**{f'{sys.argv[2]}{i}': i})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", writer, str(tmp_path), f"p{n}-"], cwd=PRESETS.parent) for n in range(2)
    ]
    errors: list[BaseException] = []
    torn = []

    def write(prefix: str) -> None:
        try:
            for i in range(250):
                files.write_status(**{f"{prefix}{i}": i})
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    def read() -> None:
        while any(p.poll() is None for p in procs) or any(t.is_alive() for t in writers):
            if files.read_status().get("start") is not True:
                torn.append(1)

    writers = [threading.Thread(target=write, args=(f"t{n}-",)) for n in range(4)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers + readers:
        t.join()
    for p in procs:
        assert p.wait() == 0
    assert errors == [] and torn == []
    status = files.read_status()
    expected = {f"{who}{i}" for who in ("t0-", "t1-", "t2-", "t3-", "p0-", "p1-") for i in range(250)}
    assert expected <= status.keys(), f"{len(expected - status.keys())} updates lost"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_worker_whose_claim_was_withdrawn_leaves_without_touching_the_run(home, frozen):
    runs = RunQueue(spawner=standin_spawner())
    job = runs.submit(frozen, start=False)
    claimed = runs.store.claim_next(1)
    assert runs.cancel(job.id).state == "stopped"  # stopped while starting: the claim is withdrawn
    code = subprocess.run(
        [sys.executable, "-m", "workbench.runs.worker", job.run_dir, "--db", str(runs.store.db), "--claim",
         claimed.claim],
        cwd=PRESETS.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    assert runs.get(job.id).state == "stopped"
    assert not job.files.status.exists() and not job.files.checkpoints.exists()


def test_signal_only_reaches_the_recorded_process(home):
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        started = processes.created(sleeper.pid)
        assert processes.alive(sleeper.pid, started)
        assert not processes.alive(sleeper.pid, started + 1)
        assert not processes.signal_group(sleeper.pid, started + 1, signal.SIGTERM)
        assert sleeper.poll() is None
        assert processes.signal_group(sleeper.pid, started, signal.SIGTERM)
        sleeper.wait(5)
        assert not processes.alive(sleeper.pid, started)
    finally:
        sleeper.kill()
    assert psutil.pid_exists(os.getpid())
    assert JobStore().list() == []
