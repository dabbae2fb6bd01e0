"""An evaluation from start to end: the examples, base and tuned replies, their scores, the probe, the report.

`evaluate_run` evaluates a finished run into `RUN/eval/` (and its model card); `evaluate_model` a model on its own
(no tuned side). Both load models: call them from the CLI or a child process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

from workbench.errors import WorkbenchError
from workbench.evaluation import metrics, probe, report
from workbench.evaluation.testset import Example
from workbench.runs.files import RunFiles

# The run's held-out test.jsonl, or its datasets marked use: validation.
Split = Literal["test", "validation"]
# Where each phase begins and what it took: the log a person (or the Evaluate tab) watches.
log = logging.getLogger(__name__)


class EvaluationError(WorkbenchError):
    """An evaluation that cannot run as asked (nothing to evaluate on, a run without a result)."""

    category = "config"


def run_examples(files: RunFiles, data: Path | None, split: Split, limit: int | None) -> tuple[list[Example], str]:
    """The examples to ask and where they came from."""
    from workbench.data.formats import with_system
    from workbench.data.loading import load_conversations
    from workbench.evaluation import testset

    config = files.read_config()
    system = config.data.system_prompt
    if data is not None:
        return testset.load(data, system, limit), Path(data).name
    if split == "test":
        if not files.test_set.is_file():
            raise EvaluationError(
                f"run {files.root.name} kept no test set (train with data.test_size or a dataset with use: test); "
                "give one with --data FILE"
            )
        return testset.load(files.test_set, system, limit), files.test_set.name
    if split != "validation":
        raise EvaluationError(f"--split must be test or validation, got {split!r}")
    specs = [spec for spec in config.data.datasets if spec.use == "validation"]
    if not specs:
        raise EvaluationError(f"run {files.root.name} has no dataset with use: validation (a val_size share is "
                              "cut from encoded rows and not kept); give one with --data FILE")  # fmt: skip
    conversations = [with_system(c, system) for spec in specs for c in load_conversations(spec).conversations]
    examples = testset.from_conversations(conversations, file=Path(specs[0].path).name)
    return examples[:limit], ", ".join(Path(s.path).name for s in specs)


def score_examples(examples: list[Example], replies: dict[str, list[str]]) -> dict[str, Any]:
    """Figures per model (`replies`: {"base": [...], "tuned": [...]}) and the per-example table, the examples
    whose chrF changed most between base and tuned first."""
    references = [e.reference for e in examples]
    per = {who: [metrics.example_scores(r, ref) for r, ref in zip(rs, references, strict=True)]
           for who, rs in replies.items()}  # fmt: skip
    rows = []
    for i, example in enumerate(examples):
        row: dict[str, Any] = {"prompt": example.question, "reference": example.reference}
        row.update({f"{who}_reply": replies[who][i] for who in replies})
        for who in replies:
            row.update({f"{who}_{name}": round(value, 2) for name, value in per[who][i].items()})
        if "base" in replies and "tuned" in replies:
            row["change_chrf"] = round(per["tuned"][i]["chrf"] - per["base"][i]["chrf"], 2)
        rows.append(row)
    rows.sort(key=lambda r: -abs(r.get("change_chrf", 0.0)))
    return {
        "metrics": {who: metrics.corpus_scores(rs, references, per[who]) for who, rs in replies.items()},
        "examples": rows,
    }


def evaluate_run(
    files: RunFiles,
    *,
    data: Path | None = None,
    split: Split = "test",
    limit: int | None = None,
    with_probe: bool = False,
    probe_limit: int | None = None,
    tasks: list[str] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 128,
    judge: str | None = None,
    judge_model: str | None = None,
) -> dict[str, Any]:
    """Evaluate a finished run's result against its base; write RUN/eval/ and the evaluation into the model card.
    `judge` (a model to load, or an OpenAI-compatible endpoint's address with `judge_model`) compares the replies
    pairwise."""
    from workbench.chat import ChatEngine
    from workbench.evaluation.generate import replies

    probe.offline()
    if files.artifact_kind() is None:
        raise EvaluationError(f"run {files.root.name} has no result yet: it has not finished")
    config = files.read_config()
    wants_examples = data is not None or split != "test" or files.test_set.is_file() or not (with_probe or tasks)
    examples, source = run_examples(files, data, split, limit) if wants_examples else ([], "")
    result: dict[str, Any] = {"title": config.name or files.root.name, "run": files.root.name, "timings": {}}
    if examples:
        engine = ChatEngine.for_run(files)
        prompts = [e.prompt for e in examples]
        answers = {}
        for who in ("base", "tuned"):
            log.info("%s model: replying to %d examples of %s", who, len(prompts), source)
            began = time.time()
            if who == "tuned":
                answers[who] = replies(engine.model, engine.tokenizer, prompts, batch_size=batch_size,
                                       max_new_tokens=max_new_tokens)  # fmt: skip
            else:
                with engine.base() as model:
                    answers[who] = replies(model, engine.tokenizer, prompts, batch_size=batch_size,
                                           max_new_tokens=max_new_tokens)  # fmt: skip
            result["timings"][f"{who}_replies_s"] = round(time.time() - began, 1)
            log.info("%s model: %d replies in %.1f s", who, len(prompts), result["timings"][f"{who}_replies_s"])
        del engine
        result.update(score_examples(examples, answers))
        result.update(split=split if data is None else "given", data=source, examples_count=len(examples))
    if judge is not None:
        if not examples:
            raise EvaluationError("a judge compares replies to examples: give a test set or --data FILE")
        from workbench.evaluation import judge as judging

        began = time.time()
        ask = judging.judge_for(judge, judge_model)
        questions = [e.question for e in examples]
        result["judge"] = {"judge": judge if judge_model is None else f"{judge_model} at {judge}",
                           **judging.pairwise(questions, answers["base"], answers["tuned"], ask)}  # fmt: skip
        result["timings"]["judge_s"] = round(time.time() - began, 1)
    if with_probe or tasks:
        result.update(_lm_eval(files, config, with_probe, probe_limit, tasks or []))
    report.write(files.evaluation, result)
    report.add_to_card(files.adapter / "README.md", result)
    log.info("report written: %s", files.evaluation / report.REPORT)
    return result


def _models(files: RunFiles, config: Any) -> dict[str, probe.ModelUnderTest]:
    """The base and the tuned model as lm-eval's `hf` model loads them."""
    from workbench.runs import chaining

    ref = chaining.base_ref(config)
    kind = files.artifact_kind()
    adapter = str(files.adapter)
    # The trained chat template travels with the adapter (as in export): both sides are asked with it.
    tokenizer = adapter if (files.adapter / "tokenizer_config.json").is_file() else None
    base = probe.ModelUnderTest(pretrained=ref.path, tokenizer=tokenizer)
    if kind == "peft":
        tuned = probe.ModelUnderTest(pretrained=ref.path, peft=adapter, tokenizer=tokenizer)
    elif kind == "model":
        tuned = probe.ModelUnderTest(pretrained=adapter, tokenizer=tokenizer)
    else:  # a bottleneck adapter: lm-eval cannot load it, so it gets the model loaded here
        from workbench.chat import ChatEngine

        engine = ChatEngine.for_run(files)
        tuned = probe.ModelUnderTest(pretrained=ref.path, tokenizer=engine.tokenizer, loaded=engine.model)
    return {"base": base, "tuned": tuned}


def _lm_eval(files: RunFiles, config: Any, with_probe: bool, limit: int | None, tasks: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    names = ([probe.TASK] if with_probe else []) + [t for t in tasks if t != probe.TASK]
    outputs, answers = {}, {}
    for who, model in _models(files, config).items():
        log.info("%s model: lm-eval %s (limit %s)", who, ", ".join(names), limit)
        began = time.time()
        outputs[who] = probe.run_tasks(model, names, limit=limit, system_prompt=config.data.system_prompt)
        found.setdefault("timings_lm_eval", {})[f"{who}_s"] = round(time.time() - began, 1)
        if with_probe:
            answers[who] = probe.answers(outputs[who])
    if with_probe:
        found["probe"] = {
            "task": probe.TASK,
            "questions": len(answers["base"]),
            **{
                who: {
                    "accuracy": probe.accuracy(outputs[who]),
                    "workbench_accuracy": sum(a.workbench_correct for a in answers[who]) / len(answers[who]),
                    "answers": [a.__dict__ for a in answers[who]],
                }
                for who in answers
            },  # fmt: skip
            **probe.retention(answers["base"], answers["tuned"]),
        }
    others = [t for t in names if t != probe.TASK]
    if others:
        found["tasks"] = {who: {t: _numbers(outputs[who]["results"].get(t, {})) for t in others} for who in outputs}
    return found


def _numbers(results: dict[str, Any]) -> dict[str, float]:
    return {key: value for key, value in results.items() if isinstance(value, int | float)}


def evaluate_model(
    model: str,
    output: Path,
    *,
    data: Path | None = None,
    limit: int | None = None,
    with_probe: bool = False,
    probe_limit: int | None = None,
    tasks: list[str] | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 128,
) -> dict[str, Any]:
    """A model on its own (a bundled key, a local folder, a hub id): its replies' figures and the probe."""
    from workbench import models
    from workbench.evaluation import testset
    from workbench.evaluation.generate import replies

    if models.is_local(model):
        probe.offline()
    ref = models.resolve(model)
    result: dict[str, Any] = {"title": ref.base_name, "model": ref.base_name, "timings": {}}
    if data is not None:
        examples = testset.load(data, None, limit)
        tokenizer = models.load_tokenizer(ref)
        loaded = models.load_model(ref, device=_device()).eval()
        began = time.time()
        answers = replies(loaded, tokenizer, [e.prompt for e in examples], batch_size=batch_size,
                          max_new_tokens=max_new_tokens)  # fmt: skip
        result["timings"]["base_replies_s"] = round(time.time() - began, 1)
        del loaded
        result.update(score_examples(examples, {"base": answers}))
        result.update(split="given", data=Path(data).name, examples_count=len(examples))
    names = ([probe.TASK] if with_probe else []) + [t for t in tasks or [] if t != probe.TASK]
    if names:
        began = time.time()
        outputs = probe.run_tasks(probe.ModelUnderTest(pretrained=ref.path), names, limit=probe_limit)
        result["timings_lm_eval"] = {"base_s": round(time.time() - began, 1)}
        if with_probe:
            answers_ = probe.answers(outputs)
            result["probe"] = {"task": probe.TASK, "questions": len(answers_), "base": {
                "accuracy": probe.accuracy(outputs),
                "workbench_accuracy": sum(a.workbench_correct for a in answers_) / len(answers_),
                "answers": [a.__dict__ for a in answers_]}}  # fmt: skip
        others = [t for t in names if t != probe.TASK]
        if others:
            result["tasks"] = {"base": {t: _numbers(outputs["results"].get(t, {})) for t in others}}
    report.write(output, result)
    return result


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
