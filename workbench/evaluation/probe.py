"""Forgetting, measured: the general-knowledge probe (and any lm-eval task) through lm-evaluation-harness.

The probe (presets/probe: ~270 short questions with one answer each) is an lm-eval task over a local file, so it
runs offline and its numbers are what lm-eval users expect. The base model and the tuned one answer the same
questions; retention is the share of the questions the base answers correctly that the tuned model still does.
Every reply is scored twice: by the task's own scoring inside lm-eval and by the workbench's reading
(metrics.contains_answer); the report keeps both, and they must agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import contains_answer

PROBE_DIR = Path(__file__).resolve().parent.parent.parent / "presets" / "probe"
TASK = "workbench_probe"
# Below this, the tuned model has lost more than one in ten facts the base knew. With ~150 questions the base gets
# right, retention's standard error near 0.95 is ~2 points, so a fall below 0.9 is more than chance.
RETENTION_WARNING = 0.9


class ProbeError(WorkbenchError):
    """lm-evaluation-harness could not run a task (unknown, or its data is not on this machine)."""

    category = "data"


@dataclass(frozen=True)
class ModelUnderTest:
    """What lm-eval's `hf` model loads: a base folder with optionally a PEFT adapter (its `peft=` argument) or,
    for artifacts lm-eval cannot load itself (bottleneck adapters), a model already loaded."""

    pretrained: str
    peft: str | None = None
    tokenizer: str | None = None
    loaded: Any = None


def offline() -> None:
    """No hub look-ups: the probe and the models are local (set before datasets or lm-eval is imported)."""
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[key] = "1"


def run_tasks(
    model: ModelUnderTest,
    tasks: list[str],
    *,
    limit: int | None = None,
    system_prompt: str | None = None,
    batch_size: int = 16,
) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` on `tasks`, asked as chat, greedy, with every sample logged."""
    offline()
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    device = "cuda" if torch.cuda.is_available() else "cpu"
    manager = TaskManager(include_path=str(PROBE_DIR))
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ProbeError(f"lm-eval knows no task {', '.join(map(repr, unknown))}")
    if model.loaded is not None:
        from lm_eval.models.huggingface import HFLM

        lm: Any = HFLM(pretrained=model.loaded, tokenizer=model.tokenizer, batch_size=batch_size, device=device)
        args = None
    else:
        lm = "hf"
        args = {"pretrained": model.pretrained, "dtype": "float32" if device == "cpu" else "auto", "device": device}
        args.update({k: v for k, v in (("peft", model.peft), ("tokenizer", model.tokenizer)) if v})
    try:
        return lm_eval.simple_evaluate(
            model=lm,
            model_args=args,
            tasks=tasks,
            task_manager=manager,
            limit=limit,
            batch_size=batch_size,
            log_samples=True,
            apply_chat_template=True,
            system_instruction=system_prompt,
            bootstrap_iters=0,  # no stderr resampling: the retention figures are ours
        )
    except (OSError, ConnectionError) as err:  # datasets' way of saying the data is not here and cannot be fetched
        raise ProbeError(f"lm-eval could not read the data of {', '.join(tasks)} on this machine: {err}") from err


@dataclass(frozen=True)
class ProbeAnswer:
    id: str
    category: str
    question: str
    answer: str
    reply: str
    correct: int  # lm-eval's scoring
    workbench_correct: int  # the workbench's reading of the same reply


def answers(results: dict[str, Any]) -> list[ProbeAnswer]:
    """The probe's per-question answers from lm-eval's logged samples, each also read by the workbench."""
    found = []
    for sample in results["samples"][TASK]:
        doc, reply = sample["doc"], sample["filtered_resps"][0]
        found.append(
            ProbeAnswer(
                id=doc["id"],
                category=doc["category"],
                question=doc["question"],
                answer=doc["answer"],
                reply=reply,
                correct=int(sample["contains_answer"]),
                workbench_correct=contains_answer(reply, [doc["answer"], *doc["aliases"]]),
            )
        )
    return found


def accuracy(results: dict[str, Any]) -> float:
    """The probe's score as lm-eval reports it."""
    return results["results"][TASK]["contains_answer,none"]


def retention(base: list[ProbeAnswer], tuned: list[ProbeAnswer]) -> dict[str, Any]:
    """Of the questions the base answers correctly, the share the tuned model still does; the ones it lost."""
    by_id = {a.id: a for a in tuned}
    known = [a for a in base if a.correct]
    lost = [(a, by_id[a.id]) for a in known if not by_id[a.id].correct]
    gained = [a for a in tuned if a.correct and not next(b for b in base if b.id == a.id).correct]
    share = 1 - len(lost) / len(known) if known else None
    return {
        "retention": share,
        "base_correct": len(known),
        "kept": len(known) - len(lost),
        "gained": len(gained),
        "warning": share is not None and share < RETENTION_WARNING,
        "threshold": RETENTION_WARNING,
        "lost": [
            {"id": b.id, "question": b.question, "answer": b.answer, "base_reply": b.reply, "tuned_reply": t.reply}
            for b, t in lost
        ],
    }
