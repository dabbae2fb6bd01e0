"""The run lifecycle's faults for bench/faults.py: a worker killed mid-step, the app killed mid-run, twenty
submissions at once, a damaged checkpoint, a full disk, status.json under concurrent writers.

Each function takes bench/faults.py's Context and how many times to inject the fault, and returns the fields of
its Row: runs lost, steps / files / updates lost, the median time until the run went on (or the failure was
recorded), and a note on what else was checked. Runs are short: the bundled SmolLM2-135M, cutoff 64, batch 2,
one thread.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.runs.test_faults import RESUMABLE  # noqa: E402  the tests inject each fault once, with these runs
from tests.runs.test_queue import wait_for  # noqa: E402
from workbench.config import load_config  # noqa: E402
from workbench.runs.files import CHECKPOINT_MARKER, RunFiles  # noqa: E402
from workbench.runs.queue import RunQueue  # noqa: E402
from workbench.runs.store import Job  # noqa: E402
from workbench.runs.submission import freeze  # noqa: E402

PRESET = REPO / "presets" / "sft-lora-identity.yaml"
RESULTS = REPO / "bench" / "results" / "faults.json"
SHORT = ["train.threads=1", "train.per_device_train_batch_size=2", "data.cutoff_len=64", "method.r=4"]


def wait(queue: RunQueue, job_id: str, done: Callable[[Job], bool], timeout: float = 900) -> Job:
    return wait_for(queue, job_id, done, timeout)


def ended(job: Job) -> bool:
    return job.state in ("finished", "failed", "stopped")


def logged(job: Job) -> list[int]:
    return [r["step"] for r in job.files.read_metrics() if "loss" in r]


def adapter_weights(job: Job) -> dict:
    from safetensors.torch import load_file

    return load_file(str(job.files.adapter / "adapter_model.safetensors"))


def row(fault: str, times: int, runs: int, lost: int, what: str, seconds: float | None, note: str) -> dict[str, Any]:
    """A Row's fields (bench/faults.py): `lost` counts `what`, told in the note."""
    return {
        "fault": fault,
        "times": times,
        "runs_lost": runs,
        "rows_lost": lost,
        "seconds_to_report": seconds,
        "note": f"{lost} {what}; {note}" if what else note,
    }


def use_home(path: Path) -> None:
    os.environ["WORKBENCH_HOME"] = str(path)


# -- the faults ---------------------------------------------------------------------------------------------


def worker_killed(ctx: Any, times: int) -> dict[str, Any]:
    """SIGKILL the worker at three random steps of one run, resuming each time; compare with an uninterrupted
    run of the same seed."""
    use_home(ctx.app.home)  # the app's launcher forks these workers, as from the page
    queue = RunQueue()
    config = freeze(load_config(PRESET, RESUMABLE))
    reference = wait(queue, queue.submit(config).id, ended)
    expected = adapter_weights(reference)
    lost, runs_lost, recoveries, worst = 0, 0, [], 0.0
    for _ in range(times):
        job = queue.submit(config)
        for step in sorted(random.sample(range(2, 10), 3)):
            job = wait(queue, job.id, lambda j, s=step: j.active and j.files.read_status().get("step", 0) >= s)
            os.killpg(job.pid, signal.SIGKILL)
            killed = time.time()
            wait(queue, job.id, lambda j: j.state == "failed")
            queue.resume(job.id)
            last = max(logged(queue.get(job.id)), default=0)
            wait(queue, job.id, lambda j, last=last: ended(j) or max(logged(j), default=0) > last)
            recoveries.append(time.time() - killed)
        job = wait(queue, job.id, ended)
        runs_lost += job.state != "finished"
        lost += len(set(range(1, 11)) ^ set(logged(job))) + len(logged(job)) - len(set(logged(job)))
        if job.state == "finished":
            ours = adapter_weights(job)
            worst = max(worst, max((ours[k] - expected[k]).abs().max().item() for k in ours))
    return row(
        "worker SIGKILLed at a random step, resumed (×3 per run)",
        times * 3,
        runs_lost,
        lost,
        "steps lost or logged twice",
        statistics.median(recoveries),
        f"final weights within {worst:.1e} of an uninterrupted run",
    )


