"""Tokenizing conversations for supervised fine-tuning: input ids, and labels that train on the assistant's turns.

Each conversation is rendered by the chat template and tokenized once, in batches, with character offsets; the ids
are exactly those of the whole rendered text, which is what the model trains on. For assistant turn i, rendering
messages[:i] with add_generation_prompt=True gives the text before the reply and rendering messages[:i+1] the text
through the reply and the end-of-turn marker the template puts after it (`<|im_end|>\\n` in ChatML), so the model
learns to stop. Both must be prefixes of the whole rendering; the offsets turn those character positions into
token positions. A template that renders earlier turns differently once more follow is not prefix-stable: its
turns cannot be masked this way, and encoding says so with a ValueError. Where a single token straddles a reply's
start (a reply beginning with whitespace merges with the template's newline), that token is trained as part of the
reply and counted in `DataStats.boundary_merges`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.data.formats import Conversation
from workbench.data.stats import DataStats, compute_stats
from workbench.errors import DataError

IGNORE_INDEX = -100
_CHUNK = 1024  # conversations per batch: bounds the memory the character offsets take
_EXACT_CHECKS = 8  # leading conversations whose prompts are also tokenized alone, to prove token-level stability


@dataclass
class EncodedData:
    """Token ids and labels (IGNORE_INDEX where the loss skips a token), one pair of lists per kept row, and each
    kept row's position among the rows given (a row left with nothing to train is dropped); no `sources` for
    blocks of raw text, which run across documents."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    stats: DataStats
    sources: list[int] | None = None


@dataclass
class _Rendered:
    number: int  # 1-based position in the encoded list, for error messages
    text: str
    prompts: list[str]  # per assistant turn: the rendering up to and including the generation prompt
    ends: list[str]  # per assistant turn: the rendering through the reply and its end-of-turn marker


def encode_conversations(
    conversations: Sequence[Conversation],
    tokenizer: Any,
    *,
    cutoff_len: int,
    train_on_prompt: bool,
    chat_template: str | None = None,
) -> EncodedData:
    """Tokenize conversations into ids and labels, keeping the first `cutoff_len` tokens of each.

    Labels are IGNORE_INDEX except on the assistant replies and their end-of-turn tokens, or on every token with
    `train_on_prompt`. Rows left with no trained token after the cut are dropped and counted in the stats.
    """
    if cutoff_len < 1:
        raise ValueError(f"cutoff_len must be at least 1, got {cutoff_len}")
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise ValueError("the tokenizer has no chat template: set model.chat_template")
    input_ids: list[list[int]] = []
    labels: list[list[int]] = []
    sources: list[int] = []
    lengths: list[int] = []
    truncated = dropped = trained = merges = 0
    for start in range(0, len(conversations), _CHUNK):
        rendered = _render(conversations[start : start + _CHUNK], tokenizer, template, first_number=start + 1)
        encoded = _tokenize(rendered, tokenizer, exact_checks=max(0, _EXACT_CHECKS - start))
        for number, row in enumerate(encoded, start):
            ids, spans = row.ids, row.spans
            merges += row.merges
            lengths.append(len(ids))
            if len(ids) > cutoff_len:
                truncated += 1
                ids = ids[:cutoff_len]
                spans = [(a, min(b, cutoff_len)) for a, b in spans if a < cutoff_len]
            row_trained = len(ids) if train_on_prompt else sum(b - a for a, b in spans)
            if row_trained == 0:
                dropped += 1
                continue
            trained += row_trained
            input_ids.append(ids)
            labels.append(list(ids) if train_on_prompt else _mask(ids, spans))
            sources.append(number)
    if conversations and not input_ids:
        raise DataError(
            f"all {len(conversations)} rows were cut to cutoff_len={cutoff_len} tokens before any assistant reply; "
            "raise cutoff_len",
            field="cutoff_len",
        )
    stats = compute_stats(
        lengths,
        rows=len(input_ids),
        truncated_rows=truncated,
        dropped_rows=dropped,
        cutoff_len=cutoff_len,
        total_tokens=sum(len(ids) for ids in input_ids),
        trained_tokens=trained,
        boundary_merges=merges,
    )
    return EncodedData(input_ids=input_ids, labels=labels, stats=stats, sources=sources)


def _mask(ids: list[int], spans: list[tuple[int, int]]) -> list[int]:
    labels = [IGNORE_INDEX] * len(ids)
    for a, b in spans:
        labels[a:b] = ids[a:b]
    return labels


def _render(
    conversations: Sequence[Conversation], tokenizer: Any, template: str, *, first_number: int
) -> list[_Rendered]:
    prompt_requests: list[tuple[int, Conversation]] = []
    end_requests: list[tuple[int, Conversation]] = []
    for n, conversation in enumerate(conversations):
        for i, message in enumerate(conversation):
            if message["role"] == "assistant":
                prompt_requests.append((n, conversation[:i]))
                if i < len(conversation) - 1:  # the last turn's end is the whole rendering, rendered anyway
                    end_requests.append((n, conversation[: i + 1]))
    numbers = [first_number + n for n in range(len(conversations))]
    texts = _apply(tokenizer, template, list(conversations), numbers, generation_prompt=False)
    prompts = iter(_apply(tokenizer, template, *_unzip(prompt_requests, first_number), generation_prompt=True))
    ends = iter(_apply(tokenizer, template, *_unzip(end_requests, first_number), generation_prompt=False))

    rendered = []
    for n, (conversation, text) in enumerate(zip(conversations, texts, strict=True)):
        item = _Rendered(number=first_number + n, text=text, prompts=[], ends=[])
        for i, message in enumerate(conversation):
            if message["role"] != "assistant":
                continue
            prompt = next(prompts)
            end = next(ends) if i < len(conversation) - 1 else text
            if not text.startswith(prompt):
                raise _not_prefix(item.number, i, f"messages 1-{i} with the generation prompt", prompt, text)
            if not text.startswith(end) or len(end) < len(prompt):
                raise _not_prefix(item.number, i, f"messages 1-{i + 1}", end, text)
            item.prompts.append(prompt)
            item.ends.append(end)
        rendered.append(item)
    return rendered


