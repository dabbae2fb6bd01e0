"""Scores of a reply against its reference: sacrebleu's BLEU and chrF, rouge-score's ROUGE-L, exact match,
contains-answer and length.

`contains_answer` is also the workbench's own reading of the probe's replies; it must agree with the probe task's
scoring for lm-evaluation-harness (presets/probe/probe_task.py), which tests check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from statistics import mean

# Per example, and for a whole set (BLEU and chrF over the corpus, the rest as means of the examples').
METRICS = ("bleu", "chrf", "rouge_l", "exact_match", "contains_answer", "reply_words")
HIGHER_IS_BETTER = {name: name != "reply_words" for name in METRICS}


def normalise(text: str) -> str:
    """Lower case, thousands separators dropped (1,000 -> 1000), punctuation as spaces, single spaces."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    return " ".join(re.sub(r"[^0-9a-z\u00c0-\u024f]+", " ", text).split())


def exact_match(reply: str, answers: Sequence[str]) -> int:
    return int(any(normalise(reply) == normalise(a) for a in answers))


def contains_answer(reply: str, answers: Sequence[str]) -> int:
    """Whether one of `answers` appears in the reply as whole words, after normalising both."""
    padded = f" {normalise(reply)} "
    return int(any(f" {normalise(a)} " in padded for a in answers if normalise(a)))


def example_scores(reply: str, reference: str) -> dict[str, float]:
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return {
        # effective_order: a short reply without 4-gram matches still gets a BLEU from its shorter n-grams.
        "bleu": BLEU(effective_order=True).sentence_score(reply, [reference]).score,
        "chrf": CHRF().sentence_score(reply, [reference]).score,
        "rouge_l": 100 * rouge.score(reference, reply)["rougeL"].fmeasure,
        "exact_match": exact_match(reply, [reference]),
        "contains_answer": contains_answer(reply, [reference]),
        "reply_words": len(reply.split()),
    }


def corpus_scores(replies: Sequence[str], references: Sequence[str], per_example: Sequence[dict]) -> dict[str, float]:
    """The set's figures: corpus BLEU and chrF (as sacrebleu reports them), means of the rest (0-100 scale for
    ROUGE-L, shares for the matches, words for length)."""
    from sacrebleu.metrics import BLEU, CHRF

    if not replies:
        return {}
    return {
        "bleu": BLEU().corpus_score(list(replies), [list(references)]).score,
        "chrf": CHRF().corpus_score(list(replies), [list(references)]).score,
        **{name: mean(s[name] for s in per_example) for name in METRICS if name not in ("bleu", "chrf")},
    }
