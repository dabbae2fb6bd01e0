"""A judge: base and tuned replies compared pairwise by another model, each pair asked twice with the two positions
swapped, since judges favour a position (often the first).

The judge is any model the workbench loads (a bundled key, a folder, a hub id) or an OpenAI-compatible endpoint the
user names (`http://...`/`https://...`, through the official `openai` client). Nothing is contacted unless the user
asks for a judge. A pair counts for the tuned model only when both orders prefer it, for the base only when both
prefer the base; anything else (a tie, two orders that disagree, a verdict that cannot be read) is a tie. The win
rate counts a tie as half a win.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from workbench.errors import WorkbenchError

Verdict = Literal["A", "B", "tie"]
# A judge: the judge's reply to each of a list of prompts.
Ask = Callable[[list[str]], list[str]]

# What the judge is asked ({question}, {a}, {b}): data, so it can be read and changed without the code.
PROMPT_FILE = Path(__file__).resolve().parent.parent.parent / "presets" / "judge" / "pairwise.txt"


class JudgeError(WorkbenchError):
    """The judge could not be reached or loaded."""

    category = "config"


def is_endpoint(judge: str) -> bool:
    return judge.startswith(("http://", "https://"))


def parse(reply: str) -> Verdict | None:
    """The verdict a judge's reply gives: its first word A, B or tie (case and punctuation aside); none when it names
    more than one (a small judge may echo the question's "A, B or tie")."""
    match = re.match(r"\W*(answer\s+)?(a|b|tie)\b", reply.strip(), re.I)
    if match is None or len(set(re.findall(r"\b(A|B|[Tt]ie)\b", reply))) > 1:
        return None
    word = match.group(2).lower()
    return "tie" if word == "tie" else word.upper()  # type: ignore[return-value]


def pairwise(questions: list[str], base: list[str], tuned: list[str], ask: Ask) -> dict[str, Any]:
    """Each question's two replies judged in both orders (base first, then tuned first); wins, losses, ties and the
    tuned model's win rate, with every verdict."""
    template = PROMPT_FILE.read_text(encoding="utf-8").strip()
    prompts = [template.format(question=q, a=b, b=t) for q, b, t in zip(questions, base, tuned, strict=True)]
    prompts += [template.format(question=q, a=t, b=b) for q, b, t in zip(questions, base, tuned, strict=True)]
    said = ask(prompts)
    n = len(questions)
    rows, counts = [], {"tuned": 0, "base": 0, "tie": 0}
    for i, question in enumerate(questions):
        base_first, tuned_first = parse(said[i]), parse(said[n + i])
        # Who each order prefers, by model rather than position.
        first = {"A": "base", "B": "tuned"}.get(base_first or "", "tie")
        second = {"A": "tuned", "B": "base"}.get(tuned_first or "", "tie")
        winner = first if first == second else "tie"
        counts[winner] += 1
        rows.append({"question": question, "base_first": said[i], "tuned_first": said[n + i], "winner": winner})
    return {
        "wins": counts["tuned"],
        "losses": counts["base"],
        "ties": counts["tie"],
        "win_rate": (counts["tuned"] + counts["tie"] / 2) / n if n else None,
        "verdicts": rows,
    }


def endpoint(url: str, model: str | None, api_key_env: str = "OPENAI_API_KEY") -> Ask:
    """A judge behind an OpenAI-compatible endpoint; `model` defaults to the first the endpoint lists."""
    import openai

    client = openai.OpenAI(base_url=url, api_key=os.environ.get(api_key_env) or "none", timeout=120)

    def ask(prompts: list[str]) -> list[str]:
        try:
            name = model or client.models.list().data[0].id
            return [
                client.chat.completions.create(
                    model=name, messages=[{"role": "user", "content": p}], temperature=0, max_tokens=8
                )
                .choices[0]
                .message.content
                or ""
                for p in prompts
            ]
        except openai.OpenAIError as err:
            raise JudgeError(f"the judge at {url} did not answer: {err}") from err

    return ask


def local(model: str, *, batch_size: int = 8) -> Ask:
    """A judge the workbench loads itself: a bundled key, a local folder or a hub id."""
    from workbench import models
    from workbench.evaluation.generate import replies

    ref = models.resolve(model)
    tokenizer = models.load_tokenizer(ref)
    loaded = models.load_model(ref, device=_device()).eval()

    def ask(prompts: list[str]) -> list[str]:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        return replies(loaded, tokenizer, conversations, batch_size=batch_size, max_new_tokens=8)

    return ask


def judge_for(judge: str, model: str | None = None) -> Ask:
    """The judge a user named: an endpoint's address, or a model to load."""
    return endpoint(judge, model) if is_endpoint(judge) else local(judge)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
