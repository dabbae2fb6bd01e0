"""The training worker: `python -m workbench.runs.worker RUN_DIR --db JOBS_DB --claim TOKEN`.

A process of its own that knows its run folder and the claim the queue gave it: it reads the frozen config.yaml,
trains, reports progress through status.json and metrics.jsonl, and its outcome to the job store under its
claim. SIGTERM saves a checkpoint and ends the run as "stopped"; a new claim on the same folder resumes from the
newest complete checkpoint. A worker whose claim was withdrawn before it started (the run was stopped, or handed
out again) leaves without touching anything.
"""

from __future__ import annotations

import os

# Must be set before torch loads OpenMP: with the default (active) waiting, a step slows 10-25x whenever
# another process (the UI, a chat, a test) takes a core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from workbench import home  # noqa: E402
from workbench.config import RunConfig  # noqa: E402
from workbench.errors import describe  # noqa: E402
from workbench.runs import disk, processes  # noqa: E402
from workbench.runs.files import RunFiles, write_json_atomic  # noqa: E402
from workbench.runs.store import JobStore  # noqa: E402

log = logging.getLogger("workbench.runs.worker")

# What the worker reports of its environment (never a value of a secret): which settings it trained under.
_REPORTED_ENV = ("CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HOME", "TRANSFORMERS_OFFLINE")
_SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class Claim:
    """The worker's hold on its run in the job store: every report goes through it, and fails once withdrawn."""

    def __init__(self, store: JobStore, job_id: str, token: str):
        self.store, self.job_id, self.token = store, job_id, token

    def take(self) -> bool:
        pid = os.getpid()
        created = processes.created(pid)
        return created is not None and self.store.record_worker(self.job_id, self.token, pid, created)

    def running(self) -> None:
        self.store.mark_running(self.job_id, self.token)

    def finish(self, state: str, error: str | None = None, category: str | None = None) -> None:
        self.store.finish(self.job_id, self.token, state, error, category)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.runs.worker", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the run folder holding config.yaml")
    parser.add_argument("--db", type=Path, required=True, help="the job store (jobs.sqlite)")
    parser.add_argument("--claim", required=True, help="the claim the queue handed this worker")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    home.private_files()  # what the run writes is its user's alone, however the worker was started

    stop = processes.StopRequest()
    stop.install()  # first: a stop that comes while the worker starts ends the run as stopped, not killed
    files = RunFiles(args.run_dir.resolve())
    claim = Claim(JobStore(args.db), files.root.name, args.claim)
    if not claim.take():
        log.info("run %s was stopped or handed out again before this worker started: leaving", files.root.name)
        return 0
    disk.set_aside(files.root)
    forked = "workbench.runs.launcher" in sys.orig_argv  # a warm start, or a fresh interpreter
    files.write_status(pid=os.getpid(), started_at=time.time(), forked=forked, environment=_environment_report())
    try:
        outcome = train(files, stop, claim)
    except BaseException as err:  # noqa: B036  a failed run must always be recorded, whatever ended it
        traceback.print_exc()
        category, message = _failure(err, files)
        _record(claim, files, "failed", message, category)
        code = 1
    else:
        _record(claim, files, outcome, None, None, stop_reason=stop.signal_name or None)
        code = 0
    _start_next(args.db)
    return code


def _failure(err: BaseException, files: RunFiles) -> tuple[str, str]:
    """The failure's category and sentence; a full disk also drops the checkpoint that was being written."""
    if isinstance(err, disk.DiskFullError) or not disk.is_disk_full(err, files.root):
        return describe(err)
    files.discard_incomplete_checkpoints()
    disk.give_back(files.root)
    return "disk", disk.disk_full_message(files.root)


def _record(
    claim: Claim, files: RunFiles, state: str, error: str | None, category: str | None, **status: object
) -> None:
    """Report the outcome (last figures first, so whoever sees the run end sees them); if even that write fails
    (a full disk), give the reserve back and try once more."""
    try:
        files.write_status(peak_memory_mb=_peak_memory_mb(), **status)
    except OSError:
        disk.give_back(files.root)  # progress only; the outcome below is what must get through
    try:
        claim.finish(state, error, category)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        disk.give_back(files.root)
        claim.finish(state, error, category)
    disk.give_back(files.root)