def ui_killed(ctx: Any, times: int) -> dict[str, Any]:
    """SIGKILL the app while a run trains, start it again: the run trains on and the restarted page lists it."""
    use_home(ctx.app.home)
    queue = RunQueue()
    config = freeze(load_config(PRESET, [*SHORT, "train.max_steps=400", "train.save_steps=1000"]))
    job = queue.submit(config)
    recoveries, runs_lost = [], 0
    for _ in range(times):
        before = wait(queue, job.id, lambda j: j.active and j.files.read_status().get("step", 0) >= 1)
        step = before.files.read_status()["step"]
        ctx.app.kill()
        killed = time.time()
        ctx.app.start()
        ctx.page.goto(ctx.app.url)
        ctx.page.get_by_role("tab", name="Runs").click()
        try:
            ctx.page.locator("#runs-table").get_by_text(job.id).filter(visible=True).first.wait_for(timeout=60_000)
            listed = True
        except Exception:  # noqa: BLE001  not listed: counted as lost
            listed = False
        trains_on = wait(queue, job.id, lambda j, s=step: ended(j) or j.files.read_status().get("step", 0) > s)
        recoveries.append(time.time() - killed)
        runs_lost += not (listed and trains_on.active)
    queue.cancel(job.id)
    wait(queue, job.id, ended)
    ctx.page.goto(ctx.app.url)
    return row(
        "app SIGKILLed while a run trains, restarted",
        times,
        runs_lost,
        0,
        "",
        statistics.median(recoveries),
        "the restarted page lists the run; it trained on throughout (time: kill to the next step)",
    )


def many_submissions(ctx: Any, times: int) -> dict[str, Any]:
    """20 submissions at once from separate command-line processes: all queued, one at a time, none lost."""
    runs_lost, most_active, drains = 0, 0, []
    use_home(ctx.app.home)
    for _ in range(times):
        queue = RunQueue()
        earlier = {job.id for job in queue.list()}
        sets = [f"--set={s}" for s in [*SHORT, "train.max_steps=1", "data.datasets.0.max_samples=2"]]
        command = [sys.executable, "-m", "workbench", "train", str(PRESET), *sets, "--detach"]
        started = time.time()
        env = {**os.environ, "WORKBENCH_HOME": str(ctx.app.home)}
        submitters = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL) for _ in range(20)]
        peak = 0
        while any(p.poll() is None for p in submitters) or not all(ended(j) for j in queue.reconcile()):
            peak = max(peak, sum(j.active for j in queue.list()))
            time.sleep(0.05)
        jobs = [job for job in queue.list() if job.id not in earlier]
        most_active = max(most_active, peak)
        runs_lost += 20 - sum(j.state == "finished" for j in jobs)
        drains.append(time.time() - started)
        for job in jobs:
            queue.delete(job.id)
    return row(
        "20 submissions at once (command-line processes)",
        times * 20,
        runs_lost,
        0,
        "submissions lost",
        statistics.median(drains),
        f"at most {most_active} run active at any moment; time is to drain all",
    )


