"""A saved evaluation (`RUN/eval/report.json`, written by `workbench.evaluation`) as the page shows it, in the page's
language: the metrics of base and tuned with the change, the per-example table, the probe's figures and the
forgetting warning with the questions lost. The Evaluate tab shows all of it; the Runs tab the warning."""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.evaluation import report as reports
from workbench.ui.i18n import EN, Translator

METRIC_COLUMNS = ["metric", "base", "tuned", "change"]
# The per-example table: the report's keys, by the column the page names them with.
EXAMPLE_COLUMNS = {
    "prompt": "prompt",
    "reference": "reference",
    "base reply": "base_reply",
    "tuned reply": "tuned_reply",
    "base chrF": "base_chrf",
    "tuned chrF": "tuned_chrf",
    "chrF change": "change_chrf",
    "base ROUGE-L": "base_rouge_l",
    "tuned ROUGE-L": "tuned_rouge_l",
}
# The page shows this many examples, the largest changes first; examples.csv in the run folder holds every one.
SHOWN_EXAMPLES = 200
# Lost probe questions listed under the warning.
SHOWN_LOST = 10


def metrics_table(report: dict[str, Any], t: Translator = EN) -> pd.DataFrame:
    """(metric, base, tuned, change) rows: every test-set metric, the probe's accuracy and retention."""
    rows = [(t(name), base, tuned, change) for name, base, tuned, change in reports.table(report)]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).rename(columns=t)


def examples_table(report: dict[str, Any], t: Translator = EN) -> pd.DataFrame:
    """Prompt, reference, both replies and their scores, the largest change in chrF first (the report's order)."""
    rows = [
        {column: example.get(key, "") for column, key in EXAMPLE_COLUMNS.items()}
        for example in (report.get("examples") or [])[:SHOWN_EXAMPLES]
    ]
    return pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS)).rename(columns=t)


def summary(report: dict[str, Any], t: Translator = EN) -> str:
    """What was asked: the examples and where they came from, the probe's questions."""
    parts = []
    if report.get("examples_count"):
        parts.append(t("{count} examples from `{data}`", count=report["examples_count"], data=report.get("data", "")))
    probe = report.get("probe")
    if probe:
        parts.append(t("probe: {count} questions", count=probe.get("questions", 0)))
    return " · ".join(parts)


def probe_line(report: dict[str, Any], t: Translator = EN) -> str:
    """The probe's accuracy for base and tuned and the retention, in a sentence."""
    probe = report.get("probe") or {}
    base, tuned = (probe.get(who, {}).get("accuracy") for who in ("base", "tuned"))
    if base is None or tuned is None:
        return ""
    text = t("Probe: the base answers {base:.1%}, the tuned model {tuned:.1%}.", base=base, tuned=tuned)
    if probe.get("retention") is not None:
        text += " " + t(
            "Retention {retention:.1%}: it keeps {kept} of the {known} answers its base gets right and gains "
            "{gained}.",
            retention=probe["retention"],
            kept=probe.get("kept", 0),
            known=probe.get("base_correct", 0),
            gained=probe.get("gained", 0),
        )
    return text


def forgetting(report: dict[str, Any] | None, t: Translator = EN) -> str:
    """The warning when retention fell below the threshold, with the questions lost (Markdown); else ""."""
    probe = (report or {}).get("probe") or {}
    if not probe.get("warning"):
        return ""
    lost = probe.get("lost") or []
    lines = [
        "⚠️ "
        + t(
            "**Forgetting**: the tuned model keeps {retention:.0%} of the probe answers its base gets right, below "
            "{threshold:.0%}. Lost {count}:",
            retention=probe["retention"],
            threshold=probe["threshold"],
            count=len(lost),
        )
    ]
    lines += [
        "- " + t("{question} ({answer}) → {reply}", question=x["question"], answer=x["answer"],
                 reply=_quote(x.get("tuned_reply", "")))
        for x in lost[:SHOWN_LOST]
    ]  # fmt: skip
    if len(lost) > SHOWN_LOST:
        lines.append("- " + t("… and {count} more", count=len(lost) - SHOWN_LOST))
    return "\n".join(lines)


def _quote(reply: str) -> str:
    reply = " ".join(reply.split())
    return f"“{reply[:80]}…”" if len(reply) > 80 else f"“{reply}”"
