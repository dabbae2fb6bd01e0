"""The command line: `python -m workbench train|jobs|stop|resume|delete|logs|chat|eval|export|serve ...`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import home
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.export.gguf import GgufExport

EXPORT_FORMATS = ("adapter", "merged", "gguf", "gguf-lora", "ollama")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench", description="Fine-tune language models.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="validate a YAML run config, queue it and follow it to the end")
    train.add_argument("config", type=Path, help="a YAML run config, e.g. presets/sft-lora-smollm2.yaml")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="override a field, e.g. --set train.max_steps=4 (repeatable)",
    )  # fmt: skip
    train.add_argument("--detach", action="store_true", help="queue the run and return at once")

    sub.add_parser("jobs", help="list runs and their states")

    stop = sub.add_parser("stop", help="stop a run: a queued one at once, a running one after saving a checkpoint")
    stop.add_argument("run", help="a run id (see `jobs`)")
    resume = sub.add_parser("resume", help="queue a stopped or failed run again, from its last checkpoint")
    resume.add_argument("run", help="a run id (see `jobs`)")
    resume.add_argument("--detach", action="store_true", help="queue it and return at once")
    delete = sub.add_parser("delete", help="delete a run that is not training, with its folder")
    delete.add_argument("run", help="a run id (see `jobs`)")
    logs = sub.add_parser("logs", help="print a run's log")
    logs.add_argument("run", help="a run id (see `jobs`)")
    logs.add_argument("-n", "--lines", type=int, default=0, help="only the last N lines (default: all)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing as the run goes on")

    chat = sub.add_parser("chat", help="chat in the terminal with a run's adapter on its base model")
    chat.add_argument("run", help="a run id (see `jobs`)")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 picks the most likely token")

    evaluate = sub.add_parser(
        "eval", help="compare a finished run's replies with its base model's on its test set; --probe measures "
        "forgetting (results in RUN/eval/)",
    )  # fmt: skip
    evaluate.add_argument(
        "run", help="a run id (see `jobs`) or run folder; with --base, a model: bundled key, folder or hub id"
    )
    evaluate.add_argument("--data", type=Path, help="a dataset file to ask instead of the run's test set")
    evaluate.add_argument(
        "--split", choices=["test", "validation"], default="test",
        help="the run's held-out test set (default) or its validation datasets",
    )  # fmt: skip
    evaluate.add_argument("--limit", type=int, help="only the first N examples")
    evaluate.add_argument("--base", action="store_true", help="evaluate a base model on its own (RUN names it)")
    evaluate.add_argument("--probe", action="store_true", help="run the general-knowledge probe (lm-eval) too")
    evaluate.add_argument(
        "--probe-limit", type=int, help="only the probe's first N questions (a sample in the proportions of its kinds)"
    )
    evaluate.add_argument(
        "--task", dest="tasks", action="append", default=[], metavar="NAME",
        help="also run this lm-evaluation-harness task (its data must be on this machine; repeatable)",
    )  # fmt: skip
    evaluate.add_argument(
        "--judge", metavar="MODEL_OR_URL",
        help="compare base and tuned replies pairwise, both orders, by this model (bundled key, folder, hub id) or "
        "OpenAI-compatible endpoint (http...; its key from $OPENAI_API_KEY); off by default",
    )  # fmt: skip
    evaluate.add_argument(
        "--judge-model", help="with an endpoint --judge: the model it should use (default: its first)"
    )
    evaluate.add_argument("--batch-size", type=int, default=8, help="prompts answered together (default 8)")
    evaluate.add_argument("--max-new-tokens", type=int, default=128, help="longest reply (default 128)")
    evaluate.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    evaluate.add_argument("-o", "--output", type=Path, help="with --base: folder for the report")

    export = sub.add_parser(
        "export", help="a run's adapter zip, merged model, GGUF (model or LoRA) or Ollama Modelfile; --push uploads it"
    )
    export.add_argument("run", help="a run id (see `jobs`)")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, default="adapter",
        help="adapter: zip of the adapter, tokenizer and model card; merged: the adapter folded into its base; "
        "gguf: the merged model for llama.cpp; gguf-lora: the LoRA adapter for llama.cpp's --lora; "
        "ollama: gguf plus a Modelfile (default: adapter)",
    )  # fmt: skip
    export.add_argument(
        "--quant", action="append", metavar="TYPE",
        help="GGUF type, repeatable: f16 (default), q8_0, bf16, f32; q4_k_m and other k-quants need llama.cpp's "
        "llama-quantize on PATH",
    )  # fmt: skip
    export.add_argument("--no-check", action="store_true", help="do not load a GGUF back to compare its replies")
    export.add_argument(
        "-o", "--output", type=Path,
        help="zip file (adapter) or folder (the other formats) to write; default: in the run folder",
    )  # fmt: skip
    export.add_argument("--push", metavar="REPO", help="then upload it to this Hugging Face Hub repo (private if new)")

    serve = sub.add_parser("serve", help="serve runs' adapters on one base model through an OpenAI-compatible API")
    serve.add_argument("runs", nargs="*", metavar="RUN", help="run ids whose adapters to serve (see `jobs`)")
    serve.add_argument("--base", help="the base model (default: the runs' base, or the bundled model)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key", default=os.environ.get("WORKBENCH_SERVE_API_KEY"),
        help="require Authorization: Bearer KEY (or set WORKBENCH_SERVE_API_KEY); needed to serve other machines",
    )  # fmt: skip
    serve.add_argument("--insecure-no-auth", action="store_true", help="allow a public --host without a key")
    serve.add_argument("--max-waiting", type=int, default=16, help="requests that may wait; more get 429")
    serve.add_argument(
        "--max-batch", type=int, default=1, help="requests generated together (default 1: one at a time)"
    )
    serve.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    serve.add_argument(
        "--exit-with", type=int, metavar="PID", help="exit when this process ends (the app that started the server)"
    )

    args = parser.parse_args(argv)
    home.private_files()  # runs, stored datasets and exports are the user's alone (the workers inherit it)
    try:
        commands = {"train": _train, "jobs": _jobs, "stop": _stop, "resume": _resume, "delete": _delete}
        commands.update({"logs": _logs, "chat": _chat, "eval": _eval, "export": _export, "serve": _serve})
        return commands[args.command](args)
    except WorkbenchError as err:
        _err(f"error: {err}" if "\n" not in str(err) else "error:\n  " + str(err).replace("\n", "\n  "))
        return 2


def _train(args: argparse.Namespace) -> int:
    from workbench.config import load_config
    from workbench.runs.queue import RunQueue
    from workbench.runs.submission import submit

    config = load_config(args.config, args.overrides)
    queue = RunQueue()
    queue.reconcile()
    job = submit(config, queue=queue, warn=lambda text: _err(f"warning: {text}"))
    _out(f"run {job.id} queued: {job.run_dir}")
    if args.detach:
        return 0
    return _follow(queue, job.id)


def _follow(queue, job_id: str) -> int:
    from tqdm import tqdm

    bar = tqdm(total=None, unit="step", dynamic_ncols=True)
    stopping = False
    while True:
        try:
            queue.reconcile()
            job = queue.get(job_id)
            status = job.files.read_status()
            if status.get("max_steps"):
                bar.total = status["max_steps"]
                bar.n = status.get("step", 0)
                losses = [r["loss"] for r in job.files.read_metrics()[-1:] if r.get("loss") is not None]
                bar.set_postfix(loss=f"{losses[-1]:.4f}" if losses else "-", refresh=False)
                bar.refresh()
            bar.set_description(job.state if job.state != "running" else "training")
            if job.state in ("finished", "failed", "stopped"):
                break
            time.sleep(0.5)
        except KeyboardInterrupt:
            if stopping:
                _err(f"\nleft run {job_id} stopping in the background")
                return 130
            stopping = True
            _err("\nstopping: saving a checkpoint (Ctrl-C again to leave it in the background)")
            queue.cancel(job_id)
    bar.close()
    if job.state == "finished":
        status = job.files.read_status()
        chosen = f" (the best checkpoint, step {status['best_step']})" if status.get("best_step") is not None else ""
        early = f"; stopped early at step {status.get('step')}" if status.get("stopped_early") else ""
        _out(f"finished: adapter in {job.files.adapter}{chosen}{early}")
        return 0
    if job.state == "stopped":
        _out(f"stopped; resume continues from {job.files.last_checkpoint()}")
        return 1
    _err(f"failed: {job.error}\nlog: {job.files.log}")
    return 1


def _stop(args: argparse.Namespace) -> int:
    from workbench.runs.queue import RunQueue

    job = RunQueue().cancel(args.run)
    _out(f"run {job.id} stopped" if job.state == "stopped" else f"run {job.id} stopping: saving a checkpoint")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from workbench.runs.queue import RunQueue

    queue = RunQueue()
    queue.reconcile()
    job = queue.resume(args.run)
    checkpoint = job.files.last_checkpoint()
    _out(f"run {job.id} queued again, from {checkpoint.name if checkpoint else 'the start'}")
    return 0 if args.detach else _follow(queue, job.id)


def _delete(args: argparse.Namespace) -> int:
    from workbench.runs.queue import RunQueue

    RunQueue().delete(args.run)
    _out(f"run {args.run} deleted")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from workbench.runs.queue import RunQueue

    queue = RunQueue()
    job = queue.get(args.run)
    position, first = 0, True
    while True:
        try:
            with job.files.log.open("rb") as f:
                f.seek(position)
                text = f.read()
                position = f.tell()
        except FileNotFoundError:
            text = b""
        if first and args.lines:
            text = b"".join(text.splitlines(keepends=True)[-args.lines :])
        sys.stdout.write(text.decode("utf-8", "replace"))
        sys.stdout.flush()
        first = False
        if not args.follow or not job.active:
            return 0
        time.sleep(0.5)
        queue.reconcile()
        job = queue.get(job.id)


def _jobs(args: argparse.Namespace) -> int:
    from workbench.runs.queue import RunQueue

    jobs = RunQueue().reconcile()
    if not jobs:
        _out("no runs yet")
        return 0
    _out(f"{'id':24} {'state':9} {'stage':6} {'method':13} {'step':>11}  {'model':32} name")
    for job in jobs:
        status = job.files.read_status()
        step = f"{status.get('step', 0)}/{status.get('max_steps', '?')}"
        name = (job.name or "") + (f" (from {job.parent})" if job.parent else "")
        _out(f"{job.id:24} {job.state:9} {job.stage:6} {job.method:13} {step:>11}  {job.model[:32]:32} {name}")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from workbench.chat import ChatEngine
    from workbench.runs.store import JobStore

    job = JobStore().get(args.run)
    engine = ChatEngine.for_run(job.files)
    history: list[dict[str, str]] = []
    _out(f"chatting with {job.id} ({engine.base_name} + adapter); empty line or Ctrl-D to quit")
    while True:
        try:
            prompt = input("you> ").strip()
        except EOFError:
            break
        if not prompt:
            break
        history.append({"role": "user", "content": prompt})
        sys.stdout.write("model> ")
        reply = ""
        for piece in engine.stream(history, max_new_tokens=args.max_new_tokens, temperature=args.temperature):
            reply += piece
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        history.append({"role": "assistant", "content": reply})
    return 0


def _eval(args: argparse.Namespace) -> int:
    import logging
    import os

    # Before torch loads OpenMP, as in the worker: with active waiting, generation slows 10-25x whenever another
    # process (a training run, the UI) takes a core.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from workbench.evaluation import report
    from workbench.evaluation.run import evaluate_model, evaluate_run

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("workbench.evaluation").setLevel(logging.INFO)  # its phases, for whoever reads the log
    options = {
        "data": args.data, "limit": args.limit, "with_probe": args.probe, "probe_limit": args.probe_limit,
        "tasks": args.tasks, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
    }  # fmt: skip
    if args.base:
        from workbench import home

        if args.data is None and not args.probe and not args.tasks:
            raise WorkbenchError("eval --base needs something to ask: --data FILE, --probe or --task NAME")
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in args.run).strip("-.")
        output = args.output or home.evaluations_dir() / safe
        result = evaluate_model(args.run, output, **options)
    else:
        from workbench.runs.files import RunFiles
        from workbench.runs.store import JobStore

        # A run id, or a run folder (how workbench.evaluation.launch starts it for the UI).
        folder = Path(args.run)
        files = RunFiles(folder.resolve()) if (folder / "config.yaml").is_file() else JobStore().get(args.run).files
        result = evaluate_run(files, split=args.split, judge=args.judge, judge_model=args.judge_model, **options)
        output = files.evaluation
    rows = [("metric", "base", "tuned", "change"), *report.table(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    if result.get("examples_count"):
        _out(f"{result['examples_count']} examples from {result.get('data')}")
    for row in rows:
        cells = zip(row, widths, strict=True)
        _out("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(cells)))
    if "judge" in result:
        j = result["judge"]
        _out(f"judge {j['judge']}: tuned better {j['wins']}, base better {j['losses']}, ties {j['ties']} "
             f"(both orders; win rate {j['win_rate']:.0%}, a tie half)")  # fmt: skip
    for warning in report.warnings(result):
        _err(f"warning: {warning}")
    _out(f"report: {output / report.REPORT}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from workbench.runs.store import JobStore

    job = JobStore().get(args.run)
    quants = args.quant or ["f16"]
    if args.push:
        from workbench.export.hub import hub_token

        hub_token()  # refused before an export that could take minutes
    if args.format == "adapter":
        from workbench.export import zip_adapter
        from workbench.export.hub import run_folder

        _out(str(zip_adapter(job.files, args.output)))
        folder = run_folder(job.files, "adapter")
    elif args.format == "merged":
        from workbench.export import merge_adapter

        folder = merge_adapter(job.files, args.output)
        _out(str(folder))
    elif args.format == "gguf":
        from workbench.export.gguf import export_gguf

        exported = export_gguf(job.files, quants, args.output, check=not args.no_check)
        for item in exported:
            _report_gguf(item)
        folder = exported[0].path.parent
    elif args.format == "gguf-lora":
        from workbench.export.gguf import export_lora_gguf

        item = export_lora_gguf(job.files, args.output, check=not args.no_check)
        _report_gguf(item)
        folder = item.path.parent
    else:
        from workbench.export.ollama import export_ollama

        if len(quants) > 1:
            raise WorkbenchError("--quant: an Ollama Modelfile names one GGUF; give one type")
        modelfile, item = export_ollama(job.files, quants[0], args.output, check=not args.no_check)
        _report_gguf(item)
        _out(
            f"{modelfile}\n  in its folder: ollama create {job.id.lower()} -f Modelfile && ollama run {job.id.lower()}"
        )
        folder = modelfile.parent
    if args.push:
        from workbench.export.hub import push, upload_plan

        url = push(upload_plan(folder), args.push, f"Workbench: {args.format} of run {job.id}")
        _out(f"pushed {folder} to {url}")
    return 0


def _report_gguf(item: GgufExport) -> None:
    check = item.report.get("check")
    _out(str(item.path))
    if not check:
        return
    if item.report["kind"] == "lora":
        matched = check["identical"] + check["identical_but_row_order"]
        _out(f"  {matched}/{check['adapter_tensors']} adapter tensors found in the file; report: {item.report_path}")
        if check["unmatched"] or not check["alpha_matches"]:
            _err(f"warning: {item.path.name} does not hold the adapter as it is (see the report)")
        return
    _out(
        f"  loads back; greedy replies identical to the merged model's: {check['identical_replies']}/"
        f"{check['prompts']}, reference tokens ranked first: {check['reference_tokens_ranked_first']:.1%}; "
        f"report: {item.report_path}"
    )
    if item.report["type"] in ("f16", "f32", "bf16") and check["identical_replies"] < check["prompts"]:
        _err(f"warning: {item.path.name} does not reply exactly as the merged model does (see the report)")


def _serve(args: argparse.Namespace) -> int:
    from workbench.api.serve import ServeOptions, run

    options = ServeOptions(
        runs=args.runs, base=args.base, host=args.host, port=args.port, api_key=args.api_key,
        insecure_no_auth=args.insecure_no_auth, max_waiting=args.max_waiting, max_batch=args.max_batch,
        threads=args.threads, exit_with=args.exit_with,
    )  # fmt: skip
    return run(options)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
