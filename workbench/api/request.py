"""One request's reply as it is generated: its tokens, its text so far, its stop sequences, and how it ended.

The engine feeds it one token at a time (in a batch, each row has its own); it hands finished text to `send`, cut
before the first stop sequence, holding back a tail that may yet become one. Pure Python: no torch here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens and when to stop. Temperature 0 is greedy decoding (the same prompt, the same reply)."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def batch_key(self) -> tuple:
        """Requests with equal keys can share a batch: `generate` takes one way of sampling for all its rows, and
        a seeded request's random draws are its own."""
        if self.seed is not None:
            return ("seeded", id(self))
        return ("greedy",) if self.temperature == 0 else ("sampled", self.temperature, self.top_p)


Send = Callable[[str, Any], None]  # ("piece", text), then ("end", None) or ("error", exception); thread-safe


@dataclass
class Request:
    """A prompt for a served model; `send` gets the reply. Setting `cancel` ends it after the current token."""

    model: str
    prompt: list[int]
    sampling: Sampling
    send: Send
    cancel: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" or "length"; None when cancelled
    done: bool = False
    _ids: list[int] = field(default_factory=list)
    _sent: str = ""

    def take(self, token: int, tokenizer: Any, eos: set[int]) -> None:
        """One more generated token; marks the request done when it ends its reply."""
        if self.done:
            return
        if self.cancel.is_set():
            self.done = True
            return
        self._ids.append(token)
        self.completion_tokens = len(self._ids)
        if token in eos:
            self._finish("stop", tokenizer)
        elif self.completion_tokens >= self.sampling.max_tokens:
            self._finish("length", tokenizer)
        else:
            self._emit(tokenizer.decode(self._ids, skip_special_tokens=True), final=False)

    def finish(self, tokenizer: Any) -> None:
        """The generation has ended: whatever text is held back goes out."""
        if not self.done:
            self._finish(None if self.cancel.is_set() else "stop", tokenizer)

    def _finish(self, reason: str | None, tokenizer: Any) -> None:
        self.done = True  # before emitting: a stop sequence found now may change the reason
        self.finish_reason = reason
        self._emit(tokenizer.decode(self._ids, skip_special_tokens=True), final=True)

    def _emit(self, text: str, final: bool) -> None:
        if not final and text.endswith("\ufffd"):
            return  # half of a character: wait for the rest
        cut = _first_stop(text, self.sampling.stop)
        if cut is not None:
            text, final = text[:cut], True
            self.done, self.finish_reason = True, "stop"
        # A tail that may be the start of a stop sequence waits until it is known not to be one.
        safe = len(text) if final else len(text) - _held_back(text, self.sampling.stop)
        if safe > len(self._sent):
            self.send("piece", text[len(self._sent) : safe])
            self._sent = text[:safe]


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that begins some stop sequence."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if stop.startswith(text[-n:]):
                longest = n
                break
    return longest
