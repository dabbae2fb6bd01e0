"""What an evaluation leaves in `RUN/eval/`: report.json (figures for base and tuned, the probe, every example),
examples.csv (the per-example table, largest change first), metrics.png; and its section of the model card.

Light (no torch): the UI, the export and the CLI read reports through here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from workbench.evaluation.metrics import HIGHER_IS_BETTER, METRICS
from workbench.runs.files import write_json_atomic, write_text_atomic

REPORT, EXAMPLES, CHART = "report.json", "examples.csv", "metrics.png"
# The model card's evaluation section sits between these, so a later evaluation replaces it.
_CARD_START, _CARD_END = "<!-- workbench-evaluation -->", "<!-- /workbench-evaluation -->"
_LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge_l": "ROUGE-L",
    "exact_match": "exact match",
    "contains_answer": "contains answer",
    "reply_words": "reply length (words)",
}


def write(folder: Path, report: dict[str, Any]) -> None:
    """Write the report, its examples table and its chart into `folder` (each file atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / REPORT, report)
    write_text_atomic(folder / EXAMPLES, examples_csv(report.get("examples", [])))
    chart = chart_png(report)
    if chart is not None:
        (folder / CHART).write_bytes(chart)


def read(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / REPORT).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def examples_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _percent(name: str, value: float) -> float:
    return 100 * value if name in ("exact_match", "contains_answer") else value


def chart_png(report: dict[str, Any]) -> bytes | None:
    """Base beside tuned for each 0-100 metric (and the probe's accuracy); None when there is nothing to draw."""
    metrics = report.get("metrics") or {}
    bars = {name: {who: _percent(name, figures[name]) for who, figures in metrics.items()}
            for name in METRICS if name != "reply_words" and any(name in f for f in metrics.values())}  # fmt: skip
    probe = report.get("probe")
    if probe:
        bars["probe accuracy"] = {who: 100 * probe[who]["accuracy"] for who in ("base", "tuned") if who in probe}
    if not bars:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    names = list(bars)
    for offset, (who, color) in zip((-0.2, 0.2), (("base", "tab:gray"), ("tuned", "tab:blue")), strict=True):
        values = [bars[n].get(who, 0.0) for n in names]
        axes.bar([i + offset for i in range(len(names))], values, width=0.4, label=who, color=color)
    axes.set_xticks(range(len(names)), [_LABELS.get(n, n) for n in names])
    axes.set_ylabel("score (0-100)")
    axes.set_title(report.get("title", "evaluation"))
    axes.grid(alpha=0.3, axis="y")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def table(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, base, tuned, change) rows, for the CLI and the model card."""
    metrics = report.get("metrics") or {}
    base, tuned = metrics.get("base", {}), metrics.get("tuned", {})
    rows = []
    for name in METRICS:
        if name not in base and name not in tuned:
            continue
        b, t = base.get(name), tuned.get(name)
        change = f"{_percent(name, t) - _percent(name, b):+.1f}" if b is not None and t is not None else ""
        rows.append((_LABELS[name], _fmt(name, b), _fmt(name, t), change))
    probe = report.get("probe")
    if probe:
        b, t = probe.get("base", {}).get("accuracy"), probe.get("tuned", {}).get("accuracy")
        change = f"{100 * (t - b):+.1f}" if b is not None and t is not None else ""
        rows.append(("probe accuracy", _fmt("contains_answer", b), _fmt("contains_answer", t), change))
        if probe.get("retention") is not None:
            rows.append(("probe retention", "", _fmt("contains_answer", probe["retention"]), ""))
    return rows


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{_percent(name, value):.1f}" + ("%" if name in ("exact_match", "contains_answer") else "")


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The few figures that stand for an evaluation beside other runs' (Compare runs): the tuned side's chrF,
    ROUGE-L and contains-answer, their change from the base, and the probe's retention."""
    metrics = report.get("metrics") or {}
    base, tuned = metrics.get("base", {}), metrics.get("tuned", {})
    found = {}
    for name in ("chrf", "rouge_l", "contains_answer"):
        if name in tuned:
            found[f"eval {_LABELS[name]}"] = round(_percent(name, tuned[name]), 2)
            if name in base:
                found[f"eval {_LABELS[name]} change"] = round(_percent(name, tuned[name] - base[name]), 2)
    retention = (report.get("probe") or {}).get("retention")
    if retention is not None:
        found["probe retention"] = round(100 * retention, 1)
    return found


def warnings(report: dict[str, Any]) -> list[str]:
    """What a person should not miss: retention below the threshold, with the questions lost."""
    probe = report.get("probe") or {}
    if not probe.get("warning"):
        return []
    lost = "; ".join(f"{x['question']} ({x['answer']}): {x['tuned_reply'][:60]!r}" for x in probe["lost"][:5])
    return [
        f"forgetting: the tuned model keeps {100 * probe['retention']:.0f}% of the probe answers its base gets right "
        f"(below {100 * probe['threshold']:.0f}%); lost {len(probe['lost'])}, e.g. {lost}"
    ]


def card_section(report: dict[str, Any]) -> str:
    """The model card's evaluation section (Markdown)."""
    lines = [_CARD_START, "## Evaluation", ""]
    n = report.get("examples_count")
    if n:
        lines += [
            f"{n} examples of the {report.get('split', 'test')} set ({report.get('data', '')}), greedy replies of "
            "the base model (the adapter switched off) and of the tuned one. BLEU and chrF by sacrebleu "
            "(corpus), ROUGE-L by rouge-score (mean F1), 0-100.",
            "",
        ]
    probe = report.get("probe")
    if probe:
        lines += [
            f"General-knowledge probe (lm-evaluation-harness task `{probe['task']}`, {probe['questions']} "
            "questions asked as chat): of the questions the base answers correctly, the tuned model still answers "
            f"**{_fmt('contains_answer', probe.get('retention'))}** (retention).",
            "",
        ]
    lines += ["| metric | base | tuned | change |", "|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(row)} |" for row in table(report)]
    lines += ["", *[f"**Warning**: {w}" for w in warnings(report)], _CARD_END, ""]
    return "\n".join(lines)


def add_to_card(card: Path, report: dict[str, Any]) -> None:
    """Put the evaluation section into a model card (README.md), replacing an earlier one."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    pattern = re.compile(re.escape(_CARD_START) + ".*?" + re.escape(_CARD_END) + "\n?", re.DOTALL)
    section = card_section(report)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    write_text_atomic(card, text)


def better(name: str, change: float) -> bool:
    return change > 0 if HIGHER_IS_BETTER[name] else change < 0