def checkpoint_truncated(ctx: Any, times: int) -> dict[str, Any]:
    """Cut the newest checkpoint's weights in half after a stop: resume takes the one before."""
    use_home(ctx.app.home)
    queue = RunQueue()
    config = freeze(load_config(PRESET, [*RESUMABLE, "train.max_steps=6"]))
    runs_lost, wrong, recoveries = 0, 0, []
    for _ in range(times):
        job = queue.submit(config)
        job = wait(queue, job.id, lambda j: j.active and j.files.read_status().get("step", 0) >= 3)
        queue.cancel(job.id)
        job = wait(queue, job.id, ended)
        newest = job.files.last_checkpoint()
        weights = newest / "adapter_model.safetensors"
        with weights.open("r+b") as f:
            f.truncate(weights.stat().st_size // 2)
        previous = job.files.last_checkpoint()
        wrong += previous is None or previous == newest
        damaged = time.time()
        queue.resume(job.id)  # recovered once it logs a step again, from the checkpoint before the damaged one
        job = wait(queue, job.id, lambda j, d=damaged: ended(j) or any(r["time"] > d for r in j.files.read_metrics()))
        recoveries.append(time.time() - damaged)
        job = wait(queue, job.id, ended)
        runs_lost += job.state != "finished" or logged(job) != list(range(1, 7))
    return row(
        "newest checkpoint truncated, then resumed",
        times,
        runs_lost,
        wrong,
        "damaged checkpoints used",
        statistics.median(recoveries),
        "resume took the previous complete checkpoint",
    )


def disk_full(ctx: Any, times: int) -> dict[str, Any]:
    """The data home on a 90 MB filesystem that the run's checkpoints fill."""
    failed_clearly, half_written, seconds = 0, 0, []
    for _ in range(times):
        mount = Path(tempfile.mkdtemp()) / "small"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=90m", "tmpfs", str(mount)]).returncode:
            return row("disk full", 0, 0, 0, "", None, "could not mount a small filesystem here")
        try:
            use_home(mount / "home")
            queue = RunQueue()
            job = queue.submit(freeze(load_config(PRESET, [*RESUMABLE, "train.save_total_limit=5"])))
            started = time.time()
            job = wait(queue, job.id, ended)
            seconds.append(time.time() - started)
            failed_clearly += job.state == "failed" and job.error_category == "disk"
            partial = [p for p in job.files.checkpoints.glob("checkpoint-*") if not (p / CHECKPOINT_MARKER).exists()]
            half_written += len(partial) + len([p for p in mount.rglob("*.tmp")])
            queue.delete(job.id)  # the store still works on the full disk, and deleting frees it
        finally:
            subprocess.run(["umount", "-l", str(mount)])
            use_home(ctx.app.home)
    return row(
        "disk full (90 MB tmpfs) during a run",
        times,
        0,
        half_written,
        "half-written files",
        statistics.median(seconds),
        f"{failed_clearly}/{times} failed naming the folder, space needed and free",
    )


def torn_status(ctx: Any, times: int) -> dict[str, Any]:
    """4 threads and 2 processes rewriting status.json, 2 threads reading it."""
    torn = errors = lost = 0
    for _ in range(times):
        files = RunFiles(Path(tempfile.mkdtemp()))
        files.write_status(start=True)
        writer = (
            "import sys; from pathlib import Path; from workbench.runs.files import RunFiles\n"
            "f = RunFiles(Path(sys.argv[1]))\n"
            "for i in range(500): f.write_status(**{f'{sys.argv[2]}{i}': i})\n"
        )
        procs = [subprocess.Popen([sys.executable, "-c", writer, str(files.root), f"p{n}-"], cwd=REPO) for n in (0, 1)]
        failures: list[BaseException] = []

        def write(prefix: str, files: RunFiles = files, failures: list = failures) -> None:
            try:
                for i in range(500):
                    files.write_status(**{f"{prefix}{i}": i})
            except BaseException as err:  # noqa: BLE001
                failures.append(err)

        writers = [threading.Thread(target=write, args=(f"t{n}-",)) for n in range(4)]
        for t in writers:
            t.start()
        while any(t.is_alive() for t in writers) or any(p.poll() is None for p in procs):
            torn += files.read_status().get("start") is not True
        errors += len(failures)
        lost += 3000 - len([k for k in files.read_status() if k[0] in "tp" and k[1].isdigit()])
    return row(
        "status.json rewritten by 4 threads + 2 processes",
        times * 3000,
        0,
        lost + torn + errors,
        "updates lost + torn reads + errors",
        None,
        "each time 3,000 writes; readers never saw a partial file",
    )


LIFECYCLE_FAULTS: list[Callable[[Any, int], dict[str, Any]]] = [
    worker_killed,
    ui_killed,
    many_submissions,
    checkpoint_truncated,
    disk_full,
    torn_status,
]