def _unzip(requests: list[tuple[int, Conversation]], first_number: int) -> tuple[list[Conversation], list[int]]:
    return [c for _, c in requests], [first_number + n for n, _ in requests]


def _apply(
    tokenizer: Any, template: str, conversations: list[Conversation], numbers: list[int], *, generation_prompt: bool
) -> list[str]:
    if not conversations:
        return []
    options = {"chat_template": template, "tokenize": False, "add_generation_prompt": generation_prompt}
    try:
        return list(tokenizer.apply_chat_template(conversations, **options))
    except Exception as batch_error:
        # Templates raise anything (jinja2 errors, TypeError, their own raise_exception): find the culprit.
        for conversation, number in zip(conversations, numbers, strict=True):
            try:
                tokenizer.apply_chat_template(conversation, **options)
            except Exception as err:
                raise ValueError(f"the chat template failed on conversation {number}: {err}") from err
        raise ValueError(f"the chat template failed: {batch_error}") from batch_error


def _not_prefix(number: int, turn: int, what: str, part: str, whole: str) -> ValueError:
    at = next((k for k, (a, b) in enumerate(zip(part, whole, strict=False)) if a != b), min(len(part), len(whole)))
    return ValueError(
        f"the chat template is not prefix-stable: in conversation {number}, rendering {what} is not the start of "
        f"the whole conversation's rendering (they differ at character {at}: {part[at : at + 40]!r} vs "
        f"{whole[at : at + 40]!r}), so the reply in message {turn + 1} cannot be masked. Templates that render "
        "earlier turns differently once more follow (for example by dropping their reasoning) need a "
        "replacement: set model.chat_template."
    )


@dataclass
class _Encoded:
    ids: list[int]
    spans: list[tuple[int, int]]  # token spans of the assistant replies, end-of-turn markers included
    merges: int  # reply boundaries that fell inside a token


def _tokenize(rendered: list[_Rendered], tokenizer: Any, *, exact_checks: int) -> list[_Encoded]:
    """Token ids of each rendering and the token spans of its assistant replies."""
    texts = [item.text for item in rendered]
    if not getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [_spans_by_prefix(item, list(ids), tokenizer) for item, ids in zip(rendered, encoded, strict=True)]
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    result = []
    columns = zip(rendered, encoded["input_ids"], encoded["offset_mapping"], strict=True)
    for k, (item, ids, offsets) in enumerate(columns):
        starts = [s for s, _ in offsets]
        spans, merges, clean_cuts = [], 0, []
        for prompt, end in zip(item.prompts, item.ends, strict=True):
            (a, a_clean), (b, b_clean) = _cut(offsets, starts, len(prompt)), _cut(offsets, starts, len(end))
            # A token holding both the prompt's last characters and the reply's first (the template's newline
            # merged with a reply that starts with whitespace) is trained as part of the reply: it cannot be split.
            spans.append((a if a_clean else a - 1, b))
            merges += (not a_clean) + (not b_clean)
            clean_cuts += [(text, index) for text, index, clean in ((prompt, a, a_clean), (end, b, b_clean)) if clean]
        if k < exact_checks:
            _check_alone(item, ids, clean_cuts, tokenizer)
        result.append(_Encoded(list(ids), spans, merges))
    return result


def _cut(offsets: list[tuple[int, int]], starts: list[int], char: int) -> tuple[int, bool]:
    """The first token starting at or after character `char`, and whether no token straddles `char`."""
    index = bisect_left(starts, char)
    return index, index == 0 or offsets[index - 1][1] <= char


def _check_alone(item: _Rendered, ids: list[int], cuts: list[tuple[str, int]], tokenizer: Any) -> None:
    # Offsets say where a prompt ends inside the whole conversation; generation tokenizes the prompt alone.
    # The two must agree, or training and generation would see different prompt tokens.
    if not cuts:
        return
    pieces = tokenizer([text for text, _ in cuts], add_special_tokens=False)["input_ids"]
    for (_, index), piece in zip(cuts, pieces, strict=True):
        if list(piece) != list(ids[:index]):
            raise ValueError(
                f"the chat template is not prefix-stable at the token level: in conversation {item.number}, the "
                "text before a reply tokenized on its own gives other tokens than the same text inside the whole "
                "conversation, so training and generation would see different prompts"
            )


def _spans_by_prefix(item: _Rendered, ids: list[int], tokenizer: Any) -> _Encoded:
    """Reply spans for tokenizers without offsets: tokenize each prompt and end text alone (slower)."""
    if not item.prompts:
        return _Encoded(ids, [], 0)
    pieces = tokenizer(item.prompts + item.ends, add_special_tokens=False)["input_ids"]
    cuts = []
    for piece in pieces:
        same = next((i for i, (a, b) in enumerate(zip(piece, ids, strict=False)) if a != b), min(len(piece), len(ids)))
        cuts.append((same, same == len(piece)))
    half = len(item.prompts)
    # Where a token straddles a boundary, the first differing token is the merged one: it joins the reply.
    pairs = zip(cuts[:half], cuts[half:], strict=True)
    spans = [(a, b if b_clean else min(b + 1, len(ids))) for (a, _), (b, b_clean) in pairs]
    return _Encoded(ids, spans, sum(not clean for _, clean in cuts))