def _environment_report() -> dict[str, str]:
    report = {key: os.environ[key] for key in _REPORTED_ENV if key in os.environ}
    report.update({key: "set" for key in _SECRET_ENV if os.environ.get(key)})
    return report


def _peak_memory_mb() -> float:
    """Peak resident memory of this process (CPU) or peak allocated device memory (GPU), in MiB."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def train(files: RunFiles, stop, claim: Claim) -> str:
    """Train the run in `files`; returns "finished" or "stopped"."""
    from workbench import models

    config = files.read_config()
    if models.is_local(config.model.name_or_path):
        # Everything is on disk: no library may stall on a hub look-up (PEFT checks the base's config on save).
        os.environ["HF_HUB_OFFLINE"] = "1"
        hub = sys.modules.get("huggingface_hub")
        if hub is not None:  # already imported (a worker forked by the launcher): flip the switch it read
            hub.constants.HF_HUB_OFFLINE = True

    import torch
    from transformers import set_seed

    from workbench import methods, stages
    from workbench.data import rehearsal
    from workbench.methods.counting import count_parameters
    from workbench.runs import chaining, preflight, tracking
    from workbench.training import artifacts, best, hardware, varlen_attention
    from workbench.training.callbacks import RunCallback

    started = time.time()
    ref = models.resolve(config.model.name_or_path)
    tokenizer = models.load_tokenizer(ref, config.model.chat_template)
    # A chained run may start from the whole model an earlier run saved (its tokenizer is the base's).
    model_path = chaining.starting_folder(config) or Path(ref.path)
    stage = stages.get(config.stage.name)
    # Precision is needed to load the model; checkpointing depends on its size, so it is chosen again below.
    hw = hardware.choose(config.train, n_params=0)
    torch.set_num_threads(hw.threads)

    def base_model():  # for replies to replay prompts (answers: base), as the run's starting point answers them
        model = models.load_model(ref, path=model_path, pad_token_id=tokenizer.pad_token_id,
                                  dtype=hardware.torch_dtype(hw.precision), device=hw.device)  # fmt: skip
        parent = chaining.parent_adapter(config)
        if parent is None:
            return model
        from peft import PeftModel

        return PeftModel.from_pretrained(model, parent)

    replier = rehearsal.BaseReplier(base_model, tokenizer, config.data.cutoff_len)
    try:
        train_set, eval_set, data_files = _prepare_data(config, stage.data, tokenizer, files, replier, stop)
    except _StoppedWhilePreparing:
        return "stopped"
    log.info("data ready in %.1fs", time.time() - started)

    spec = methods.get(config.method.name)
    padding_free = spec.padding_free and stage.padding_free
    context = methods.Context(model_path=model_path, run_dir=files.root)
    preflight.refuse(preflight.problems(config, hw.device))
    # The trackers read their settings from the environment when the trainer is built.
    report_to, run_name = config.train.report_to, tracking.run_name(files.root.name, config.name)
    os.environ.update(tracking.environment(report_to, files, os.environ))
    tracking.prepare(report_to, os.environ)
    files.write_status(tracking=tracking.destinations(report_to, files, os.environ, run_name))
    set_seed(config.train.seed)
    model = models.load_model(
        ref,
        path=model_path,
        head=stage.head,
        pad_token_id=tokenizer.pad_token_id,
        dtype=hardware.torch_dtype(hw.precision),
        # Padding-free batches (packed rows too) attend within each example only; methods that prepend
        # virtual tokens per example train on padded batches with the standard attention.
        attn_implementation=varlen_attention.NAME if padding_free else "sdpa",
        quantization_config=spec.quantization(config.method) if spec.quantization else None,
    )
    hw = hardware.choose(config.train, n_params=model.num_parameters())
    log.info("hardware: %s", hw.as_dict())

    peft_config = None
    parent_adapter = chaining.parent_adapter(config)
    if parent_adapter is not None:
        from peft import PeftModel

        # The earlier run's adapter trains on; the trainer takes the PeftModel as it is.
        model = PeftModel.from_pretrained(model, parent_adapter, is_trainable=True)
        log.info("continuing the adapter of run %s", config.model.parent_run)
    elif spec.build_peft_config is not None:
        peft_config = spec.build_peft_config(config.method, model, context)
    else:
        model = spec.prepare_model(config.method, model)
    parts = stages.TrainerParts(
        config=config,
        hardware=hw,
        model=model,
        tokenizer=tokenizer,
        train_set=train_set,
        eval_set=eval_set,
        peft_config=peft_config,
        output_dir=files.checkpoints,
        callbacks=[
            RunCallback(files, stop, on_begin=claim.running),
            *best.callbacks(config.train, eval_set is not None),
        ],
        padding_free=padding_free,
        model_path=model_path,
        reward_run=chaining.reward_run(config),
        tracking=tracking.trainer_arguments(run_name),
    )
    trainer = stage.build_trainer(config.stage, parts)
    if spec.customize_trainer is not None:
        spec.customize_trainer(config.method, trainer, context)
    trainable, total = count_parameters(trainer.model)
    files.write_status(trainable_params=trainable, total_params=total, base_weights=_base_weights(model, hw))
    log.info("trainable parameters: %s of %s (%.4f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    disk.require(files.root, disk.checkpoint_bytes(trainable), "this run's checkpoints")
    files.discard_incomplete_checkpoints()
    resume = files.last_checkpoint()
    if resume is not None:
        step = int(resume.name.rsplit("-", 1)[1])
        files.truncate_metrics_after(step)
        tracking.resume_tensorboard(trainer, step)
        log.info("resuming from %s", resume)
    if stop.requested:
        return "stopped"
    log.info("launch to trainer ready: %.1fs", time.time() - started)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if stop.requested:
        return "stopped"
    chosen = best.outcome(config.train, trainer.state)
    if chosen:
        # The trainer has loaded the best checkpoint back into the model: that is what is saved below.
        log.info("best checkpoint: step %s (%s)", chosen["best_step"], chosen["best_metric"])
        files.write_status(**chosen)

    hashes = [_sha256(path) for path in data_files]
    _save_artifact(
        trainer, files, config, context, ref.base_name, hashes, _final_loss(files), result.global_step, chosen
    )
    write_json_atomic(files.manifest, artifacts.manifest(config, hw, hashes))
    return "finished"


class _StoppedWhilePreparing(Exception):
    """A stop came while the base model wrote replies to replay: the run ends as stopped before training."""


def _prepare_data(config: RunConfig, kind: str, tokenizer, files: RunFiles, replier, stop):
    """(train set, eval set or None, the data files read) for a stage that trains on `kind` of data.

    The training datasets are mixed by their shares first (workbench/data/mixing.py). Datasets with `use:
    validation` are the eval set (else a `val_size` share of the mix); for conversations, those with `use: test`
    (else a `test_size` share of the mix) are held out and saved as test.jsonl, the rows of datasets with
    `answers: base` get the base model's replies from `replier` (workbench/data/rehearsal.py), and those with
    `answers: base_distribution` are marked to learn the base model's distributions (workbench/training/distill.py).
    """
    from workbench import data
    from workbench.data.loading import LoadedDataset, LoadedExamples, load_for
    from workbench.data.mixing import load_mixed
    from workbench.data.splits import hold_out, write_conversations
    from workbench.data.text import encode_texts

    d = config.data
    mixed = load_mixed(d, kind, config.train.seed)
    kept = {
        use: [load_for(kind, spec, system_prompt=d.system_prompt) for spec in d.datasets if spec.use == use]
        for use in ("validation", "test")
    }

    def items(loaded: LoadedDataset | LoadedExamples) -> list:
        return loaded.conversations if isinstance(loaded, LoadedDataset) else loaded.examples

    given = {use: [row for ds in loaded for row in items(ds)] for use, loaded in kept.items()}
    rows, test = mixed.rows, []
    if kind == "conversations":
        rows, test = hold_out(rows, d.test_size, config.train.seed)
        test += given["test"]
        if test:
            write_conversations(test, files.test_set)
        rows = _answer_with_base(config, mixed, rows, files, replier, stop)
    distilled = _distilled(config, mixed, rows) if kind == "conversations" else None

    def encode(items: list) -> data.EncodedData:
        if kind == "text":
            return encode_texts(items, tokenizer, cutoff_len=d.cutoff_len)
        return data.encode_conversations(items, tokenizer, cutoff_len=d.cutoff_len, train_on_prompt=d.train_on_prompt)

    if kind in ("conversations", "text"):
        encoded = encode(rows)
        files.write_status(data_stats={**encoded.stats.as_dict(), "mix": mixed.report(), "test_rows": len(test)})
        dataset = data.to_hf_dataset(encoded, distill=distilled and [distilled[i] for i in encoded.sources])
        eval_set = data.to_hf_dataset(encode(given["validation"])) if given["validation"] else None
    else:
        from datasets import Dataset

        files.write_status(
            data_stats={"rows": len(rows), "kind": data.loading.KIND_NAMES[kind], "mix": mixed.report()}
        )
        # TRL applies the chat template and cuts to cutoff_len itself
        dataset = Dataset.from_list([example.as_trl() for example in rows])
        validation = [example.as_trl() for example in given["validation"]]
        eval_set = Dataset.from_list(validation) if validation else None
    if eval_set is None:
        dataset, eval_set = data.split_validation(dataset, d.val_size, config.train.seed)
    return dataset, eval_set, [ds.path for ds in [*mixed.loaded, *kept["validation"], *kept["test"]]]


def _distilled(config: RunConfig, mixed, rows: list) -> list[bool] | None:
    """Per training row, whether it learns the base model's distributions (`answers: base_distribution`); None
    when no row does."""
    specs = config.data.training_datasets()
    marked = {
        id(row)
        for spec, ds in zip(specs, mixed.loaded, strict=True)
        if spec.answers == "base_distribution"
        for row in ds.conversations
    }
    return [id(row) in marked for row in rows] if marked else None


def _answer_with_base(config: RunConfig, mixed, rows: list, files: RunFiles, replier, stop) -> list:
    """The training rows, those of datasets with `answers: base` replied to by the base model."""
    from workbench.data import rehearsal

    specs = config.data.training_datasets()
    chosen = [
        row for spec, ds in zip(specs, mixed.loaded, strict=True) if spec.answers == "base" for row in ds.conversations
    ]
    if not chosen:
        return rows

    def progress(done: int, total: int) -> bool:
        files.write_status(rehearsal={"done": done, "rows": total})
        log.info("base model's replies to replay: %d of %d", done, total)
        return not stop.requested

    try:
        answered = rehearsal.answer_with_base(rows, chosen, replier, files.rehearsal, progress)
    finally:
        replier.close()
    if answered is None:
        raise _StoppedWhilePreparing
    return answered


def _save_artifact(
    trainer, files: RunFiles, config: RunConfig, context, base_name: str, hashes, loss, steps: int, chosen: dict
) -> None:
    from workbench import methods
    from workbench.training.artifacts import model_card

    spec = methods.get(config.method.name)
    # Written beside the final folder, then renamed: a reader never sees a half-saved adapter.
    staging = files.root / ".adapter.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    if spec.save is not None:
        spec.save(config.method, trainer, staging, context)
    else:
        trainer.save_model(str(staging))
    (staging / "README.md").write_text(
        model_card(config, spec, base_name, hashes, loss, steps, chosen), encoding="utf-8"
    )
    shutil.rmtree(files.adapter, ignore_errors=True)
    staging.rename(files.adapter)


def _base_weights(model, hw) -> str:
    """How the frozen base is stored: "4-bit nf4", "8-bit" or the training precision."""
    quantization = getattr(getattr(model, "hf_quantizer", None), "quantization_config", None)
    if getattr(quantization, "load_in_4bit", False):
        return f"4-bit {quantization.bnb_4bit_quant_type}"
    if getattr(quantization, "load_in_8bit", False):
        return "8-bit"
    return hw.precision


def _final_loss(files: RunFiles) -> float | None:
    losses = [r["loss"] for r in files.read_metrics() if r.get("loss") is not None]
    return losses[-1] if losses else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _start_next(db: Path) -> None:
    # The queue moves on even when no UI or CLI is watching: the next queued run starts as this one ends.
    try:
        from workbench.runs.queue import RunQueue

        RunQueue(JobStore(db)).start_next()
    except Exception:  # noqa: BLE001  our own outcome is recorded; the next reconcile starts the next run
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
